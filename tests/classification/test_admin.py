"""Classification admin: who may read and edit, the rule editor, preview scope, assignments,
statistics, import/export, and the classification filter and column on accounts."""

import io
import json

import pytest
from auditlog.models import LogEntry
from guardian.shortcuts import assign_perm

from classification.models import Assignment, Rule
from classification.services import (
    assignment_add_manual,
    classification_classify_instance,
    statistics_compute,
)
from tests.accounts.factories import make_account
from tests.classification.conftest import READS_SHOP, SUPER_OR_ALL, SUPERUSER

pytestmark = pytest.mark.django_db

ROLES = ["Administrators", "DBAs", "Auditors", "Schedulers", "Viewers"]
READERS = {"Administrators", "DBAs", "Auditors"}
EDITORS = {"Administrators", "DBAs"}


def classify(estate):
    for key in ("mysql_a", "mysql_b", "pg"):
        classification_classify_instance(instance=estate[key])


def rule_form(classification, expression, **extra):
    return {
        "classification": classification.pk,
        "name": "MySQL accounts with global SUPER or ALL",
        "engine": "mysql",
        "expression": expression if isinstance(expression, str) else json.dumps(expression),
        "is_active": "on",
        **extra,
    }


@pytest.mark.parametrize("role", ROLES)
def test_who_may_read(client, user_with_role, estate, rules, role):
    client.force_login(user_with_role(role))
    classify(estate)
    assignment = Assignment.objects.first()
    pages = [
        "/admin/classification/classification/",
        "/admin/classification/classification/statistics/",
        "/admin/classification/rule/",
        f"/admin/classification/rule/{rules['superuser'].pk}/change/",
        "/admin/classification/assignment/",
        f"/admin/classification/assignment/{assignment.pk}/change/",
    ]
    expected = 200 if role in READERS else 403
    assert [client.get(url).status_code for url in pages] == [expected] * len(pages)


@pytest.mark.parametrize("role", ROLES)
def test_who_may_edit(client, user_with_role, classifications, role):
    client.force_login(user_with_role(role))
    response = client.post(
        "/admin/classification/rule/add/", rule_form(classifications["super"], SUPER_OR_ALL)
    )
    assert response.status_code == (302 if role in EDITORS else 403)
    assert Rule.objects.exists() == (role in EDITORS)
    assert client.get("/admin/classification/assignment/add/").status_code == (
        200 if role in EDITORS else 403
    )


def test_dba_writes_a_rule_and_it_is_audited(client, user_with_role, classifications):
    dba = user_with_role("DBAs")
    client.force_login(dba)
    response = client.post(
        "/admin/classification/rule/add/", rule_form(classifications["super"], SUPER_OR_ALL)
    )
    assert response.status_code == 302
    rule = Rule.objects.get()
    assert (rule.version, rule.created_by, rule.expression) == (1, dba, SUPER_OR_ALL)
    assert LogEntry.objects.get_for_object(rule).filter(actor=dba).exists()
    page = client.get(f"/admin/classification/rule/{rule.pk}/change/").content.decode()
    assert "db_type_in([&quot;mysql&quot;]) AND (has_privilege(" in page
    assert "Version history" in page
    assert "Preview matches" in page


def test_invalid_expressions_show_every_error_with_its_path(
    client, user_with_role, classifications
):
    client.force_login(user_with_role("DBAs"))
    bad = {"version": 4, "expr": {"op": "AND", "args": [{"fn": "nope"}, {"fn": "has_role"}]}}
    response = client.post(
        "/admin/classification/rule/add/", rule_form(classifications["super"], bad)
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "expr.args[0].fn: unknown function" in page
    assert "UNKNOWN_DSL_FUNCTION" in page
    assert "expr.args[1].args.name: name is required (MISSING_DSL_ARGS)" in page
    not_json = client.post(
        "/admin/classification/rule/add/", rule_form(classifications["super"], "{oops")
    )
    assert "Not valid JSON at line 1, column 2" in not_json.content.decode()
    assert not Rule.objects.exists()


def test_editing_the_expression_in_the_admin_creates_a_version(client, user_with_role, rules):
    client.force_login(user_with_role("DBAs"))
    v1 = rules["superuser"]
    response = client.post(
        f"/admin/classification/rule/{v1.pk}/change/",
        {
            "name": v1.name,
            "engine": "",
            "expression": json.dumps(READS_SHOP),
            "is_active": "on",
            "_continue": "1",
        },
    )
    v2 = Rule.objects.current().get(lineage=v1.lineage)
    assert v2.version == 2
    assert response.status_code == 302
    assert response.url.endswith(f"/{v2.pk}/change/")
    # The superseded version is history: visible, not editable.
    page = client.get(f"/admin/classification/rule/{v1.pk}/change/").content.decode()
    assert 'name="_save"' not in page
    assert "Preview matches" not in page
    before = Rule.objects.get(pk=v1.pk).expression
    client.post(
        f"/admin/classification/rule/{v1.pk}/change/",
        {"name": "x", "engine": "", "expression": json.dumps(SUPERUSER), "is_active": "on"},
    )
    assert Rule.objects.get(pk=v1.pk).expression == before
    assert (
        "superseded"
        in client.get("/admin/classification/rule/?versions=superseded").content.decode()
    )


def test_preview_lists_only_accounts_on_visible_instances(client, user_with_role, estate):
    dba = user_with_role("DBAs (scoped)")
    assign_perm("inventory.view_instance", dba, estate["mysql_a"])
    client.force_login(dba)
    response = client.post(
        "/admin/classification/rule/preview/",
        {"expression": json.dumps(SUPER_OR_ALL), "engine": "mysql"},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "root@%" in page
    assert "dba@%" in page
    assert "admin@%" not in page  # the same privileges on mysql-b, which the DBA cannot see
    assert "2 of 3 accounts match" in page
    everyone = user_with_role("DBAs")
    client.force_login(everyone)
    page = client.post(
        "/admin/classification/rule/preview/",
        {"expression": json.dumps(SUPER_OR_ALL), "engine": ""},
    ).content.decode()
    assert "admin@%" in page
    assert "3 of 7 accounts match" in page


def test_preview_shows_errors_and_is_for_editors_only(client, user_with_role, estate):
    client.force_login(user_with_role("DBAs"))
    page = client.post(
        "/admin/classification/rule/preview/", {"expression": '{"version": 3}'}
    ).content.decode()
    assert "DSL_V4_REQUIRED" in page
    assert "accounts match" not in page
    client.force_login(user_with_role("Auditors"))
    assert (
        client.post("/admin/classification/rule/preview/", {"expression": "{}"}).status_code == 403
    )
    assert client.get("/admin/classification/rule/preview/").status_code in (403, 405)


def test_system_classifications_cannot_be_deleted_or_rerisked(
    client, user_with_role, classifications
):
    client.force_login(user_with_role("DBAs"))
    super_ = classifications["super"]
    assert (
        client.get(f"/admin/classification/classification/{super_.pk}/delete/").status_code == 403
    )
    client.post(
        "/admin/classification/classification/",
        {"action": "delete_selected", "_selected_action": [super_.pk], "post": "yes"},
    )
    super_.refresh_from_db()
    page = client.get(f"/admin/classification/classification/{super_.pk}/change/").content.decode()
    assert 'name="risk_level"' not in page
    assert 'name="code"' not in page


def test_manual_assignments_by_dbas(client, user_with_role, estate, rules, classifications):
    classify(estate)
    dba = user_with_role("DBAs")
    client.force_login(dba)
    response = client.post(
        "/admin/classification/assignment/add/",
        {"account": estate["pg_app"].pk, "classification": classifications["sensitive"].pk},
    )
    assert response.status_code == 302
    manual = Assignment.objects.get(account=estate["pg_app"], classification__code="sensitive")
    assert (manual.source, manual.assigned_by) == ("manual", dba)
    # Pinning a pair the rules assigned turns it manual instead of failing as a duplicate.
    response = client.post(
        "/admin/classification/assignment/add/",
        {"account": estate["root"].pk, "classification": classifications["super"].pk},
    )
    assert response.status_code == 302
    assert (
        Assignment.objects.get(account=estate["root"], classification__code="super").source
        == "manual"
    )
    again = client.post(
        "/admin/classification/assignment/add/",
        {"account": estate["root"].pk, "classification": classifications["super"].pk},
    )
    assert "already assigned to Super by hand" in again.content.decode()
    auto = Assignment.objects.filter(source="auto").first()
    assert client.get(f"/admin/classification/assignment/{auto.pk}/delete/").status_code == 403
    assert (
        client.post(
            f"/admin/classification/assignment/{manual.pk}/delete/", {"post": "yes"}
        ).status_code
        == 302
    )
    assert not Assignment.objects.filter(pk=manual.pk).exists()
    assert LogEntry.objects.filter(
        object_pk=str(manual.pk), action=LogEntry.Action.DELETE, actor=dba
    ).exists()


def test_a_scoped_dba_assigns_only_visible_accounts(
    client, user_with_role, estate, classifications
):
    dba = user_with_role("DBAs (scoped)")
    assign_perm("inventory.view_instance", dba, estate["mysql_a"])
    client.force_login(dba)
    response = client.post(
        "/admin/classification/assignment/add/",
        {"account": estate["pg_app"].pk, "classification": classifications["low"].pk},
    )
    assert response.status_code == 200
    assert not Assignment.objects.exists()
    assignment_add_manual(
        account=estate["pg_app"], classification=classifications["low"], user=None
    )
    assert list(client.get("/admin/classification/assignment/").context["cl"].result_list) == []


def test_statistics_page_draws_a_chart_per_classification(client, user_with_role, estate, rules):
    classify(estate)
    statistics_compute()
    client.force_login(user_with_role("Auditors"))
    page = client.get("/admin/classification/classification/statistics/").content.decode()
    # A chart for each classification with statistics; the others say so, without axes.
    assert page.count('<svg class="wf-chart"') == 2
    assert page.count("No statistics yet.") == 4
    assert "<polyline" in page
    assert "4 matched, 4 assigned" in page  # super: root, dba, mysql-b admin, postgres
    page = client.get("/admin/classification/classification/statistics/?engine=postgresql")
    assert "1 matched, 1 assigned" in page.content.decode()


def test_rules_export_and_import_in_the_admin(client, user_with_role, rules):
    client.force_login(user_with_role("DBAs"))
    response = client.post(
        "/admin/classification/rule/",
        {"action": "export_rules", "_selected_action": [r.pk for r in rules.values()]},
    )
    document = json.loads(response.content)
    assert len(document["rules"]) == 3
    document["rules"][0]["expression"] = SUPERUSER  # rules[0] is "Reads shop"
    upload = io.BytesIO(json.dumps(document).encode())
    upload.name = "rules.json"
    check = client.post("/admin/classification/rule/import/", {"file": upload, "dry_run": "on"})
    assert "1 new versions" in check.content.decode()
    upload.seek(0)
    done = client.post("/admin/classification/rule/import/", {"file": upload})
    assert done.status_code == 302
    assert Rule.objects.filter(version=2).count() == 1
    broken = io.BytesIO(b"[{")
    broken.name = "rules.json"
    assert (
        "not valid JSON"
        in client.post("/admin/classification/rule/import/", {"file": broken}).content.decode()
    )
    client.force_login(user_with_role("Auditors"))
    assert client.get("/admin/classification/rule/import/").status_code == 403


def test_accounts_are_filtered_and_exported_by_classification(
    client, user_with_role, estate, rules
):
    classify(estate)
    client.force_login(user_with_role("Auditors"))
    page = client.get("/admin/accounts/account/?classification=super").content.decode()
    rows = page.split('id="result_list"')[1]
    assert "root@%" in rows
    assert "reader@10.%" not in rows
    assert 'class="wf-tag"' in rows
    assert ">Super</span>" in rows
    make_account(estate["mysql_a"], "nobody", host="%")
    unclassified = client.get("/admin/accounts/account/?classification=none")
    assert [a.name for a in unclassified.context["cl"].result_list] == ["nobody"]
    export = client.post(
        "/admin/accounts/account/export/?classification=super",
        {"format": "0", "resource": "0", "accountresource_account": "on",
         "accountresource_classifications": "on"},
    )  # fmt: skip
    body = export.content.decode()
    assert "root@%" in body
    assert "Super" in body
    assert "reader@" not in body
    account_page = client.get(f"/admin/accounts/account/{estate['root'].pk}/change/")
    assert "MySQL accounts with global SUPER or ALL v1" in account_page.content.decode()

"""API of classification: classifications, versioned rules and their validator, and the
assignments of accounts, with the admin's permissions and instance scope."""

import json

import pytest

from classification import services
from classification.models import Assignment, AssignmentSource, Classification, Rule
from tests.classification import conftest as classification_fixtures
from tests.classification.conftest import READS_SHOP, SUPERUSER

pytestmark = pytest.mark.django_db

# The classification tests' estate, seeded classifications and rules.
classifications = classification_fixtures.classifications
estate = classification_fixtures.estate
rules = classification_fixtures.rules

BAD_SCOPE = {
    "version": 4,
    "expr": {
        "op": "AND",
        "args": [
            {"fn": "is_superuser"},
            {"fn": "has_privilege", "args": {"name": "SUPER", "scope": "galaxy"}},
        ],
    },
}


def _fields(response) -> dict[str, str]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == "validation_error"
    return {field["path"]: field["code"] for field in body["error"]["fields"]}


@pytest.fixture
def classified(estate, rules):
    """The estate classified by the rules, plus one manual assignment on mysql-b."""
    for name in ("mysql_a", "mysql_b", "pg"):
        services.classification_classify_instance(instance=estate[name])
    manual = services.assignment_add_manual(
        account=estate["b_reader"],
        classification=Classification.objects.get(code="sensitive"),
        user=None,
        note="payment data",
    )
    return {**estate, "manual": manual}


# --- Classifications ----------------------------------------------------------------------


def test_classifications_count_assignments_of_visible_instances_only(
    api_client, user_with_role, scoped_user, classified
):
    super_id = Classification.objects.get(code="super").pk
    everyone = api_client(user_with_role("DBAs")).get(f"/api/v1/classifications/{super_id}/")
    assert everyone.status_code == 200
    total = Assignment.objects.filter(classification_id=super_id).count()
    assert everyone.json()["assignment_count"] == total
    assert everyone.json()["rule_count"] == 2

    scoped = api_client(scoped_user("DBAs", [classified["pg"]]))
    body = scoped.get(f"/api/v1/classifications/{super_id}/").json()
    assert (
        body["assignment_count"]
        == Assignment.objects.filter(
            classification_id=super_id, account__instance=classified["pg"]
        ).count()
    )
    assert 0 < body["assignment_count"] < total


def test_classification_crud_and_system_rows(api_client, user_with_role, classifications):
    client = api_client(user_with_role("DBAs"), write=True)
    created = client.post(
        "/api/v1/classifications/",
        {"code": "pci", "name": "PCI", "risk_level": 2, "colour": "#ff0000"},
    )
    assert created.status_code == 201, created.json()
    assert created.json()["rule_count"] == 0
    assert created.json()["is_system"] is False
    pk = created.json()["id"]

    # The code is fixed once set; the rest changes.
    changed = client.patch(f"/api/v1/classifications/{pk}/", {"code": "x", "priority": 7})
    assert changed.status_code == 200
    assert changed.json()["code"] == "pci"
    assert changed.json()["priority"] == 7

    bad = client.post("/api/v1/classifications/", {"code": "y", "name": "Y", "colour": "red"})
    assert bad.status_code == 400
    assert _fields(bad) == {"colour": "invalid"}
    duplicate = client.post("/api/v1/classifications/", {"code": "pci", "name": "Other"})
    assert _fields(duplicate) == {"code": "unique"}

    system = classifications["super"]
    fixed = client.patch(f"/api/v1/classifications/{system.pk}/", {"risk_level": 3})
    assert fixed.status_code == 400
    assert "risk_level" in _fields(fixed)
    assert client.delete(f"/api/v1/classifications/{system.pk}/").status_code == 403
    assert Classification.objects.filter(pk=system.pk).exists()
    assert client.delete(f"/api/v1/classifications/{pk}/").status_code == 204


def test_classification_writes_need_a_write_token_and_the_role(
    api_client, user_with_role, classifications
):
    body = {"code": "pci", "name": "PCI"}
    dba = user_with_role("DBAs")
    read_only = api_client(dba).post("/api/v1/classifications/", body)
    assert read_only.status_code == 403
    auditor = api_client(user_with_role("Auditors"), write=True)
    assert auditor.get("/api/v1/classifications/").status_code == 200
    assert auditor.post("/api/v1/classifications/", body).status_code == 403
    viewer = api_client(user_with_role("Viewers"))
    assert viewer.get("/api/v1/classifications/").status_code == 403
    assert not Classification.objects.filter(code="pci").exists()


# --- Rules --------------------------------------------------------------------------------


def test_editing_the_expression_makes_a_new_version(api_client, user_with_role, rules):
    user = user_with_role("DBAs")
    client = api_client(user, write=True)
    rule = rules["superuser"]
    response = client.patch(f"/api/v1/rules/{rule.pk}/", {"expression": READS_SHOP})
    assert response.status_code == 200, response.json()
    new = response.json()
    assert new["id"] != rule.pk
    assert new["version"] == 2
    assert new["is_current"] is True
    assert new["lineage"] == str(rule.lineage)
    assert new["created_by"] == user.username
    rule.refresh_from_db()
    assert rule.superseded_at is not None

    # The superseded version is history: readable, not editable.
    old = client.get(f"/api/v1/rules/{rule.pk}/")
    assert old.status_code == 200
    assert old.json()["is_current"] is False
    refused = client.patch(f"/api/v1/rules/{rule.pk}/", {"name": "again"})
    assert refused.status_code == 403

    # A name or active flag changes in place, as the admin's save does.
    renamed = client.patch(f"/api/v1/rules/{new['id']}/", {"name": "Supers", "is_active": False})
    assert renamed.json()["id"] == new["id"]
    assert renamed.json()["version"] == 2

    listed = client.get("/api/v1/rules/").json()["results"]
    assert rule.pk not in {r["id"] for r in listed}
    assert new["id"] in {r["id"] for r in listed}
    every = client.get("/api/v1/rules/", {"include_superseded": "true"}).json()["results"]
    assert {rule.pk, new["id"]} <= {r["id"] for r in every}
    versions = client.get(f"/api/v1/rules/{rule.pk}/versions/").json()
    assert [v["version"] for v in versions] == [2, 1]


def test_rule_versions_count_visible_assignments(api_client, scoped_user, classified):
    rule = Rule.objects.get(name="Reads shop")
    scoped = api_client(scoped_user("DBAs", [classified["mysql_a"]]))
    (version,) = scoped.get(f"/api/v1/rules/{rule.pk}/versions/").json()
    assert (
        version["assignment_count"]
        == Assignment.objects.filter(rule=rule, account__instance=classified["mysql_a"]).count()
    )
    assert version["assignment_count"] < rule.assignments.count()


def test_invalid_expressions_answer_with_paths_into_the_expression(
    api_client, user_with_role, classifications, rules
):
    client = api_client(user_with_role("DBAs"), write=True)
    body = {"classification": classifications["low"].pk, "name": "Bad", "expression": BAD_SCOPE}
    created = client.post("/api/v1/rules/", body, format="json")
    assert created.status_code == 400
    assert _fields(created) == {"expression.expr.args[1].args.scope": "INVALID_DSL_ARGS"}

    wrong_version = client.patch(
        f"/api/v1/rules/{rules['superuser'].pk}/", {"expression": {"version": 3}}, format="json"
    )
    assert _fields(wrong_version) == {"expression.version": "DSL_V4_REQUIRED"}
    unparsable = client.post("/api/v1/rules/", {**body, "expression": "{nope"}, format="json")
    assert _fields(unparsable) == {"expression": "INVALID_DSL_EXPRESSION"}
    assert Rule.objects.count() == 3


def test_duplicate_rule_names_are_refused_as_the_model_does(
    api_client, user_with_role, classifications, rules
):
    client = api_client(user_with_role("DBAs"), write=True)
    duplicate = client.post(
        "/api/v1/rules/",
        {
            "classification": classifications["super"].pk,
            "name": "Superusers",
            "expression": SUPERUSER,
        },
        format="json",
    )
    assert duplicate.status_code == 400
    assert _fields(duplicate) == {"name": "unique"}


def test_validate_reports_every_error_with_its_path(api_client, user_with_role, roles):
    auditor = api_client(user_with_role("Auditors"))  # validating writes nothing
    bad = auditor.post(
        "/api/v1/rules/validate/",
        {"expression": BAD_SCOPE, "engine": "db2"},
        format="json",
    )
    assert bad.status_code == 200
    body = bad.json()
    assert body["valid"] is False
    assert body["readable"] is None
    assert [(e["path"], e["code"]) for e in body["errors"]] == [
        ("engine", "invalid_choice"),
        ("expression.expr.args[1].args.scope", "INVALID_DSL_ARGS"),
    ]
    good = auditor.post(
        "/api/v1/rules/validate/", {"expression": SUPERUSER, "engine": "mysql"}, format="json"
    )
    assert good.json() == {"valid": True, "errors": [], "readable": "is_superuser()"}
    missing = auditor.post("/api/v1/rules/validate/", {}, format="json")
    assert missing.status_code == 400
    assert _fields(missing) == {"expression": "required"}
    viewer = api_client(user_with_role("Viewers"))
    assert viewer.post("/api/v1/rules/validate/", {"expression": SUPERUSER}).status_code == 403


def test_validate_refuses_a_hostile_expression_cheaply(api_client, user_with_role, roles):
    client = api_client(user_with_role("Auditors"))
    huge = {"version": 4, "expr": {"op": "OR", "args": [{"fn": "is_superuser"}] * 20_000}}
    response = client.post("/api/v1/rules/validate/", {"expression": huge}, format="json")
    assert response.status_code == 200
    assert response.json()["valid"] is False
    assert response.json()["errors"][0]["code"] == "INVALID_DSL_EXPRESSION"


def test_a_rule_version_that_assignments_record_cannot_be_deleted(
    api_client, user_with_role, classified
):
    rule = Rule.objects.get(name="Reads shop")
    client = api_client(user_with_role("DBAs"), write=True)
    response = client.delete(f"/api/v1/rules/{rule.pk}/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert Rule.objects.filter(pk=rule.pk).exists()


def test_rule_writes_need_a_write_token_and_the_role(api_client, user_with_role, rules):
    rule = rules["superuser"]
    assert (
        api_client(user_with_role("DBAs")).patch(f"/api/v1/rules/{rule.pk}/", {"name": "x"})
    ).status_code == 403
    auditor = api_client(user_with_role("Auditors"), write=True)
    assert auditor.get(f"/api/v1/rules/{rule.pk}/").status_code == 200
    assert auditor.patch(f"/api/v1/rules/{rule.pk}/", {"name": "x"}).status_code == 403
    rule.refresh_from_db()
    assert rule.name == "Superusers"


# --- Assignments --------------------------------------------------------------------------


def test_assignments_are_scoped_by_the_accounts_instance(api_client, scoped_user, classified):
    client = api_client(scoped_user("Auditors", [classified["mysql_a"]]))
    listed = client.get("/api/v1/assignments/", {"limit": 1000}).json()["results"]
    assert listed
    assert {a["account"]["instance"]["id"] for a in listed} == {classified["mysql_a"].pk}
    assert len(listed) == Assignment.objects.filter(account__instance=classified["mysql_a"]).count()
    hidden = classified["manual"]
    assert client.get(f"/api/v1/assignments/{hidden.pk}/").status_code == 404
    # Asking for another instance's rows by filter shows nothing either.
    other = client.get("/api/v1/assignments/", {"instance": classified["mysql_b"].pk})
    assert other.json()["results"] == []


def test_assignment_filters_mirror_the_admin(api_client, user_with_role, classified):
    client = api_client(user_with_role("Auditors"))
    manual = client.get("/api/v1/assignments/", {"source": "manual"}).json()["results"]
    assert [a["id"] for a in manual] == [classified["manual"].pk]
    assert manual[0]["rule"] is None
    assert manual[0]["note"] == "payment data"
    pg = client.get("/api/v1/assignments/", {"engine": "postgresql"}).json()["results"]
    assert pg
    assert {a["account"]["instance"]["engine"] for a in pg} == {"postgresql"}
    named = client.get("/api/v1/assignments/", {"search": "roo"}).json()["results"]
    assert {a["account"]["name"] for a in named} == {"root"}
    auto = client.get("/api/v1/assignments/", {"source": "auto"}).json()["results"]
    assert all(a["rule_version"] == 1 for a in auto)
    assert client.get("/api/v1/assignments/", {"instance": "1.5"}).status_code == 400


def test_manual_assignments_are_added_and_removed_as_in_the_admin(
    api_client, user_with_role, scoped_user, classified
):
    user = scoped_user("DBAs", [classified["mysql_a"]])
    client = api_client(user, write=True)
    public = Classification.objects.get(code="public")
    added = client.post(
        "/api/v1/assignments/",
        {"account": classified["reader"].pk, "classification": public.pk, "note": "why"},
    )
    assert added.status_code == 201, added.json()
    assert added.json()["source"] == "manual"
    assert added.json()["assigned_by"] == user.username
    again = client.post(
        "/api/v1/assignments/",
        {"account": classified["reader"].pk, "classification": public.pk},
    )
    assert again.status_code == 400

    # Another instance's account does not exist here.
    hidden = client.post(
        "/api/v1/assignments/",
        {"account": classified["b_admin"].pk, "classification": public.pk},
    )
    assert hidden.status_code == 400
    assert _fields(hidden) == {"account": "does_not_exist"}

    automatic = Assignment.objects.filter(
        account__instance=classified["mysql_a"], source=AssignmentSource.AUTO
    ).first()
    assert client.delete(f"/api/v1/assignments/{automatic.pk}/").status_code == 403
    assert client.delete(f"/api/v1/assignments/{classified['manual'].pk}/").status_code == 404
    assert client.delete(f"/api/v1/assignments/{added.json()['id']}/").status_code == 204
    assert Assignment.objects.filter(pk=automatic.pk).exists()
    assert not Assignment.objects.filter(pk=added.json()["id"]).exists()


def test_an_automatic_assignment_assigned_by_hand_becomes_manual(
    api_client, user_with_role, classified
):
    automatic = Assignment.objects.filter(source=AssignmentSource.AUTO).first()
    client = api_client(user_with_role("DBAs"), write=True)
    response = client.post(
        "/api/v1/assignments/",
        {"account": automatic.account_id, "classification": automatic.classification_id},
    )
    assert response.status_code == 201
    assert response.json()["id"] == automatic.pk
    assert response.json()["source"] == "manual"


def test_assignment_writes_need_a_write_token_and_the_role(api_client, user_with_role, classified):
    body = {"account": classified["root"].pk, "classification": classified["manual"].pk}
    assert api_client(user_with_role("DBAs")).post("/api/v1/assignments/", body).status_code == 403
    auditor = api_client(user_with_role("Auditors"), write=True)
    assert auditor.post("/api/v1/assignments/", body).status_code == 403
    manual = classified["manual"]
    assert auditor.delete(f"/api/v1/assignments/{manual.pk}/").status_code == 403
    assert Assignment.objects.filter(pk=manual.pk).exists()


def test_assignment_pages_cost_the_same_queries(
    api_client, user_with_role, classified, django_assert_max_num_queries
):
    client = api_client(user_with_role("Auditors"))
    first = client.get("/api/v1/assignments/", {"limit": 2})
    with django_assert_max_num_queries(8) as first_page:
        first = client.get("/api/v1/assignments/", {"limit": 2})
    cursor = first.json()["next"]
    later = client.get(cursor)
    with django_assert_max_num_queries(8) as later_page:
        later = client.get(later.json()["next"])
    assert later.status_code == 200
    assert later.json()["results"]
    assert len(later_page.captured_queries) == len(first_page.captured_queries)


def _post_json(client, url: str, body: dict):
    """Sent as JSON text with escapes, as a client would send an unpaired surrogate."""
    return client.post(url, json.dumps(body), content_type="application/json")


def test_text_that_cannot_be_stored_is_a_field_error(
    api_client, user_with_role, classifications, classified
):
    client = api_client(user_with_role("DBAs"), write=True)
    for name in ("A\x00B", "A\ud800B"):
        response = _post_json(client, "/api/v1/classifications/", {"code": "x", "name": name})
        assert response.status_code == 400
        assert set(_fields(response)) == {"name"}
    surrogate = {"version": 4, "expr": {"fn": "has_role", "args": {"name": "\ud800"}}}
    rule = _post_json(
        client,
        "/api/v1/rules/",
        {"classification": classifications["low"].pk, "name": "ok", "expression": surrogate},
    )
    assert rule.status_code == 400
    assert set(_fields(rule)) == {"expression.expr.args.name"}
    note = _post_json(
        client,
        "/api/v1/assignments/",
        {"account": classified["root"].pk, "classification": classifications["low"].pk,
         "note": "\ud800"},
    )  # fmt: skip
    assert note.status_code == 400
    assert set(_fields(note)) == {"note"}
    validated = _post_json(
        client, "/api/v1/rules/validate/", {"expression": surrogate, "engine": "\ud800"}
    )
    assert validated.status_code == 200
    assert [e["path"] for e in validated.json()["errors"]] == [
        "engine",
        "expression.expr.args.name",
    ]


def test_a_cursor_the_api_did_not_give_is_a_400(api_client, user_with_role, rules):
    response = api_client(user_with_role("Auditors")).get("/api/v1/rules/", {"cursor": "zzz"})
    assert response.status_code == 400
    assert _fields(response) == {"cursor": "invalid"}


def test_preview_shows_the_visible_accounts_an_expression_would_match(
    api_client, user_with_role, scoped_user, estate, roles
):
    reads_shop = {"expression": READS_SHOP}
    everyone = api_client(user_with_role("DBAs"))  # a read-only token: nothing is written
    body = everyone.post("/api/v1/rules/preview/", reads_shop, format="json").json()
    assert body["valid"] is True
    assert body["total"] == 3
    assert {a["name"] for a in body["accounts"]} == {"reader", "app"}
    mysql = everyone.post(
        "/api/v1/rules/preview/", {**reads_shop, "engine": "mysql"}, format="json"
    ).json()
    assert mysql["total"] == 2

    scoped = api_client(scoped_user("DBAs", [estate["pg"]]))
    seen = scoped.post("/api/v1/rules/preview/", reads_shop, format="json").json()
    assert [a["instance"]["name"] for a in seen["accounts"]] == ["pg"]
    assert seen["evaluated"] == 2

    invalid = everyone.post("/api/v1/rules/preview/", {"expression": BAD_SCOPE}, format="json")
    assert invalid.json()["valid"] is False
    assert invalid.json()["total"] == 0
    assert invalid.json()["accounts"] == []
    auditor = api_client(user_with_role("Auditors"))
    assert auditor.post("/api/v1/rules/preview/", reads_shop, format="json").status_code == 403


def test_a_classification_whose_rule_versions_are_evidence_cannot_be_deleted(
    api_client, user_with_role, classified
):
    custom = Classification.objects.create(code="custom", name="Custom")
    everyone = {"version": 4, "expr": {"op": "AND", "args": []}}
    services.rule_create(classification=custom, name="Everyone", expression=everyone)
    services.classification_classify_instance(instance=classified["mysql_a"])
    assert Assignment.objects.filter(classification=custom).exists()
    client = api_client(user_with_role("DBAs"), write=True)
    response = client.delete(f"/api/v1/classifications/{custom.pk}/")
    assert response.status_code == 409
    assert Classification.objects.filter(pk=custom.pk).exists()

"""Accounts admin: roles, per-instance scope, readable pages, exports, access review."""

import io

import openpyxl
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from guardian.shortcuts import assign_perm

from accounts.models import AccountChange
from tests.accounts.factories import make_account
from tests.inventory.factories import InstanceFactory

pytestmark = pytest.mark.django_db

ROLES = ["Administrators", "DBAs", "Auditors", "Schedulers", "Viewers"]
READERS = {"Administrators", "DBAs", "Auditors"}


@pytest.fixture
def data():
    a = InstanceFactory(name="instance-a", engine="mysql")
    b = InstanceFactory(name="instance-b", engine="postgresql")
    root = make_account(
        a, "root", host="%",
        grants=[("global", "", "SUPER", "GRANT"), ("database", "Shop_Mixed", "SELECT", "")],
        attributes={"superuser": True, "locked": False},
    )  # fmt: skip
    app = make_account(
        a, "app", host="10.%", grants=[("table", "shop.orders", "UPDATE", "")], roles=["reader"]
    )
    other = make_account(
        b, "b_owner", grants=[("database", "b", "OWNER", "")], attributes={"create_role": True}
    )
    return {"a": a, "b": b, "root": root, "app": app, "other": other}


@pytest.mark.parametrize("role", ROLES)
def test_who_may_read_accounts_and_history(client, user_with_role, data, role):
    client.force_login(user_with_role(role))
    pages = [
        "/admin/accounts/account/",
        f"/admin/accounts/account/{data['root'].pk}/change/",
        "/admin/accounts/accountchange/",
        f"/admin/accounts/accountchange/{data['root'].changes.get().pk}/change/",
    ]
    expected = 200 if role in READERS else 403
    assert [client.get(url).status_code for url in pages] == [expected] * 4


@pytest.mark.parametrize("role", ROLES)
def test_nobody_edits_accounts_or_history(client, user_with_role, data, role):
    client.force_login(user_with_role(role))
    change = data["root"].changes.get()
    for url in (
        "/admin/accounts/account/add/",
        f"/admin/accounts/account/{data['root'].pk}/delete/",
        f"/admin/accounts/accountchange/{change.pk}/delete/",
    ):
        assert client.get(url).status_code == 403, url
    client.post(f"/admin/accounts/accountchange/{change.pk}/change/", {"summary": "forged"})
    assert AccountChange.objects.get(pk=change.pk).summary != "forged"


def test_the_account_page_shows_readable_grouped_privileges_and_timeline(client, admin_user, data):
    client.force_login(admin_user)
    content = client.get(f"/admin/accounts/account/{data['root'].pk}/change/").content.decode()
    assert "superuser" in content
    assert "<h3>Global</h3>" in content
    assert "<h3>Database</h3>" in content
    assert "Shop_Mixed" in content
    assert "Change history" in content
    assert "+2 grants" in content


def test_the_change_page_shows_before_and_after(client, admin_user, data):
    change = data["app"].changes.get()
    client.force_login(admin_user)
    content = client.get(f"/admin/accounts/accountchange/{change.pk}/change/").content.decode()
    assert "Grants added" in content
    assert "shop.orders" in content
    assert "+ reader" in content


def test_a_scoped_dba_sees_only_its_instances_accounts_and_changes(client, user_with_role, data):
    user = user_with_role("DBAs (scoped)")
    assign_perm("inventory.view_instance", user, data["a"])
    client.force_login(user)
    accounts = client.get("/admin/accounts/account/").content.decode()
    assert "root@%" in accounts
    assert "b_owner" not in accounts
    history = client.get("/admin/accounts/accountchange/").content.decode()
    assert "b_owner" not in history
    assert client.get(f"/admin/accounts/account/{data['other'].pk}/change/").status_code in (
        302,
        403,
        404,
    )
    other_change = data["other"].changes.get()
    assert client.get(f"/admin/accounts/accountchange/{other_change.pk}/change/").status_code in (
        302,
        403,
        404,
    )


def test_filters_privileged_only_and_by_engine(client, user_with_role, data):
    client.force_login(user_with_role("Auditors"))
    privileged = client.get("/admin/accounts/accountchange/?privileged=yes").content.decode()
    assert "root@%" in privileged
    assert "b_owner" in privileged  # create_role makes a PostgreSQL grant admin
    assert "app@10.%" not in privileged
    mysql_only = client.get("/admin/accounts/account/?engine=mysql").content.decode()
    assert "b_owner" not in mysql_only
    superusers = client.get(
        "/admin/accounts/account/?snapshot__is_superuser__exact=1"
    ).content.decode()
    assert "root@%" in superusers
    assert "app@10.%" not in superusers


EXPORT = {"format": "0", "resource": "0"}


def test_auditors_export_accounts_and_history_formula_safe(client, user_with_role, data):
    make_account(data["a"], "=cmd|'/C calc'!A0")
    client.force_login(user_with_role("Auditors"))
    fields = {f"accountresource_{f}": "on" for f in ("instance", "account", "superuser", "roles")}
    response = client.post("/admin/accounts/account/export/", {**EXPORT, **fields})
    assert response["Content-Type"].startswith("text/csv")
    body = response.content.decode()
    assert "root@%" in body
    assert "'=cmd" in body
    history = client.post(
        "/admin/accounts/accountchange/export/",
        {**EXPORT, "accountchangeresource_summary": "on", "accountchangeresource_account": "on"},
    )
    assert history["Content-Type"].startswith("text/csv")
    assert "root@%" in history.content.decode()


def test_viewers_cannot_export_accounts(client, user_with_role, data):
    client.force_login(user_with_role("Viewers"))
    assert client.post("/admin/accounts/account/export/", EXPORT).status_code == 403


@pytest.mark.parametrize("role", ROLES)
def test_access_review_permission(client, user_with_role, data, role):
    client.force_login(user_with_role(role))
    status = client.get("/admin/accounts/account/access-review/").status_code
    assert status == (200 if role in {"Administrators", "Auditors"} else 403)


def test_access_review_workbook_lists_privileged_accounts_and_changes(client, user_with_role, data):
    client.force_login(user_with_role("Auditors"))
    from django.utils import timezone

    today = timezone.localdate()
    response = client.post(
        "/admin/accounts/account/access-review/",
        {
            "start": today.replace(day=1).isoformat(),
            "end": today.isoformat(),
            "file_format": "xlsx",
        },
    )
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["Privileged accounts", "Changes"]
    people = [row for row in book["Privileged accounts"].iter_rows(values_only=True)][1:]
    assert {row[2] for row in people} == {"root@%", "b_owner"}
    changes = [row for row in book["Changes"].iter_rows(values_only=True)][1:]
    assert {row[2] for row in changes} == {"root@%", "b_owner"}


def test_access_review_rejects_an_inverted_period(client, user_with_role, data):
    client.force_login(user_with_role("Auditors"))
    response = client.post(
        "/admin/accounts/account/access-review/",
        {"start": "2026-06-30", "end": "2026-01-01", "file_format": "csv"},
    )
    assert response.status_code == 200
    assert "ends before it starts" in response.content.decode()


@pytest.mark.parametrize("url", ["/admin/accounts/account/", "/admin/accounts/accountchange/"])
def test_changelist_query_count_does_not_grow(client, user_with_role, url):
    instance = InstanceFactory()
    client.force_login(user_with_role("Auditors"))
    make_account(instance, "first", grants=[("global", "", "SELECT", "")])
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for index in range(30):
        make_account(instance, f"more{index}", grants=[("global", "", "SELECT", "")])
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(many) == len(few)


def test_the_name_search_can_use_its_index(rf, admin_user, data):
    """The admin's ^name search is UPPER(name::text) LIKE …: the expression index of
    migration 0003 must match the SQL Django writes, or a rare name scans every account."""
    from django.contrib import admin as django_admin

    from accounts.models import Account

    request = rf.get("/admin/accounts/account/", {"q": "zz_no_such"})
    request.user = admin_user
    model_admin = django_admin.site._registry[Account]
    queryset, _ = model_admin.get_search_results(request, Account.objects.all(), "zz_no_such")
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "accounts_account_name_upper_idx" in plan, plan


# --- Effective privileges -----------------------------------------------------------------


def via(scope, obj, privilege, path, option="", set_role=False):
    return {"scope": scope, "object": obj, "privilege": privilege, "option": option,
            "via": list(path), "set_role": set_role}  # fmt: skip


@pytest.fixture
def reached(data):
    """bob holds nothing himself; through ops → admin he is a superuser; PUBLIC may read."""
    make_account(
        data["a"], "PUBLIC", kind="public", grants=[("database", "wiki", "SELECT", "")],
        effective={"grants": [via("database", "wiki", "SELECT", [])]},
    )  # fmt: skip
    bob = make_account(
        data["a"], "bob", host="%", roles=["ops"],
        effective={
            "grants": [via("global", "", "ALL PRIVILEGES", ["ops", "admin"], "GRANT", True)],
            "roles": ["admin", "ops"],
            "role_paths": [{"role": "ops", "via": [], "set_role": True},
                           {"role": "admin", "via": ["ops"], "set_role": True}],
            "capabilities": ["ESCALATION", "GRANT_ADMIN", "SUPERUSER"],
        },
    )  # fmt: skip
    etl = make_account(
        data["a"], "etl", host="%", grants=[("database", "mysql", "UPDATE", "")],
        effective={"grants": [via("database", "mysql", "UPDATE", [])],
                   "capabilities": ["ESCALATION"]},
    )  # fmt: skip
    return {"bob": bob, "etl": etl}


def test_the_account_page_shows_effective_privileges_with_provenance(
    client, user_with_role, data, reached
):
    client.force_login(user_with_role("Auditors"))
    content = client.get(f"/admin/accounts/account/{reached['bob'].pk}/change/").content.decode()
    assert "What it can do (effective privileges)" in content
    assert "via ops → admin" in content
    assert "(SET ROLE)" in content
    assert "ALL PRIVILEGES" in content
    assert "via PUBLIC" in content  # PUBLIC's grant, shown on every account's page
    assert "wiki" in content
    assert "Granted to the account itself (direct privileges)" in content
    for capability in ("SUPERUSER", "GRANT_ADMIN", "ESCALATION"):
        assert capability in content


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ("snapshot__is_superuser__exact=1", {"bob@%", "root@%"}, {"etl@%", "app@10.%"}),
        ("snapshot__can_escalate__exact=1", {"bob@%", "etl@%"}, {"root@%", "app@10.%"}),
    ],
)
def test_capability_filters_use_the_effective_capabilities(
    client, user_with_role, data, reached, query, shown, hidden
):
    client.force_login(user_with_role("Auditors"))
    content = client.get(f"/admin/accounts/account/?{query}").content.decode()
    for name in shown:
        assert f">{name}<" in content, name
    for name in hidden:
        assert f">{name}<" not in content, name


def test_access_review_lists_effective_capabilities_and_high_risk_classifications(
    client, user_with_role, data, reached
):
    import importlib

    from django.apps import apps

    from classification.models import Assignment, Classification

    # Seeded by a migration; seeded again, as transactional tests elsewhere flush tables.
    seed = importlib.import_module("classification.migrations.0002_seed_system_classifications")
    seed.seed(apps, None)
    high = Classification.objects.filter(risk_level__lte=2).order_by("risk_level").first()
    low = Classification.objects.filter(risk_level__gt=2).first()
    Assignment.objects.create(account=data["app"], classification=high, source="manual")
    Assignment.objects.create(account=data["other"], classification=low, source="manual")
    client.force_login(user_with_role("Auditors"))
    from django.utils import timezone

    today = timezone.localdate()
    response = client.post(
        "/admin/accounts/account/access-review/",
        {"start": today.isoformat(), "end": today.isoformat(), "file_format": "xlsx"},
    )
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    sheet = list(book["Privileged accounts"].iter_rows(values_only=True))
    header, rows = sheet[0], {row[2]: dict(zip(sheet[0], row, strict=True)) for row in sheet[1:]}
    assert "privileged_because" in header
    assert set(rows) == {"root@%", "b_owner", "bob@%", "etl@%", "app@10.%"}
    assert rows["app@10.%"]["privileged_because"] == high.name
    assert rows["etl@%"]["privileged_because"] == "ESCALATION"
    assert "ALL PRIVILEGES ON" not in rows["bob@%"]["grants"]  # global: no object
    assert "global: ALL PRIVILEGES (GRANT) [via ops → admin (SET ROLE)]" in rows["bob@%"]["grants"]
    assert "database: SELECT ON wiki [via PUBLIC]" in rows["bob@%"]["grants"]


def test_an_effective_change_page_shows_what_the_account_can_now_do(client, admin_user, data):
    change = AccountChange.objects.create(
        account=data["app"], instance=data["a"], engine="mysql",
        detected_at=data["app"].first_seen_at, change_type="effective_changed",
        summary="effective privileges changed via reader: +1 grant; SUPERUSER gained",
        diff={"effective_added": [via("global", "", "SUPER", ["reader"])],
              "effective_removed": [], "roles_reached_added": ["reader"],
              "roles_reached_removed": [], "capabilities": [[], ["SUPERUSER"]],
              "via": ["reader"]},
        privileged=True,
    )  # fmt: skip
    client.force_login(admin_user)
    content = client.get(f"/admin/accounts/accountchange/{change.pk}/change/").content.decode()
    assert "Can now do (through roles)" in content
    assert "via reader" in content
    assert "Roles reached" in content

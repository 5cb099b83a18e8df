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

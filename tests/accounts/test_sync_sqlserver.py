"""Account sync of SQL Server through the fake server: snapshots and change history."""

import math

import pytest

from accounts.models import Account, AccountChange, PrivilegeSnapshot
from accounts.services import account_sync_instance
from inventory.engines.base import InsufficientPrivileges
from inventory.engines.sqlserver import DATABASE_BATCH
from tests.inventory.factories import CredentialFactory, InstanceFactory

pytestmark = pytest.mark.django_db

SHOP = "Shop_Mixed"


def account(instance, name):
    return Account.objects.select_related("snapshot").get(instance=instance, name=name)


def latest_change(instance, name):
    """The account's latest change of its own set (effective changes are tested apart)."""
    return (
        AccountChange.objects.filter(account__instance=instance, account__name=name)
        .exclude(change_type="effective_changed")
        .latest("id")
    )


def grant(scope, obj, privilege, option=""):
    return {"scope": scope, "object": obj, "privilege": privilege, "option": option}


@pytest.fixture
def sqlserver(fake_sqlserver):
    """Logins with grants at every level, DENYs, server roles and disabled logins."""
    catalog = fake_sqlserver.use_catalog()
    catalog.create_login("whalefall")
    catalog.grant("VIEW ANY DEFINITION", to="whalefall")
    catalog.grant("CONNECT ANY DATABASE", to="whalefall")

    shop = catalog.create_database(SHOP)
    shop.create_schema("sales")
    shop.create_object("sales.orders", columns=("id", "price"))
    catalog.create_login("app", check_expiration=True)
    catalog.grant("VIEW SERVER STATE", to="app")
    shop.create_user("app", login="app")
    shop.add_role_member("db_datareader", "app")
    shop.grant("SELECT", to="app", on="SCHEMA::sales", with_grant_option=True)
    shop.grant("UPDATE", to="app", on="sales.orders")
    shop.grant("SELECT", to="app", on="sales.orders(price)")
    shop.deny("DELETE", to="app", on="sales.orders")
    # Same user name, another SID: these rights are not the login's.
    reports = catalog.create_database("Reports")
    reports.create_user("app")
    reports.add_role_member("db_owner", "app")
    reports.grant("SELECT", to="app")

    catalog.create_login("disabled", disabled=True)
    catalog.create_login("boss")
    catalog.add_server_role_member("sysadmin", "boss")
    catalog.create_login("security")
    catalog.add_server_role_member("securityadmin", "security")
    catalog.create_login("controller")
    catalog.grant("CONTROL SERVER", to="controller")
    catalog.create_login("denied")
    catalog.deny("CONNECT SQL", to="denied")
    return catalog


@pytest.fixture
def instance(db, sqlserver):
    credential = CredentialFactory(username="whalefall")
    return InstanceFactory(
        engine="sqlserver", host="mssql.example.test", port=1433, credential=credential
    )


def test_first_sync_creates_logins_with_exact_snapshots(instance):
    outcome = account_sync_instance(instance=instance, run_id=41)
    assert outcome.created == 9  # sa, whalefall, the six logins of the scenario and PUBLIC
    assert outcome.changed == outcome.removed == 0

    app = account(instance, "app")
    assert app.kind == "login"
    assert app.snapshot.privileges == {
        "engine": "sqlserver",
        "attributes": {
            "can_login": True,
            "default_database": "master",
            "disabled": False,
            "expiration_checked": True,
            "locked": False,
            "locked_out": False,
            "login_type": "SQL_LOGIN",
            "must_change_password": False,
            "password_expired": False,
            "policy_checked": True,
        },
        "roles": ["db_datareader"],
        "grants": [
            grant("column", f"{SHOP}.sales.orders.price", "SELECT"),
            grant("database", SHOP, "CONNECT"),
            grant("database", SHOP, "ROLE db_datareader"),
            grant("schema", f"{SHOP}.sales", "SELECT", "GRANT"),
            grant("server", "", "CONNECT SQL"),
            grant("server", "", "VIEW SERVER STATE"),
            grant("table", f"{SHOP}.sales.orders", "DELETE", "DENY"),
            grant("table", f"{SHOP}.sales.orders", "UPDATE"),
        ],
    }
    assert app.snapshot.facts["roles"] == ["db_datareader"]
    capabilities = app.snapshot.facts["capabilities"]
    assert capabilities == ["can_login", "expiration_checked", "policy_checked"]
    assert not app.snapshot.is_superuser
    assert not app.snapshot.can_grant
    assert not app.snapshot.is_locked

    created = AccountChange.objects.get(account=app)
    assert created.change_type == "created"
    assert created.run_id == 41
    assert created.summary.startswith("+8 grants; +1 role")


def test_server_roles_and_permissions_become_facts(instance):
    account_sync_instance(instance=instance)

    def flags(name):
        snapshot = account(instance, name).snapshot
        return snapshot.is_superuser, snapshot.can_grant, snapshot.is_locked

    assert flags("boss") == (True, True, False)  # sysadmin
    assert flags("security") == (False, True, False)  # securityadmin
    assert flags("controller") == (False, True, False)  # CONTROL SERVER
    assert flags("denied") == (False, False, True)  # CONNECT SQL denied
    assert flags("disabled") == (False, False, True)
    assert "SUPERUSER" in account(instance, "boss").snapshot.facts["capabilities"]
    assert {"LOCKED", "disabled"} <= set(
        account(instance, "disabled").snapshot.facts["capabilities"]
    )


def test_database_rights_follow_the_sid_not_the_user_name(instance):
    account_sync_instance(instance=instance)

    app = account(instance, "app").snapshot.privileges
    assert "db_owner" not in app["roles"]
    assert not [g for g in app["grants"] if g["object"].startswith("Reports")]


def test_a_resync_without_changes_writes_nothing(instance):
    first = account_sync_instance(instance=instance)
    before = {s.pk: (s.fingerprint, s.changed_at) for s in PrivilegeSnapshot.objects.all()}
    history = AccountChange.objects.count()
    seen_before = account(instance, "app").last_seen_at

    second = account_sync_instance(instance=instance)

    assert (second.created, second.changed, second.removed) == (0, 0, 0)
    assert second.unchanged == first.created
    assert {s.pk: (s.fingerprint, s.changed_at) for s in PrivilegeSnapshot.objects.all()} == before
    assert AccountChange.objects.count() == history
    assert account(instance, "app").last_seen_at > seen_before


def test_grant_revoke_deny_and_disable_are_recorded_as_diffs(sqlserver, instance):
    account_sync_instance(instance=instance)
    shop = sqlserver.databases[SHOP]
    shop.grant("DELETE", to="app", on="sales.orders")  # replaces the DENY
    shop.deny("INSERT", to="app", on="sales.orders")
    sqlserver.revoke("VIEW SERVER STATE", from_="app")
    sqlserver.alter_login("app", disabled=True)
    sqlserver.alter_login("disabled", disabled=False)

    outcome = account_sync_instance(instance=instance, run_id=42)

    assert outcome.changed == 2
    change = latest_change(instance, "app")
    assert change.change_type == "privileges_changed"
    assert change.run_id == 42
    assert change.diff["grants_added"] == [
        grant("table", f"{SHOP}.sales.orders", "DELETE"),
        grant("table", f"{SHOP}.sales.orders", "INSERT", "DENY"),
    ]
    assert change.diff["grants_removed"] == [
        grant("server", "", "VIEW SERVER STATE"),
        grant("table", f"{SHOP}.sales.orders", "DELETE", "DENY"),
    ]
    assert change.diff["attributes"] == {
        "can_login": [True, False],
        "disabled": [False, True],
        "locked": [False, True],
    }
    assert change.summary == (
        "+2 grants, −2 grants; can_login: yes → no; disabled: no → yes; locked: no → yes"
    )
    assert account(instance, "app").snapshot.is_locked

    enabled = latest_change(instance, "disabled")
    assert enabled.change_type == "attributes_changed"
    assert enabled.diff["attributes"]["locked"] == [True, False]
    assert enabled.diff["grants_added"] == enabled.diff["grants_removed"] == []


def test_denying_connect_sql_locks_and_a_new_server_role_grants(sqlserver, instance):
    account_sync_instance(instance=instance)
    sqlserver.deny("CONNECT SQL", to="app")
    sqlserver.add_server_role_member("securityadmin", "app")

    account_sync_instance(instance=instance)

    change = latest_change(instance, "app")
    assert change.diff["roles_added"] == ["securityadmin"]
    assert change.diff["grants_added"] == [grant("server", "", "CONNECT SQL", "DENY")]
    assert change.diff["grants_removed"] == [grant("server", "", "CONNECT SQL")]
    assert change.diff["attributes"]["locked"] == [False, True]
    assert change.privileged
    snapshot = account(instance, "app").snapshot
    assert (snapshot.is_locked, snapshot.can_grant) == (True, True)


def test_a_dropped_login_is_removed_and_a_recreated_one_restored(sqlserver, instance):
    account_sync_instance(instance=instance)
    sqlserver.drop_login("app")

    outcome = account_sync_instance(instance=instance)

    assert outcome.removed == 1
    gone = account(instance, "app")
    assert gone.removed_at is not None
    removed = latest_change(instance, "app")
    assert removed.change_type == "removed"
    assert len(removed.diff["grants_removed"]) == 8  # the last known grants

    # CREATE LOGIN gives a new SID: the database user stays orphaned.
    sqlserver.create_login("app", check_expiration=True)
    outcome = account_sync_instance(instance=instance)

    assert outcome.restored == 1
    back = account(instance, "app")
    assert back.removed_at is None
    restored = latest_change(instance, "app")
    assert restored.change_type == "restored"
    assert restored.diff["roles_removed"] == ["db_datareader"]
    assert restored.diff["grants_added"] == []
    assert {g["scope"] for g in restored.diff["grants_removed"]} == {
        "column",
        "database",
        "schema",
        "server",
        "table",
    }

    shop = sqlserver.databases[SHOP]
    shop.drop_user("app")
    shop.create_user("app", login="app")
    account_sync_instance(instance=instance)
    assert latest_change(instance, "app").diff["grants_added"] == [
        grant("database", SHOP, "CONNECT")
    ]
    assert list(
        AccountChange.objects.filter(account=back)
        .order_by("id")
        .values_list("change_type", flat=True)
    ) == ["created", "removed", "restored", "privileges_changed", "effective_changed"]
    # With a user in the database again, the login reaches that database's public role.
    reach = AccountChange.objects.filter(account=back).latest("id")
    assert reach.diff["roles_reached_added"] == ["public"]


@pytest.mark.parametrize(
    ("revoked", "message"),
    [
        ("VIEW ANY DEFINITION", "GRANT VIEW ANY DEFINITION TO [whalefall]"),
        ("CONNECT ANY DATABASE", "GRANT CONNECT ANY DATABASE TO [whalefall]"),
    ],
)
def test_insufficient_privileges_fail_the_sync_and_remove_nothing(
    sqlserver, instance, revoked, message
):
    first = account_sync_instance(instance=instance)
    sqlserver.revoke(revoked, from_="whalefall")

    with pytest.raises(InsufficientPrivileges) as raised:
        account_sync_instance(instance=instance)

    assert message in str(raised.value)
    assert Account.objects.filter(instance=instance, removed_at__isnull=True).count() == (
        first.created
    )
    assert not AccountChange.objects.filter(change_type="removed").exists()


def test_remote_statements_do_not_grow_with_the_logins(sqlserver, instance):
    few = account_sync_instance(instance=instance).remote_queries
    shop = sqlserver.databases[SHOP]
    for index in range(47):
        login = f"extra{index:02}"
        sqlserver.create_login(login)
        sqlserver.grant("VIEW SERVER STATE", to=login)
        shop.create_user(login, login=login)
        shop.grant("SELECT", to=login, on="sales.orders")

    outcome = account_sync_instance(instance=instance)

    assert outcome.created == 47
    assert outcome.remote_queries == few


def test_per_database_statements_grow_by_batch_only(sqlserver, instance):
    few = account_sync_instance(instance=instance).remote_queries
    for index in range(43):  # 45 user databases, 49 with the system ones
        sqlserver.create_database(f"db{index:02}", owner="app")

    outcome = account_sync_instance(instance=instance)

    batches_before = math.ceil(6 / DATABASE_BATCH)
    batches_after = math.ceil(49 / DATABASE_BATCH)
    assert outcome.remote_queries == few + 2 * (batches_after - batches_before)
    assert outcome.changed == 1  # app owns the new databases
    owned = [
        g
        for g in account(instance, "app").snapshot.privileges["grants"]
        if g["privilege"] == "OWNER"
    ]
    assert len(owned) == 43


# --- Effective privileges -----------------------------------------------------------------


def effective(instance, name):
    facts = account(instance, name).snapshot.facts["effective"]
    return {
        (g["scope"], g["object"], g["privilege"], g["option"]): g["via"] for g in facts["grants"]
    }


def test_fixed_server_roles_and_database_roles_are_expanded_with_provenance(instance):
    account_sync_instance(instance=instance)

    boss = account(instance, "boss")
    assert boss.snapshot.privileges["grants"] == [grant("server", "", "CONNECT SQL")]
    assert effective(instance, "boss")[("server", "", "CONTROL SERVER", "GRANT")] == ["sysadmin"]
    assert boss.snapshot.is_superuser
    assert boss.snapshot.can_escalate

    security = account(instance, "security").snapshot
    assert security.can_grant
    assert security.can_escalate
    assert not security.is_superuser

    # app's database user is in db_datareader of the shop: SELECT on the database, through it.
    app = effective(instance, "app")
    assert app[("database", SHOP, "SELECT", "")] == [f"db_datareader in {SHOP}"]
    # The same user name in Reports belongs to another SID: nothing through db_owner there.
    assert not any(via == ["db_owner in Reports"] for via in app.values())
    assert (
        grant("server", "", "VIEW SERVER STATE")
        in account(instance, "app").snapshot.privileges["grants"]
    )
    assert not account(instance, "app").snapshot.is_superuser


def test_a_deny_beats_a_grant_through_a_role_but_not_sysadmin(sqlserver, instance):
    sqlserver.create_server_role("auditors")
    sqlserver.grant("CONTROL SERVER", to="auditors")
    sqlserver.add_server_role_member("auditors", "denied")
    sqlserver.add_server_role_member("auditors", "boss")
    sqlserver.deny("CONTROL SERVER", to="denied")
    sqlserver.deny("CONTROL SERVER", to="boss")
    account_sync_instance(instance=instance)

    denied = account(instance, "denied").snapshot
    assert not denied.can_grant
    assert not denied.can_escalate
    assert account(instance, "boss").snapshot.is_superuser  # sysadmin skips permission checks
    assert account(instance, "auditors").snapshot.can_grant


def test_windows_group_logins_are_marked_as_groups_with_unseen_members(sqlserver, instance):
    sqlserver.create_login("CORP\\dba-team", type="G")
    sqlserver.add_server_role_member("sysadmin", "CORP\\dba-team")
    account_sync_instance(instance=instance)

    group = account(instance, "CORP\\dba-team")
    assert group.kind == "group"
    assert group.snapshot.privileges["attributes"]["members_visible"] is False
    assert group.snapshot.is_superuser


def test_public_holds_the_grants_to_public_and_a_new_one_is_its_change(sqlserver, instance):
    account_sync_instance(instance=instance, run_id=1)
    public = account(instance, "PUBLIC")
    assert public.kind == "public"
    assert grant("server", "", "VIEW ANY DATABASE") in public.snapshot.privileges["grants"]

    sqlserver.grant("VIEW SERVER STATE", to="public")
    account_sync_instance(instance=instance, run_id=2)
    change = AccountChange.objects.get(account=public, run_id=2)
    assert change.diff["grants_added"] == [grant("server", "", "VIEW SERVER STATE")]

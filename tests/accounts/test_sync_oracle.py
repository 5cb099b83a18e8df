"""Account sync of Oracle through the fake server: snapshots and change history."""

import pytest

from accounts.models import Account, AccountChange, PrivilegeSnapshot
from accounts.services import account_sync_instance
from inventory.engines.base import InsufficientPrivileges
from tests.inventory.factories import CredentialFactory, InstanceFactory

pytestmark = pytest.mark.django_db

SCENARIO_ACCOUNTS = {
    "WHALEFALL": "user",
    "APP": "user",
    "LOCKED_USER": "user",
    "EXPIRED_USER": "user",
    "OLD_USER": "user",
    "ADMIN": "user",
    "GRANTER": "user",
    "APP_READ": "role",
}


def snapshot(instance, name):
    return Account.objects.select_related("snapshot").get(instance=instance, name=name).snapshot


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
def oracle(fake_oracle):
    """Users in every account status, roles with admin option, quotas, object grants."""
    catalog = fake_oracle.use_catalog()
    catalog.create_user("WHALEFALL")
    catalog.grant("CREATE SESSION", to="WHALEFALL")
    catalog.grant("SELECT_CATALOG_ROLE", to="WHALEFALL")

    catalog.create_role("APP_READ")
    catalog.grant_object("SELECT", on="HR.DEPARTMENTS", to="APP_READ")
    catalog.create_user("APP", profile="APP_PROFILE", default_tablespace="DATA")
    catalog.grant("CONNECT", to="APP")
    catalog.grant("APP_READ", to="APP", admin=True)
    catalog.grant("CREATE TABLE", to="APP")
    catalog.quota("APP", "DATA")
    catalog.quota("APP", "USERS", 10 * 1024 * 1024)
    catalog.grant_object("SELECT", on="HR.EMPLOYEES", to="APP", grantable=True)
    catalog.grant_object("UPDATE", on="HR.EMPLOYEES(SALARY)", to="APP")

    for name, status in [
        ("LOCKED_USER", "LOCKED"),
        ("EXPIRED_USER", "EXPIRED"),
        ("OLD_USER", "EXPIRED & LOCKED"),
    ]:
        catalog.create_user(name, status=status)
        catalog.grant("CONNECT", to=name)
    catalog.create_user("ADMIN")
    catalog.grant("DBA", to="ADMIN")
    catalog.create_user("GRANTER")
    catalog.grant("CONNECT", to="GRANTER")
    catalog.grant("GRANT ANY PRIVILEGE", to="GRANTER")

    # Never accounts: Oracle's own (SYS, SYSTEM, XDB, APEX_200200 … are already there).
    catalog.create_user("SYSMAN", oracle_maintained=True)
    catalog.create_user("APEX_PUBLIC_USER")
    return catalog


@pytest.fixture
def instance(db, oracle):
    credential = CredentialFactory(username="whalefall")
    return InstanceFactory(
        engine="oracle",
        host="oracle.example.test",
        port=1521,
        database_name="ORCLPDB1",
        credential=credential,
    )


def test_first_sync_creates_accounts_with_exact_snapshots(instance):
    outcome = account_sync_instance(instance=instance, run_id=41)

    assert outcome.created == len(SCENARIO_ACCOUNTS) + 1  # and PUBLIC
    assert dict(Account.objects.filter(instance=instance).values_list("name", "kind")) == {
        **SCENARIO_ACCOUNTS,
        "PUBLIC": "public",
    }
    app = snapshot(instance, "APP")
    assert app.privileges == {
        "engine": "oracle",
        "attributes": {
            "account_status": "OPEN",
            "admin_roles": ["APP_READ"],
            "authentication_type": "PASSWORD",
            "can_login": True,
            "created": "2019-04-17T00:56:02",
            "default_tablespace": "DATA",
            "expired": False,
            "locked": False,
            "password_expiry_date": None,
            "profile": "APP_PROFILE",
        },
        "roles": ["APP_READ", "CONNECT"],
        "grants": [
            grant("server", "", "CREATE TABLE"),
            grant("tablespace", "DATA", "QUOTA UNLIMITED"),
            grant("tablespace", "USERS", "QUOTA 10485760"),
        ],
    }
    assert app.facts["capabilities"] == ["can_login"]
    assert not app.is_superuser
    assert not app.can_grant
    assert not app.is_locked
    created = AccountChange.objects.get(account__instance=instance, account__name="APP")
    assert created.change_type == "created"
    assert created.run_id == 41
    assert created.summary.startswith("+3 grants; +2 roles")


@pytest.mark.parametrize(
    ("name", "status", "expired"),
    [
        ("LOCKED_USER", "LOCKED", False),
        ("EXPIRED_USER", "EXPIRED", True),
        ("OLD_USER", "EXPIRED & LOCKED", True),
    ],
)
def test_account_status_survives_into_attributes_and_facts(instance, name, status, expired):
    account_sync_instance(instance=instance)

    user = snapshot(instance, name)
    assert user.privileges["attributes"]["account_status"] == status
    assert user.privileges["attributes"]["expired"] is expired
    assert user.privileges["attributes"]["can_login"] is False
    assert user.is_locked
    assert "LOCKED" in user.facts["capabilities"]


def test_dba_and_grant_any_privilege_become_facts(instance):
    account_sync_instance(instance=instance)

    admin, granter = snapshot(instance, "ADMIN"), snapshot(instance, "GRANTER")
    assert (admin.is_superuser, admin.can_grant) == (True, True)
    assert (granter.is_superuser, granter.can_grant) == (False, True)
    assert {"SUPERUSER", "GRANT_ADMIN"} <= set(admin.facts["capabilities"])
    assert grant("server", "", "GRANT ANY PRIVILEGE") in granter.privileges["grants"]


def test_object_privileges_come_with_deep_privileges_only(instance):
    account_sync_instance(instance=instance)
    grants = snapshot(instance, "APP").privileges["grants"]
    assert {g["scope"] for g in grants} == {"server", "tablespace"}

    instance.deep_privileges = True
    instance.save()
    outcome = account_sync_instance(instance=instance, run_id=43)

    assert outcome.changed == 2  # APP and the APP_READ role
    change = latest_change(instance, "APP")
    assert change.change_type == "privileges_changed"
    assert change.diff["grants_added"] == [
        grant("column", "HR.EMPLOYEES.SALARY", "UPDATE"),
        grant("table", "HR.EMPLOYEES", "SELECT", "GRANT"),
    ]
    assert snapshot(instance, "APP_READ").privileges["grants"] == [
        grant("table", "HR.DEPARTMENTS", "SELECT")
    ]


def test_a_resync_without_changes_writes_nothing(instance):
    first = account_sync_instance(instance=instance)
    before = {s.pk: (s.fingerprint, s.changed_at) for s in PrivilegeSnapshot.objects.all()}
    history = AccountChange.objects.count()

    second = account_sync_instance(instance=instance)

    assert (second.created, second.changed, second.removed) == (0, 0, 0)
    assert second.unchanged == first.created
    assert {s.pk: (s.fingerprint, s.changed_at) for s in PrivilegeSnapshot.objects.all()} == before
    assert AccountChange.objects.count() == history


def test_grant_revoke_and_lock_are_recorded_as_diffs(oracle, instance):
    account_sync_instance(instance=instance)
    oracle.grant("CREATE VIEW", to="APP")
    oracle.revoke("APP_READ", from_="APP")
    oracle.alter_user("APP", status="LOCKED")
    oracle.alter_user("LOCKED_USER", status="OPEN")

    outcome = account_sync_instance(instance=instance, run_id=42)

    assert outcome.changed == 2
    change = latest_change(instance, "APP")
    assert change.change_type == "privileges_changed"
    assert change.run_id == 42
    assert change.diff["grants_added"] == [grant("server", "", "CREATE VIEW")]
    assert change.diff["grants_removed"] == []
    assert change.diff["roles_removed"] == ["APP_READ"]
    assert change.diff["attributes"] == {
        "account_status": ["OPEN", "LOCKED"],
        "admin_roles": [["APP_READ"], None],
        "can_login": [True, False],
        "locked": [False, True],
    }
    assert change.summary == (
        "+1 grant; −1 role; account_status: OPEN → LOCKED; admin_roles: APP_READ → —; "
        "can_login: yes → no; locked: no → yes"
    )
    assert snapshot(instance, "APP").is_locked

    unlocked = latest_change(instance, "LOCKED_USER")
    assert unlocked.change_type == "attributes_changed"
    assert unlocked.diff["attributes"] == {
        "account_status": ["LOCKED", "OPEN"],
        "can_login": [False, True],
        "locked": [True, False],
    }


def test_granting_dba_is_a_privileged_change(oracle, instance):
    account_sync_instance(instance=instance)
    oracle.grant("DBA", to="APP_READ")  # every holder of APP_READ now holds DBA

    account_sync_instance(instance=instance)

    change = latest_change(instance, "APP")
    assert change.diff["roles_added"] == ["DBA", "SELECT_CATALOG_ROLE"]
    assert change.privileged
    assert snapshot(instance, "APP").is_superuser
    assert snapshot(instance, "APP_READ").is_superuser
    # APP's timeline also says what it can now do, and through which role.
    reach = AccountChange.objects.get(
        account__instance=instance, account__name="APP", change_type="effective_changed"
    )
    assert "DBA" in reach.diff["roles_reached_added"]
    assert "SUPERUSER gained" in reach.summary
    assert reach.diff["via"] == ["APP_READ"]


def test_dropped_users_are_removed_and_come_back_restored(oracle, instance):
    account_sync_instance(instance=instance)
    oracle.drop_user("OLD_USER")

    outcome = account_sync_instance(instance=instance)

    assert outcome.removed == 1
    gone = Account.objects.get(instance=instance, name="OLD_USER")
    assert gone.removed_at is not None
    removed = latest_change(instance, "OLD_USER")
    assert removed.change_type == "removed"
    assert removed.diff["attributes"]["account_status"] == ["EXPIRED & LOCKED", None]

    oracle.create_user("OLD_USER")
    oracle.grant("CONNECT", to="OLD_USER")
    outcome = account_sync_instance(instance=instance)

    assert outcome.restored == 1
    restored = latest_change(instance, "OLD_USER")
    assert restored.change_type == "restored"
    assert restored.diff["attributes"]["account_status"] == ["EXPIRED & LOCKED", "OPEN"]
    assert restored.diff["attributes"]["locked"] == [True, False]
    assert Account.objects.get(instance=instance, name="OLD_USER").removed_at is None


def test_without_dictionary_access_the_sync_fails_and_removes_nothing(oracle, instance):
    first = account_sync_instance(instance=instance)
    oracle.revoke("SELECT_CATALOG_ROLE", from_="WHALEFALL")

    with pytest.raises(InsufficientPrivileges, match="SELECT_CATALOG_ROLE"):
        account_sync_instance(instance=instance)

    assert Account.objects.filter(instance=instance, removed_at__isnull=True).count() == (
        first.created
    )
    assert not AccountChange.objects.filter(change_type="removed").exists()


def test_remote_statements_do_not_grow_with_the_accounts(oracle, instance):
    few = account_sync_instance(instance=instance).remote_queries
    for index in range(47):
        name = f"EXTRA{index:02}"
        oracle.create_user(name)
        oracle.grant("CONNECT", to=name)
        oracle.quota(name, "USERS")

    outcome = account_sync_instance(instance=instance)

    assert outcome.created == 47
    assert outcome.remote_queries == few == 6


# --- Effective privileges -----------------------------------------------------------------


def test_dba_through_a_chain_of_custom_roles_with_provenance(oracle, instance):
    oracle.create_role("APP_OPS")
    oracle.create_role("APP_SUPPORT")
    oracle.grant("DBA", to="APP_OPS")
    oracle.grant("APP_OPS", to="APP_SUPPORT")
    oracle.create_user("HELPDESK")
    oracle.grant("CREATE SESSION", to="HELPDESK")
    oracle.grant("APP_SUPPORT", to="HELPDESK", default=False)
    account_sync_instance(instance=instance)

    helpdesk = snapshot(instance, "HELPDESK")
    assert helpdesk.is_superuser
    assert helpdesk.can_grant
    paths = {p["role"]: p for p in helpdesk.facts["effective"]["role_paths"]}
    assert paths["DBA"] == {"role": "DBA", "via": ["APP_SUPPORT", "APP_OPS"], "set_role": True}
    # What DBA holds reaches HELPDESK with its path; its own set holds none of it.
    granted = {g["privilege"]: g for g in helpdesk.facts["effective"]["grants"] if g["via"]}
    assert granted["GRANT ANY PRIVILEGE"]["via"] == ["APP_SUPPORT", "APP_OPS", "DBA"]
    assert not any(g["privilege"] == "GRANT ANY PRIVILEGE" for g in helpdesk.privileges["grants"])


def test_public_is_one_account_holding_the_grants_to_public(oracle, instance):
    oracle.grant("CREATE SESSION", to="PUBLIC")
    account_sync_instance(instance=instance)

    public = Account.objects.select_related("snapshot").get(instance=instance, kind="public")
    assert {"scope": "server", "object": "", "privilege": "CREATE SESSION", "option": ""} in (
        public.snapshot.privileges["grants"]
    )
    # Not copied onto the other accounts' own or effective sets.
    app = snapshot(instance, "APP")
    assert not any(g["via"] == ["PUBLIC"] for g in app.facts["effective"]["grants"])

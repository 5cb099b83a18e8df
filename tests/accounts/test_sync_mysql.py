"""Account sync against the local MariaDB: snapshots and change history (SPEC §5.2, §5.3)."""

import pytest

from accounts.models import Account, AccountChange, PrivilegeSnapshot
from accounts.services import account_sync_instance

pytestmark = pytest.mark.django_db


def account(instance, name, host="%"):
    return Account.objects.select_related("snapshot").get(instance=instance, name=name, host=host)


def changes(instance, name, host="%"):
    return list(
        AccountChange.objects.filter(
            account__instance=instance, account__name=name, account__host=host
        )
        .order_by("id")
        .values_list("change_type", flat=True)
    )


@pytest.fixture
def scenario(mariadb, mariadb_instance):
    """An application user with grants at every level, a role, and a locked user."""
    shop = mariadb.database(f"{mariadb.prefix}Shop_Mixed")
    app, locked = mariadb.user("app"), mariadb.user("locked")
    role = mariadb.role("reader")
    mariadb.run(
        f"CREATE DATABASE `{shop}`",
        f"CREATE TABLE `{shop}`.orders (id INT, price INT)",
        f"CREATE USER {app} IDENTIFIED BY 'x'",
        f"CREATE USER {locked} IDENTIFIED BY 'y' ACCOUNT LOCK",
        f"CREATE ROLE {role}",
        f"GRANT SELECT ON `{shop}`.* TO {role}",
        f"GRANT PROCESS ON *.* TO {app}",
        f"GRANT SELECT, INSERT ON `{shop}`.* TO {app} WITH GRANT OPTION",
        f"GRANT UPDATE ON `{shop}`.orders TO {app}",
        f"GRANT SELECT (price) ON `{shop}`.orders TO {app}",
        f"GRANT {role} TO {app}",
    )
    return {
        "shop": shop,
        "app": f"{mariadb.prefix}app",
        "locked": f"{mariadb.prefix}locked",
        "role": role,
    }


def test_first_sync_creates_accounts_with_exact_snapshots(mariadb_instance, scenario):
    outcome = account_sync_instance(instance=mariadb_instance, run_id=41)
    assert outcome.created >= 4  # the monitor, app, locked, role (plus the server's own)
    assert outcome.changed == outcome.removed == 0

    app = account(mariadb_instance, scenario["app"])
    shop = scenario["shop"]
    assert app.kind == "user"
    assert app.snapshot.privileges == {
        "engine": "mysql",
        "attributes": {
            "can_login": True,
            "locked": False,
            "password_expired": False,
            "password_last_changed": app.snapshot.privileges["attributes"]["password_last_changed"],
            "password_set": True,
            "plugin": "mysql_native_password",
            "superuser": False,
        },
        "roles": [scenario["role"]],
        "grants": [
            {
                "scope": "column",
                "object": f"{shop}.orders.price",
                "privilege": "SELECT",
                "option": "",
            },
            {"scope": "database", "object": shop, "privilege": "INSERT", "option": "GRANT"},
            {"scope": "database", "object": shop, "privilege": "SELECT", "option": "GRANT"},
            {"scope": "global", "object": "", "privilege": "PROCESS", "option": ""},
            {"scope": "table", "object": f"{shop}.orders", "privilege": "UPDATE", "option": ""},
        ],
    }
    assert "Shop_Mixed" in shop  # the database keeps its case end to end
    assert app.snapshot.facts["roles"] == [scenario["role"]]
    assert not app.snapshot.is_superuser
    assert not app.snapshot.can_grant  # grant option on a database, not global

    locked = account(mariadb_instance, scenario["locked"])
    assert locked.snapshot.is_locked
    assert "LOCKED" in locked.snapshot.facts["capabilities"]

    role = account(mariadb_instance, scenario["role"], host="")
    assert role.kind == "role"
    assert not role.snapshot.is_locked

    created = AccountChange.objects.get(account=app)
    assert created.change_type == "created"
    assert created.run_id == 41
    assert len(created.diff["grants_added"]) == 5
    assert created.summary == "+5 grants; +1 role"


def test_a_resync_without_changes_writes_no_snapshot(mariadb, mariadb_instance, scenario):
    # Scoped to this test's accounts: other runs may churn accounts on the shared server.
    mine = {"instance": mariadb_instance, "name__startswith": mariadb.prefix}
    account_sync_instance(instance=mariadb_instance)
    snapshots = PrivilegeSnapshot.objects.filter(**{f"account__{k}": v for k, v in mine.items()})
    before = set(snapshots.values_list("pk", "fingerprint", "changed_at"))
    history = AccountChange.objects.filter(**{f"account__{k}": v for k, v in mine.items()}).count()
    seen_before = account(mariadb_instance, scenario["app"]).last_seen_at

    second = account_sync_instance(instance=mariadb_instance)
    assert second.unchanged >= len(before)
    assert set(snapshots.values_list("pk", "fingerprint", "changed_at")) == before
    assert (
        AccountChange.objects.filter(**{f"account__{k}": v for k, v in mine.items()}).count()
        == history
    )
    assert account(mariadb_instance, scenario["app"]).last_seen_at > seen_before


def test_grant_revoke_and_lock_are_recorded_as_diffs(mariadb, mariadb_instance, scenario):
    account_sync_instance(instance=mariadb_instance)
    app = f"'{scenario['app']}'@'%'"
    mariadb.run(
        f"GRANT DELETE ON `{scenario['shop']}`.* TO {app}",
        f"REVOKE PROCESS ON *.* FROM {app}",
        f"ALTER USER {app} ACCOUNT LOCK",
        f"ALTER USER '{scenario['locked']}'@'%' ACCOUNT UNLOCK",
    )
    outcome = account_sync_instance(instance=mariadb_instance, run_id=42)
    assert outcome.changed == 2

    change = AccountChange.objects.filter(account__name=scenario["app"]).latest("id")
    assert change.change_type == "privileges_changed"
    assert change.run_id == 42
    assert change.diff["grants_added"] == [
        {"scope": "database", "object": scenario["shop"], "privilege": "DELETE", "option": "GRANT"}
    ]
    assert change.diff["grants_removed"] == [
        {"scope": "global", "object": "", "privilege": "PROCESS", "option": ""}
    ]
    assert change.diff["attributes"] == {"locked": [False, True]}
    assert change.summary == "+1 grant, −1 grant; locked: no → yes"
    assert account(mariadb_instance, scenario["app"]).snapshot.is_locked

    unlocked = AccountChange.objects.filter(account__name=scenario["locked"]).latest("id")
    assert unlocked.change_type == "attributes_changed"
    assert unlocked.diff["attributes"] == {"locked": [True, False]}
    assert unlocked.diff["grants_added"] == unlocked.diff["grants_removed"] == []


def test_dropped_accounts_are_removed_and_come_back_restored(mariadb, mariadb_instance, scenario):
    account_sync_instance(instance=mariadb_instance)
    locked = f"'{scenario['locked']}'@'%'"
    mariadb.run(f"DROP USER {locked}")
    outcome = account_sync_instance(instance=mariadb_instance)
    assert outcome.removed == 1
    gone = account(mariadb_instance, scenario["locked"])
    assert gone.removed_at is not None
    assert gone.snapshot.is_locked  # the snapshot stays for history
    removed = AccountChange.objects.filter(account=gone).latest("id")
    assert removed.change_type == "removed"
    assert removed.diff["attributes"]["locked"] == [True, None]

    mariadb.run(
        f"CREATE USER {locked} IDENTIFIED BY 'z'",
        f"GRANT SELECT ON `{scenario['shop']}`.* TO {locked}",
    )
    outcome = account_sync_instance(instance=mariadb_instance)
    assert outcome.restored == 1
    back = account(mariadb_instance, scenario["locked"])
    assert back.removed_at is None
    restored = AccountChange.objects.filter(account=back).latest("id")
    assert restored.change_type == "restored"
    assert restored.diff["grants_added"][0]["object"] == scenario["shop"]
    assert restored.diff["attributes"]["locked"] == [True, False]
    assert changes(mariadb_instance, scenario["locked"]) == ["created", "removed", "restored"]


def test_privilege_reads_use_a_fixed_number_of_queries(mariadb, mariadb_instance, scenario):
    few = account_sync_instance(instance=mariadb_instance).remote_queries
    for index in range(15):
        user = mariadb.user(f"extra{index}")
        mariadb.run(f"CREATE USER {user}", f"GRANT SELECT ON `{scenario['shop']}`.* TO {user}")
    assert account_sync_instance(instance=mariadb_instance).remote_queries == few

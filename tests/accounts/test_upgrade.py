"""Upgrading an installation that already holds history records no spurious change.

The stored snapshots are put back into what the previous release wrote for the same
servers (format 1: routines as tables, object names joined with bare dots, a column grant's
grant option on its table, no effective set, accounts it skipped absent), the accounts
migrations are run back to before the upgrade and forward again over that data, and the
next sync must write change rows only for what really changed on the server.
"""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Q

from accounts.canonical import canonical_with_fingerprint
from accounts.models import Account, AccountChange, ChangeType, PrivilegeSnapshot
from accounts.services import account_sync_instance
from inventory.engines.base import split_object_name

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE_UPGRADE = ("accounts", "0003_account_name_search_index")


def format_1(privileges: dict) -> dict:
    """The set the previous release stored for the same privileges."""
    grants = []
    for g in privileges["grants"]:
        scope, obj, privilege, option = g["scope"], g["object"], g["privilege"], g["option"]
        parts = split_object_name(obj) if obj else []
        if privilege == "PROXY":
            obj = "@".join(parts)
        elif parts:
            obj = ".".join(parts)
        if scope in ("function", "procedure", "package"):
            if privileges["engine"] == "postgresql":
                continue  # not read before
            scope = "table"
        if scope == "column" and option == "GRANT":
            table = ".".join(parts[:-1])
            grants.append({"scope": "table", "object": table, "privilege": "USAGE",
                           "option": "GRANT"})  # fmt: skip
            option = ""
        if scope == "default":
            continue
        grants.append({"scope": scope, "object": obj, "privilege": privilege, "option": option})
    attributes = {
        k: v for k, v in privileges["attributes"].items() if k not in {"anonymous", "password_set"}
    }
    return {**privileges, "attributes": attributes, "grants": grants}


def downgrade_to_format_1(instance) -> None:
    """Rewrite what the sync stored as the previous release would have stored it."""
    skipped = list(
        Account.objects.filter(instance=instance)
        .filter(Q(kind="public") | Q(name=""))
        .values_list("pk", flat=True)
    )
    PrivilegeSnapshot.objects.filter(account__in=skipped).delete()
    AccountChange.objects.filter(account__in=skipped)._raw_delete(connection.alias)
    Account.objects.filter(pk__in=skipped).delete()
    for snapshot in PrivilegeSnapshot.objects.filter(account__instance=instance):
        old, fingerprint = canonical_with_fingerprint(format_1(snapshot.privileges))
        facts = {k: v for k, v in snapshot.facts.items() if k != "effective"}
        PrivilegeSnapshot.objects.filter(pk=snapshot.pk).update(
            privileges=old, facts=facts, fingerprint=fingerprint, effective_fingerprint=""
        )


def migrate(target) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])


def latest():
    executor = MigrationExecutor(connection)
    return next(key for key in executor.loader.graph.leaf_nodes() if key[0] == "accounts")


def test_the_first_sync_after_the_upgrade_records_only_real_differences(mariadb, mariadb_instance):
    shop = mariadb.database(f"{mariadb.prefix}up_Shop")
    app, other = mariadb.user("app"), mariadb.user("other")
    role = mariadb.role("reader")
    mariadb.run(
        f"CREATE DATABASE `{shop}`",
        f"CREATE TABLE `{shop}`.orders (id INT, price INT)",
        f"CREATE PROCEDURE `{shop}`.refund() SELECT 1",
        f"CREATE USER {app} IDENTIFIED BY 'pw-a-1'",
        f"CREATE USER {other} IDENTIFIED BY 'pw-o-1'",
        f"CREATE ROLE {role}",
        f"GRANT SELECT ON `{shop}`.* TO {role}",
        f"GRANT {role} TO {app}",
        f"GRANT EXECUTE ON PROCEDURE `{shop}`.refund TO {app}",
        f"GRANT SELECT (price) ON `{shop}`.orders TO {app} WITH GRANT OPTION",
        f"GRANT PROCESS ON *.* TO {other}",
    )
    account_sync_instance(instance=mariadb_instance, run_id=1)
    downgrade_to_format_1(mariadb_instance)
    newest = latest()
    migrate(BEFORE_UPGRADE)
    migrate(newest)
    assert set(PrivilegeSnapshot.objects.values_list("format", flat=True)) == {1}

    # A real change made while the upgrade happened.
    mariadb.run(f"GRANT RELOAD ON *.* TO {other}")
    account_sync_instance(instance=mariadb_instance, run_id=2)

    changes = AccountChange.objects.filter(run_id=2).select_related("account")
    rows = {(c.account.name, c.change_type) for c in changes}
    other_name = f"{mariadb.prefix}other"
    assert (other_name, ChangeType.PRIVILEGES_CHANGED) in rows
    # Nothing else changed on the server: only accounts the old release skipped appear.
    spurious = {
        row for row in rows if row != (other_name, ChangeType.PRIVILEGES_CHANGED)
        and row[1] != ChangeType.CREATED
    }  # fmt: skip
    assert spurious == set()
    created = {c.account.kind for c in changes if c.change_type == ChangeType.CREATED}
    assert created <= {"public", "user"}
    assert set(PrivilegeSnapshot.objects.values_list("format", flat=True)) == {2}
    app_snapshot = PrivilegeSnapshot.objects.get(account__name=f"{mariadb.prefix}app")
    assert app_snapshot.effective_fingerprint
    assert {"scope": "procedure", "object": f"{shop}.refund", "privilege": "EXECUTE",
            "option": ""} in app_snapshot.privileges["grants"]  # fmt: skip

    quiet = account_sync_instance(instance=mariadb_instance, run_id=3)
    assert not AccountChange.objects.filter(run_id=3).exists()
    assert quiet.changed == 0

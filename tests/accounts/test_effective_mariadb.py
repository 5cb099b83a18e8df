# ruff: noqa: S608  statements built from the fixture's random names
"""Effective privileges synced from the real local MariaDB: every way an account gets power
(SPEC §5.5), the history of effective changes and the access review."""

import datetime

import pytest
from django.utils import timezone

from accounts.models import Account, AccountChange, ChangeType
from accounts.reports import access_review
from accounts.services import account_sync_instance

pytestmark = pytest.mark.django_db


def get(instance, kind, name, host=""):
    return Account.objects.select_related("snapshot").get(
        instance=instance, kind=kind, name=name, host=host
    )


def effective(account):
    return {
        (g["scope"], g["object"], g["privilege"], g["option"]): g["via"]
        for g in account.snapshot.facts["effective"]["grants"]
    }


def test_a_user_and_a_role_named_like_it_are_two_accounts(mariadb, mariadb_instance):
    """``'k'@'h'`` and a role named ``k@h`` used to share one key: the user's ALL
    PRIVILEGES disappeared behind the role."""
    user = mariadb.user("k", "h")
    role = mariadb.role("k@h")
    mariadb.run(
        f"CREATE USER {user} IDENTIFIED BY 'pw-k-1'",
        f"GRANT ALL PRIVILEGES ON *.* TO {user}",
        f"CREATE ROLE `{role}`",
    )
    account_sync_instance(instance=mariadb_instance)

    the_user = get(mariadb_instance, "user", f"{mariadb.prefix}k", "h")
    the_role = get(mariadb_instance, "role", role)
    assert the_user.pk != the_role.pk
    assert the_user.snapshot.is_superuser
    assert not the_role.snapshot.is_superuser


def test_a_role_with_all_on_star_makes_its_member_superuser_with_provenance(
    mariadb, mariadb_instance
):
    member = mariadb.user("member")
    admin, ops = mariadb.role("admin"), mariadb.role("ops")
    mariadb.run(
        f"CREATE USER {member} IDENTIFIED BY 'pw-m-1'",
        f"CREATE ROLE {admin}",
        f"CREATE ROLE {ops}",
        f"GRANT ALL PRIVILEGES ON *.* TO {admin} WITH GRANT OPTION",
        f"GRANT {admin} TO {ops}",
        f"GRANT {ops} TO {member}",
    )
    account_sync_instance(instance=mariadb_instance)

    account = get(mariadb_instance, "user", f"{mariadb.prefix}member", "%")
    assert account.snapshot.privileges["grants"] == []  # nothing granted to it directly
    assert account.snapshot.is_superuser
    assert account.snapshot.can_grant
    assert account.snapshot.can_escalate
    assert effective(account)[("global", "", "ALL PRIVILEGES", "GRANT")] == [ops, admin]
    # Not a default role: taking it needs SET ROLE, and the page says so.
    grant = next(
        g for g in account.snapshot.facts["effective"]["grants"] if g["privilege"] == "SUPER"
    )
    assert grant["set_role"] is True
    assert Account.objects.filter(pk=account.pk).privileged().exists()

    book = access_review(
        accounts=Account.objects.filter(instance=mariadb_instance),
        start=timezone.localdate() - datetime.timedelta(days=1),
        end=timezone.localdate(),
    )
    people = book.sheets()[0]
    row = next(r for r in people.dict if r["account"] == f"{mariadb.prefix}member@%")
    assert "SUPERUSER" in row["privileged_because"]
    assert f"[via {ops} → {admin} (SET ROLE)]" in row["grants"]


def test_write_access_to_the_grant_tables_is_escalation(mariadb, mariadb_instance):
    writer = mariadb.user("writer")
    mariadb.run(
        f"CREATE USER {writer} IDENTIFIED BY 'pw-w-1'",
        f"GRANT INSERT, UPDATE ON mysql.* TO {writer}",
    )
    account_sync_instance(instance=mariadb_instance)

    account = get(mariadb_instance, "user", f"{mariadb.prefix}writer", "%")
    assert account.snapshot.can_escalate
    assert not account.snapshot.is_superuser
    assert "ESCALATION" in account.snapshot.facts["effective"]["capabilities"]
    assert Account.objects.filter(pk=account.pk).privileged().exists()


def test_anonymous_accounts_are_listed_and_flagged(mariadb, mariadb_instance):
    # A host nobody connects from: an anonymous account for it shadows no real login.
    host = f"{mariadb.prefix}anon.invalid"
    anonymous = f"''@'{host}'"
    mariadb.users.add(anonymous)
    mariadb.run(f"CREATE USER {anonymous}")
    account_sync_instance(instance=mariadb_instance)

    account = get(mariadb_instance, "user", "", host)
    assert account.identity == f"''@{host}"
    assert account.snapshot.is_anonymous
    assert account.snapshot.no_password
    assert {"ANONYMOUS", "NO_PASSWORD"} <= set(account.snapshot.facts["effective"]["capabilities"])


def test_a_role_change_is_recorded_on_every_member_and_a_quiet_resync_writes_nothing(
    mariadb, mariadb_instance
):
    shop = mariadb.database(f"{mariadb.prefix}eff_shop")
    first, second = mariadb.user("first"), mariadb.user("second")
    reader, base = mariadb.role("reader"), mariadb.role("base")
    mariadb.run(
        f"CREATE DATABASE `{shop}`",
        f"CREATE USER {first} IDENTIFIED BY 'pw-f-1'",
        f"CREATE USER {second} IDENTIFIED BY 'pw-s-1'",
        f"CREATE ROLE {reader}",
        f"CREATE ROLE {base}",
        f"GRANT {base} TO {reader}",
        f"GRANT {reader} TO {first}",
        f"GRANT {reader} TO {second}",
        f"SET DEFAULT ROLE {reader} FOR {first}",
    )
    account_sync_instance(instance=mariadb_instance, run_id=1)
    before = AccountChange.objects.count()
    quiet = account_sync_instance(instance=mariadb_instance, run_id=2)
    assert AccountChange.objects.count() == before
    assert quiet.changed == 0

    mariadb.run(f"GRANT SELECT ON `{shop}`.* TO {base}")
    account_sync_instance(instance=mariadb_instance, run_id=3)

    rows = AccountChange.objects.filter(instance=mariadb_instance, run_id=3)
    by_account = {(c.account.name, c.change_type): c for c in rows.select_related("account")}
    assert (base, ChangeType.PRIVILEGES_CHANGED) in by_account
    for name in (f"{mariadb.prefix}first", f"{mariadb.prefix}second", reader):
        change = by_account[(name, ChangeType.EFFECTIVE_CHANGED)]
        via = base if name == reader else reader
        assert change.summary == f"effective privileges changed via {via}: +1 grant"
        assert change.diff["effective_added"][0]["object"] == shop
    # root@localhost created the roles, so it holds them WITH ADMIN and changed too.
    assert {name for name, _type in by_account} == {
        base,
        reader,
        f"{mariadb.prefix}first",
        f"{mariadb.prefix}second",
        "root",
    }
    first_account = get(mariadb_instance, "user", f"{mariadb.prefix}first", "%")
    assert effective(first_account)[("database", shop, "SELECT", "")] == [reader, base]
    # The default role is active at login; the other member has to SET ROLE.
    grants = {
        a.name: a.snapshot.facts["effective"]["grants"]
        for a in Account.objects.filter(
            instance=mariadb_instance,
            name__in=[f"{mariadb.prefix}first", f"{mariadb.prefix}second"],
        ).select_related("snapshot")
    }
    assert grants[f"{mariadb.prefix}first"][0]["set_role"] is False
    assert grants[f"{mariadb.prefix}second"][0]["set_role"] is True

    mariadb.run(f"REVOKE SELECT ON `{shop}`.* FROM {base}")
    account_sync_instance(instance=mariadb_instance, run_id=4)
    removed = AccountChange.objects.filter(
        run_id=4, change_type=ChangeType.EFFECTIVE_CHANGED, account__name__startswith=mariadb.prefix
    )
    assert removed.count() == 3
    assert all(c.diff["effective_removed"] for c in removed)


def test_public_grants_live_on_the_public_account(mariadb, mariadb_instance):
    shop = mariadb.database(f"{mariadb.prefix}pub_shop")
    mariadb.run(f"CREATE DATABASE `{shop}`", f"GRANT SELECT ON `{shop}`.* TO PUBLIC")
    try:
        account_sync_instance(instance=mariadb_instance)
        public = get(mariadb_instance, "public", "PUBLIC")
        assert {
            "scope": "database",
            "object": shop,
            "privilege": "SELECT",
            "option": "",
        } in public.snapshot.privileges["grants"]
    finally:
        mariadb.run(f"REVOKE SELECT ON `{shop}`.* FROM PUBLIC")


def test_an_account_with_every_privilege_bit_set_holds_all_privileges_and_no_made_up_names(
    mariadb_instance,
):
    """The installer's ``mysql@localhost`` has ``access`` = 2⁶⁴−1 in mysql.global_priv."""
    account_sync_instance(instance=mariadb_instance)
    account = (
        Account.objects.select_related("snapshot")
        .filter(instance=mariadb_instance, kind="user", name="mysql", host="localhost")
        .first()
    )
    if account is None:
        pytest.skip("this MariaDB was installed without the mysql@localhost account")
    privileges = {g["privilege"] for g in account.snapshot.privileges["grants"]}
    assert "ALL PRIVILEGES" in privileges
    assert not any(p.startswith("PRIVILEGE BIT") for p in privileges)
    assert account.snapshot.is_superuser
    assert account.snapshot.can_grant

"""Fail closed: a failed or empty listing removes nothing; a crashed write leaves nothing."""

import pytest

from accounts import services
from accounts.models import Account, AccountChange, PrivilegeSnapshot
from accounts.services import SyncRefused, account_sync_instance
from inventory.engines import mysql as mysql_engine
from inventory.engines.base import EngineError, Unreachable

pytestmark = pytest.mark.django_db


@pytest.fixture
def synced(mariadb, mariadb_instance):
    user = mariadb.user("someone")
    mariadb.run(f"CREATE USER {user}")
    account_sync_instance(instance=mariadb_instance)
    return Account.objects.filter(instance=mariadb_instance).count()


def test_a_failing_listing_fails_and_removes_nothing(mariadb_instance, synced, monitor_patch):
    monitor_patch("list_accounts", Unreachable("Unreachable: connection dropped"))
    with pytest.raises(EngineError, match="connection dropped"):
        account_sync_instance(instance=mariadb_instance)
    assert (
        Account.objects.filter(instance=mariadb_instance, removed_at__isnull=True).count() == synced
    )


def test_an_empty_listing_where_accounts_existed_is_refused(
    mariadb_instance, synced, monitor_patch
):
    monitor_patch("list_accounts", [])
    with pytest.raises(SyncRefused, match=f"listed no accounts where {synced} existed"):
        account_sync_instance(instance=mariadb_instance)
    assert not Account.objects.filter(instance=mariadb_instance, removed_at__isnull=False).exists()
    assert not AccountChange.objects.filter(change_type="removed").exists()


def test_missing_privileges_for_a_listed_account_are_refused(
    mariadb_instance, synced, monitor_patch
):
    monitor_patch("collect_privileges", {})
    with pytest.raises(SyncRefused, match="privileges missing"):
        account_sync_instance(instance=mariadb_instance)


def test_a_crash_after_the_remote_read_leaves_no_partial_write(mariadb_instance, monkeypatch):
    real = services.insert_rows

    def crash_on_history(model, fields, rows):
        if model is AccountChange:  # the last write of the transaction
            raise RuntimeError("worker died")
        return real(model, fields, rows)

    monkeypatch.setattr(services, "insert_rows", crash_on_history)
    with pytest.raises(RuntimeError):
        account_sync_instance(instance=mariadb_instance)
    assert not Account.objects.filter(instance=mariadb_instance).exists()
    assert not PrivilegeSnapshot.objects.exists()

    monkeypatch.setattr(services, "insert_rows", real)
    account_sync_instance(instance=mariadb_instance)
    account_sync_instance(instance=mariadb_instance)
    # Each account exactly once, with one snapshot and one "created" change: no duplicates
    # from the crashed attempt. (Checked on this test's own monitoring account; others on
    # the shared server may come and go meanwhile.)
    monitor = mariadb_instance.credential.username
    mine = Account.objects.get(instance=mariadb_instance, name=monitor, host="%")
    assert PrivilegeSnapshot.objects.filter(account=mine).count() == 1
    assert list(mine.changes.values_list("change_type", flat=True)) == ["created"]
    identities = list(Account.objects.filter(instance=mariadb_instance).values_list("name", "host"))
    assert len(identities) == len(set(identities))


@pytest.fixture
def monitor_patch(monkeypatch):
    """Make one engine method return (or raise) a value, after a real connection."""

    def patch(method, result):
        def fake(self, *args, **kwargs):
            self.queries += 1
            if isinstance(result, Exception):
                raise result
            return result

        monkeypatch.setattr(mysql_engine.MySQLEngine, method, fake)

    return patch


def test_the_refusal_is_marked_fail_closed():
    assert services.SyncRefused.fail_closed is True

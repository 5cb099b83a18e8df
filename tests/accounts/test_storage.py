"""How the accounts table is stored: a re-sync's ``last_seen_at`` update of every present
account is a heap-only update on PostgreSQL (no index written), because pages keep room for
the rows' next versions."""

import pytest
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Account
from tests.inventory.factories import InstanceFactory

pytestmark = pytest.mark.django_db(transaction=True)

ACCOUNTS = 600  # several pages of rows
SYNCS = 3


def updated_and_heap_only() -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_stat_get_xact_tuples_updated('accounts_account'::regclass),"
            " pg_stat_get_xact_tuples_hot_updated('accounts_account'::regclass)"
        )
        return cursor.fetchone()


def test_moving_last_seen_of_every_account_writes_no_index():
    instance = InstanceFactory()
    now = timezone.now()
    Account.objects.bulk_create(
        Account(instance=instance, kind="user", name=f"app{n:04d}", host="%",
                first_seen_at=now, last_seen_at=now)
        for n in range(ACCOUNTS)
    )  # fmt: skip

    def sync() -> tuple[int, int]:
        """What a sync does when all of an instance's accounts are still there, in its own
        transaction; how many rows it updated, and how many of them heap-only."""
        with transaction.atomic():
            updated, heap_only = updated_and_heap_only()
            Account.objects.filter(instance=instance, removed_at__isnull=True).update(
                last_seen_at=timezone.now()
            )
            updated_now, heap_only_now = updated_and_heap_only()
        return updated_now - updated, heap_only_now - heap_only

    outcomes = [sync() for _ in range(SYNCS)]
    assert all(updated == ACCOUNTS for updated, _ in outcomes), outcomes
    # Heap-only unless a page still holds versions an open snapshot may see; on full pages
    # almost none would be.
    assert all(heap_only >= 0.9 * ACCOUNTS for _, heap_only in outcomes), outcomes

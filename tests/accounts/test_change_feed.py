"""The change feed under concurrent writers: polling from the last position read returns
every committed change exactly once, however transactions interleave and commit."""

import random
import threading
import time

import psycopg
import pytest
from django.db import connection

from accounts.models import AccountChange
from tests.accounts.factories import make_account
from tests.inventory.factories import InstanceFactory

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="transaction ids are PostgreSQL's"
)

_INSERT = """
    INSERT INTO accounts_accountchange
        (account_id, instance_id, engine, detected_at, change_type, summary, diff, privileged)
    VALUES (%s, %s, 'mysql', now(), 'privileges_changed', %s, '{}', false)
    RETURNING id
"""


def _connect():
    settings = connection.settings_dict
    return psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        password=settings["PASSWORD"] or None,
    )


def _poll(position, limit=1000):
    rows = list(AccountChange.objects.feed_after(position).values_list("txid", "id")[:limit])
    return rows, (rows[-1] if rows else position)


@pytest.fixture
def account(transactional_db):
    instance = InstanceFactory()
    return make_account(instance, "feed")


def test_a_change_committed_late_with_a_smaller_id_is_not_skipped(account):
    start = _poll((0, 0))[1]
    early, late = _connect(), _connect()
    try:
        with early.cursor() as cur:  # opens first, writes the smaller id, commits last
            cur.execute(_INSERT, (account.pk, account.instance_id, "early"))
            early_id = cur.fetchone()[0]
        with late.cursor() as cur:
            cur.execute(_INSERT, (account.pk, account.instance_id, "late"))
            late_id = cur.fetchone()[0]
        late.commit()
        assert early_id < late_id
        # The late change has committed, but the early one still may: nothing is final yet.
        seen, position = _poll(start)
        assert seen == []
        early.commit()
        seen, position = _poll(position)
        assert [pk for _txid, pk in seen] == [early_id, late_id]
        assert _poll(position)[0] == []
    finally:
        early.close()
        late.close()


def test_a_transaction_that_took_its_id_first_comes_first_whatever_its_row_ids(account):
    start = _poll((0, 0))[1]
    first, second = _connect(), _connect()
    try:
        with first.cursor() as cur:
            cur.execute("SELECT pg_current_xact_id()")  # takes its transaction id now
        with second.cursor() as cur:
            cur.execute(_INSERT, (account.pk, account.instance_id, "second"))
            second_id = cur.fetchone()[0]
        second.commit()
        with first.cursor() as cur:
            cur.execute(_INSERT, (account.pk, account.instance_id, "first"))
            first_id = cur.fetchone()[0]
        assert _poll(start)[0] == []
        first.commit()
        seen, _position = _poll(start)
        assert [pk for _txid, pk in seen] == [first_id, second_id]
    finally:
        first.close()
        second.close()


def test_rolled_back_changes_never_appear_and_block_nothing_after(account):
    start = _poll((0, 0))[1]
    aborted, kept = _connect(), _connect()
    try:
        with aborted.cursor() as cur:
            cur.execute(_INSERT, (account.pk, account.instance_id, "aborted"))
        with kept.cursor() as cur:
            cur.execute(_INSERT, (account.pk, account.instance_id, "kept"))
            kept_id = cur.fetchone()[0]
        kept.commit()
        aborted.rollback()
        assert [pk for _txid, pk in _poll(start)[0]] == [kept_id]
    finally:
        aborted.close()
        kept.close()


def test_polling_during_concurrent_writers_returns_every_change_exactly_once(account):
    """Four writers commit batches of changes with random pauses inside their transactions
    while a reader polls the feed; the reader ends with each committed change once, in the
    feed's order, and none of the rolled-back ones."""
    start = _poll((0, 0))[1]
    committed: list[int] = []
    lock = threading.Lock()
    failures: list[BaseException] = []

    def writer(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            with _connect() as conn:
                for _batch in range(12):
                    ids = []
                    with conn.cursor() as cur:
                        for _row in range(rnd.randint(1, 5)):
                            cur.execute(_INSERT, (account.pk, account.instance_id, f"w{seed}"))
                            ids.append(cur.fetchone()[0])
                            time.sleep(rnd.random() / 200)
                    if rnd.random() < 0.15:
                        conn.rollback()
                    else:
                        conn.commit()
                        with lock:
                            committed.extend(ids)
        except BaseException as exc:  # noqa: BLE001 (reported by the main thread)
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    seen: list[tuple[int, int]] = []
    position = start
    while any(thread.is_alive() for thread in threads):
        rows, position = _poll(position, limit=7)
        seen += rows
        time.sleep(0.002)
    for thread in threads:
        thread.join()
    while rows := _poll(position)[0]:
        seen += rows
        position = rows[-1]

    assert not failures, failures
    ids = [pk for _txid, pk in seen]
    assert len(ids) == len(set(ids)), "a change was returned twice"
    assert sorted(ids) == sorted(committed), "a change was skipped or a rolled-back one shown"
    assert seen == sorted(seen), "the feed went backwards"

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


# The feed holds back changes while any older writing transaction on the server is open —
# another test suite's, say, when the server is shared: it may lag, never skip or repeat.
SETTLE_SECONDS = 30


def _settled_end():
    """The feed position after every change written so far, once they are all final."""
    rows = _poll_until((0, 0), AccountChange.objects.count())
    return rows[-1] if rows else (0, 0)


def _poll_until(position, count):
    """Poll from ``position`` until ``count`` changes are final (or the time is up)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        rows, _end = _poll(position)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


@pytest.fixture
def account(transactional_db):
    instance = InstanceFactory()
    return make_account(instance, "feed")


def test_a_change_committed_late_with_a_smaller_id_is_not_skipped(account):
    start = _settled_end()
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
        seen = _poll_until(position, 2)
        assert [pk for _txid, pk in seen] == [early_id, late_id]
        assert _poll(seen[-1])[0] == []
    finally:
        early.close()
        late.close()


def test_a_transaction_that_took_its_id_first_comes_first_whatever_its_row_ids(account):
    start = _settled_end()
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
        seen = _poll_until(start, 2)
        assert [pk for _txid, pk in seen] == [first_id, second_id]
    finally:
        first.close()
        second.close()


def test_rolled_back_changes_never_appear_and_block_nothing_after(account):
    start = _settled_end()
    aborted, kept = _connect(), _connect()
    try:
        with aborted.cursor() as cur:
            cur.execute(_INSERT, (account.pk, account.instance_id, "aborted"))
        with kept.cursor() as cur:
            cur.execute(_INSERT, (account.pk, account.instance_id, "kept"))
            kept_id = cur.fetchone()[0]
        kept.commit()
        aborted.rollback()
        assert [pk for _txid, pk in _poll_until(start, 1)] == [kept_id]
    finally:
        aborted.close()
        kept.close()


def test_polling_during_concurrent_writers_returns_every_change_exactly_once(account):
    """Four writers commit batches of changes with random pauses inside their transactions
    while a reader polls the feed; the reader ends with each committed change once, in the
    feed's order, and none of the rolled-back ones."""
    start = _settled_end()
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
    deadline = time.monotonic() + SETTLE_SECONDS
    while len(seen) < len(committed) and time.monotonic() < deadline:
        rows, position = _poll(position)
        seen += rows
        time.sleep(0.01 if rows else 0.05)
    seen += _poll(position)[0]  # anything beyond what was committed would show here

    assert not failures, failures
    ids = [pk for _txid, pk in seen]
    assert len(ids) == len(set(ids)), "a change was returned twice"
    assert sorted(ids) == sorted(committed), "a change was skipped or a rolled-back one shown"
    assert seen == sorted(seen), "the feed went backwards"


def _plan_nodes(node):
    yield node
    for child in node.get("Plans", ()):
        yield from _plan_nodes(child)


@pytest.mark.django_db
def test_the_feed_plans_for_the_changes_left_when_one_transaction_wrote_many():
    """A first sync writes thousands of changes in one transaction. From a cursor inside
    it, the planner must expect the changes that are left there: expecting one (as it did
    for "(txid, id) > cursor", judged by "txid > t" alone), it joined the accounts by hash
    and sorted the whole rest of the table for a page of 5 000 — 3 700 changes/s instead
    of 20 000+ on 10⁶ changes written by one transaction."""
    import json

    from django.db.models import TextField
    from django.db.models.functions import Cast

    from accounts.api import FEED_COLUMNS

    instance = InstanceFactory()
    account = make_account(instance, "bulk")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO accounts_accountchange (account_id, instance_id, engine, detected_at,"
            " change_type, summary, diff, privileged) SELECT %s, %s, 'mysql', now(),"
            " 'privileges_changed', 'bulk', '{}', false FROM generate_series(1, 5000)",
            [account.pk, instance.pk],
        )
        cursor.execute("ANALYZE accounts_accountchange")
    position = AccountChange.objects.order_by("id").values_list("txid", "id")[2500]
    page = (
        AccountChange.objects.annotate(diff_text=Cast("diff", TextField()))
        .values_list(*FEED_COLUMNS, named=True)
        .feed_after(position)[:101]
    )
    plan = json.loads(page.explain(format="json"))[0]["Plan"]
    scans = [n for n in _plan_nodes(plan) if n.get("Index Name") == "accounts_change_feed_idx"]
    assert scans, plan
    assert scans[0]["Plan Rows"] > 1000, scans[0]  # 2 499 are left
    assert len(page) == 101

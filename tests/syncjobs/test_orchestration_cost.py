"""What running one item costs the main database, independent of the size of its run: no
per-item recount of a big run, one INSERT for a free lock, no UPDATE for the usual delivery."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from syncjobs import services
from syncjobs.models import ItemStatus, Run, RunItem, RunStatus, WorkLock
from tests.inventory.factories import InstanceFactory
from tests.syncjobs.factories import RunItemFactory

pytestmark = pytest.mark.django_db


def big_run(size: int) -> Run:
    instances = InstanceFactory.create_batch(size)
    return services.run_create(
        kind=Run.Kind.ACCOUNTS,
        trigger=Run.Trigger.SCHEDULED,
        instance_ids=[i.pk for i in instances],
    )


def statements(item_id: int, **kwargs) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        services.run_item_execute(item_id=item_id, **kwargs)
    return [q["sql"] for q in queries.captured_queries]


def test_a_big_run_recounts_every_stride_th_item_and_the_last_one_closes_it():
    run = big_run(2 * services.PROGRESS_RECOUNTS + 50)
    stride = run.items_total // services.PROGRESS_RECOUNTS
    assert stride == 2
    ids = list(run.items.order_by("pk").values_list("pk", flat=True))
    off_stride = [pk for pk in ids if pk % stride]
    on_stride = [pk for pk in ids if not pk % stride]

    sql = statements(off_stride[0], task_id="t-1")
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
    assert run.items_succeeded == 0, "no recount off the stride"
    assert not any("COUNT(" in s for s in sql)
    assert not any("FOR UPDATE" in s for s in sql), "the run's row is not locked"

    sql = statements(on_stride[0], task_id="t-2")
    run.refresh_from_db()
    assert run.items_succeeded == 2, "the recount counts every item finished so far"
    assert run.status == RunStatus.RUNNING
    assert any("COUNT(" in s for s in sql)

    # Whatever order they finish in, the last item finds none active and closes the run.
    for pk in on_stride[1:] + off_stride[1:]:
        services.run_item_execute(item_id=pk)
    run.refresh_from_db()
    assert off_stride[-1] % stride, "the last item is off the stride"
    assert run.status == RunStatus.SUCCEEDED
    assert run.items_succeeded == run.items_total == len(ids)
    assert run.finished_at is not None


def test_a_small_run_recounts_after_every_item():
    run = big_run(3)
    first = run.items.order_by("pk").first()
    services.run_item_execute(item_id=first.pk)
    run.refresh_from_db()
    assert run.items_succeeded == 1


def test_an_item_costs_the_same_statements_in_a_run_of_any_size():
    small, large = big_run(3), big_run(2 * services.PROGRESS_RECOUNTS + 50)
    small_item = small.items.order_by("pk").first()
    large_item = large.items.filter(pk__gt=large.items.order_by("pk").first().pk)
    # Both off the stride of the big run and both not the first item of their run.
    services.run_item_execute(item_id=small_item.pk)
    services.run_item_execute(item_id=large.items.order_by("pk").first().pk)
    off = next(i for i in large_item.order_by("pk") if i.pk % 2)
    sql = statements(off.pk, task_id="t-3")
    # Item read, claim, lock insert (a savepoint pair: the test runs in a transaction),
    # handler's none, finish, instance connected, alert check, lock release, "any item
    # active?".
    assert len(sql) <= 10, sql
    assert not any(s.startswith("UPDATE") and '"syncjobs_run"' in s for s in sql), (
        "a running run is not moved to running again"
    )
    assert sum("syncjobs_worklock" in s and s.startswith("DELETE") for s in sql) == 1, (
        "only the release deletes a lock; a free lock is not swept for expiry first"
    )


def test_the_usual_delivery_does_not_try_to_take_the_item_over():
    run = big_run(1)
    item = run.items.get()
    sql = statements(item.pk, task_id="task-1", retries=0)
    assert not any(s.startswith("UPDATE") and "SET \"status\" = 'pending'" in s for s in sql)
    assert RunItem.objects.get(pk=item.pk).status == ItemStatus.SUCCEEDED


def test_a_retry_still_takes_over_the_item_its_first_attempt_left_running():
    item = RunItemFactory(status=ItemStatus.RUNNING, task_id="task-9", task_retries=0)
    services.run_item_execute(item_id=item.pk, task_id="task-9", retries=1)
    item.refresh_from_db()
    assert item.status == ItemStatus.SUCCEEDED
    assert item.task_retries == 1


def test_a_free_lock_costs_one_insert_and_a_held_one_is_refused():
    first, second = RunItemFactory(), RunItemFactory()
    now = timezone.now()
    with CaptureQueriesContext(connection) as queries:
        assert services.work_lock_acquire(
            kind="accounts", instance_id=first.instance_id, item_id=first.pk, now=now
        )
    writes = [q["sql"] for q in queries.captured_queries if "worklock" in q["sql"]]
    assert len(writes) == 1
    assert writes[0].startswith("INSERT")
    assert not services.work_lock_acquire(
        kind="accounts", instance_id=first.instance_id, item_id=second.pk, now=now
    )
    # Its own holder takes it again (a retry after the release was lost).
    assert services.work_lock_acquire(
        kind="accounts", instance_id=first.instance_id, item_id=first.pk, now=now
    )
    assert WorkLock.objects.get().holder_id == first.pk


@pytest.mark.django_db(transaction=True)
def test_a_worker_takes_and_releases_a_free_lock_with_one_statement_each():
    item = RunItemFactory()
    lock = {"kind": "accounts", "instance_id": item.instance_id, "item_id": item.pk}
    with CaptureQueriesContext(connection) as queries:
        assert services.work_lock_acquire(**lock)
        services.work_lock_release(**lock)
    sql = [q["sql"] for q in queries.captured_queries]
    # No transaction around either (no BEGIN/COMMIT round trips), no read before the DELETE.
    assert [s.split()[0] for s in sql] == ["INSERT", "DELETE"], sql
    assert not WorkLock.objects.exists()

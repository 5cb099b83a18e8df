"""Real concurrency: threads with their own database connections, committed data."""

import threading
from collections.abc import Callable

import pytest
from django.db import connection
from django.utils import timezone

from syncjobs import services
from syncjobs.models import ItemStatus, Run, RunItem, RunStatus, WorkLock
from tests.inventory.factories import InstanceFactory
from tests.syncjobs import handlers

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 15


def in_threads(*targets: Callable[[], object]) -> list[object]:
    """Run the targets at the same moment, each on its own connection; return their results."""
    barrier = threading.Barrier(len(targets))
    results: list[object] = [None] * len(targets)
    errors: list[BaseException] = []

    def run(position: int, target: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=TIMEOUT)
            results[position] = target()
        except Exception as exc:  # noqa: BLE001  reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(position, target))
        for position, target in enumerate(targets)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT * 2)
    assert not errors, errors
    return results


def new_run(*instances, kind: str = Run.Kind.ACCOUNTS) -> Run:
    return services.run_create(
        kind=kind, trigger=Run.Trigger.MANUAL, instance_ids=[i.pk for i in instances]
    )


def test_of_concurrent_lock_attempts_exactly_one_wins():
    instance = InstanceFactory()
    items = [new_run(instance).items.get() for _ in range(6)]
    results = in_threads(
        *(
            lambda item=item: services.work_lock_acquire(
                kind="accounts", instance_id=instance.pk, item_id=item.pk
            )
            for item in items
        )
    )
    assert sorted(results) == [False] * 5 + [True]
    assert WorkLock.objects.get().holder_id == items[results.index(True)].pk


def test_two_concurrent_executions_of_the_same_work_run_once(fake_handlers):
    instance = InstanceFactory(name="db-shared")
    first, second = new_run(instance), new_run(instance)
    one_finished = threading.Event()

    def slow(**_kwargs):
        # Hold the lock until the other execution has given up (or the timeout).
        one_finished.wait(timeout=TIMEOUT)
        return handlers.DEFAULT_OUTCOME

    fake_handlers["db-shared"] = slow

    def execute(run: Run) -> None:
        services.run_item_execute(item_id=run.items.get().pk)
        one_finished.set()

    in_threads(lambda: execute(first), lambda: execute(second))

    items = {item.run_id: item for item in RunItem.objects.all()}
    statuses = sorted(item.status for item in items.values())
    assert statuses == [ItemStatus.SKIPPED, ItemStatus.SUCCEEDED]
    winner = next(i for i in items.values() if i.status == ItemStatus.SUCCEEDED)
    loser = next(i for i in items.values() if i.status == ItemStatus.SKIPPED)
    assert loser.skip_reason.startswith(
        f"accounts sync of db-shared already running in run #{winner.run_id} since "
    )
    assert len(handlers.CALLS) == 1
    assert not WorkLock.objects.exists()
    # The run that did the work succeeded; the one whose only item was skipped did nothing.
    assert Run.objects.get(pk=winner.run_id).status == RunStatus.SUCCEEDED
    assert Run.objects.get(pk=loser.run_id).status == RunStatus.FAILED


def test_different_kinds_of_work_run_at_the_same_time_on_one_instance(fake_handlers):
    instance = InstanceFactory(name="db-busy")
    both_inside = threading.Barrier(2)

    def meet(**_kwargs):
        # Both handlers must be inside at once, or the barrier times out and breaks.
        both_inside.wait(timeout=TIMEOUT)
        return handlers.DEFAULT_OUTCOME

    fake_handlers["db-busy"] = meet
    runs = [new_run(instance, kind="accounts"), new_run(instance, kind="capacity")]
    in_threads(
        *(lambda run=run: services.run_item_execute(item_id=run.items.get().pk) for run in runs)
    )
    assert set(RunItem.objects.values_list("status", flat=True)) == {ItemStatus.SUCCEEDED}


def test_of_concurrent_transitions_of_one_item_exactly_one_applies():
    item = new_run(InstanceFactory()).items.get()
    RunItem.objects.filter(pk=item.pk).transition(ItemStatus.RUNNING)
    outcomes = [ItemStatus.SUCCEEDED, ItemStatus.FAILED, ItemStatus.SKIPPED] * 2

    def finish(status: str) -> int:
        return RunItem.objects.filter(pk=item.pk).transition(status, finished_at=timezone.now())

    results = in_threads(*(lambda status=status: finish(status) for status in outcomes))
    assert sorted(results) == [0] * 5 + [1]
    item.refresh_from_db()
    assert item.status == outcomes[results.index(1)]


def test_counters_are_right_when_items_finish_concurrently(fake_handlers):
    instances = InstanceFactory.create_batch(6)
    run = new_run(*instances)
    fake_handlers[instances[0].name] = handlers.raising(ValueError("boom"))
    in_threads(
        *(
            lambda item_id=item_id: services.run_item_execute(item_id=item_id)
            for item_id in run.items.values_list("pk", flat=True)
        )
    )
    run.refresh_from_db()
    assert run.status == RunStatus.PARTIALLY_FAILED
    assert (run.items_total, run.items_succeeded, run.items_failed) == (6, 5, 1)
    assert (run.created_count, run.changed_count, run.unchanged_count) == (5, 10, 15)

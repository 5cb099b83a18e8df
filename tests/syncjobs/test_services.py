"""Runs and run items: creation, execution, outcomes, cancel, locks, reaper and retention."""

import time
from datetime import timedelta
from unittest import mock

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from guardian.shortcuts import assign_perm

from inventory.engines.base import InsufficientPrivileges, Unreachable
from inventory.models import Instance
from syncjobs import services, tasks
from syncjobs.models import ItemStatus, Run, RunItem, RunStatus, WorkLock
from tests.inventory.factories import InstanceFactory
from tests.syncjobs import handlers
from tests.syncjobs.factories import RunFactory, RunItemFactory
from tests.syncjobs.handlers import Outcome, raising

pytestmark = pytest.mark.django_db


class SyncRefused(Exception):
    """Named like the accounts app's refusal: recognised by name, not by import."""


class Refusal(Exception):
    fail_closed = True


def new_run(*instances, kind=Run.Kind.ACCOUNTS, **kwargs) -> Run:
    return services.run_create(
        kind=kind,
        trigger=kwargs.pop("trigger", Run.Trigger.MANUAL),
        instance_ids=[i.pk for i in instances],
        **kwargs,
    )


def execute(item: RunItem, **kwargs) -> RunItem:
    services.run_item_execute(item_id=item.pk, **kwargs)
    item.refresh_from_db()
    return item


def items_of(run: Run) -> dict[str, RunItem]:
    return {item.instance.name: item for item in run.items.select_related("instance")}


def execute_all(run: Run) -> Run:
    for item in run.items.order_by("pk"):
        services.run_item_execute(item_id=item.pk)
    run.refresh_from_db()
    return run


# --- Creation and enqueueing ------------------------------------------------------------


def test_run_create_makes_one_pending_item_per_instance(django_capture_on_commit_callbacks):
    instances = InstanceFactory.create_batch(3)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = new_run(*instances, *instances[:1])
    assert run.status == RunStatus.QUEUED
    assert run.items_total == 3
    assert sorted(run.items.values_list("instance_id", flat=True)) == sorted(
        i.pk for i in instances
    )
    assert set(run.items.values_list("status", flat=True)) == {ItemStatus.PENDING}
    assert len(callbacks) == 1, "nothing is sent before the transaction commits"


def test_run_create_enqueues_one_task_per_instance_on_commit(
    django_capture_on_commit_callbacks, unsent_items
):
    instances = InstanceFactory.create_batch(3)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = new_run(*instances)
    unsent_items.assert_not_called()
    for callback in callbacks:
        callback()
    sent = [call.kwargs["kwargs"] for call in unsent_items.call_args_list]
    assert sent == [
        {"item_id": item.pk, "run_id": run.pk, "instance_id": item.instance_id, "kind": run.kind}
        for item in run.items.order_by("instance_id")
    ]


def test_items_the_broker_refuses_fail_and_close_the_run(django_capture_on_commit_callbacks):
    instances = InstanceFactory.create_batch(2)
    refused = ConnectionError("broker down")
    with (
        mock.patch.object(tasks.run_item, "apply_async", side_effect=refused) as apply_async,
        django_capture_on_commit_callbacks(execute=True),
    ):
        run = new_run(*instances)
    assert apply_async.call_count == 1, "the first refusal stops the sending"
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.items_failed == 2
    assert {item.error for item in run.items.all()} == {
        "could not be queued: ConnectionError: broker down"
    }


def test_a_redelivered_creating_task_finds_its_first_run():
    instance = InstanceFactory()
    first = new_run(instance, task_id="task-1")
    again = new_run(instance, InstanceFactory(), task_id="task-1")
    assert again.pk == first.pk
    assert Run.objects.count() == 1
    assert RunItem.objects.count() == 1


def test_a_run_without_instances_succeeds_at_once():
    run = new_run()
    assert run.status == RunStatus.SUCCEEDED
    assert run.items_total == 0
    assert run.finished_at is not None


# --- Who a run covers -------------------------------------------------------------------


def test_scheduled_runs_cover_every_syncable_instance():
    active = InstanceFactory.create_batch(2)
    InstanceFactory(is_active=False)
    InstanceFactory(retired_at=timezone.now())
    run = services.run_start(kind=Run.Kind.ACCOUNTS, trigger=Run.Trigger.SCHEDULED)
    assert run.trigger == Run.Trigger.SCHEDULED
    assert run.requested_by is None
    assert set(run.items.values_list("instance_id", flat=True)) == {i.pk for i in active}


def test_a_users_run_covers_only_the_instances_they_may_sync(user_with_role):
    mine, seen_only, _other = InstanceFactory.create_batch(3)
    user = user_with_role("DBAs (scoped)")
    for instance in (mine, seen_only):
        assign_perm("inventory.view_instance", user, instance)
    assign_perm("inventory.sync", user, mine)

    run = services.run_start(kind=Run.Kind.ACCOUNTS, trigger=Run.Trigger.MANUAL, user_id=user.pk)
    assert list(run.items.values_list("instance_id", flat=True)) == [mine.pk]
    assert run.requested_by == user

    dba = user_with_role("DBAs")
    run = services.run_start(kind=Run.Kind.ACCOUNTS, trigger=Run.Trigger.MANUAL, user_id=dba.pk)
    assert run.items_total == 3

    auditor = user_with_role("Auditors")
    run = services.run_start(kind=Run.Kind.ACCOUNTS, trigger=Run.Trigger.MANUAL, user_id=auditor.pk)
    assert run.items_total == 0


def test_a_users_run_of_given_instances_keeps_only_permitted_ones(user_with_role):
    mine, other = InstanceFactory.create_batch(2)
    user = user_with_role("DBAs (scoped)")
    assign_perm("inventory.view_instance", user, mine)
    assign_perm("inventory.sync", user, mine)
    run = services.run_start(
        kind=Run.Kind.ACCOUNTS,
        trigger=Run.Trigger.MANUAL,
        user_id=user.pk,
        instance_ids=[mine.pk, other.pk],
    )
    assert list(run.items.values_list("instance_id", flat=True)) == [mine.pk]


def test_an_unknown_or_inactive_user_starts_nothing(user_with_role):
    inactive = user_with_role("DBAs", is_active=False)
    for user_id in (inactive.pk, 999_999):
        assert (
            services.run_start(kind=Run.Kind.ACCOUNTS, trigger=Run.Trigger.MANUAL, user_id=user_id)
            is None
        )
    assert not Run.objects.exists()


# --- Execution and outcomes -------------------------------------------------------------


def test_a_successful_item_records_counts_and_closes_the_run():
    instance = InstanceFactory()
    run = new_run(instance)
    item = execute(run.items.get())
    assert item.status == ItemStatus.SUCCEEDED
    assert (item.created_count, item.changed_count, item.removed_count, item.unchanged_count) == (
        1,
        2,
        0,
        3,
    )
    assert item.attempts == 1
    assert item.started_at <= item.finished_at
    assert item.duration == item.finished_at - item.started_at
    assert [(instance.name, run.pk)] == handlers.CALLS
    assert not WorkLock.objects.exists(), "the lock is released"

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert (run.items_total, run.items_succeeded, run.items_failed) == (1, 1, 0)
    assert (run.created_count, run.changed_count, run.unchanged_count) == (1, 2, 3)
    assert run.started_at is not None
    assert run.finished_at is not None


def test_counters_after_mixed_outcomes(fake_handlers):
    names = ["ok-1", "ok-2", "refused", "engine", "crash", "retired"]
    instances = {name: InstanceFactory(name=name) for name in names}
    fake_handlers["ok-2"] = lambda **_: Outcome(created=10, changed=0, removed=4, unchanged=1)
    fake_handlers["refused"] = raising(SyncRefused("listing returned no accounts where 12 existed"))
    fake_handlers["engine"] = raising(InsufficientPrivileges("cannot read mysql.user"))
    fake_handlers["crash"] = raising(ValueError("boom"))
    run = new_run(*instances.values())
    Instance.objects.filter(name="retired").update(retired_at=timezone.now())

    run = execute_all(run)
    items = items_of(run)
    assert {name: item.status for name, item in items.items()} == {
        "ok-1": ItemStatus.SUCCEEDED,
        "ok-2": ItemStatus.SUCCEEDED,
        "refused": ItemStatus.FAILED,
        "engine": ItemStatus.FAILED,
        "crash": ItemStatus.FAILED,
        "retired": ItemStatus.SKIPPED,
    }
    assert items["refused"].error == "listing returned no accounts where 12 existed"
    assert items["engine"].error == "cannot read mysql.user"
    assert items["crash"].error == "ValueError: boom"
    assert items["retired"].skip_reason == "retired is retired"
    assert run.status == RunStatus.PARTIALLY_FAILED
    assert (
        run.items_total,
        run.items_succeeded,
        run.items_failed,
        run.items_skipped,
        run.items_cancelled,
    ) == (6, 2, 3, 1, 0)
    assert (run.created_count, run.changed_count, run.removed_count, run.unchanged_count) == (
        11,
        2,
        4,
        4,
    )
    assert run.error == "3 of 6 items failed"


def test_a_fail_closed_refusal_fails_the_item_with_its_message(fake_handlers):
    instance = InstanceFactory()
    fake_handlers[instance.name] = raising(Refusal("listing returned no accounts where 3 existed"))
    run = execute_all(new_run(instance))
    item = run.items.get()
    assert item.status == ItemStatus.FAILED
    assert item.error == "listing returned no accounts where 3 existed"
    assert run.status == RunStatus.FAILED
    assert run.items_failed == 1


def test_a_handler_returning_no_counts_fails_the_item(fake_handlers):
    instance = InstanceFactory()
    fake_handlers[instance.name] = lambda **_: {"created": "many"}
    item = execute(new_run(instance).items.get())
    assert item.status == ItemStatus.FAILED
    assert item.error.startswith("TypeError: handler outcome created='many'")


def test_a_kind_without_handler_fails_its_items(monkeypatch):
    monkeypatch.delitem(services.RUN_HANDLERS, Run.Kind.MAINTENANCE)
    item = execute(new_run(InstanceFactory(), kind=Run.Kind.MAINTENANCE).items.get())
    assert item.status == ItemStatus.FAILED
    assert item.error == "HandlerMissing: no handler is registered for maintenance runs"


def test_the_outcome_detail_is_kept(fake_handlers):
    instance = InstanceFactory()
    fake_handlers[instance.name] = lambda **_: Outcome(created=1, detail={"remote_queries": 4})
    item = execute(new_run(instance).items.get())
    assert item.detail == {"remote_queries": 4}


def test_a_redelivered_finished_item_does_nothing():
    instance = InstanceFactory()
    run = new_run(instance)
    item = execute(run.items.get())
    run.refresh_from_db()
    before = (item.status, item.finished_at, item.attempts, run.finished_at, run.items_succeeded)

    item = execute(item)
    run.refresh_from_db()
    assert len(handlers.CALLS) == 1
    assert (item.status, item.finished_at, item.attempts, run.finished_at, run.items_succeeded) == (
        before
    )


def test_an_item_another_delivery_is_running_is_left_alone():
    instance = InstanceFactory()
    run = new_run(instance)
    item = run.items.get()
    RunItem.objects.filter(pk=item.pk).transition(ItemStatus.RUNNING, heartbeat_at=timezone.now())
    Run.objects.filter(pk=run.pk).update(cancel_requested=True)
    Instance.objects.filter(pk=instance.pk).update(retired_at=timezone.now())
    item = execute(item)
    assert item.status == ItemStatus.RUNNING
    assert handlers.CALLS == []


def test_a_transient_failure_hands_the_item_back_when_it_may_be_retried(fake_handlers):
    instance = InstanceFactory()
    fake_handlers[instance.name] = raising(Unreachable("connection refused"))
    item = new_run(instance).items.get()
    with pytest.raises(Unreachable):
        services.run_item_execute(item_id=item.pk, may_retry=True)
    item.refresh_from_db()
    assert item.status == ItemStatus.PENDING
    assert item.attempts == 1
    assert item.error == "connection refused"
    assert not WorkLock.objects.exists()

    item = execute(item, may_retry=False)
    assert item.status == ItemStatus.FAILED
    assert item.attempts == 2
    assert item.error == "connection refused"
    assert Run.objects.get(pk=item.run_id).status == RunStatus.FAILED


# --- Status transitions -----------------------------------------------------------------


@pytest.mark.parametrize(
    "terminal", [s for s in ItemStatus.values if s not in ("pending", "running")]
)
def test_a_terminal_item_status_is_never_overwritten(terminal):
    item = RunItemFactory(status=terminal, finished_at=timezone.now())
    for status in ItemStatus.values:
        assert RunItem.objects.filter(pk=item.pk).transition(status) == 0, status
    item.refresh_from_db()
    assert item.status == terminal


def test_a_finished_run_is_never_reopened():
    run = RunFactory(status=RunStatus.SUCCEEDED, finished_at=timezone.now())
    for status in RunStatus.values:
        assert Run.objects.filter(pk=run.pk).transition(status) == 0
    item = RunItemFactory(run=run)
    execute(item)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert services.run_finalise(run_id=run.pk) is None


def test_items_move_only_along_allowed_transitions():
    item = RunItemFactory()
    this = RunItem.objects.filter(pk=item.pk)
    assert this.transition(ItemStatus.SUCCEEDED, finished_at=timezone.now()) == 0
    assert this.transition(ItemStatus.RUNNING) == 1
    assert this.transition(ItemStatus.CANCELLED, finished_at=timezone.now()) == 0
    assert this.transition(ItemStatus.SUCCEEDED, finished_at=timezone.now()) == 1


# --- Cancel -----------------------------------------------------------------------------


def test_cancel_takes_effect_between_instances(fake_handlers, user_with_role):
    user = user_with_role("DBAs")
    first, second, third = (
        InstanceFactory(name=name) for name in ("a-first", "b-second", "c-third")
    )

    def cancel_while_running(*, instance, run_id):
        # The run is cancelled while this item runs: it finishes, the others never start.
        services.run_cancel(run=Run.objects.get(pk=run_id), requested_by=user)
        assert Run.objects.get(pk=run_id).status == RunStatus.RUNNING
        return handlers.DEFAULT_OUTCOME

    fake_handlers[first.name] = cancel_while_running
    run = execute_all(new_run(first, second, third))
    items = items_of(run)
    assert [name for name, _ in handlers.CALLS] == [first.name]
    assert items[first.name].status == ItemStatus.SUCCEEDED
    assert items[second.name].status == ItemStatus.CANCELLED
    assert items[third.name].status == ItemStatus.CANCELLED
    assert run.status == RunStatus.CANCELLED
    assert (run.items_succeeded, run.items_cancelled) == (1, 2)
    assert run.summary["cancelled_by"] == user.username


def test_cancelling_a_finished_run_changes_nothing():
    run = execute_all(new_run(InstanceFactory()))
    assert services.run_cancel(run=run) == 0
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.cancel_requested is False


def test_a_cancelled_runs_item_delivered_late_is_cancelled_not_run():
    run = new_run(InstanceFactory())
    Run.objects.filter(pk=run.pk).update(cancel_requested=True)
    item = execute(run.items.get())
    assert item.status == ItemStatus.CANCELLED
    assert handlers.CALLS == []
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED


# --- Retry of failed items --------------------------------------------------------------


def test_failed_items_run_again_in_a_new_manual_run(fake_handlers, user_with_role):
    good, bad, worse = (InstanceFactory(name=n) for n in ("good", "bad", "worse"))
    fake_handlers["bad"] = raising(Unreachable("down"))
    fake_handlers["worse"] = raising(Unreachable("down"))
    run = execute_all(new_run(good, bad, worse, trigger=Run.Trigger.SCHEDULED))
    user = user_with_role("DBAs")

    again = services.run_retry_failed(run=run, requested_by=user)
    assert again.trigger == Run.Trigger.MANUAL
    assert again.kind == run.kind
    assert again.requested_by == user
    assert again.summary == {"retry_of": run.pk}
    assert set(again.items.values_list("instance__name", flat=True)) == {"bad", "worse"}

    narrowed = services.run_retry_failed(run=run, requested_by=user, instance_ids=[bad.pk])
    assert list(narrowed.items.values_list("instance_id", flat=True)) == [bad.pk]
    assert services.run_retry_failed(run=run, instance_ids=[good.pk]) is None


# --- Locks ------------------------------------------------------------------------------


def hold_lock(*, kind, instance, since=None, expires_in=timedelta(hours=1)) -> RunItem:
    since = since or timezone.now()
    holder = RunItemFactory(run=RunFactory(kind=kind), instance=instance)
    WorkLock.objects.create(
        kind=kind,
        instance=instance,
        holder=holder,
        acquired_at=since,
        expires_at=since + expires_in,
    )
    return holder


def test_work_already_running_on_the_instance_is_skipped_with_a_reason():
    instance = InstanceFactory(name="db-eu-1")
    holder = hold_lock(kind="accounts", instance=instance)
    run = new_run(instance)
    item = execute(run.items.get())
    assert item.status == ItemStatus.SKIPPED
    assert item.skip_reason.startswith(
        f"accounts sync of db-eu-1 already running in run #{holder.run_id} since "
    )
    assert handlers.CALLS == []
    assert WorkLock.objects.get().holder_id == holder.pk, "the holder keeps its lock"
    run.refresh_from_db()
    # Nothing was done: a run whose every item was skipped is no success.
    assert run.status == RunStatus.FAILED
    assert run.error == "every item was skipped (1 of 1; each item says why)"
    assert run.items_skipped == 1


def test_other_kinds_of_work_on_the_same_instance_are_not_blocked():
    instance = InstanceFactory()
    hold_lock(kind="capacity", instance=instance)
    item = execute(new_run(instance, kind=Run.Kind.ACCOUNTS).items.get())
    assert item.status == ItemStatus.SUCCEEDED


def test_an_expired_lock_is_taken_over():
    instance = InstanceFactory()
    long_ago = timezone.now() - timedelta(hours=3)
    hold_lock(kind="accounts", instance=instance, since=long_ago, expires_in=timedelta(hours=1))
    item = execute(new_run(instance).items.get())
    assert item.status == ItemStatus.SUCCEEDED
    assert not WorkLock.objects.exists()


def test_a_lock_is_released_only_by_its_holder():
    instance = InstanceFactory()
    holder = hold_lock(kind="accounts", instance=instance)
    services.work_lock_release(kind="accounts", instance_id=instance.pk, item_id=holder.pk + 1)
    assert WorkLock.objects.filter(holder=holder).exists()
    services.work_lock_release(kind="accounts", instance_id=instance.pk, item_id=holder.pk)
    assert not WorkLock.objects.exists()


def test_the_lock_outlives_the_task_time_limit(settings):
    settings.CELERY_TASK_TIME_LIMIT = 600
    item = RunItemFactory()
    now = timezone.now()
    assert services.work_lock_acquire(
        kind="accounts", instance_id=item.instance_id, item_id=item.pk, now=now
    )
    lock = WorkLock.objects.get()
    assert lock.expires_at == now + timedelta(seconds=600) + services.LOCK_MARGIN


# --- Reaper -----------------------------------------------------------------------------


def test_the_reaper_fails_items_whose_worker_stopped_responding(settings):
    settings.WHALEFALL_ITEM_HEARTBEAT_TIMEOUT = 180
    stale_instance, fresh_instance, done_instance = InstanceFactory.create_batch(3)
    run = new_run(stale_instance, fresh_instance, done_instance)
    items = {item.instance_id: item for item in run.items.all()}
    now = timezone.now()
    execute(items[done_instance.pk])
    for instance, age in ((stale_instance, 4), (fresh_instance, 2)):
        item = items[instance.pk]
        RunItem.objects.filter(pk=item.pk).transition(
            ItemStatus.RUNNING,
            started_at=now - timedelta(minutes=age),
            heartbeat_at=now - timedelta(minutes=age),
        )
        WorkLock.objects.create(
            kind="accounts",
            instance=instance,
            holder=item,
            acquired_at=now - timedelta(minutes=age),
            expires_at=now + timedelta(minutes=5),
        )

    assert services.runs_reap(now=now) == 1
    stale = RunItem.objects.get(pk=items[stale_instance.pk].pk)
    assert stale.status == ItemStatus.FAILED
    assert stale.error == "worker stopped responding (no heartbeat for 180 seconds)"
    assert stale.duration == timedelta(minutes=4)
    assert RunItem.objects.get(pk=items[fresh_instance.pk].pk).status == ItemStatus.RUNNING
    assert list(WorkLock.objects.values_list("holder_id", flat=True)) == [
        items[fresh_instance.pk].pk
    ]
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
    assert (run.items_succeeded, run.items_failed) == (1, 1)

    # The last running item finishes normally: the run closes as partially failed.
    WorkLock.objects.all().delete()
    RunItem.objects.filter(pk=items[fresh_instance.pk].pk).transition(ItemStatus.PENDING)
    execute(items[fresh_instance.pk])
    run.refresh_from_db()
    assert run.status == RunStatus.PARTIALLY_FAILED
    assert services.runs_reap(now=now) == 0


def test_the_reaper_fails_runs_no_worker_started(settings):
    settings.WHALEFALL_RUN_QUEUED_MAX_MINUTES = 360
    instances = InstanceFactory.create_batch(2)
    old = new_run(*instances)
    Run.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=7))
    recent = new_run(*instances)

    assert services.runs_reap() == 2
    old.refresh_from_db()
    assert old.status == RunStatus.FAILED
    assert old.error == "no worker started the run within 360 minutes"
    assert old.items_failed == 2
    assert Run.objects.get(pk=recent.pk).status == RunStatus.QUEUED


def test_the_reaper_closes_runs_whose_items_all_finished():
    run = new_run(InstanceFactory())
    RunItem.objects.filter(run=run).update(status=ItemStatus.SUCCEEDED, finished_at=timezone.now())
    services.runs_reap()
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.items_succeeded == 1


# --- Retention --------------------------------------------------------------------------


def test_purge_deletes_old_finished_runs_in_batches():
    now = timezone.now()
    instance = InstanceFactory()
    old = [
        RunFactory(
            status=RunStatus.SUCCEEDED, finished_at=now, created_at=now - timedelta(days=200)
        )
        for _ in range(5)
    ]
    for run in old:
        RunItemFactory.create_batch(3, run=run, status=ItemStatus.SUCCEEDED, finished_at=now)
    still_running = RunFactory(status=RunStatus.RUNNING, created_at=now - timedelta(days=200))
    recent = RunFactory(
        status=RunStatus.FAILED, finished_at=now, created_at=now - timedelta(days=10)
    )
    RunItemFactory(run=recent, instance=instance, status=ItemStatus.FAILED, finished_at=now)

    with CaptureQueriesContext(connection) as captured:
        assert services.runs_purge(older_than_days=180, batch_size=2, now=now) == 5
    run_deletes = [q for q in captured if q["sql"].startswith('DELETE FROM "syncjobs_run"')]
    assert len(run_deletes) == 3
    assert set(Run.objects.values_list("pk", flat=True)) == {still_running.pk, recent.pk}
    assert RunItem.objects.filter(run=recent).count() == 1
    assert not RunItem.objects.filter(run__in=[r.pk for r in old]).exists()


def test_purge_defaults_to_the_retention_setting(settings):
    settings.WHALEFALL_RUN_RETENTION_DAYS = 30
    now = timezone.now()
    RunFactory(status=RunStatus.SUCCEEDED, finished_at=now, created_at=now - timedelta(days=31))
    kept = RunFactory(
        status=RunStatus.SUCCEEDED, finished_at=now, created_at=now - timedelta(days=29)
    )
    assert services.runs_purge() == 1
    assert list(Run.objects.values_list("pk", flat=True)) == [kept.pk]


# --- Taking over, giving up, heartbeats and lost messages --------------------------------


def test_a_retry_of_the_same_task_takes_over_the_item_its_attempt_left_running():
    instance = InstanceFactory()
    run = new_run(instance)
    item = run.items.get()
    # The first attempt started the item, then the database went away before it could
    # hand the item back or release the lock.
    RunItem.objects.filter(pk=item.pk).transition(
        ItemStatus.RUNNING, heartbeat_at=timezone.now(), attempts=1, task_id="t-1"
    )
    WorkLock.objects.create(
        kind="accounts",
        instance=instance,
        holder=item,
        acquired_at=timezone.now(),
        expires_at=timezone.now() + timedelta(minutes=5),
    )

    # Another delivery of the same attempt, and another task, leave it alone.
    assert execute(item, task_id="t-1", retries=0).status == ItemStatus.RUNNING
    assert execute(item, task_id="t-2", retries=1).status == ItemStatus.RUNNING
    assert handlers.CALLS == []

    item = execute(item, task_id="t-1", retries=1)
    assert (item.status, item.attempts, item.task_retries) == (ItemStatus.SUCCEEDED, 2, 1)
    assert len(handlers.CALLS) == 1
    assert not WorkLock.objects.exists()
    assert Run.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED


def test_giving_up_fails_the_item_with_the_true_reason_and_frees_the_instance():
    instance = InstanceFactory()
    run = new_run(instance)
    item = run.items.get()
    RunItem.objects.filter(pk=item.pk).transition(
        ItemStatus.RUNNING, started_at=timezone.now(), heartbeat_at=timezone.now()
    )
    WorkLock.objects.create(
        kind="accounts",
        instance=instance,
        holder=item,
        acquired_at=timezone.now(),
        expires_at=timezone.now() + timedelta(minutes=5),
    )
    error = OperationalError("server closed the connection unexpectedly")
    assert services.run_item_give_up(item_id=item.pk, error=error)
    item.refresh_from_db()
    assert item.status == ItemStatus.FAILED
    assert item.error == "OperationalError: server closed the connection unexpectedly"
    assert not WorkLock.objects.exists()
    assert Run.objects.get(pk=run.pk).status == RunStatus.FAILED
    assert not services.run_item_give_up(item_id=item.pk, error=error)


def test_the_last_attempt_writes_its_failure_through_a_short_outage(monkeypatch):
    monkeypatch.setattr(services, "FINAL_WRITE_DELAY", 0)
    writes = []

    def write():
        writes.append(1)
        if len(writes) < 3:
            raise OperationalError("the database system is starting up")
        return "written"

    assert services._write_through_outage(write) == "written"
    assert len(writes) == 3

    with pytest.raises(OperationalError):
        services._write_through_outage(mock.Mock(side_effect=OperationalError("down")))


def test_the_reaper_fails_pending_items_whose_message_never_reached_a_worker(settings):
    settings.WHALEFALL_PENDING_ITEM_TIMEOUT = 300
    lost_instance, due_instance, done_instance = InstanceFactory.create_batch(3)
    run = new_run(lost_instance, due_instance, done_instance)
    items = {item.instance_id: item for item in run.items.all()}
    execute(items[done_instance.pk])
    now = timezone.now()
    RunItem.objects.filter(pk=items[lost_instance.pk].pk).update(queued_at=now)
    # A retry due in six minutes is not lost before it is due.
    RunItem.objects.filter(pk=items[due_instance.pk].pk).update(
        queued_at=now + timedelta(minutes=6)
    )

    # The workers just worked on an item: the message may still be on its way.
    assert services.runs_reap(now=now + timedelta(seconds=299)) == 0
    later = now + timedelta(seconds=301)
    RunItem.objects.filter(pk=items[done_instance.pk].pk).update(heartbeat_at=later)
    assert services.runs_reap(now=later) == 0

    assert services.runs_reap(now=now + timedelta(seconds=610)) == 1
    lost = RunItem.objects.get(pk=items[lost_instance.pk].pk)
    assert lost.status == ItemStatus.FAILED
    assert lost.error.startswith("its task message never reached a worker")
    assert RunItem.objects.get(pk=items[due_instance.pk].pk).status == ItemStatus.PENDING
    assert services.runs_reap(now=now + timedelta(seconds=700)) == 1
    run.refresh_from_db()
    assert run.status == RunStatus.PARTIALLY_FAILED
    assert (run.items_succeeded, run.items_failed) == (1, 2)


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_running_item_writes_heartbeats_while_it_works(settings, fake_handlers):
    settings.WHALEFALL_ITEM_HEARTBEAT_INTERVAL = 0.1
    instance = InstanceFactory()
    item = new_run(instance).items.get()
    seen = []

    def slow(**_kwargs):
        first = RunItem.objects.get(pk=item.pk).heartbeat_at
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.1)
            if RunItem.objects.get(pk=item.pk).heartbeat_at > first:
                seen.append(True)
                break
        return handlers.DEFAULT_OUTCOME

    fake_handlers[instance.name] = slow
    assert execute(item).status == ItemStatus.SUCCEEDED
    assert seen == [True]


def test_a_large_run_is_sent_in_chunks_whose_tasks_send_the_items(
    monkeypatch, django_capture_on_commit_callbacks, unsent_items
):
    monkeypatch.setattr(services, "ENQUEUE_CHUNK", 2)
    instances = InstanceFactory.create_batch(5)
    with (
        mock.patch.object(tasks.run_items_send, "apply_async") as chunks_sent,
        django_capture_on_commit_callbacks(execute=True),
    ):
        run = new_run(*instances)
    items = [[item.pk, item.instance_id] for item in run.items.order_by("instance_id")]
    chunks = [call.kwargs["kwargs"] for call in chunks_sent.call_args_list]
    assert chunks == [
        {"run_id": run.pk, "kind": run.kind, "items": items[0:2]},
        {"run_id": run.pk, "kind": run.kind, "items": items[2:4]},
        {"run_id": run.pk, "kind": run.kind, "items": items[4:5]},
    ]
    unsent_items.assert_not_called()  # the creator sent only the chunks
    for chunk in chunks:
        tasks.run_items_send(**chunk)  # as a worker runs it
    sent = [call.kwargs["kwargs"] for call in unsent_items.call_args_list]
    assert sent == [
        {"item_id": pk, "run_id": run.pk, "instance_id": instance_id, "kind": run.kind}
        for pk, instance_id in items
    ]


def test_when_a_chunk_is_refused_its_items_and_the_later_ones_fail(
    monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(services, "ENQUEUE_CHUNK", 2)
    instances = InstanceFactory.create_batch(5)
    refused = ConnectionError("broker down")
    with (
        mock.patch.object(
            tasks.run_items_send, "apply_async", side_effect=[None, refused]
        ) as chunks_sent,
        django_capture_on_commit_callbacks(execute=True),
    ):
        run = new_run(*instances)
    assert chunks_sent.call_count == 2, "the refusal stops the sending"
    items = list(run.items.order_by("instance_id"))
    statuses = [RunItem.objects.get(pk=item.pk).status for item in items]
    assert statuses == [ItemStatus.PENDING] * 2 + [ItemStatus.FAILED] * 3

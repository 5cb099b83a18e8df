"""The tasks: names, retry decisions and the runs they start, executed in-process with
``Task.apply()`` (no broker, no eager mode)."""

from unittest import mock

import pytest
from django.db import OperationalError
from guardian.shortcuts import assign_perm

from inventory.engines.base import InsufficientPrivileges, Timeout, Unreachable
from syncjobs import services, tasks
from syncjobs.models import ItemStatus, Run, RunItem, RunStatus
from tests.inventory.factories import InstanceFactory
from tests.syncjobs import handlers
from tests.syncjobs.handlers import raising

pytestmark = pytest.mark.django_db


def pending_item(name: str = "db-1") -> RunItem:
    run = services.run_create(
        kind=Run.Kind.ACCOUNTS,
        trigger=Run.Trigger.MANUAL,
        instance_ids=[InstanceFactory(name=name).pk],
    )
    return run.items.get()


def apply_item(item: RunItem):
    return tasks.run_item.apply(
        kwargs={"item_id": item.pk, "run_id": item.run_id, "instance_id": item.instance_id}
    )


def failing_then_succeeding(failures: int, exc: Exception):
    calls = {"n": 0}

    def behaviour(**_kwargs):
        calls["n"] += 1
        if calls["n"] <= failures:
            raise exc
        return handlers.DEFAULT_OUTCOME

    return behaviour


def test_task_names_are_stable(settings):
    assert {
        tasks.sync_accounts_all.name,
        tasks.sync_accounts_instance.name,
        tasks.run_item.name,
        tasks.reap_runs.name,
        tasks.purge_runs.name,
    } == {
        "syncjobs.sync_accounts_all",
        "syncjobs.sync_accounts_instance",
        "syncjobs.run_item",
        "syncjobs.reap_runs",
        "syncjobs.purge_runs",
    }
    assert tasks.run_item.acks_late
    assert tasks.run_item.time_limit == settings.CELERY_TASK_TIME_LIMIT
    assert tasks.run_item.soft_time_limit == settings.CELERY_TASK_SOFT_TIME_LIMIT


@pytest.mark.parametrize("exc", [Unreachable("refused"), Timeout("timed out")])
def test_transient_failures_are_retried_until_the_item_succeeds(fake_handlers, exc):
    item = pending_item()
    fake_handlers["db-1"] = failing_then_succeeding(2, exc)
    result = apply_item(item)
    assert result.successful()
    item.refresh_from_db()
    assert item.status == ItemStatus.SUCCEEDED
    assert item.attempts == 3
    assert item.error == ""
    assert Run.objects.get(pk=item.run_id).status == RunStatus.SUCCEEDED


def test_retries_are_bounded_then_the_item_fails(fake_handlers, settings):
    item = pending_item()
    fake_handlers["db-1"] = raising(Unreachable("connection refused"))
    apply_item(item)
    item.refresh_from_db()
    assert item.status == ItemStatus.FAILED
    assert item.attempts == tasks.run_item.max_retries + 1
    assert item.error == "connection refused"
    assert len(handlers.CALLS) == settings.WHALEFALL_RUN_ITEM_RETRIES + 1


def test_non_transient_failures_are_not_retried(fake_handlers):
    item = pending_item()
    fake_handlers["db-1"] = raising(InsufficientPrivileges("cannot read mysql.user"))
    apply_item(item)
    item.refresh_from_db()
    assert item.status == ItemStatus.FAILED
    assert item.attempts == 1
    assert len(handlers.CALLS) == 1


def test_a_lost_database_connection_is_retried():
    item = pending_item()
    real = services.run_item_execute
    calls = []

    def flaky(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(**kwargs)

    with mock.patch.object(services, "run_item_execute", side_effect=flaky):
        apply_item(item)
    assert [c["may_retry"] for c in calls] == [True, True]
    item.refresh_from_db()
    assert item.status == ItemStatus.SUCCEEDED


def test_the_last_attempt_may_not_retry():
    item = pending_item()
    with mock.patch.object(
        services, "run_item_execute", side_effect=OperationalError("gone")
    ) as execute:
        result = apply_item(item)
    assert [c.kwargs["may_retry"] for c in execute.call_args_list] == [True, True, True, False]
    assert result.failed()


def test_retry_delay_doubles_up_to_a_cap(settings):
    settings.WHALEFALL_RUN_RETRY_DELAY = 30
    assert [tasks.retry_delay(n) for n in range(7)] == [30, 60, 120, 240, 480, 900, 900]


def test_sync_accounts_all_is_a_scheduled_run_of_every_syncable_instance():
    instances = InstanceFactory.create_batch(2)
    InstanceFactory(is_active=False)
    tasks.sync_accounts_all.apply(task_id="beat-1")
    run = Run.objects.get()
    assert (run.kind, run.trigger, run.task_id) == ("accounts", "scheduled", "beat-1")
    assert set(run.items.values_list("instance_id", flat=True)) == {i.pk for i in instances}

    tasks.sync_accounts_all.apply(task_id="beat-1")  # redelivered
    assert Run.objects.count() == 1


def test_sync_accounts_all_for_a_user_includes_only_what_they_may_sync(user_with_role):
    mine, _other = InstanceFactory.create_batch(2)
    user = user_with_role("DBAs (scoped)")
    assign_perm("inventory.view_instance", user, mine)
    assign_perm("inventory.sync", user, mine)
    tasks.sync_accounts_all.apply(kwargs={"user_id": user.pk})
    run = Run.objects.get()
    assert (run.trigger, run.requested_by) == ("manual", user)
    assert list(run.items.values_list("instance_id", flat=True)) == [mine.pk]


def test_sync_accounts_instance_is_a_manual_run_of_the_given_instances():
    one, _two = InstanceFactory.create_batch(2)
    tasks.sync_accounts_instance.apply(kwargs={"instance_ids": [one.pk]})
    run = Run.objects.get()
    assert run.trigger == "manual"
    assert list(run.items.values_list("instance_id", flat=True)) == [one.pk]


def test_housekeeping_tasks_call_their_services():
    with mock.patch.object(services, "runs_reap") as reap:
        tasks.reap_runs.apply()
    reap.assert_called_once_with()
    with mock.patch.object(services, "runs_purge") as purge:
        tasks.purge_runs.apply(kwargs={"older_than_days": 7})
    purge.assert_called_once_with(older_than_days=7)

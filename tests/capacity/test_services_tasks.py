"""The capacity tasks and their default schedule: names, the runs and work they start."""

from datetime import date, timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from capacity.models import DatabaseSizeAggregate, InstanceSizeAggregate
from syncjobs import tasks
from syncjobs.models import Run, RunKind, RunTrigger
from syncjobs.services import run_cancel, runs_health, runs_reap, schedule_install_defaults
from tests.capacity.factories import DatabaseSizeSampleFactory
from tests.inventory.factories import InstanceFactory

pytestmark = pytest.mark.django_db


def test_task_names_are_stable():
    assert {
        tasks.collect_capacity_all.name,
        tasks.collect_capacity_instances.name,
        tasks.aggregate_capacity.name,
        tasks.maintain_partitions.name,
    } == {
        "syncjobs.collect_capacity_all",
        "syncjobs.collect_capacity_instances",
        "syncjobs.aggregate_capacity",
        "syncjobs.maintain_partitions",
    }
    assert all(
        task.acks_late
        for task in (
            tasks.collect_capacity_all,
            tasks.aggregate_capacity,
            tasks.maintain_partitions,
        )
    )


def test_the_schedule_collects_aggregates_and_maintains_partitions():
    schedule_install_defaults()
    daily = {
        task.task: (task.crontab.hour, task.crontab.minute, str(task.crontab.timezone))
        for task in PeriodicTask.objects.filter(crontab__isnull=False).select_related("crontab")
    }
    assert daily["syncjobs.maintain_partitions"] == ("0", "30", settings.TIME_ZONE)
    assert daily["syncjobs.collect_capacity_all"] == ("3", "0", settings.TIME_ZONE)
    assert daily["syncjobs.aggregate_capacity"] == ("4", "0", settings.TIME_ZONE)


def test_collect_all_starts_a_scheduled_run_over_the_syncable_instances(
    django_capture_on_commit_callbacks,
):
    active = InstanceFactory()
    InstanceFactory(is_active=False)
    InstanceFactory(retired_at=timezone.now())

    with django_capture_on_commit_callbacks() as callbacks:
        tasks.collect_capacity_all.apply()

    run = Run.objects.get()
    assert (run.kind, run.trigger) == (RunKind.CAPACITY, RunTrigger.SCHEDULED)
    assert list(run.items.values_list("instance_id", flat=True)) == [active.pk]
    assert len(callbacks) == 1, "its items are queued once the run is committed"


def test_collect_instances_starts_a_manual_run_of_what_the_user_may_sync(admin_user):
    wanted, _other = InstanceFactory(), InstanceFactory()

    tasks.collect_capacity_instances.apply(
        kwargs={"instance_ids": [wanted.pk], "user_id": admin_user.pk}
    )

    run = Run.objects.get()
    assert (run.kind, run.trigger, run.requested_by) == (
        RunKind.CAPACITY,
        RunTrigger.MANUAL,
        admin_user,
    )
    assert list(run.items.values_list("instance_id", flat=True)) == [wanted.pk]


def test_aggregate_computes_the_last_complete_or_the_current_periods():
    sample = DatabaseSizeSampleFactory(day=date(2024, 5, 15))
    DatabaseSizeSampleFactory(database=sample.database, day=date(2024, 5, 8))

    tasks.aggregate_capacity.apply(kwargs={"day": "2024-05-15"})
    assert set(DatabaseSizeAggregate.objects.values_list("period_type", flat=True)) == {"week"}

    tasks.aggregate_capacity.apply(kwargs={"current": True, "day": "2024-05-15"})
    assert set(DatabaseSizeAggregate.objects.values_list("period_type", flat=True)) == {
        "week",
        "month",
        "quarter",
    }
    assert not InstanceSizeAggregate.objects.exists()


def test_aggregation_is_recorded_as_a_run(admin_user):
    sample = DatabaseSizeSampleFactory(day=date(2024, 5, 15))
    tasks.aggregate_capacity.apply(kwargs={"day": "2024-05-22"}, task_id="agg-1")
    tasks.aggregate_capacity.apply(
        kwargs={"current": True, "day": "2024-05-22", "user_id": admin_user.pk}
    )
    scheduled, manual = Run.objects.filter(kind=RunKind.AGGREGATION).order_by("pk")
    assert (scheduled.trigger, scheduled.status) == (RunTrigger.SCHEDULED, "succeeded")
    assert scheduled.task_id == "agg-1"
    assert scheduled.summary["week"] == {
        "period": "week", "start": "2024-05-13", "end": "2024-05-19",
        "previous_start": "2024-05-06", "previous_end": "2024-05-12",
        "databases": 1, "instances": 0, "databases_removed": 0, "instances_removed": 0,
    }  # fmt: skip
    assert scheduled.started_at <= scheduled.finished_at
    assert (manual.trigger, manual.status) == (RunTrigger.MANUAL, "succeeded")
    assert manual.requested_by == admin_user
    assert manual.summary["quarter"]["databases"] == 1
    assert runs_health()["last_succeeded"]["aggregation"]["id"] == manual.pk
    assert sample.database.size_aggregates.count() == 3


def test_a_failed_aggregation_is_a_failed_run_and_the_error_is_raised(monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tasks, "aggregates_compute_all", broken)
    result = tasks.aggregate_capacity.apply(task_id="agg-2")
    assert isinstance(result.result, RuntimeError)
    run = Run.objects.get(task_id="agg-2")
    assert (run.status, run.error) == ("failed", "RuntimeError: disk full")
    assert run.finished_at is not None
    # Delivered again (acks_late), the same task runs again under its run.
    monkeypatch.undo()
    tasks.aggregate_capacity.apply(task_id="agg-2")
    run.refresh_from_db()
    assert (run.status, run.error) == ("succeeded", "")
    assert Run.objects.filter(kind=RunKind.AGGREGATION).count() == 1


def test_maintain_partitions_runs_the_maintenance(monkeypatch):
    calls = []
    outcome = {"created": ["capacity_databasesizesample_2024_06"], "dropped": [], "deleted_rows": 0}
    monkeypatch.setattr(tasks, "partitions_maintain", lambda: calls.append(1) or outcome)
    tasks.maintain_partitions.apply()
    assert calls == [1]
    run = Run.objects.get(kind=RunKind.MAINTENANCE)
    assert (run.status, run.summary) == ("succeeded", {"partitions": outcome})


def test_the_reaper_fails_a_job_whose_worker_died_and_leaves_a_live_one():
    now = timezone.now()
    stale = now - timedelta(minutes=settings.WHALEFALL_RUN_STALE_MINUTES + 1)
    job = {"kind": RunKind.AGGREGATION, "trigger": RunTrigger.SCHEDULED, "status": "running"}
    dead = Run.objects.create(**job, started_at=stale)
    live = Run.objects.create(**job, started_at=now)
    runs_reap(now=now)
    dead.refresh_from_db()
    live.refresh_from_db()
    assert dead.status == "failed"
    assert "stopped responding" in dead.error
    assert live.status == "running"
    assert live.finished_at is None


def test_a_job_run_cannot_be_cancelled_halfway(admin_user):
    live = Run.objects.create(
        kind=RunKind.AGGREGATION, trigger=RunTrigger.MANUAL, status="running",
        started_at=timezone.now(),
    )  # fmt: skip
    assert run_cancel(run=live, requested_by=admin_user) == 0
    live.refresh_from_db()
    assert (live.status, live.cancel_requested) == ("running", False)

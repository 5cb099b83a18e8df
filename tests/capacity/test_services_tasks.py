"""The capacity tasks and their default schedule: names, the runs and work they start."""

from datetime import date

import pytest
from django.conf import settings
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from capacity.models import DatabaseSizeAggregate, InstanceSizeAggregate
from syncjobs import tasks
from syncjobs.models import Run, RunKind, RunTrigger
from syncjobs.services import schedule_install_defaults
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


def test_maintain_partitions_runs_the_maintenance(monkeypatch):
    calls = []
    monkeypatch.setattr(tasks, "partitions_maintain", lambda: calls.append(1))
    tasks.maintain_partitions.apply()
    assert calls == [1]

"""Metrics of runs: counted where runs and items finish, and read at scrape time."""

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from inventory.engines.base import Unreachable
from syncjobs import services
from syncjobs.metrics import runs_metrics
from syncjobs.models import ItemStatus, Run, RunItem, RunKind, RunStatus
from tests.inventory.factories import InstanceFactory
from tests.syncjobs.factories import RunFactory
from tests.syncjobs.handlers import raising

pytestmark = pytest.mark.django_db

COUNTERS = {
    "runs": "whalefall_runs_finished_total",
    "items": "whalefall_run_items_finished_total",
    "durations": "whalefall_run_item_duration_seconds_count",
}


class Counts:
    """Counter values now, to compare with later ones (the registry lives for the run)."""

    def __init__(self) -> None:
        self.before = self._all()

    @staticmethod
    def _all() -> dict[tuple, float]:
        found = {}
        for family in REGISTRY.collect():
            for sample in family.samples:
                if sample.name in COUNTERS.values():
                    found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return found

    def delta(self, what: str, **labels) -> float:
        key = (COUNTERS[what], tuple(sorted(labels.items())))
        return self._all().get(key, 0.0) - self.before.get(key, 0.0)


def new_run(*instances, kind=RunKind.ACCOUNTS) -> Run:
    return services.run_create(
        kind=kind, trigger=Run.Trigger.MANUAL, instance_ids=[i.pk for i in instances]
    )


def execute_all(run: Run) -> Run:
    for item in run.items.order_by("pk"):
        services.run_item_execute(item_id=item.pk)
    run.refresh_from_db()
    return run


def test_a_finished_run_counts_itself_its_items_and_their_durations(fake_handlers):
    good = InstanceFactory(name="good", engine="mysql")
    bad = InstanceFactory(name="bad", engine="postgresql")
    fake_handlers["bad"] = raising(Unreachable("connection refused"))
    counts = Counts()

    run = execute_all(new_run(good, bad, kind=RunKind.CAPACITY))

    assert run.status == RunStatus.PARTIALLY_FAILED
    assert counts.delta("runs", kind="capacity", status="partially_failed") == 1
    assert counts.delta("items", kind="capacity", status="succeeded") == 1
    assert counts.delta("items", kind="capacity", status="failed") == 1
    assert counts.delta("durations", kind="capacity", engine="mysql") == 1
    assert counts.delta("durations", kind="capacity", engine="postgresql") == 1
    assert counts.delta("runs", kind="accounts", status="partially_failed") == 0

    # Running an item again, or closing the run again, counts nothing more.
    services.run_item_execute(item_id=run.items.first().pk)
    services.run_finalise(run_id=run.pk)
    assert counts.delta("runs", kind="capacity", status="partially_failed") == 1
    assert counts.delta("items", kind="capacity", status="succeeded") == 1


def test_skipped_and_cancelled_items_are_counted(fake_handlers):
    inactive = InstanceFactory(name="off")
    running = InstanceFactory(name="on")
    counts = Counts()
    run = new_run(inactive, running)
    inactive.is_active = False
    inactive.save()
    services.run_item_execute(item_id=run.items.get(instance=inactive).pk)
    services.run_cancel(run=run)

    assert counts.delta("items", kind="accounts", status="skipped") == 1
    assert counts.delta("items", kind="accounts", status="cancelled") == 1
    assert counts.delta("runs", kind="accounts", status="cancelled") == 1


def test_items_the_reaper_fails_are_counted_per_kind():
    now = timezone.now()
    counts = Counts()
    for kind in (RunKind.ACCOUNTS, RunKind.CAPACITY, RunKind.CAPACITY):
        run = RunFactory(kind=kind, status=RunStatus.RUNNING, items_total=1)
        RunItem.objects.create(
            run=run,
            instance=InstanceFactory(),
            status=ItemStatus.RUNNING,
            started_at=now - timedelta(hours=1),
            heartbeat_at=now - timedelta(hours=1),
        )
    services.runs_reap(now=now)
    assert counts.delta("items", kind="accounts", status="failed") == 1
    assert counts.delta("items", kind="capacity", status="failed") == 2
    assert counts.delta("runs", kind="capacity", status="failed") == 2


def test_a_job_run_counts_its_outcome():
    counts = Counts()
    with services.job_run(kind=RunKind.AGGREGATION) as summary:
        summary["done"] = True
    with pytest.raises(RuntimeError), services.job_run(kind=RunKind.MAINTENANCE):
        raise RuntimeError("disk full")
    assert counts.delta("runs", kind="aggregation", status="succeeded") == 1
    assert counts.delta("runs", kind="maintenance", status="failed") == 1


def test_the_scrape_reads_last_success_active_runs_and_the_oldest_running_one():
    now = timezone.now()
    RunFactory(
        kind=RunKind.ACCOUNTS, status=RunStatus.SUCCEEDED, finished_at=now - timedelta(hours=3)
    )
    latest = RunFactory(
        kind=RunKind.ACCOUNTS, status=RunStatus.SUCCEEDED, finished_at=now - timedelta(hours=1)
    )
    RunFactory(kind=RunKind.CAPACITY, status=RunStatus.FAILED, finished_at=now)
    RunFactory(kind=RunKind.CAPACITY, status=RunStatus.QUEUED)
    RunFactory(kind=RunKind.CAPACITY, status=RunStatus.RUNNING, started_at=now - timedelta(hours=2))
    RunFactory(kind=RunKind.CAPACITY, status=RunStatus.RUNNING, started_at=now - timedelta(hours=1))

    families = {family.name: family for family in runs_metrics()}

    def samples(name):
        return {tuple(s.labels.values()): s.value for s in families[name].samples}

    assert samples("whalefall_run_last_success_timestamp_seconds") == {
        ("accounts",): pytest.approx(latest.finished_at.timestamp())
    }
    active = samples("whalefall_runs_active")
    assert active[("capacity", "queued")] == 1
    assert active[("capacity", "running")] == 2
    assert active[("accounts", "running")] == 0
    assert len(active) == len(RunKind.values) * 2
    oldest = samples("whalefall_run_oldest_running_age_seconds")
    assert set(oldest) == {("capacity",)}
    assert 7190 < oldest[("capacity",)] < 7300

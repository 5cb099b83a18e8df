"""A real worker and a real beat, over the local Redis, against the test database."""

import time
import uuid
from pathlib import Path

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from tests import workers
from whalefall.celery import app as celery_app
from whalefall.models import Heartbeat
from whalefall.tasks import BEAT_HEARTBEAT

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queue():
    """A queue of this test's own, so no stale message from elsewhere is consumed."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    yield name
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_delete(name)


def wait_for_heartbeat(timeout: float, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Heartbeat.objects.filter(name=BEAT_HEARTBEAT).exists():
            return
        time.sleep(0.5)
    pytest.fail("no heartbeat arrived:\n" + "\n".join(p.read_text()[-3000:] for p in logs))


def test_beat_database_scheduler_loads_periodic_tasks_from_the_database():
    interval = IntervalSchedule.objects.create(every=7, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="probe", task="whalefall.beat_heartbeat", interval=interval)
    schedule = DatabaseScheduler(app=celery_app, lazy=True).all_as_schedule()
    assert schedule["probe"].task == "whalefall.beat_heartbeat"
    assert schedule["probe"].schedule.run_every.total_seconds() == 7


def test_worker_runs_a_task_and_beat_schedules_one(queue, tmp_path):
    worker_log, beat_log = tmp_path / "worker.log", tmp_path / "beat.log"
    process_env = workers.process_env()
    worker = workers.start_celery(
        [
            "-A",
            "whalefall",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            "1",
            "--queues",
            queue,
            "--without-gossip",
            "--without-mingle",
        ],
        process_env,
        worker_log,
    )
    beat = None
    try:
        # 1. A task sent from here is run by the real worker.
        celery_app.send_task("whalefall.beat_heartbeat", queue=queue)
        wait_for_heartbeat(60, [worker_log])
        Heartbeat.objects.all().delete()

        # 2. Beat reads a periodic task from the database and sends it to the worker.
        every_second = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.create(
            name="e2e heartbeat",
            task="whalefall.beat_heartbeat",
            interval=every_second,
            queue=queue,
        )
        beat = workers.start_celery(
            ["-A", "whalefall", "beat", "--loglevel", "INFO", "--max-interval", "1"],
            process_env,
            beat_log,
        )
        wait_for_heartbeat(60, [worker_log, beat_log])
        assert "Sending due task e2e heartbeat" in beat_log.read_text()
    finally:
        if beat is not None:
            workers.stop(beat)
        workers.stop(worker)

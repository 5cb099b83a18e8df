"""A real worker process executes a run: fan-out, locks, outcomes and the run's close."""

import time
import uuid
from pathlib import Path

import pytest

from syncjobs.models import RUN_TERMINAL, ItemStatus, Run, RunStatus, WorkLock
from tests import workers
from tests.inventory.factories import InstanceFactory
from whalefall.celery import app as celery_app

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queue():
    """A queue of this test's own, so no stale message from elsewhere is consumed."""
    name = f"e2e-runs-{uuid.uuid4().hex[:8]}"
    yield name
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_delete(name)


@pytest.fixture
def worker(queue, tmp_path):
    """A worker on the test database, consuming the private queue, with stand-in handlers."""
    with workers.worker("tests.syncjobs.worker_app", queue, tmp_path / "worker.log") as log:
        yield log


def wait_for_finished_run(timeout: float, log: Path) -> Run:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = Run.objects.filter(status__in=RUN_TERMINAL).first()
        if run is not None:
            return run
        time.sleep(0.3)
    pytest.fail("the run did not finish:\n" + log.read_text()[-4000:])


def test_a_worker_runs_a_scheduled_account_sync_over_two_instances(worker, queue):
    instances = InstanceFactory.create_batch(2)
    InstanceFactory(is_active=False)

    celery_app.send_task("syncjobs.sync_accounts_all", queue=queue)
    run = wait_for_finished_run(60, worker)

    assert (run.kind, run.trigger, run.status) == ("accounts", "scheduled", RunStatus.SUCCEEDED)
    assert (run.items_total, run.items_succeeded, run.items_failed) == (2, 2, 0)
    assert (run.created_count, run.changed_count, run.removed_count, run.unchanged_count) == (
        4,
        2,
        0,
        10,
    )
    assert run.started_at <= run.finished_at
    items = list(run.items.all())
    assert {item.instance_id for item in items} == {i.pk for i in instances}
    assert {(item.status, item.attempts) for item in items} == {(ItemStatus.SUCCEEDED, 1)}
    assert not WorkLock.objects.exists()
    assert Run.objects.count() == 1

"""A real worker counts the run it executes into the shared metrics directory, and a
scrape of that directory shows it: the web and the workers report together."""

import os
import time
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from syncjobs.models import RUN_TERMINAL, Run, RunStatus
from tests import workers
from tests.inventory.factories import InstanceFactory
from whalefall import metrics
from whalefall.celery import app as celery_app
from whalefall.metrics import exposition

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queue():
    name = f"e2e-metrics-{uuid.uuid4().hex[:8]}"
    yield name
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_delete(name)


def samples(directory) -> dict[tuple, float]:
    found = {}
    for family in text_string_to_metric_families(exposition(path=str(directory)).decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_a_workers_counts_reach_the_scrape_through_the_shared_directory(queue, tmp_path):
    directory = tmp_path / "metrics"
    directory.mkdir()
    InstanceFactory.create_batch(2, engine="mysql")
    with workers.worker(
        "tests.syncjobs.worker_app",
        queue,
        tmp_path / "worker.log",
        PROMETHEUS_MULTIPROC_DIR=str(directory),
    ) as log:
        celery_app.send_task("syncjobs.sync_accounts_all", queue=queue)
        deadline = time.monotonic() + 60
        while not Run.objects.filter(status__in=RUN_TERMINAL).exists():
            if time.monotonic() > deadline:
                pytest.fail("the run did not finish:\n" + log.read_text()[-4000:])
            time.sleep(0.3)
    assert Run.objects.get().status == RunStatus.SUCCEEDED

    found = samples(directory)
    run_key = ("whalefall_runs_finished_total", (("kind", "accounts"), ("status", "succeeded")))
    items_key = (
        "whalefall_run_items_finished_total",
        (("kind", "accounts"), ("status", "succeeded")),
    )
    duration_key = (
        "whalefall_run_item_duration_seconds_count",
        (("engine", "mysql"), ("kind", "accounts")),
    )
    assert found[run_key] == 1
    assert found[items_key] == 2
    assert found[duration_key] == 2
    # Written by the worker's processes under this host's name, not by this one.
    names = {path.name for path in directory.glob("*.db")}
    assert names
    assert all(f"_{metrics.HOST}-" in name for name in names)
    assert not any(name.endswith(f"-{os.getpid()}.db") for name in names)

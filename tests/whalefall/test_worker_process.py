"""What a worker process is set up with: it keeps its database session from task to task
as long as Django's rules allow (CONN_MAX_AGE) instead of the new session per task Celery's
Django fixup would open, and its garbage collector leaves what it loaded at start alone."""

import json
import time
import uuid

import pytest

from tests import workers
from whalefall.celery import app as celery_app
from whalefall.collector import YOUNGEST_THRESHOLD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TASKS = 4


def probes(tmp_path, *, pool: str = "threads", **env: str) -> list[dict]:
    """What each of ``TASKS`` tasks, run one after the other, saw of its process."""
    queue = f"e2e-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "probes"
    out.mkdir()
    log = tmp_path / "worker.log"
    process = workers.start_celery(
        ["-A", "tests.whalefall.probe_worker", "worker", "--loglevel", "INFO",
         "--pool", pool, "--concurrency", "1", "--queues", queue,
         "--without-gossip", "--without-mingle"],
        workers.process_env(WHALEFALL_PROBE_DIR=str(out), **env),
        log,
    )  # fmt: skip
    try:
        for n in range(TASKS):
            celery_app.send_task("tests.process_probe", args=[n], queue=queue)
            deadline = time.monotonic() + 60
            while not (out / f"{n:03d}.json").exists():
                if time.monotonic() > deadline:
                    pytest.fail(f"task {n} did not run:\n{log.read_text()[-3000:]}")
                time.sleep(0.1)
    finally:
        workers.stop(process)
        with celery_app.connection_for_write() as conn:
            conn.default_channel.queue_delete(queue)
    return [json.loads(p.read_text()) for p in sorted(out.iterdir())]


def test_tasks_reuse_the_workers_database_session(tmp_path):
    seen = probes(tmp_path, WHALEFALL_DB_CONN_MAX_AGE="60")
    assert len({p["pid"] for p in seen}) == 1, seen


def test_a_session_older_than_conn_max_age_is_replaced_between_tasks(tmp_path):
    seen = probes(tmp_path, WHALEFALL_DB_CONN_MAX_AGE="0")
    assert len({p["pid"] for p in seen}) == TASKS, seen


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_the_garbage_collector_leaves_what_the_worker_loaded_alone(tmp_path, pool):
    seen = probes(tmp_path, pool=pool)
    for probe in seen:
        assert probe["gc_threshold"][0] == YOUNGEST_THRESHOLD, probe
        assert probe["gc_frozen"] > 10_000, probe  # Django and the apps

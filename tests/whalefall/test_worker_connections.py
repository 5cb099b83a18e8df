"""A worker keeps its database session from task to task as long as Django's rules allow
(CONN_MAX_AGE), instead of the new session per task Celery's Django fixup would open."""

import time
import uuid

import pytest

from tests import workers
from whalefall.celery import app as celery_app

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TASKS = 4


def sessions_of_tasks(tmp_path, **env: str) -> list[int]:
    """The backend pid each of ``TASKS`` tasks ran on, one after the other on one thread."""
    queue = f"e2e-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "sessions"
    out.mkdir()
    log = tmp_path / "worker.log"
    process = workers.start_celery(
        ["-A", "tests.whalefall.connection_worker", "worker", "--loglevel", "INFO",
         "--pool", "threads", "--concurrency", "1", "--queues", queue,
         "--without-gossip", "--without-mingle"],
        workers.process_env(WHALEFALL_SESSION_DIR=str(out), **env),
        log,
    )  # fmt: skip
    try:
        for n in range(TASKS):
            celery_app.send_task("tests.session_pid", args=[n], queue=queue)
            deadline = time.monotonic() + 60
            while len(list(out.iterdir())) <= n:
                if time.monotonic() > deadline:
                    pytest.fail(f"task {n} did not run:\n{log.read_text()[-3000:]}")
                time.sleep(0.1)
    finally:
        workers.stop(process)
        with celery_app.connection_for_write() as conn:
            conn.default_channel.queue_delete(queue)
    return [int(p.name.split("-")[1]) for p in sorted(out.iterdir())]


def test_tasks_reuse_the_workers_database_session(tmp_path):
    sessions = sessions_of_tasks(tmp_path, WHALEFALL_DB_CONN_MAX_AGE="60")
    assert len(set(sessions)) == 1, sessions


def test_a_session_older_than_conn_max_age_is_replaced_between_tasks(tmp_path):
    sessions = sessions_of_tasks(tmp_path, WHALEFALL_DB_CONN_MAX_AGE="0")
    assert len(set(sessions)) == TASKS, sessions

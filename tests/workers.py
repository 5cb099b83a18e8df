"""Real Celery worker processes for end-to-end tests, on the test database."""

import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

BASE_DIR = Path(__file__).resolve().parents[1]


def process_env(**extra: str) -> dict[str, str]:
    """This process's settings for a child: the test database and the session's key."""
    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DJANGO_ENV="test",
        WHALEFALL_ENV_FILE="",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        WHALEFALL_CREDENTIAL_KEYS=",".join(settings.WHALEFALL_CREDENTIAL_KEYS),
        LOG_FORMAT="json",
        **extra,
    )
    return env


def start_celery(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """``celery <args>`` in its own session, output into ``log``."""
    return subprocess.Popen(
        [sys.executable, "-m", "celery", *args],
        cwd=BASE_DIR,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen) -> None:
    """Warm shutdown, then kill the whole session if it does not stop in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def worker(app: str, queue: str, log: Path, **env: str):
    """A worker of Celery app ``app`` consuming only ``queue``; yields the log path."""
    process = start_celery(
        ["-A", app, "worker", "--loglevel", "INFO", "--concurrency", "2", "--queues", queue,
         "--without-gossip", "--without-mingle"],
        process_env(WHALEFALL_E2E_QUEUE=queue, **env),
        log,
    )  # fmt: skip
    try:
        yield log
    finally:
        stop(process)

"""Celery app of the connection-reuse test's worker: the project's app plus one task that
records the PostgreSQL session (backend pid) it ran on, as a file in
``WHALEFALL_SESSION_DIR``. Started as ``celery -A tests.whalefall.connection_worker worker``.
"""

import os
import time
from pathlib import Path

import django

from whalefall.celery import app

django.setup()

from django.db import connection  # noqa: E402  needs the app registry

OUT = Path(os.environ.get("WHALEFALL_SESSION_DIR", "."))


@app.task(name="tests.session_pid")
def session_pid(n: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    (OUT / f"{n:03d}-{pid}-{time.time_ns()}").touch()


__all__ = ["app", "session_pid"]

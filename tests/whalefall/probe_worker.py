"""Celery app of the worker-process tests: the project's app plus one task that records what
the process it ran in looks like — its PostgreSQL session (backend pid) and its garbage
collector settings — as one JSON file per task in ``WHALEFALL_PROBE_DIR``. Started as
``celery -A tests.whalefall.probe_worker worker``.
"""

import gc
import json
import os
from pathlib import Path

import django

from whalefall.celery import app

django.setup()

from django.db import connection  # noqa: E402  needs the app registry

OUT = Path(os.environ.get("WHALEFALL_PROBE_DIR", "."))


@app.task(name="tests.process_probe")
def process_probe(n: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    state = {"pid": pid, "gc_threshold": gc.get_threshold(), "gc_frozen": gc.get_freeze_count()}
    (OUT / f"{n:03d}.json").write_text(json.dumps(state))


__all__ = ["app", "process_probe"]

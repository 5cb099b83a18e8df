"""Celery app of the run-item fault tests' worker: the project's app, with every run kind
handled by ``gated`` and the test's private queue as the default queue.

Started as ``celery -A tests.faults.run_items_worker worker``. ``gated`` tells the test it
has started (a file in ``WHALEFALL_FAULT_GATE``), waits for the test's ``go`` file (the
remote reading, which the test stretches at will), then touches the database as the write
phase does and records that it did. Production code has no switch for any of this.
"""

import os
import time
from pathlib import Path

import django

from whalefall.celery import app

django.setup()

from inventory.models import Instance  # noqa: E402  needs the app registry
from syncjobs import services  # noqa: E402
from syncjobs.models import RunKind  # noqa: E402

for kind in RunKind.values:
    services.RUN_HANDLERS[kind] = "tests.faults.run_items_worker.gated"

# Without routes, what the worker sends (the items of a run) stays on the private queue.
app.conf.update(task_default_queue=os.environ["WHALEFALL_E2E_QUEUE"], task_routes=())

GATE = Path(os.environ.get("WHALEFALL_FAULT_GATE", "."))
GATE_TIMEOUT = 60


def gated(*, instance, run_id: int) -> dict[str, int]:
    (GATE / f"started-{instance.pk}-{time.time_ns()}").touch()
    deadline = time.monotonic() + GATE_TIMEOUT
    while not (GATE / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    Instance.objects.filter(pk=instance.pk).exists()
    (GATE / f"written-{instance.pk}-{time.time_ns()}").touch()
    return {"created": 2, "changed": 1, "removed": 0, "unchanged": 5}


__all__ = ["app", "gated"]

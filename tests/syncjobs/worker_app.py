"""Celery app of the end-to-end test's worker: the project's app with stand-in handlers.

Started as ``celery -A tests.syncjobs.worker_app worker``: every run kind goes to
``tests.syncjobs.handlers.counting`` instead of the real work, and whatever the worker
sends (the items of a run) stays on the test's private queue, ``WHALEFALL_E2E_QUEUE``.
Production code has no switch for any of this.
"""

import os

import django

from whalefall.celery import app

django.setup()

from syncjobs import services  # noqa: E402  needs the app registry
from syncjobs.models import RunKind  # noqa: E402

for kind in RunKind.values:
    services.RUN_HANDLERS[kind] = "tests.syncjobs.handlers.counting"

# Without routes, what the worker sends (the items of a run) stays on the private queue.
app.conf.update(task_default_queue=os.environ["WHALEFALL_E2E_QUEUE"], task_routes=())

__all__ = ["app"]

"""Celery app of the account sync end-to-end test: the real handlers on a private queue."""

import os

import django

from whalefall.celery import app

django.setup()
# Without routes, what the worker sends (the items of a run) stays on the private queue.
app.conf.update(task_default_queue=os.environ["WHALEFALL_E2E_QUEUE"], task_routes=())

__all__ = ["app"]

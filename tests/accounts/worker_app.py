"""Celery app of the account sync end-to-end test: the real handlers on a private queue."""

import os

import django

from whalefall.celery import app

django.setup()
app.conf.update(task_default_queue=os.environ["WHALEFALL_E2E_QUEUE"])

__all__ = ["app"]

"""Fixtures of the syncjobs tests: no test reaches the real handlers or the broker."""

from unittest import mock

import pytest

from syncjobs import services, tasks
from syncjobs.models import RunKind
from tests.syncjobs import handlers


@pytest.fixture(autouse=True)
def fake_handlers(monkeypatch):
    """Every run kind goes to ``handlers.dispatch``; returns its per-instance behaviours."""
    for kind in RunKind.values:
        monkeypatch.setitem(services.RUN_HANDLERS, kind, "tests.syncjobs.handlers.dispatch")
    monkeypatch.setattr(handlers, "BEHAVIOURS", {})
    monkeypatch.setattr(handlers, "CALLS", [])
    return handlers.BEHAVIOURS


@pytest.fixture(autouse=True)
def unsent_items():
    """Items a committed run would queue are recorded, not sent: tests execute them directly
    (the end-to-end test's worker queues its own)."""
    with mock.patch.object(tasks.run_item, "apply_async") as apply_async:
        yield apply_async

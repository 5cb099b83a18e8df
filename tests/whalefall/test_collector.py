"""The garbage collector of long-running processes (whalefall.collector); the Celery worker's
is checked on a real worker in test_worker_process."""

import gc
import weakref
from unittest import mock

import pytest

from tests.whalefall.test_metrics import load_gunicorn_config
from whalefall.collector import YOUNGEST_THRESHOLD


@pytest.fixture
def collector_restored():
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_a_web_worker_sets_its_collector_once_the_application_is_loaded(collector_restored):
    gc.unfreeze()
    load_gunicorn_config().post_worker_init(mock.Mock())
    assert gc.get_threshold()[0] == YOUNGEST_THRESHOLD
    assert gc.get_freeze_count() > 10_000  # Django and the apps, out of the collector's way


def test_cycles_are_still_collected_without_being_asked(collector_restored):
    load_gunicorn_config().post_worker_init(mock.Mock())

    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a  # only the collector can free a cycle
    ref = weakref.ref(a)
    del a, b
    for _ in range(20):  # no gc.collect(): allocations past the threshold run it
        junk = [[] for _ in range(YOUNGEST_THRESHOLD)]
    del junk
    assert ref() is None

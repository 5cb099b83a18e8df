"""A frozen database or broker cannot hang readiness: /health/ready answers within its
deadline with a 503 naming the check that timed out, and liveness touches nothing."""

import threading
import time

import pytest
from django.db import connections
from django.db.backends.postgresql.base import DatabaseWrapper
from django.utils import timezone

from tests.faults import servers
from whalefall import health
from whalefall.models import Heartbeat
from whalefall.tasks import BEAT_HEARTBEAT

pytestmark = pytest.mark.django_db(databases=["default", "events"], transaction=True)

BUDGET = 2.0  # SPEC §11: < 2 s whatever dependency hangs


@pytest.fixture
def cluster():
    with servers.postgres() as server:
        yield server


def wrapper_for(cluster) -> DatabaseWrapper:
    """A connection like the main one, to the test's own cluster."""
    settings_dict = {
        **connections["default"].settings_dict,
        "NAME": "postgres",
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": "127.0.0.1",
        "PORT": str(cluster.port),
        "CONN_HEALTH_CHECKS": False,
    }
    return DatabaseWrapper(settings_dict, alias="default")


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def wait_for_probes(timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while any(t.is_alive() for t in health._in_flight.values()):
        assert time.monotonic() < deadline, "a readiness probe outlived the thaw"
        time.sleep(0.05)


def test_a_frozen_database_is_reported_as_timed_out_within_the_deadline(cluster):
    db_conn = wrapper_for(cluster)
    results, _ = timed(lambda: health.run_checks(db=db_conn))
    assert results["database"].ok, results["database"]

    cluster.freeze()
    try:
        results, elapsed = timed(lambda: health.run_checks(db=db_conn))
        assert elapsed < BUDGET
        assert results["database"].error == "timed out"
        assert {results[n].error for n in ("migrations", "beat_heartbeat")} == {"not checked"}

        # While that probe still waits, another call starts no second one.
        threads = threading.active_count()
        results, elapsed = timed(lambda: health.run_checks(db=wrapper_for(cluster)))
        assert elapsed < BUDGET
        assert results["database"].error == "timed out"
        assert threading.active_count() <= threads + 1  # at most the broker's probe
    finally:
        cluster.thaw()
    wait_for_probes()
    results = health.run_checks(db=wrapper_for(cluster))
    assert results["database"].ok


def test_a_database_frozen_before_connecting_is_timed_out_too(cluster):
    wait_for_probes()
    cluster.freeze()
    try:
        results, elapsed = timed(lambda: health.run_checks(db=wrapper_for(cluster)))
    finally:
        cluster.thaw()
    assert elapsed < BUDGET
    assert results["database"].error == "timed out"
    wait_for_probes()


def test_a_frozen_broker_gives_a_503_naming_it_within_the_deadline(client, redis):
    Heartbeat.objects.create(name=BEAT_HEARTBEAT, beat_at=timezone.now())
    wait_for_probes()
    assert client.get("/health/ready").status_code == 200

    redis.freeze()
    response, elapsed = timed(lambda: client.get("/health/ready"))
    assert elapsed < BUDGET
    assert response.status_code == 503
    assert response.json()["failing"] == ["broker"]

    live, elapsed = timed(lambda: client.get("/health/live"))
    assert live.status_code == 200
    assert elapsed < 0.05
    redis.thaw()
    wait_for_probes()
    assert client.get("/health/ready").status_code == 200


def test_readiness_is_fast_when_everything_answers(client):
    Heartbeat.objects.create(name=BEAT_HEARTBEAT, beat_at=timezone.now())
    wait_for_probes()
    client.get("/health/ready")
    timings = []
    for _ in range(10):
        response, elapsed = timed(lambda: client.get("/health/ready"))
        assert response.status_code == 200
        timings.append(elapsed)
    assert sorted(timings)[len(timings) // 2] < 0.05

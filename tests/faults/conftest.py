"""Fixtures of the fault tests: WhaleFall's cache and broker pointed at a Redis of the test's
own, which the test stops or freezes."""

import kombu.pools
import pytest
from django.test import override_settings

from tests.faults import servers
from whalefall.celery import app as celery_app


def _reset_broker_pools() -> None:
    """Forget every pooled broker connection, so the next send connects to the broker the
    settings name now (Celery and kombu keep no public way to switch brokers)."""
    kombu.pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def redis():
    """A redis-server of this test, serving as WhaleFall's cache and broker."""
    with servers.redis() as server:
        caches = {
            "default": {
                "BACKEND": "whalefall.cache.DegradingRedisCache",
                "LOCATION": f"{server.url}/0",
                "KEY_PREFIX": "whalefall",
                "OPTIONS": {"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
            }
        }
        previous = celery_app.conf.broker_url
        _reset_broker_pools()
        celery_app.conf.broker_url = f"{server.url}/0"
        try:
            with override_settings(CACHES=caches, CELERY_BROKER_URL=f"{server.url}/0"):
                yield server
        finally:
            if server.frozen:
                server.thaw()
            _reset_broker_pools()
            celery_app.conf.broker_url = previous

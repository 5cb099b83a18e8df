"""Anonymous traffic cannot grow the database (issue 12, item 7): what failed logins, bad
hosts and failing readiness probes make WhaleFall store is bounded per window."""

import time

import pytest
import structlog
from django.contrib.auth import signals as auth_signals
from django.test import RequestFactory, override_settings

from whalefall import events, health
from whalefall.health import CheckResult
from whalefall.models import EventLogEntry, LoginEvent
from whalefall.security import client_ip

pytestmark = [
    pytest.mark.django_db(databases=["default", "events"], transaction=True),
    pytest.mark.usefixtures("_generous_login_limits"),
]

log = structlog.get_logger("whalefall.tests")
PER_WINDOW = 50


@pytest.fixture(autouse=True)
def _not_paused(monkeypatch):
    monkeypatch.setattr(events, "_paused_until", 0.0)


@pytest.fixture
def _generous_login_limits():
    with override_settings(
        WHALEFALL_LOGIN_RATE_IP="100000/h",
        WHALEFALL_LOGIN_RATE_USERNAME="100000/h",
        WHALEFALL_ANONYMOUS_EVENTS_PER_WINDOW=PER_WINDOW,
        WHALEFALL_ANONYMOUS_EVENTS_WINDOW=300,
    ):
        yield


def anonymous_request(i: int):
    """A login POST from one of many addresses, as the request middleware sees it."""
    ip = f"198.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"
    request = RequestFactory().post(
        "/admin/login/", {"username": f"guess{i}", "password": "x"}, REMOTE_ADDR=ip
    )
    request.request_id = f"req-{i}"
    return request


def as_anonymous_request(request, work):
    structlog.contextvars.bind_contextvars(
        request_id=request.request_id, client_ip=client_ip(request)
    )
    try:
        return work()
    finally:
        structlog.contextvars.clear_contextvars()


def test_ten_thousand_anonymous_failed_logins_write_a_bounded_number_of_rows():
    started = time.monotonic()
    for i in range(10_000):
        request = anonymous_request(i)
        as_anonymous_request(
            request,
            lambda request=request, i=i: auth_signals.user_login_failed.send(
                sender=__name__, credentials={"username": f"guess{i}"}, request=request
            ),
        )
    assert time.monotonic() - started < 120
    # Every address and name is new: only the per-window budget of each kind holds.
    assert LoginEvent.objects.count() <= PER_WINDOW
    assert EventLogEntry.objects.count() <= PER_WINDOW
    assert LoginEvent.objects.filter(kind="failed").count() > 0


def test_thousands_of_failing_readiness_probes_write_a_bounded_number_of_rows(monkeypatch):
    monkeypatch.setattr(
        health, "run_checks", lambda: {"broker": CheckResult(ok=False, error="broker down")}
    )
    for i in range(2_000):
        request = RequestFactory().get("/health/ready", REMOTE_ADDR=f"10.{i // 256}.{i % 256}.1")
        request.request_id = f"probe-{i}"
        response = as_anonymous_request(request, lambda r=request: health.ready(r))
        assert response.status_code == 503
    assert EventLogEntry.objects.filter(event="readiness_failed").count() <= PER_WINDOW


def test_one_address_repeating_itself_is_stored_once_per_window(client, monkeypatch):
    monkeypatch.setattr(
        health, "run_checks", lambda: {"broker": CheckResult(ok=False, error="broker down")}
    )
    for _ in range(30):
        client.post("/admin/login/", {"username": "root", "password": "x"}, REMOTE_ADDR="6.6.6.6")
        client.get("/health/ready", REMOTE_ADDR="6.6.6.6")
        client.get("/admin/", HTTP_HOST="evil.example", REMOTE_ADDR="6.6.6.6")
    # A person who mistypes is recorded each time, up to ten; the log once per kind.
    assert LoginEvent.objects.filter(kind="failed").count() == 10
    for event in ("login_failed", "readiness_failed"):
        assert EventLogEntry.objects.filter(event=event).count() == 1, event
    assert EventLogEntry.objects.filter(logger="django.security.DisallowedHost").count() == 1


def test_rate_limited_attempts_are_stored_once_per_address_and_name(client):
    with override_settings(WHALEFALL_LOGIN_RATE_USERNAME="1/h"):
        for _ in range(20):
            client.post(
                "/admin/login/", {"username": "root", "password": "x"}, REMOTE_ADDR="6.6.6.7"
            )
    assert LoginEvent.objects.filter(kind="rate_limited").count() == 1


def test_the_next_stored_entry_says_how_many_were_left_out(monkeypatch):
    now = [1_000_000.0]
    monkeypatch.setattr(events.time, "time", lambda: now[0])
    for i in range(5):
        structlog.contextvars.bind_contextvars(request_id=f"r{i}", client_ip="6.6.6.6")
        log.warning("probe_refused")
        structlog.contextvars.clear_contextvars()
    now[0] += 301  # the next window
    structlog.contextvars.bind_contextvars(request_id="r-next", client_ip="6.6.6.6")
    log.warning("probe_refused")
    structlog.contextvars.clear_contextvars()
    entries = list(EventLogEntry.objects.filter(event="probe_refused").order_by("pk"))
    assert len(entries) == 2
    assert entries[1].context["suppressed"] == 4


def test_signed_in_users_tasks_and_commands_are_stored_in_full():
    for i in range(5):
        structlog.contextvars.bind_contextvars(request_id=f"r{i}", user_id=1, client_ip="10.0.0.1")
        log.warning("staff_did_something")
        structlog.contextvars.clear_contextvars()
    for i in range(5):
        structlog.contextvars.bind_contextvars(task_id=f"t{i}")
        log.warning("task_did_something")
        structlog.contextvars.clear_contextvars()
    assert EventLogEntry.objects.filter(event="staff_did_something").count() == 5
    assert EventLogEntry.objects.filter(event="task_did_something").count() == 5


def test_a_cache_that_cannot_count_stores_nothing_anonymous(monkeypatch):
    def broken(*_args, **_kwargs):
        raise ConnectionError("cache gone")

    monkeypatch.setattr(events.cache, "add", broken)
    structlog.contextvars.bind_contextvars(request_id="r", client_ip="6.6.6.6")
    try:
        log.error("anonymous_boom")  # must not raise
    finally:
        structlog.contextvars.clear_contextvars()
    assert not EventLogEntry.objects.filter(event="anonymous_boom").exists()

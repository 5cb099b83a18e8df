"""Readiness in the normal start-up state (beat has not run its first heartbeat yet) is
reported as not ready without filling the event log with errors.

The probes come from a signed-in user: what anonymous probes log is stored at most once per
window (tests/whalefall/test_anonymous_events.py), which earlier tests may have used up."""

import pytest

from whalefall import events, health
from whalefall.health import CheckResult
from whalefall.models import EventLogEntry

pytestmark = pytest.mark.django_db(databases=["default", "events"], transaction=True)


def checks(**failing: str) -> dict[str, CheckResult]:
    results = {
        name: CheckResult(ok=True)
        for name in ("database", "migrations", "broker", "beat_heartbeat")
    }
    results.update({name: CheckResult(ok=False, error=error) for name, error in failing.items()})
    return results


def test_no_heartbeat_yet_after_start_is_not_an_error_event(client, admin_user, monkeypatch):
    client.force_login(admin_user)
    monkeypatch.setattr(
        health, "run_checks", lambda: checks(beat_heartbeat="no heartbeat recorded yet")
    )

    response = client.get("/health/ready")

    assert response.status_code == 503
    assert response.json()["failing"] == ["beat_heartbeat"]
    assert list(EventLogEntry.objects.values_list("level", "event")) == []


def test_a_failing_dependency_is_a_warning_not_an_error(client, admin_user, monkeypatch):
    # An earlier test whose warning could not be stored may have paused the event log.
    monkeypatch.setattr(events, "_paused_until", 0.0)
    client.force_login(admin_user)
    monkeypatch.setattr(health, "run_checks", lambda: checks(broker="broker unreachable"))

    response = client.get("/health/ready")

    assert response.status_code == 503
    entries = list(EventLogEntry.objects.values_list("level", "event"))
    assert entries == [("warning", "readiness_failed")]

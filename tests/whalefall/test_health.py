"""Health endpoints (SPEC §10)."""

from datetime import timedelta
from unittest import mock

import pytest
from django.db import OperationalError, connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from kombu import Connection

from whalefall import health
from whalefall.celery import app as celery_app
from whalefall.models import Heartbeat
from whalefall.tasks import BEAT_HEARTBEAT


@pytest.fixture
def fresh_heartbeat(db):
    return Heartbeat.objects.create(name=BEAT_HEARTBEAT, beat_at=timezone.now())


def test_live_answers_without_touching_dependencies(client):
    # No database fixture: any query here would raise.
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


def test_ready_is_200_when_everything_is_up(client, fresh_heartbeat):
    response = client.get("/health/ready")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert body["failing"] == []
    assert set(body["checks"]) == {"database", "migrations", "broker", "beat_heartbeat"}


def test_ready_ignores_the_host_header(client, fresh_heartbeat):
    """Probes by IP work whatever ALLOWED_HOSTS says."""
    response = client.get("/health/ready", HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200


def test_ready_is_503_when_the_database_is_unreachable(client, fresh_heartbeat):
    with mock.patch.object(connection, "cursor", side_effect=OperationalError("no route")):
        response = client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert "database" in body["failing"]
    assert body["checks"]["database"] == {"ok": False, "error": "database unreachable"}
    assert "no route" not in response.content.decode()


def test_ready_is_503_when_the_broker_is_unreachable(client, fresh_heartbeat, monkeypatch):
    monkeypatch.setattr(
        celery_app, "connection_for_write", lambda: Connection("redis://127.0.0.1:1/0")
    )
    response = client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["broker"]
    assert body["checks"]["broker"] == {"ok": False, "error": "broker unreachable"}
    assert "127.0.0.1:1" not in response.content.decode()


def test_ready_is_503_when_the_heartbeat_is_stale(client, db, settings):
    Heartbeat.objects.create(
        name=BEAT_HEARTBEAT,
        beat_at=timezone.now() - timedelta(seconds=settings.WHALEFALL_HEARTBEAT_MAX_AGE + 5),
    )
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["failing"] == ["beat_heartbeat"]
    assert response.json()["checks"]["beat_heartbeat"]["error"] == "heartbeat stale"


def test_ready_is_503_before_the_first_heartbeat(client, db):
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["beat_heartbeat"]["error"] == "no heartbeat recorded yet"


def test_ready_is_503_with_pending_migrations(client, fresh_heartbeat, monkeypatch):
    monkeypatch.setattr(health, "_migrations_applied", False)
    with mock.patch.object(MigrationExecutor, "migration_plan", return_value=[("m", False)]):
        response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["failing"] == ["migrations"]


def test_detailed_refuses_anonymous_users(client, db):
    response = client.get("/health/detailed")
    assert response.status_code == 403


def test_detailed_refuses_non_staff_users(client, user_with_role):
    client.force_login(user_with_role(None, is_staff=False))
    assert client.get("/health/detailed").status_code == 403


def test_detailed_reports_latency_of_every_check(client, user_with_role, fresh_heartbeat):
    client.force_login(user_with_role("Viewers"))
    response = client.get("/health/detailed")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert set(checks) == {"database", "migrations", "broker", "beat_heartbeat"}
    assert all(isinstance(check["latency_ms"], float) for check in checks.values())
    assert checks["beat_heartbeat"]["detail"]["age_seconds"] < 60
    assert "queue_depth" in checks["broker"]["detail"]


def test_detailed_includes_registered_sections(client, admin_user, fresh_heartbeat, monkeypatch):
    monkeypatch.setitem(health._DETAIL_PROVIDERS, "example", lambda: {"answer": 42})
    monkeypatch.setitem(health._DETAIL_PROVIDERS, "broken", lambda: 1 / 0)
    client.force_login(admin_user)
    body = client.get("/health/detailed").json()
    assert body["example"] == {"answer": 42}
    assert body["broken"] == {"error": "ZeroDivisionError"}

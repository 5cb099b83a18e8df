"""The ``runs`` section of /health/detailed (SPEC §10)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from syncjobs.models import Run, RunStatus
from syncjobs.services import runs_health
from tests.syncjobs.factories import RunFactory

pytestmark = pytest.mark.django_db


def test_runs_section_reports_last_success_oldest_running_and_queued():
    now = timezone.now()
    RunFactory(kind="accounts", status=RunStatus.SUCCEEDED, finished_at=now - timedelta(days=1))
    latest = RunFactory(kind="accounts", status=RunStatus.SUCCEEDED, finished_at=now)
    RunFactory(kind="capacity", status=RunStatus.FAILED, finished_at=now)
    oldest = RunFactory(
        kind="capacity", status=RunStatus.RUNNING, started_at=now - timedelta(hours=2)
    )
    RunFactory(kind="accounts", status=RunStatus.RUNNING, started_at=now - timedelta(minutes=5))
    RunFactory.create_batch(2, status=RunStatus.QUEUED)

    section = runs_health()
    assert section["last_succeeded"]["accounts"] == {
        "id": latest.pk,
        "finished_at": latest.finished_at.isoformat(),
    }
    assert section["last_succeeded"]["capacity"] is None
    assert set(section["last_succeeded"]) == set(Run.Kind.values)
    running = section["oldest_running"]
    assert (running["id"], running["kind"]) == (oldest.pk, "capacity")
    assert running["started_at"] == oldest.started_at.isoformat()
    assert 7190 < running["age_seconds"] < 7300
    assert section["queued"] == 2


def test_runs_section_when_nothing_ran_yet():
    assert runs_health() == {
        "last_succeeded": dict.fromkeys(Run.Kind.values),
        "oldest_running": None,
        "queued": 0,
    }


def test_detailed_health_includes_the_runs_section(client, admin_user):
    latest = RunFactory(status=RunStatus.SUCCEEDED, finished_at=timezone.now())
    client.force_login(admin_user)
    body = client.get("/health/detailed").json()
    assert body["runs"]["last_succeeded"]["accounts"]["id"] == latest.pk
    assert body["runs"]["queued"] == 0

"""/health/detailed and the dashboard's health panel as staff limited to some instances see
them: no figures about the whole estate's work (issue 12, item 3)."""

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm

from syncjobs.models import RunStatus
from tests.inventory.factories import InstanceFactory
from tests.syncjobs.factories import RunFactory, RunItemFactory
from whalefall import health
from whalefall.health import CheckResult

pytestmark = pytest.mark.django_db


@pytest.fixture
def busy_estate(monkeypatch):
    """Runs on a hidden instance, and a broker that reports a queue depth."""
    hidden = InstanceFactory(name="hidden-db")
    done = RunFactory(status=RunStatus.SUCCEEDED, finished_at=timezone.now())
    RunItemFactory(run=done, instance=hidden)
    running = RunFactory(status=RunStatus.RUNNING, started_at=timezone.now())
    RunItemFactory(run=running, instance=hidden)
    monkeypatch.setitem(
        health.READINESS_CHECKS,
        "broker",
        lambda: CheckResult(ok=True, detail={"queue_depth": 4321}),
    )
    return {"done": done, "running": running}


@pytest.fixture
def scoped_dba(user_with_role):
    user = user_with_role("DBAs (scoped)")
    assign_perm("inventory.view_instance", user, InstanceFactory(name="own-db"))
    return user


def test_staff_limited_to_some_instances_get_no_estate_wide_figures(
    client, busy_estate, scoped_dba
):
    client.force_login(scoped_dba)
    response = client.get("/health/detailed")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "checked_at", "checks"}
    assert "queue_depth" not in body["checks"]["broker"]["detail"]
    text = response.content.decode()
    assert "4321" not in text
    for run in busy_estate.values():
        assert f'"id": {run.pk}' not in text
    assert body["checks"]["broker"]["ok"] is True


@pytest.mark.parametrize("role", ["Administrators", "DBAs", "Auditors"])
def test_staff_who_see_every_instance_get_the_whole_report(
    client, busy_estate, user_with_role, role
):
    client.force_login(user_with_role(role))
    body = client.get("/health/detailed").json()
    assert body["checks"]["broker"]["detail"]["queue_depth"] == 4321
    assert body["runs"]["oldest_running"]["id"] == busy_estate["running"].pk
    assert body["runs"]["last_succeeded"]["accounts"]["id"] == busy_estate["done"].pk


def test_staff_without_any_instance_get_the_reduced_report(client, busy_estate, user_with_role):
    client.force_login(user_with_role("Schedulers"))
    body = client.get("/health/detailed").json()
    assert "runs" not in body
    assert "queue_depth" not in body["checks"]["broker"]["detail"]


def test_the_dashboard_panel_hides_the_queue_depth_from_limited_staff(
    client, busy_estate, scoped_dba, admin_user
):
    client.force_login(scoped_dba)
    assert "4321" not in client.get("/admin/").content.decode()
    client.force_login(admin_user)
    assert "4321 queued" in client.get("/admin/").content.decode()

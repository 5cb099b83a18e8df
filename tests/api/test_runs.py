"""API v1 runs and run items: RunAdmin's scope and figures, cancel and run-again with the
admin's permissions, and the manual runs over chosen instances, queued once committed."""

from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from guardian.shortcuts import assign_perm

from syncjobs import services, tasks
from syncjobs.models import ItemStatus, Run, RunItem, RunStatus
from tests.inventory.factories import InstanceFactory
from tests.syncjobs.factories import RunFactory, RunItemFactory

pytestmark = pytest.mark.django_db

SCOPED_PERMS = ("view_instance", "sync")


@pytest.fixture(autouse=True)
def unsent_items():
    """Items a committed run would queue are recorded, not sent to a broker."""
    with mock.patch.object(tasks.run_item, "apply_async") as apply_async:
        yield apply_async


def _finished(status, **fields):
    return {"status": status, "finished_at": timezone.now(), **fields}


@pytest.fixture
def estate(roles, scoped_user):
    """Instance A (a scoped DBA's) and B (hidden from them); a finished run over both with
    A's item failed, a run over B alone, and an active run over A alone."""
    a, b = InstanceFactory(name="a"), InstanceFactory(name="b")
    both = RunFactory(
        **_finished(
            RunStatus.PARTIALLY_FAILED,
            items_total=2,
            items_succeeded=1,
            items_failed=1,
            created_count=7,
            error="1 of 2 items failed",
            summary={"retried_items": 0, "items_with_problems": 0, "note": {"b": "hidden"}},
        ),
        started_at=timezone.now(),
    )
    item_a = RunItemFactory(run=both, instance=a, **_finished(ItemStatus.FAILED, error="boom"))
    item_b = RunItemFactory(
        run=both, instance=b, **_finished(ItemStatus.SUCCEEDED, created_count=7)
    )
    only_b = RunFactory(**_finished(RunStatus.SUCCEEDED, items_total=1, items_succeeded=1))
    RunItemFactory(run=only_b, instance=b, **_finished(ItemStatus.SUCCEEDED))
    active = RunFactory(status=RunStatus.RUNNING, items_total=1, summary={"started_by": "x"})
    RunItemFactory(run=active, instance=a)
    return {
        "a": a,
        "b": b,
        "both": both,
        "only_b": only_b,
        "active": active,
        "item_a": item_a,
        "item_b": item_b,
        "dba": scoped_user("DBAs", [a], SCOPED_PERMS),
    }


def _error(response, status):
    assert response.status_code == status, response.content
    return response.json()["error"]


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return sorted(row["id"] for row in response.json()["results"])


# --- Reading ----------------------------------------------------------------------------


def test_unscoped_readers_see_every_run_with_its_figures(estate, api_client, user_with_role):
    runs = sorted(estate[k].pk for k in ("both", "only_b", "active"))
    for role in ("Administrators", "DBAs", "Auditors", "Schedulers"):
        assert _ids(api_client(user_with_role(role)).get("/api/v1/runs/")) == runs, role
    body = api_client(user_with_role("Auditors")).get(f"/api/v1/runs/{estate['both'].pk}/").json()
    assert (body["status"], body["items_total"], body["created_count"]) == (
        "partially_failed",
        2,
        7,
    )
    assert body["summary"]["note"] == {"b": "hidden"}  # structured, not a string
    assert api_client(user_with_role("Viewers")).get("/api/v1/runs/").status_code == 403


def test_a_scoped_user_sees_its_runs_with_the_figures_of_its_items(estate, api_client):
    client = api_client(estate["dba"])
    both, active = estate["both"], estate["active"]
    assert _ids(client.get("/api/v1/runs/")) == sorted([both.pk, active.pk])
    body = client.get(f"/api/v1/runs/{both.pk}/").json()
    # Only A's item counts: it failed, so for this user the run failed.
    assert body["status"] == "failed"
    assert (body["items_total"], body["items_failed"], body["items_succeeded"]) == (1, 1, 0)
    assert body["created_count"] == 0
    assert body["error"] == "1 of 1 items failed"
    assert body["items_url"].endswith(f"/api/v1/run-items/?run={both.pk}")
    assert _error(client.get(f"/api/v1/runs/{estate['only_b'].pk}/"), 404)["code"] == "not_found"
    # The status filter uses the status as shown.
    assert _ids(client.get("/api/v1/runs/?status=partially_failed")) == []
    assert _ids(client.get("/api/v1/runs/?status=failed")) == [both.pk]


def test_run_items_are_scoped_by_instance(estate, api_client, user_with_role):
    client = api_client(estate["dba"])
    item_a, item_b = estate["item_a"], estate["item_b"]
    response = client.get(f"/api/v1/run-items/?run={estate['both'].pk}")
    assert _ids(response) == [item_a.pk]
    row = response.json()["results"][0]
    assert (row["instance"], row["instance_name"], row["status"], row["error"]) == (
        estate["a"].pk,
        "a",
        "failed",
        "boom",
    )
    assert row["run_kind"] == "accounts"
    assert client.get(f"/api/v1/run-items/{item_b.pk}/").status_code == 404
    assert _ids(client.get(f"/api/v1/run-items/?instance={estate['b'].pk}")) == []
    # Schedulers read every run but see no instance, hence no item.
    assert _ids(api_client(user_with_role("Schedulers")).get("/api/v1/run-items/")) == []
    assert len(_ids(api_client(user_with_role("Auditors")).get("/api/v1/run-items/"))) == 4
    bad = api_client(user_with_role("Auditors")).get("/api/v1/run-items/?run=99999999999999999999")
    assert bad.status_code == 400


def test_list_queries_do_not_depend_on_the_page(estate, api_client):
    for _ in range(6):
        run = RunFactory(**_finished(RunStatus.SUCCEEDED, items_total=2))
        RunItemFactory(run=run, instance=estate["a"], **_finished(ItemStatus.SUCCEEDED))
        RunItemFactory(run=run, instance=estate["b"], **_finished(ItemStatus.SUCCEEDED))
    client = api_client(estate["dba"])
    for start in ("/api/v1/runs/?limit=2", "/api/v1/run-items/?limit=2"):
        client.get(start)
        counts, url = [], start
        for _page in range(3):
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url)
            assert response.status_code == 200
            counts.append(len(queries))
            url = response.json()["next"]
        assert len(set(counts)) == 1, (start, counts)


# --- Starting runs ----------------------------------------------------------------------


def test_starting_a_run_answers_202_with_the_run_to_poll(
    estate, api_client, admin_user, django_capture_on_commit_callbacks, unsent_items
):
    client = api_client(admin_user, write=True)
    a = estate["a"]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post("/api/v1/runs/", {"kind": "accounts", "instances": [a.pk]})
    assert response.status_code == 202, response.content
    body = response.json()
    run = Run.objects.get(pk=body["id"])
    assert (run.kind, run.trigger, run.requested_by, run.items_total) == (
        "accounts",
        "manual",
        admin_user,
        1,
    )
    assert response["Location"] == body["url"]
    assert body["url"].endswith(f"/api/v1/runs/{run.pk}/")
    assert (body["status"], body["requested_by"]) == ("queued", "root")
    assert len(callbacks) == 1  # the items are queued once the run is committed
    item = RunItem.objects.get(run=run)
    unsent_items.assert_called_once_with(
        kwargs={"item_id": item.pk, "run_id": run.pk, "instance_id": a.pk, "kind": "accounts"}
    )
    assert client.get(body["url"]).json()["id"] == run.pk


@pytest.mark.parametrize("kind", ["capacity", "classification"])
def test_the_other_kinds_start_the_same_way(estate, api_client, kind):
    client = api_client(estate["dba"], write=True)
    response = client.post("/api/v1/runs/", {"kind": kind, "instances": [estate["a"].pk]})
    assert response.status_code == 202, response.content
    assert Run.objects.get(pk=response.json()["id"]).kind == kind


def test_a_scoped_user_starts_runs_only_on_instances_it_may_sync(estate, api_client, scoped_user):
    a, b = estate["a"], estate["b"]
    client = api_client(estate["dba"], write=True)
    before = Run.objects.count()
    # B does not exist for this user: the same answer as an unknown id.
    response = client.post("/api/v1/runs/", {"kind": "accounts", "instances": [a.pk, b.pk]})
    error = _error(response, 400)
    assert [(f["path"], f["code"]) for f in error["fields"]] == [("instances[1]", "does_not_exist")]
    response = client.post("/api/v1/runs/", {"kind": "accounts", "instances": [a.pk, 10**12]})
    assert _error(response, 400)["fields"][0]["path"] == "instances[1]"
    # Seen but not syncable by this user: refused as a whole.
    c = InstanceFactory(name="c")
    assign_perm("inventory.view_instance", estate["dba"], c)
    response = client.post("/api/v1/runs/", {"kind": "accounts", "instances": [a.pk, c.pk]})
    assert _error(response, 403)["code"] == "permission_denied"
    # A viewer of A cannot start anything.
    viewer = scoped_user("Viewers", [a])
    response = api_client(viewer, write=True).post(
        "/api/v1/runs/", {"kind": "accounts", "instances": [a.pk]}
    )
    assert response.status_code == 403
    assert Run.objects.count() == before


def test_start_refusals(estate, api_client, admin_user, user_with_role):
    a = estate["a"]
    data = {"kind": "accounts", "instances": [a.pk]}
    assert api_client(admin_user).post("/api/v1/runs/", data).status_code == 403  # read-only
    for role in ("Auditors", "Schedulers", "Viewers"):
        assert (
            api_client(user_with_role(role), write=True).post("/api/v1/runs/", data).status_code
            == 403
        )
    client = api_client(admin_user, write=True)
    for bad, path in [
        ({"kind": "maintenance", "instances": [a.pk]}, "kind"),
        ({"kind": "accounts", "instances": []}, "instances"),
        ({"kind": "accounts", "instances": [0]}, "instances[0]"),
        ({"kind": "accounts", "instances": [2**64]}, "instances[0]"),
    ]:
        response = client.post("/api/v1/runs/", bad)
        assert path in [f["path"] for f in _error(response, 400)["fields"]], (bad, response.json())
    response = client.post(
        "/api/v1/runs/", '{"kind": "\\ud800", "instances": [1]}', content_type="application/json"
    )
    assert _error(response, 400)["fields"][0]["path"] == "kind"
    retired = InstanceFactory(retired_at=timezone.now())
    inactive = InstanceFactory(is_active=False)
    response = client.post(
        "/api/v1/runs/", {"kind": "accounts", "instances": [a.pk, retired.pk, inactive.pk]}
    )
    fields = _error(response, 400)["fields"]
    assert [(f["path"], f["code"]) for f in fields] == [
        ("instances[1]", "not_syncable"),
        ("instances[2]", "not_syncable"),
    ]
    assert Run.objects.filter(trigger="manual").count() == 0


def test_with_the_task_queue_down_nothing_starts(estate, api_client, admin_user, monkeypatch):
    def down():
        raise services.QueueUnavailable("connection refused")

    monkeypatch.setattr(services, "queue_check", down)
    response = api_client(admin_user, write=True).post(
        "/api/v1/runs/", {"kind": "accounts", "instances": [estate["a"].pk]}
    )
    error = _error(response, 503)
    assert error["code"] == "queue_unavailable"
    assert "nothing was started" in error["message"]
    assert Run.objects.filter(trigger="manual").count() == 0


# --- Cancel and run again ---------------------------------------------------------------


def test_cancel_an_active_run(estate, api_client):
    active = estate["active"]
    response = api_client(estate["dba"], write=True).post(f"/api/v1/runs/{active.pk}/cancel/")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    active.refresh_from_db()
    assert (active.status, active.cancel_requested) == ("cancelled", True)
    assert active.summary["started_by"] == "x"
    assert active.summary["cancelled_by"] == estate["dba"].username
    response = api_client(estate["dba"], write=True).post(f"/api/v1/runs/{active.pk}/cancel/")
    assert _error(response, 409)["code"] == "conflict"


def test_cancel_needs_the_permission_and_every_instance(estate, api_client, user_with_role):
    a, b = estate["a"], estate["b"]
    wide = RunFactory(status=RunStatus.RUNNING, items_total=2)
    RunItemFactory(run=wide, instance=a)
    RunItemFactory(run=wide, instance=b)
    client = api_client(estate["dba"], write=True)
    assert _error(client.post(f"/api/v1/runs/{wide.pk}/cancel/"), 403)["code"] == (
        "permission_denied"
    )
    assert client.post(f"/api/v1/runs/{estate['only_b'].pk}/cancel/").status_code == 404
    auditor = api_client(user_with_role("Auditors"), write=True)
    assert auditor.post(f"/api/v1/runs/{estate['active'].pk}/cancel/").status_code == 403
    assert (
        api_client(estate["dba"]).post(f"/api/v1/runs/{estate['active'].pk}/cancel/").status_code
        == 403
    )
    wide.refresh_from_db()
    estate["active"].refresh_from_db()
    assert wide.status == estate["active"].status == "running"


def test_rerun_starts_a_run_over_the_failed_items_one_may_sync(estate, api_client, admin_user):
    both = estate["both"]
    # B's item failed too; the scoped DBA may sync only A (and B, which it does not see:
    # a run it could not poll is not started).
    RunItem.objects.filter(pk=estate["item_b"].pk).update(status=ItemStatus.FAILED)
    assign_perm("inventory.sync", estate["dba"], estate["b"])
    response = api_client(estate["dba"], write=True).post(f"/api/v1/runs/{both.pk}/rerun/")
    assert response.status_code == 202, response.content
    new = Run.objects.get(pk=response.json()["id"])
    assert response["Location"].endswith(f"/api/v1/runs/{new.pk}/")
    assert list(new.items.values_list("instance_id", flat=True)) == [estate["a"].pk]
    assert (new.kind, new.trigger, new.summary) == ("accounts", "manual", {"retry_of": both.pk})
    response = api_client(admin_user, write=True).post(f"/api/v1/runs/{estate['only_b'].pk}/rerun/")
    assert _error(response, 409)["code"] == "conflict"
    auditor = api_client(admin_user)
    assert auditor.post(f"/api/v1/runs/{both.pk}/rerun/").status_code == 403


def test_time_filters_take_any_iso_offset(estate, api_client, admin_user):
    client = api_client(admin_user)
    # +18:26 is ISO 8601 but no PostgreSQL time zone: compared in UTC.
    response = client.get("/api/v1/runs/?created_after=0295-09-01T08:31:44%2B18:26")
    assert len(_ids(response)) == 3
    response = client.get("/api/v1/runs/?created_before=0001-01-01T00:00:00%2B18:00")
    assert response.status_code == 400
    assert _ids(client.get("/api/v1/runs/?created_before=2000-01-01T00:00:00Z")) == []

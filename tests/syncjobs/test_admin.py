"""Run and run item admin: roles, per-instance scope, actions and query counts."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import connection
from django.test.utils import CaptureQueriesContext
from guardian.shortcuts import assign_perm

from inventory.engines.base import Unreachable
from syncjobs import services
from syncjobs.models import ItemStatus, Run, RunItem, RunStatus
from tests.inventory.factories import CredentialFactory, InstanceFactory
from tests.syncjobs.handlers import raising

pytestmark = pytest.mark.django_db

ROLES = ["Administrators", "DBAs", "Auditors", "Schedulers", "Viewers"]
READERS = {"Administrators", "DBAs", "Auditors", "Schedulers"}
# Schedulers read the run history but see no instance, hence none of its items.
ITEM_READERS = {"Administrators", "DBAs", "Auditors"}
OPERATORS = {"Administrators", "DBAs"}

PAGES = {
    "runs": "/admin/syncjobs/run/",
    "runs filtered": "/admin/syncjobs/run/?kind__exact=accounts&status__exact=partially_failed",
    "run": "/admin/syncjobs/run/{finished}/change/",
    "items": "/admin/syncjobs/runitem/",
    "items filtered": "/admin/syncjobs/runitem/?kind=accounts&status__exact=failed",
    "items of a run": "/admin/syncjobs/runitem/?run__id__exact={finished}",
}
NOBODY = {
    "add run": "/admin/syncjobs/run/add/",
    "delete run": "/admin/syncjobs/run/{finished}/delete/",
    "add item": "/admin/syncjobs/runitem/add/",
    "delete item": "/admin/syncjobs/runitem/{item}/delete/",
}


def new_run(*instances) -> Run:
    return services.run_create(
        kind=Run.Kind.ACCOUNTS,
        trigger=Run.Trigger.SCHEDULED,
        instance_ids=[i.pk for i in instances],
    )


def execute_all(run: Run) -> Run:
    for pk in run.items.order_by("pk").values_list("pk", flat=True):
        services.run_item_execute(item_id=pk)
    run.refresh_from_db()
    return run


@pytest.fixture
def objects(fake_handlers):
    """An active run on ``alpha``, and a finished one on ``alpha`` (ok) and ``beta`` (failed)."""
    alpha, beta = InstanceFactory(name="alpha"), InstanceFactory(name="beta")
    fake_handlers["beta"] = raising(Unreachable("beta is unreachable"))
    active = new_run(alpha)
    finished = execute_all(new_run(alpha, beta))
    assert finished.status == RunStatus.PARTIALLY_FAILED
    return {
        "alpha": alpha,
        "beta": beta,
        "active": active.pk,
        "finished": finished.pk,
        "item": finished.items.get(instance=alpha).pk,
        "failed_item": finished.items.get(instance=beta).pk,
    }


def urls(objects) -> dict[str, int]:
    return {k: v for k, v in objects.items() if isinstance(v, int)}


def as_role(client, user_with_role, role):
    user = user_with_role(role)
    client.force_login(user)
    return user


def post_action(client, action, pks):
    return client.post(
        "/admin/syncjobs/run/", {"action": action, ACTION_CHECKBOX_NAME: pks, "index": 0}
    )


# --- Roles ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_pages_by_role(client, user_with_role, objects, role):
    as_role(client, user_with_role, role)
    ids = urls(objects)
    for page, url in PAGES.items():
        status = client.get(url.format(**ids)).status_code
        assert status == (200 if role in READERS else 403), (page, status)
    for page, url in NOBODY.items():
        # 404 where the item is out of the user's sight: the page does not exist for them.
        assert client.get(url.format(**ids)).status_code in {403, 404}, page
    assert Run.objects.count() == 2
    assert RunItem.objects.count() == 3

    response = client.get(f"/admin/syncjobs/runitem/{objects['item']}/change/")
    expected = 200 if role in ITEM_READERS else 404 if role in READERS else 403
    assert response.status_code == expected
    if role in READERS:
        listed = client.get("/admin/syncjobs/runitem/").context["cl"].result_list
        assert bool(listed) == (role in ITEM_READERS)
        run_page = client.get(f"/admin/syncjobs/run/{objects['finished']}/change/")
        assert ("beta is unreachable" in run_page.content.decode()) == (role in ITEM_READERS)


@pytest.mark.parametrize("role", ROLES)
def test_actions_and_buttons_by_role(client, user_with_role, objects, role):
    user = as_role(client, user_with_role, role)
    allowed = role in OPERATORS
    active, finished = objects["active"], objects["finished"]
    if role in READERS:
        page = client.get(f"/admin/syncjobs/run/{active}/change/").content.decode()
        assert ("Cancel run" in page) == allowed
        page = client.get(f"/admin/syncjobs/run/{finished}/change/").content.decode()
        assert ("Run failed items again" in page) == allowed

    # Changelist actions.
    post_action(client, "cancel_runs", [active])
    run = Run.objects.get(pk=active)
    assert (run.status == RunStatus.CANCELLED) == allowed
    assert run.cancel_requested == allowed
    post_action(client, "rerun_failed_items", [finished])
    again = Run.objects.filter(summary__retry_of=finished)
    assert again.count() == (1 if allowed else 0)
    if allowed:
        assert again.get().requested_by == user
        assert list(again.get().items.values_list("instance__name", flat=True)) == ["beta"]

    # Buttons on the run page.
    other = new_run(objects["alpha"])
    expected = 302 if allowed else 403
    assert client.post(f"/admin/syncjobs/run/{other.pk}/cancel/").status_code == expected
    assert client.post(f"/admin/syncjobs/run/{finished}/rerun/").status_code == expected
    assert Run.objects.get(pk=other.pk).cancel_requested == allowed
    assert again.count() == (2 if allowed else 0)


def test_buttons_only_answer_post(client, admin_user, objects):
    client.force_login(admin_user)
    assert client.get(f"/admin/syncjobs/run/{objects['active']}/cancel/").status_code == 405
    assert client.get(f"/admin/syncjobs/run/{objects['finished']}/rerun/").status_code == 405
    assert not Run.objects.get(pk=objects["active"]).cancel_requested


def test_a_run_page_lists_its_items_with_their_errors(client, user_with_role, objects):
    as_role(client, user_with_role, "Auditors")
    page = client.get(f"/admin/syncjobs/run/{objects['finished']}/change/").content.decode()
    assert "beta is unreachable" in page
    assert page.index(">beta<") < page.index(">alpha<"), "failed items come first"


# --- Per-instance scope -----------------------------------------------------------------


@pytest.fixture
def scoped(user_with_role, objects, client):
    """A scoped DBA who may see and sync ``alpha`` only."""
    user = user_with_role("DBAs (scoped)")
    for perm in ("inventory.view_instance", "inventory.sync"):
        assign_perm(perm, user, objects["alpha"])
    client.force_login(user)
    return user


def test_a_scoped_user_sees_only_items_of_their_instances(client, scoped, objects):
    only_beta = new_run(objects["beta"])
    page = client.get("/admin/syncjobs/runitem/").content.decode()
    assert "alpha" in page
    assert ">beta<" not in page
    assert (
        client.get(f"/admin/syncjobs/runitem/{objects['failed_item']}/change/").status_code == 404
    )
    assert client.get(f"/admin/syncjobs/runitem/{objects['item']}/change/").status_code == 200

    runs = client.get("/admin/syncjobs/run/").context["cl"].result_list
    assert {run.pk for run in runs} == {objects["active"], objects["finished"]}
    assert client.get(f"/admin/syncjobs/run/{only_beta.pk}/change/").status_code == 404

    page = client.get(f"/admin/syncjobs/run/{objects['finished']}/change/").content.decode()
    assert ">alpha<" in page
    assert ">beta<" not in page
    assert "beta is unreachable" not in page


def test_a_scoped_user_cannot_cancel_runs_covering_instances_they_may_not_sync(
    client, scoped, objects
):
    shared = new_run(objects["alpha"], objects["beta"])
    post_action(client, "cancel_runs", [shared.pk, objects["active"]])
    assert Run.objects.get(pk=shared.pk).status == RunStatus.QUEUED
    assert Run.objects.get(pk=objects["active"]).status == RunStatus.CANCELLED
    assert client.post(f"/admin/syncjobs/run/{shared.pk}/cancel/").status_code == 403
    assert (
        "Cancel run" not in client.get(f"/admin/syncjobs/run/{shared.pk}/change/").content.decode()
    )


def test_a_scoped_user_reruns_only_failed_items_they_may_sync(
    client, scoped, objects, fake_handlers
):
    fake_handlers["alpha"] = raising(Unreachable("alpha is unreachable"))
    both_failed = execute_all(new_run(objects["alpha"], objects["beta"]))
    assert both_failed.status == RunStatus.FAILED
    post_action(client, "rerun_failed_items", [both_failed.pk, objects["finished"]])
    again = Run.objects.get(summary__retry_of=both_failed.pk)
    assert list(again.items.values_list("instance__name", flat=True)) == ["alpha"]
    assert not Run.objects.filter(summary__retry_of=objects["finished"]).exists()


# --- Query counts -----------------------------------------------------------------------


def queries_for(client, url: str) -> int:
    client.get(url)  # warm the per-process caches (content types, permissions)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def add_runs(count: int, user) -> None:
    instances = InstanceFactory.create_batch(2, credential=CredentialFactory())
    for instance in instances:
        assign_perm("inventory.view_instance", user, instance)
    for position in range(count):
        run = new_run(*instances)
        Run.objects.filter(pk=run.pk).update(requested_by=user)
        if position % 3 == 0:
            execute_all(run)


def add_items(run: Run, count: int) -> None:
    instances = InstanceFactory.create_batch(count, credential=CredentialFactory())
    RunItem.objects.bulk_create(
        RunItem(run=run, instance=instance, status=ItemStatus.PENDING) for instance in instances
    )


@pytest.mark.parametrize("role", ["DBAs", "DBAs (scoped)"])
@pytest.mark.parametrize("url", ["/admin/syncjobs/run/", "/admin/syncjobs/runitem/"])
def test_changelist_query_count_does_not_grow_with_rows(client, user_with_role, role, url):
    user = user_with_role(role)
    client.force_login(user)
    add_runs(3, user)
    few = queries_for(client, url)
    add_runs(20, user)
    assert queries_for(client, url) == few


def test_run_page_query_count_does_not_grow_with_items(client, admin_user):
    client.force_login(admin_user)
    run = new_run(InstanceFactory())
    url = f"/admin/syncjobs/run/{run.pk}/change/"
    add_items(run, 2)
    few = queries_for(client, url)
    add_items(run, 30)
    assert queries_for(client, url) == few


def test_jobs_for_the_whole_estate_are_listed_without_items(client, user_with_role):
    from syncjobs.models import RunKind

    with services.job_run(kind=RunKind.AGGREGATION) as summary:
        summary["week"] = {"databases": 3}
    job = Run.objects.get(kind=RunKind.AGGREGATION)
    client.force_login(user_with_role("Auditors"))
    listing = client.get("/admin/syncjobs/run/?kind__exact=aggregation").content.decode()
    assert f"/admin/syncjobs/run/{job.pk}/change/" in listing
    assert '<td class="field-progress">—</td>' in listing
    page = client.get(f"/admin/syncjobs/run/{job.pk}/change/").content.decode()
    assert "Capacity aggregation" in page
    assert '<th scope="row">Databases</th><td>3</td>' in page  # the summary as a table
    # Scoped to instances, a person sees the runs touching them, not estate-wide jobs.
    scoped = user_with_role("DBAs (scoped)")
    assign_perm("inventory.view_instance", scoped, InstanceFactory())
    client.force_login(scoped)
    assert client.get(f"/admin/syncjobs/run/{job.pk}/change/").status_code == 404

"""Run figures follow the scope: a run over instances A and B shows a person who sees only A
the figures of A's item alone (issue 12, item 3)."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import transaction
from guardian.shortcuts import assign_perm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inventory.engines.base import Unreachable
from syncjobs import services
from syncjobs.models import ItemStatus, Run, RunItem, RunStatus
from tests.inventory.factories import InstanceFactory
from tests.syncjobs.handlers import raising

pytestmark = pytest.mark.django_db


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
def estate(fake_handlers, user_with_role):
    """A finished run over ``own`` (succeeded) and four hidden instances (one failed)."""
    own = InstanceFactory(name="own-db")
    hidden = [InstanceFactory(name=f"hidden-{n}") for n in range(4)]
    fake_handlers["hidden-0"] = raising(Unreachable("hidden-0 is unreachable"))
    run = execute_all(new_run(own, *hidden))
    assert (run.status, run.items_total, run.items_failed) == (RunStatus.PARTIALLY_FAILED, 5, 1)
    assert run.error == "1 of 5 items failed"
    dba = user_with_role("DBAs (scoped)")
    assign_perm("inventory.view_instance", dba, own)
    return {"own": own, "hidden": hidden, "run": run, "dba": dba}


def test_the_run_list_shows_a_scoped_user_only_the_visible_part(client, estate):
    client.force_login(estate["dba"])
    response = client.get("/admin/syncjobs/run/")
    (run,) = response.context["cl"].result_list
    assert (run.items_total, run.items_succeeded, run.items_failed) == (1, 1, 0)
    assert run.status == RunStatus.SUCCEEDED
    content = response.content.decode()
    assert "1/1" in content
    assert "5" not in content.split("field-progress")[1].split("</td>")[0]
    badge = content.split('class="field-status_badge">')[1].split("</td>")[0]
    assert "Succeeded" in badge
    assert '<td class="field-failed_items">0</td>' in content


def test_the_run_page_shows_a_scoped_user_only_the_visible_part(client, estate):
    run = estate["run"]
    client.force_login(estate["dba"])
    response = client.get(f"/admin/syncjobs/run/{run.pk}/change/")
    shown = response.context["original"]
    assert (shown.items_total, shown.items_succeeded, shown.items_failed) == (1, 1, 0)
    assert shown.summary == {"retried_items": 0, "items_with_problems": 0}
    assert shown.error == ""
    content = response.content.decode()
    assert "1 of 5" not in content
    assert "Partially failed" not in content.split('id="content"')[1]
    assert "Run failed items again" not in content
    assert "hidden-" not in content


def test_status_filter_and_ordering_follow_the_visible_part(client, estate):
    run = estate["run"]
    client.force_login(estate["dba"])

    def listed(query):
        return [r.pk for r in client.get(f"/admin/syncjobs/run/?{query}").context["cl"].result_list]

    assert listed("status__exact=partially_failed") == []
    assert listed("status__exact=succeeded") == [run.pk]
    other = execute_all(new_run(estate["own"]))
    # Sorting by the failed column or the status reveals nothing: both runs look alike.
    for column in (4, 6):
        assert sorted(listed(f"o={column}")) == sorted([run.pk, other.pk])


def test_a_run_where_the_visible_item_failed_counts_only_that_failure(
    client, estate, fake_handlers
):
    fake_handlers["own-db"] = raising(Unreachable("own-db is unreachable"))
    run = execute_all(new_run(estate["own"], *estate["hidden"]))
    assert (run.status, run.items_failed) == (RunStatus.PARTIALLY_FAILED, 2)
    client.force_login(estate["dba"])
    shown = client.get(f"/admin/syncjobs/run/{run.pk}/change/").context["original"]
    assert (shown.status, shown.items_total, shown.items_failed) == (RunStatus.FAILED, 1, 1)
    assert shown.error == "1 of 1 items failed"


def test_the_list_does_not_refresh_for_runs_the_user_cannot_see(client, estate):
    new_run(*estate["hidden"])  # queued, hidden
    client.force_login(estate["dba"])
    assert client.get("/admin/syncjobs/run/").context["live"] is False


@pytest.mark.parametrize("role", ["Administrators", "Auditors", "Schedulers"])
def test_whole_runs_are_shown_to_those_who_read_them_whole(client, estate, user_with_role, role):
    client.force_login(user_with_role(role))
    shown = client.get(f"/admin/syncjobs/run/{estate['run'].pk}/change/").context["original"]
    assert (shown.status, shown.items_total, shown.items_failed) == (
        RunStatus.PARTIALLY_FAILED,
        5,
        1,
    )
    assert shown.error == "1 of 5 items failed"


def test_the_run_list_query_count_does_not_grow_with_rows_for_a_scoped_user(
    client, estate, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(estate["dba"])
    client.get("/admin/syncjobs/run/")
    with CaptureQueriesContext(connection) as few:
        client.get("/admin/syncjobs/run/")
    for _ in range(10):
        execute_all(new_run(estate["own"], estate["hidden"][1]))
    with CaptureQueriesContext(connection) as many:
        client.get("/admin/syncjobs/run/")
    assert len(many) == len(few)


def test_cancel_still_needs_every_instance_of_the_run(client, estate):
    run = new_run(estate["own"], estate["hidden"][0])
    assign_perm("inventory.sync", estate["dba"], estate["own"])
    client.force_login(estate["dba"])
    client.post(
        "/admin/syncjobs/run/",
        {"action": "cancel_runs", ACTION_CHECKBOX_NAME: [run.pk], "index": 0},
    )
    assert Run.objects.get(pk=run.pk).status == RunStatus.QUEUED


# The status a person who sees every item is shown is the one the run closed with: the
# database-side rule of ``seen_on`` and ``run_finalise``'s rule are the same.
ITEM_OUTCOMES = st.lists(
    st.tuples(
        st.sampled_from(
            [ItemStatus.SUCCEEDED, ItemStatus.FAILED, ItemStatus.SKIPPED, ItemStatus.CANCELLED]
        ),
        st.booleans(),  # a succeeded item reporting problems
    ),
    min_size=1,
    max_size=5,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(outcomes=ITEM_OUTCOMES, cancel=st.booleans(), seen=st.integers(min_value=1, max_value=5))
def test_the_shown_status_follows_the_closing_rule(outcomes, cancel, seen):
    with transaction.atomic():
        instances = [InstanceFactory() for _ in outcomes]
        run = Run.objects.create(kind=Run.Kind.ACCOUNTS, trigger=Run.Trigger.SCHEDULED)
        for instance, (status, problems) in zip(instances, outcomes, strict=True):
            RunItem.objects.create(
                run=run,
                instance=instance,
                status=status,
                finished_at="2026-01-01T00:00Z",
                detail={"problems": ["x"]} if problems else {},
            )
        Run.objects.filter(pk=run.pk).update(cancel_requested=cancel)
        closed = services.run_finalise(run_id=run.pk)
        whole = Run.objects.seen_on({i.pk for i in instances}).get(pk=run.pk)
        assert whole.shown_status == closed
        # Seen through some of its instances, the run shows what those items alone would.
        part = {i.pk for i in instances[:seen]}
        shown = Run.objects.seen_on(part).get(pk=run.pk)
        alone = Run.objects.create(kind=Run.Kind.ACCOUNTS, trigger=Run.Trigger.SCHEDULED)
        RunItem.objects.filter(run=run, instance_id__in=part).update(run=alone)
        Run.objects.filter(pk=alone.pk).update(cancel_requested=cancel)
        assert shown.shown_status == services.run_finalise(run_id=alone.pk)
        transaction.set_rollback(True)

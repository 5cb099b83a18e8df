"""The status a run closes with when items were skipped, for everyone and for a person who
sees only some of its instances."""

import pytest
from django.utils import timezone

from inventory.models import Instance
from syncjobs import services
from syncjobs.models import ItemStatus, Run, RunStatus
from tests.inventory.factories import InstanceFactory
from tests.syncjobs.test_services import execute_all, items_of, new_run

pytestmark = pytest.mark.django_db


def test_a_run_whose_only_item_was_skipped_failed_saying_so(fake_handlers):
    retired = InstanceFactory(name="old")
    run = new_run(retired)
    Instance.objects.filter(pk=retired.pk).update(retired_at=timezone.now())

    run = execute_all(run)

    assert items_of(run)["old"].status == ItemStatus.SKIPPED
    assert run.status == RunStatus.FAILED
    assert run.error == "every item was skipped (1 of 1; each item says why)"
    assert "old" not in run.error


def test_skipped_items_beside_work_done_leave_the_run_succeeded(fake_handlers):
    ok, retired = InstanceFactory(name="ok-1"), InstanceFactory(name="gone")
    run = new_run(ok, retired)
    Instance.objects.filter(pk=retired.pk).update(retired_at=timezone.now())

    run = execute_all(run)

    assert run.status == RunStatus.SUCCEEDED
    assert run.error == ""


def test_a_person_who_sees_only_skipped_items_sees_a_failed_run(fake_handlers):
    ok, retired = InstanceFactory(name="ok-1"), InstanceFactory(name="gone")
    run = new_run(ok, retired)
    Instance.objects.filter(pk=retired.pk).update(retired_at=timezone.now())
    execute_all(run)

    only_skipped = Run.objects.seen_on([retired.pk]).get(pk=run.pk)
    only_done = Run.objects.seen_on([ok.pk]).get(pk=run.pk)
    assert only_skipped.shown_status == RunStatus.FAILED
    assert only_done.shown_status == RunStatus.SUCCEEDED

    services.runs_show_items_on([only_skipped], instance_ids=[retired.pk])
    assert only_skipped.status == RunStatus.FAILED
    assert only_skipped.items_total == 1


def restoring(**_kwargs) -> dict[str, int]:
    return {"created": 1, "changed": 0, "removed": 0, "restored": 2, "unchanged": 3}


def test_restored_objects_are_counted_on_items_and_runs_and_shown(
    fake_handlers, client, admin_user
):
    first, second = InstanceFactory(name="back-1"), InstanceFactory(name="back-2")
    fake_handlers["back-1"] = restoring
    fake_handlers["back-2"] = restoring

    run = execute_all(new_run(first, second))

    assert [item.restored_count for item in items_of(run).values()] == [2, 2]
    assert (run.created_count, run.changed_count, run.restored_count, run.unchanged_count) == (
        2,
        0,
        4,
        6,
    )
    client.force_login(admin_user)
    page = client.get(f"/admin/syncjobs/run/{run.pk}/change/").content.decode()
    assert "Restored" in page
    items_page = client.get("/admin/syncjobs/runitem/").content.decode()
    assert "Restored" in items_page


def test_a_person_who_sees_some_instances_sees_their_restored_count(fake_handlers):
    first, second = InstanceFactory(name="back-1"), InstanceFactory(name="other")
    fake_handlers["back-1"] = restoring
    run = execute_all(new_run(first, second))

    services.runs_show_items_on([run], instance_ids=[second.pk])

    assert run.restored_count == 0

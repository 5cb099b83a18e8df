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

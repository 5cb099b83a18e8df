"""The "sync accounts now" action on instances: permissions and the run it creates."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from guardian.shortcuts import assign_perm

from syncjobs.models import Run
from tests.inventory.factories import InstanceFactory

pytestmark = pytest.mark.django_db


def sync_now(client, *instances):
    return client.post(
        "/admin/inventory/instance/",
        {
            "action": "sync_accounts_now",
            ACTION_CHECKBOX_NAME: [i.pk for i in instances],
            "index": 0,
        },
        follow=True,
    )


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("Administrators", True),
        ("DBAs", True),
        ("Auditors", False),
        ("Schedulers", False),
        ("Viewers", False),
    ],
)
def test_only_roles_that_sync_may_start_a_run(
    client, user_with_role, django_capture_on_commit_callbacks, role, allowed
):
    instance = InstanceFactory()
    client.force_login(user_with_role(role))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        sync_now(client, instance)
    assert Run.objects.exists() == allowed
    assert bool(callbacks) == allowed  # the items are queued once the run is committed
    if allowed:
        run = Run.objects.get()
        assert (run.kind, run.trigger, run.items_total) == ("accounts", "manual", 1)


def test_a_scoped_dba_syncs_only_instances_it_may_sync(client, user_with_role):
    mine, theirs = InstanceFactory(name="mine"), InstanceFactory(name="theirs")
    user = user_with_role("DBAs (scoped)")
    for perm in ("view_instance", "sync"):
        assign_perm(f"inventory.{perm}", user, mine)
    client.force_login(user)
    response = sync_now(client, mine, theirs)
    run = Run.objects.get()
    assert list(run.items.values_list("instance_id", flat=True)) == [mine.pk]
    assert f"/admin/syncjobs/run/{run.pk}/change/" in response.content.decode()


def test_retired_and_inactive_instances_are_skipped(client, admin_user):
    active = InstanceFactory()
    inactive = InstanceFactory(is_active=False)
    client.force_login(admin_user)
    response = sync_now(client, active, inactive)
    assert "1 instance skipped" in response.content.decode()
    assert list(Run.objects.get().items.values_list("instance_id", flat=True)) == [active.pk]

"""Runs as people read them (issue 16, Found → Runs): the summary as a table, the cancel flag
neutral, the run of an account change a link, the instance page linking to what hangs off
it."""

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from accounts.models import AccountChange
from syncjobs.models import ItemStatus, RunStatus
from tests.accounts.factories import make_account
from tests.capacity.factories import DatabaseFactory
from tests.factories import UserFactory
from tests.inventory.factories import InstanceFactory
from tests.syncjobs.factories import RunFactory, RunItemFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def run():
    instance = InstanceFactory(name="alpha")
    run = RunFactory(
        status=RunStatus.SUCCEEDED,
        finished_at=timezone.now(),
        summary={
            "retried_items": 2,
            "items_with_problems": 1,
            "partitions": {"created": ["capacity_sample_2026_12"], "status": "ok"},
        },
    )
    RunItemFactory(
        run=run, instance=instance, status=ItemStatus.SUCCEEDED, finished_at=timezone.now()
    )
    return run


def test_the_summary_is_a_table_not_json(client, admin_user, run):
    client.force_login(admin_user)
    page = client.get(f"/admin/syncjobs/run/{run.pk}/change/").content.decode()
    assert "&quot;retried_items&quot;" not in page
    assert '"retried_items"' not in page
    assert "Retried items" in page
    assert "Items with problems" in page
    assert "capacity_sample_2026_12" in page
    assert 'class="wf-summary"' in page


def test_cancel_requested_no_is_neutral(client, admin_user, run):
    client.force_login(admin_user)
    page = client.get(f"/admin/syncjobs/run/{run.pk}/change/").content.decode()
    assert "icon-no.svg" not in page
    assert "Cancel requested" in page


def test_the_run_of_an_account_change_is_a_link(client, admin_user, run):
    instance = run.items.get().instance
    make_account(instance, "root", host="%")
    change = AccountChange.objects.get()
    AccountChange.objects.filter(pk=change.pk).update(run_id=run.pk)
    client.force_login(admin_user)
    page = client.get(f"/admin/accounts/accountchange/{change.pk}/change/").content.decode()
    assert f'href="/admin/syncjobs/run/{run.pk}/change/"' in page


def test_the_run_stays_text_for_who_may_not_read_runs(client, run):
    instance = run.items.get().instance
    make_account(instance, "root", host="%")
    change = AccountChange.objects.get()
    AccountChange.objects.filter(pk=change.pk).update(run_id=run.pk)
    reader = UserFactory()
    reader.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_accountchange", "view_instance"])
    )
    client.force_login(reader)
    response = client.get(f"/admin/accounts/accountchange/{change.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert f"/admin/syncjobs/run/{run.pk}/change/" not in page
    assert f"#{run.pk}" in page


def test_the_instance_page_links_to_its_accounts_databases_and_runs(client, admin_user, run):
    instance = run.items.get().instance
    make_account(instance, "root", host="%")
    DatabaseFactory(instance=instance, name="shop")
    client.force_login(admin_user)
    page = client.get(f"/admin/inventory/instance/{instance.pk}/change/").content.decode()
    for url in (
        f"/admin/accounts/account/?instance={instance.pk}",
        f"/admin/capacity/database/?instance={instance.pk}",
        f"/admin/syncjobs/runitem/?instance={instance.pk}",
    ):
        assert f'href="{url}"' in page, url
        listed = client.get(url).context["cl"].result_list
        assert len(listed) == 1, url


def test_viewers_get_no_link_to_accounts_on_the_instance_page(client, user_with_role, run):
    instance = run.items.get().instance
    client.force_login(user_with_role("Viewers"))
    page = client.get(f"/admin/inventory/instance/{instance.pk}/change/").content.decode()
    assert "/admin/accounts/account/?instance=" not in page
    assert f'href="/admin/capacity/database/?instance={instance.pk}"' in page

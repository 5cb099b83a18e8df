"""Changelists cost the same number of queries whatever the page size (STYLE rule 5)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.inventory.factories import CredentialFactory, InstanceFactory, TagFactory

pytestmark = pytest.mark.django_db


def queries_for(client, url: str) -> int:
    client.get(url)  # warm the per-process caches (content types, permissions)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def add_instances(count: int) -> None:
    tags = [TagFactory(), TagFactory()]
    credential = CredentialFactory()
    for _ in range(count):
        InstanceFactory(credential=credential).tags.add(*tags)


@pytest.mark.parametrize(
    "url", ["/admin/inventory/instance/", "/admin/inventory/credential/", "/admin/inventory/tag/"]
)
def test_query_count_does_not_grow_with_rows(client, user_with_role, url):
    client.force_login(user_with_role("DBAs"))
    add_instances(3)
    few = queries_for(client, url)
    add_instances(30)
    assert queries_for(client, url) == few


def test_a_scoped_users_changelist_does_not_grow_either(client, user_with_role):
    from guardian.shortcuts import assign_perm

    from inventory.models import Instance

    user = user_with_role("DBAs (scoped)")
    client.force_login(user)

    def grant_all():
        for instance in Instance.objects.all():
            assign_perm("inventory.view_instance", user, instance)

    add_instances(3)
    grant_all()
    few = queries_for(client, "/admin/inventory/instance/")
    add_instances(30)
    grant_all()
    assert queries_for(client, "/admin/inventory/instance/") == few

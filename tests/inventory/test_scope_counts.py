"""Counts on shared objects follow the scope: a person limited to instance A learns nothing
about the others from a number (issue 12, item 3)."""

import pytest
from guardian.shortcuts import assign_perm

from tests.inventory.factories import InstanceFactory, TagFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tagged(user_with_role):
    prod = TagFactory(slug="prod", name="Prod")
    own = InstanceFactory(name="own-db", tags=[prod])
    InstanceFactory.create_batch(4, tags=[prod])
    InstanceFactory(name="lonely-db", tags=[TagFactory(slug="legacy", name="Legacy")])
    viewer = user_with_role("Viewers (scoped)")
    assign_perm("inventory.view_instance", viewer, own)
    return {"prod": prod, "viewer": viewer}


def tag_counts(client) -> dict[str, int]:
    response = client.get("/admin/inventory/tag/")
    assert response.status_code == 200
    return {tag.slug: tag._instances for tag in response.context["cl"].result_list}


def test_a_scoped_user_counts_only_the_instances_they_may_see_on_each_tag(client, tagged):
    client.force_login(tagged["viewer"])
    assert tag_counts(client) == {"prod": 1, "legacy": 0}


def test_ordering_by_the_count_follows_the_scope_too(client, tagged):
    client.force_login(tagged["viewer"])
    response = client.get("/admin/inventory/tag/?o=4")
    assert [t._instances for t in response.context["cl"].result_list] == [0, 1]


def test_whoever_sees_every_instance_counts_them_all(client, tagged, user_with_role):
    client.force_login(user_with_role("Viewers"))
    assert tag_counts(client) == {"prod": 5, "legacy": 1}

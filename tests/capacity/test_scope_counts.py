"""Capacity pages show estate-wide figures only to those who see every instance (issue 12,
item 3)."""

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm

from tests.inventory.factories import InstanceFactory

pytestmark = pytest.mark.django_db


def test_sample_partition_figures_are_for_those_who_see_every_instance(client, user_with_role):
    viewer = user_with_role("Viewers (scoped)")
    assign_perm("inventory.view_instance", viewer, InstanceFactory())
    client.force_login(viewer)
    response = client.get("/admin/capacity/instancecapacity/")
    assert response.status_code == 200
    assert response.context["partitions"] is None
    assert "Sample partitions" not in response.content.decode()
    client.force_login(user_with_role("Viewers"))
    page = client.get("/admin/capacity/instancecapacity/").content.decode()
    assert "Sample partitions" in page
    assert f"{timezone.localdate():%Y-%m}" in page

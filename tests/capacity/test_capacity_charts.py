"""Capacity charts on their pages (issue 16): the capacity limit drawn as a line, values
on hover, the growth visible; words instead of empty axes."""

import re

import pytest

from tests.capacity.factories import DatabaseFactory
from tests.capacity.test_admin import estate  # noqa: F401  the shared estate

pytestmark = pytest.mark.django_db


def test_the_database_chart_draws_its_capacity_limit(client, user_with_role, estate):  # noqa: F811
    client.force_login(user_with_role("Viewers"))
    page = client.get(f"/admin/capacity/database/{estate['shop'].pk}/change/").content.decode()
    assert 'class="wf-chart-limit"' in page
    assert "<title>capacity limit: 20.0\xa0GB</title>" in page
    # Every day's size on hover.
    assert page.count('class="wf-chart-point"') == 30
    assert "<title>Shop · " in page
    # The axis hugs the sizes (9 to 20 GB), not zero.
    labels = re.findall(r'text-anchor="end">([^<]+)</text>', page)
    assert "0\xa0bytes" not in labels


def test_a_database_without_samples_says_so(client, user_with_role, estate):  # noqa: F811
    empty = DatabaseFactory(instance=estate["a"], name="empty")
    client.force_login(user_with_role("Viewers"))
    page = client.get(f"/admin/capacity/database/{empty.pk}/change/").content.decode()
    assert '<svg class="wf-chart"' not in page
    assert "No sizes collected in the last 90 days yet." in page

"""EstimatedCountPaginator: no full COUNT(*) on big tables."""

import pytest
from django.db import connection

from whalefall import paginator as paginator_module
from whalefall.models import LoginEvent
from whalefall.paginator import EstimatedCountPaginator

pytestmark = pytest.mark.django_db


def make_events(count: int) -> None:
    LoginEvent.objects.bulk_create(
        LoginEvent(kind="failed", username=f"u{i}") for i in range(count)
    )


def test_small_tables_are_counted_exactly():
    make_events(7)
    assert EstimatedCountPaginator(LoginEvent.objects.all(), 5).count == 7


def test_filtered_counts_stop_at_the_cap(monkeypatch):
    monkeypatch.setattr(paginator_module, "CAP", 10)
    make_events(25)
    paginator = EstimatedCountPaginator(LoginEvent.objects.filter(kind="failed"), 5)
    assert paginator.count == 11
    assert paginator.num_pages == 3


def test_unfiltered_big_tables_use_the_planner_estimate(monkeypatch):
    monkeypatch.setattr(paginator_module, "CAP", 10)
    make_events(40)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE whalefall_loginevent")
    paginator = EstimatedCountPaginator(LoginEvent.objects.all(), 5)
    queries = []
    with connection.execute_wrapper(
        lambda execute, sql, *a: queries.append(sql) or execute(sql, *a)
    ):
        count = paginator.count
    assert count == 40
    assert not any("COUNT(" in sql.upper() for sql in queries)

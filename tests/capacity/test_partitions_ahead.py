"""Partitions ahead of the current month, as /metrics reports them."""

from datetime import date

import pytest
from django.db import connection

from capacity.metrics import partitions_metrics
from capacity.models import DatabaseSizeSample, InstanceSizeSample
from capacity.partitions import partition_name, partitions_ahead, partitions_maintain

pytestmark = pytest.mark.django_db

TABLES = (DatabaseSizeSample._meta.db_table, InstanceSizeSample._meta.db_table)
# Far from the months the migration created.
TODAY = date(2033, 5, 20)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="partitions exist on PostgreSQL")
def test_months_ready_ahead_are_counted_until_the_first_gap(settings):
    assert partitions_ahead(TODAY) == dict.fromkeys(TABLES, 0)

    partitions_maintain(TODAY)
    expected = settings.WHALEFALL_CAPACITY_PARTITIONS_AHEAD
    assert partitions_ahead(TODAY) == dict.fromkeys(TABLES, expected)

    with connection.cursor() as cursor:
        cursor.execute(f'DROP TABLE "{partition_name(TABLES[0], date(2033, 7, 1))}"')
    assert partitions_ahead(TODAY) == {TABLES[0]: 1, TABLES[1]: expected}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="partitions exist on PostgreSQL")
def test_the_scrape_reports_one_series_per_table():
    (family,) = partitions_metrics()
    assert family.name == "whalefall_capacity_partitions_ahead"
    assert {sample.labels["table"] for sample in family.samples} == set(TABLES)

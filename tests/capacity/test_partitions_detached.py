"""A sample table's partition that exists by name but is detached from its table.

Each test detaches a partition inside its own (rolled-back) transaction: DETACH PARTITION
without CONCURRENTLY is transactional, so nothing is left behind.
"""

from datetime import date, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from capacity.models import DatabaseSizeSample
from capacity.partitions import (
    PartitionError,
    partition_ensure,
    partition_name,
    partition_status,
    partitions_maintain,
    samples_upsert,
)
from tests.capacity.factories import DatabaseFactory
from tests.capacity.test_partitions import DB_TABLE, INSTANCE_TABLE, exists, sample

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="partitions exist on PostgreSQL only"
    ),
]

TODAY = date(2036, 3, 10)
MARCH = partition_name(DB_TABLE, TODAY)
APRIL = partition_name(DB_TABLE, date(2036, 4, 1))


def attached_to(name: str) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.inhparent::regclass::text FROM pg_inherits i "
            "WHERE i.inhrelid = to_regclass(%s)",
            [name],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def detach(name: str, table: str = DB_TABLE) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE "{table}" DETACH PARTITION "{name}"')


def insert_raw(name: str, database, day: date) -> None:
    """A row written straight into the detached table, as a stray copy would be."""
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO "{name}" (database_id, day, total_bytes, collected_at) '  # noqa: S608
            "VALUES (%s, %s, 1, now())",
            [database.pk, day],
        )


@pytest.fixture
def march():
    partitions_maintain(TODAY)
    database = DatabaseFactory()
    samples_upsert([sample(database, TODAY)])
    return database


def test_a_write_attaches_a_detached_months_partition_again_and_keeps_its_rows(march):
    detach(MARCH)
    assert exists(MARCH)
    assert attached_to(MARCH) is None

    written = samples_upsert([sample(march, TODAY + timedelta(days=1))])

    assert written == 1
    assert attached_to(MARCH) == DB_TABLE
    # The row written before the detach is visible again through the table, with the new one.
    assert DatabaseSizeSample.objects.filter(database=march).count() == 2


def test_ensure_attaches_again_and_names_what_it_repaired(march):
    detach(MARCH)
    assert partition_ensure(TODAY) == [MARCH]
    assert partition_ensure(TODAY) == []


def test_maintenance_attaches_detached_partitions_of_current_next_and_past_months(march):
    past = partition_name(INSTANCE_TABLE, date(2036, 1, 1))
    partitions_maintain(date(2036, 1, 5))
    detach(past, INSTANCE_TABLE)
    detach(MARCH)
    detach(APRIL)

    result = partitions_maintain(TODAY)

    assert MARCH not in result["created"]
    assert APRIL not in result["created"]
    assert sorted(result["reattached"]) == sorted([MARCH, APRIL, past])
    assert attached_to(MARCH) == DB_TABLE
    assert attached_to(APRIL) == DB_TABLE
    assert attached_to(past) == INSTANCE_TABLE
    assert partition_status(TODAY)["detached"] == []


def test_a_detached_partition_holding_rows_of_another_month_fails_loudly(march):
    detach(MARCH)
    insert_raw(MARCH, march, date(2036, 5, 2))

    with pytest.raises(PartitionError) as write_error:
        samples_upsert([sample(march, TODAY + timedelta(days=1))])
    message = str(write_error.value)
    assert MARCH in message
    assert DB_TABLE in message
    assert "1 rows outside 2036-03" in message
    assert "partition maintenance" in message
    assert attached_to(MARCH) is None

    with pytest.raises(PartitionError) as job_error:
        partitions_maintain(TODAY)
    assert MARCH in str(job_error.value)
    # The other tables' and months' partitions are still maintained.
    assert exists(partition_name(DB_TABLE, date(2036, 6, 1)))
    assert attached_to(partition_name(INSTANCE_TABLE, TODAY)) == INSTANCE_TABLE


def test_a_detached_table_that_no_longer_matches_its_parent_fails_naming_it(march):
    detach(MARCH)
    with connection.cursor() as cursor:
        # The fixture's deferred foreign key checks would forbid altering the table.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f'ALTER TABLE "{MARCH}" ADD COLUMN stray integer')

    with pytest.raises(PartitionError) as error:
        partition_ensure(TODAY)
    assert MARCH in str(error.value)
    assert "stray" in str(error.value)
    assert attached_to(MARCH) is None


def test_something_else_under_the_partitions_name_is_a_conflict_named_clearly(march):
    detach(MARCH)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f'DROP TABLE "{MARCH}"')
        cursor.execute(f'CREATE VIEW "{MARCH}" AS SELECT 1 AS one')

    with pytest.raises(PartitionError) as error:
        samples_upsert([sample(march, TODAY)])
    assert MARCH in str(error.value)
    assert "rename" in str(error.value)


def test_status_reports_detached_apart_from_missing(march):
    detach(APRIL)

    status = partition_status(TODAY)

    assert status["status"] == "warning"
    assert status["detached"] == [APRIL]
    assert status["missing"] == []
    assert APRIL in status["warning"]
    assert "detached" in status["warning"]
    assert "2036-04" not in [p["month"] for p in status["tables"][DB_TABLE]]


def test_detailed_health_and_the_capacity_page_say_detached(client, admin_user, march):
    today = timezone.localdate()
    partitions_maintain()
    name = partition_name(DB_TABLE, today)
    detach(name)
    client.force_login(admin_user)

    section = client.get("/health/detailed").json()["partitions"]
    assert section["status"] == "warning"
    assert section["detached"] == [name]
    assert name not in section["missing"]

    page = client.get("/admin/capacity/instancecapacity/").content.decode()
    assert "Detached:" in page
    assert name in page

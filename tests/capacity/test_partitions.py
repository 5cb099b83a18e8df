"""Monthly partitions of the sample tables: ensure, maintenance, status, ORM access.

Partition DDL is transactional on PostgreSQL, so tests that create or drop partitions in
their rolled-back transaction leave nothing behind.
"""

import threading
from datetime import date, timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Avg, Max
from django.utils import timezone

from capacity.models import DatabaseSizeSample, InstanceSizeSample
from capacity.partitions import (
    partition_ensure,
    partition_name,
    partition_status,
    partitions_maintain,
    samples_upsert,
)
from tests.capacity.factories import (
    GIB,
    DatabaseFactory,
    DatabaseSizeSampleFactory,
    InstanceSizeSampleFactory,
)
from tests.inventory.factories import InstanceFactory

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="partitions exist on PostgreSQL only"
)
plain_tables_only = pytest.mark.skipif(
    connection.vendor == "postgresql", reason="behaviour of the plain (SQLite) tables"
)

DB_TABLE = DatabaseSizeSample._meta.db_table
INSTANCE_TABLE = InstanceSizeSample._meta.db_table
# Far from the months the migration created, so these tests start without partitions.
FUTURE = date(2031, 7, 14)


def exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return cursor.fetchone()[0]


def rows_in(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{table}"')  # noqa: S608
        return cursor.fetchone()[0]


def months(status: dict, table: str) -> list[str]:
    return [p["month"] for p in status["tables"][table]]


def sample(database, day, total=GIB, **kwargs) -> DatabaseSizeSample:
    return DatabaseSizeSample(
        database=database, day=day, total_bytes=total, collected_at=timezone.now(), **kwargs
    )


def test_partition_names_carry_table_year_and_month():
    assert partition_name(DB_TABLE, date(2026, 12, 31)) == "capacity_databasesizesample_p2026_12"
    assert partition_name(INSTANCE_TABLE, date(2027, 1, 1)) == (
        "capacity_instancesizesample_p2027_01"
    )


@postgresql_only
def test_a_month_without_partition_refuses_rows_until_ensured():
    database = DatabaseFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        sample(database, FUTURE).save()

    created = partition_ensure(FUTURE)

    assert created == [partition_name(DB_TABLE, FUTURE), partition_name(INSTANCE_TABLE, FUTURE)]
    assert exists("capacity_databasesizesample_p2031_07")
    assert exists("capacity_instancesizesample_p2031_07")
    sample(database, FUTURE).save()
    InstanceSizeSample.objects.create(
        instance=database.instance,
        day=FUTURE,
        total_bytes=GIB,
        database_count=1,
        collected_at=timezone.now(),
    )
    assert rows_in("capacity_databasesizesample_p2031_07") == 1
    assert rows_in("capacity_instancesizesample_p2031_07") == 1


@postgresql_only
def test_ensure_is_idempotent_and_partitions_cover_whole_months():
    assert len(partition_ensure(date(2031, 2, 1))) == 2
    assert partition_ensure(date(2031, 2, 28)) == []
    database = DatabaseFactory()
    for day in (date(2031, 2, 1), date(2031, 2, 28)):
        sample(database, day).save()
    assert rows_in("capacity_databasesizesample_p2031_02") == 2
    with pytest.raises(IntegrityError), transaction.atomic():
        sample(database, date(2031, 3, 1)).save()


@postgresql_only
def test_samples_upsert_ensures_every_month_and_overwrites_the_same_day():
    database, other = DatabaseFactory(), DatabaseFactory()
    days = [date(2032, 1, 31), date(2032, 2, 1)]

    written = samples_upsert([sample(database, d, total=GIB) for d in days])
    assert written == 2
    assert exists("capacity_databasesizesample_p2032_01")
    assert exists("capacity_databasesizesample_p2032_02")

    collected = timezone.now()
    samples_upsert(
        [
            DatabaseSizeSample(
                database=database,
                day=days[1],
                total_bytes=3 * GIB,
                data_bytes=2 * GIB,
                log_bytes=GIB,
                collected_at=collected,
            ),
            sample(other, days[1], total=5 * GIB),
        ]
    )

    rows = {(s.database_id, s.day): s for s in DatabaseSizeSample.objects.filter(day__in=days)}
    assert len(rows) == 3
    overwritten = rows[database.pk, days[1]]
    assert (overwritten.total_bytes, overwritten.data_bytes, overwritten.log_bytes) == (
        3 * GIB,
        2 * GIB,
        GIB,
    )
    assert overwritten.collected_at == collected
    assert rows[database.pk, days[0]].total_bytes == GIB
    assert rows[other.pk, days[1]].total_bytes == 5 * GIB


def test_samples_upsert_writes_instance_samples_too():
    instance = InstanceFactory()
    day = timezone.localdate()
    for total in (GIB, 2 * GIB):
        samples_upsert(
            [
                InstanceSizeSample(
                    instance=instance,
                    day=day,
                    total_bytes=total,
                    database_count=4,
                    collected_at=timezone.now(),
                )
            ]
        )
    assert list(InstanceSizeSample.objects.values_list("total_bytes", "database_count")) == [
        (2 * GIB, 4)
    ]


def test_samples_upsert_takes_one_partitioned_model():
    database = DatabaseFactory()
    assert samples_upsert([]) == 0
    with pytest.raises(TypeError):
        samples_upsert(
            [
                sample(database, FUTURE),
                InstanceSizeSample(instance=database.instance, day=FUTURE, total_bytes=1),
            ]
        )


def test_orm_reads_updates_and_deletes_rows_of_the_sample_tables():
    database = DatabaseFactory()
    start = date(2030, 1, 30)
    for offset, total in enumerate([GIB, 2 * GIB, 4 * GIB, 8 * GIB]):  # Jan 30 .. Feb 2
        DatabaseSizeSampleFactory(
            database=database, day=start + timedelta(days=offset), total_bytes=total
        )
    InstanceSizeSampleFactory(instance=database.instance, day=start)

    february = DatabaseSizeSample.objects.filter(
        database=database, day__gte=date(2030, 2, 1), day__lte=date(2030, 2, 28)
    )
    assert sorted(february.values_list("total_bytes", flat=True)) == [4 * GIB, 8 * GIB]
    assert DatabaseSizeSample.objects.filter(database__instance=database.instance).aggregate(
        avg=Avg("total_bytes"), max=Max("total_bytes")
    ) == {"avg": 3.75 * GIB, "max": 8 * GIB}

    by_pk = DatabaseSizeSample.objects.get(pk=(database.pk, start))
    assert by_pk.total_bytes == GIB
    by_pk.total_bytes = 9
    by_pk.save()
    assert DatabaseSizeSample.objects.get(database=database, day=start).total_bytes == 9
    assert february.update(log_bytes=7) == 2

    # Changing the partition key moves the row to the other month's partition.
    DatabaseSizeSample.objects.filter(pk=(database.pk, start)).update(day=date(2030, 2, 10))
    assert DatabaseSizeSample.objects.filter(day__month=1).count() == 1
    if connection.vendor == "postgresql":
        assert rows_in("capacity_databasesizesample_p2030_02") == 3

    assert InstanceSizeSample.objects.get(instance=database.instance).database_count == 3
    database.delete()
    assert not DatabaseSizeSample.objects.exists()


def test_bulk_create_upserts_a_days_samples_directly():
    databases = DatabaseFactory.create_batch(3)
    day = timezone.localdate()
    partition_ensure(day)
    for total in (GIB, 2 * GIB):
        DatabaseSizeSample.objects.bulk_create(
            [sample(d, day, total=total) for d in databases],
            update_conflicts=True,
            unique_fields=["database", "day"],
            update_fields=["total_bytes", "data_bytes", "log_bytes", "collected_at"],
        )
    assert sorted(DatabaseSizeSample.objects.values_list("total_bytes", flat=True)) == [2 * GIB] * 3


@postgresql_only
def test_maintenance_creates_months_ahead_and_drops_months_past_retention(settings):
    settings.WHALEFALL_CAPACITY_PARTITIONS_AHEAD = 3
    settings.WHALEFALL_CAPACITY_RETENTION_MONTHS = 24
    database = DatabaseFactory()
    for day in (date(2038, 2, 28), date(2038, 3, 1)):
        DatabaseSizeSampleFactory(database=database, day=day)
    today = date(2040, 3, 10)
    with connection.cursor() as cursor:
        # The samples' deferred foreign key checks would block dropping their partition
        # in this same transaction; the maintenance job runs in its own.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    result = partitions_maintain(today)

    ahead = ["2040_03", "2040_04", "2040_05", "2040_06"]
    assert sorted(result["created"]) == sorted(
        f"{table}_p{month}" for table in (DB_TABLE, INSTANCE_TABLE) for month in ahead
    )
    # February 2038 ended more than 24 months before today; March 2038 has not yet.
    assert "capacity_databasesizesample_p2038_02" in result["dropped"]
    assert "capacity_instancesizesample_p2038_02" in result["dropped"]
    assert not any("2038_03" in name for name in result["dropped"])
    assert not exists("capacity_databasesizesample_p2038_02")
    assert list(DatabaseSizeSample.objects.values_list("day", flat=True)) == [date(2038, 3, 1)]
    status = partition_status(today)
    for table in (DB_TABLE, INSTANCE_TABLE):
        assert months(status, table) == ["2038-03", "2040-03", "2040-04", "2040-05", "2040-06"]

    assert partitions_maintain(today) == {
        "created": [],
        "reattached": [],
        "dropped": [],
        "deleted_rows": 0,
    }
    # On the first of the next month, March 2038 is wholly older than 24 months.
    again = partitions_maintain(date(2040, 4, 1))
    assert again["created"] == [f"{DB_TABLE}_p2040_07", f"{INSTANCE_TABLE}_p2040_07"]
    assert sorted(again["dropped"]) == [f"{DB_TABLE}_p2038_03", f"{INSTANCE_TABLE}_p2038_03"]
    assert not DatabaseSizeSample.objects.exists()


@postgresql_only
def test_maintenance_follows_the_settings(settings):
    settings.WHALEFALL_CAPACITY_PARTITIONS_AHEAD = 1
    settings.WHALEFALL_CAPACITY_RETENTION_MONTHS = 2
    partition_ensure(date(2041, 9, 30))
    partition_ensure(date(2041, 10, 1))

    result = partitions_maintain(date(2041, 12, 31))

    assert sorted(result["created"]) == sorted(
        f"{t}_p{m}" for t in (DB_TABLE, INSTANCE_TABLE) for m in ("2041_12", "2042_01")
    )
    assert f"{DB_TABLE}_p2041_09" in result["dropped"]
    assert f"{DB_TABLE}_p2041_10" not in result["dropped"]


@postgresql_only
def test_status_lists_months_with_row_estimates_and_sizes():
    today = date(2035, 6, 10)
    partitions_maintain(today)
    database = DatabaseFactory()
    samples_upsert([sample(database, today + timedelta(days=n)) for n in range(3)])
    with connection.cursor() as cursor:
        cursor.execute(f'ANALYZE "{partition_name(DB_TABLE, today)}"')

    status = partition_status(today)

    assert status["status"] == "ok"
    assert status["partitioned"] is True
    assert status["missing"] == []
    assert "warning" not in status
    june = next(p for p in status["tables"][DB_TABLE] if p["month"] == "2035-06")
    assert june["name"] == "capacity_databasesizesample_p2035_06"
    assert june["rows_estimate"] == 3
    assert june["size_bytes"] > 0


@postgresql_only
def test_status_warns_when_next_months_partition_is_missing():
    today = date(2035, 6, 10)
    partitions_maintain(today)
    with connection.cursor() as cursor:
        cursor.execute(f'DROP TABLE "{partition_name(DB_TABLE, date(2035, 7, 1))}"')

    status = partition_status(today)

    assert status["status"] == "warning"
    assert status["missing"] == ["capacity_databasesizesample_p2035_07"]
    assert "capacity_databasesizesample_p2035_07" in status["warning"]


def test_detailed_health_reports_the_partitions(client, admin_user):
    partitions_maintain()
    client.force_login(admin_user)
    section = client.get("/health/detailed").json()["partitions"]
    assert section["status"] == "ok"
    assert section["missing"] == []
    if connection.vendor == "postgresql":
        this_month = f"{timezone.localdate():%Y-%m}"
        assert this_month in months(section, DB_TABLE)


@plain_tables_only
def test_plain_tables_need_no_partitions_and_expire_rows_by_deleting(settings):
    settings.WHALEFALL_CAPACITY_RETENTION_MONTHS = 24
    database = DatabaseFactory()
    assert partition_ensure(FUTURE) == []
    samples_upsert([sample(database, d) for d in (date(2024, 4, 30), date(2024, 5, 1), FUTURE)])

    result = partitions_maintain(date(2026, 5, 15))

    assert result == {"created": [], "reattached": [], "dropped": [], "deleted_rows": 1}
    assert sorted(DatabaseSizeSample.objects.values_list("day", flat=True)) == [
        date(2024, 5, 1),
        FUTURE,
    ]
    assert partition_status() == {
        "status": "ok",
        "partitioned": False,
        "tables": {},
        "missing": [],
    }


CONCURRENT_DAY = date(2033, 1, 15)


@pytest.fixture
def drop_concurrent_partitions():
    yield
    with connection.cursor() as cursor:
        for table in (DB_TABLE, INSTANCE_TABLE):
            for month in ("2033_01", "2033_02", "2033_03", "2033_04"):
                cursor.execute(f'DROP TABLE IF EXISTS "{table}_p{month}"')


@postgresql_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("drop_concurrent_partitions")
def test_concurrent_ensures_on_separate_connections_all_succeed(settings):
    settings.WHALEFALL_CAPACITY_PARTITIONS_AHEAD = 3
    # This test commits: the maintenance must not drop the months the migration created.
    settings.WHALEFALL_CAPACITY_RETENTION_MONTHS = 1200
    database = DatabaseFactory()
    workers = 8
    barrier = threading.Barrier(workers)
    created: list[list[str]] = []
    errors: list[BaseException] = []

    def work(position: int) -> None:
        try:
            barrier.wait(timeout=15)
            if position % 4 == 3:
                created.append(partitions_maintain(CONCURRENT_DAY)["created"])
            else:
                created.append(partition_ensure(CONCURRENT_DAY))
            samples_upsert([sample(database, CONCURRENT_DAY, total=position)])
        except Exception as exc:  # noqa: BLE001  reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not errors, errors
    names = [name for batch in created for name in batch]
    # Each partition was created by exactly one of the concurrent callers.
    assert len(names) == len(set(names))
    assert {
        partition_name(DB_TABLE, CONCURRENT_DAY),
        partition_name(INSTANCE_TABLE, CONCURRENT_DAY),
    } <= set(names)
    assert DatabaseSizeSample.objects.filter(database=database, day=CONCURRENT_DAY).count() == 1

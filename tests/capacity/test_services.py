"""Capacity collection of one instance: the real local MariaDB, and SQL Server and Oracle
through the fake servers; the run machinery around it; table sizes on demand.

The MariaDB server is shared with other tests running at the same time, so every database
of this module carries a random prefix, and the engine is made to treat the databases of
other tests as system databases: the counts asserted are this test's own.
"""

import secrets
from datetime import timedelta

import MySQLdb
import pytest
from django.utils import timezone

from capacity.models import (
    Database,
    DatabaseSizeSample,
    InstanceCapacity,
    InstanceSizeSample,
    TableSizeSnapshot,
)
from capacity.services import (
    CollectionRefused,
    capacity_collect_instance,
    table_sizes_refresh,
)
from inventory.engines.base import EngineFailure
from syncjobs import services as runs
from syncjobs.models import ItemStatus, RunKind, RunStatus, RunTrigger, WorkLock
from tests.capacity.factories import DatabaseFactory, TableSizeSnapshotFactory
from tests.inventory.factories import CredentialFactory, InstanceFactory

pytestmark = pytest.mark.django_db

PASSWORD = "Mon-" + secrets.token_hex(8)
PAGE = 8192
MODEL_PAGES = 1024  # a new SQL Server database gets model's 8 MB data and 8 MB log files
MIB = 1024 * 1024


# --- MariaDB ------------------------------------------------------------------------------


class MariaDB:
    """Root session on the local MariaDB, remembering what to drop."""

    def __init__(self) -> None:
        self.prefix = f"wfcs{secrets.token_hex(3)}_"
        self.connection = MySQLdb.connect(
            host="127.0.0.1", port=3306, user="root", password="", autocommit=True
        )
        self.databases: set[str] = set()
        self.monitor = f"{self.prefix}monitor"
        self.run(
            f"CREATE USER '{self.monitor}'@'%' IDENTIFIED BY '{PASSWORD}'",
            f"GRANT SELECT ON mysql.* TO '{self.monitor}'@'%'",
            f"GRANT SHOW VIEW ON *.* TO '{self.monitor}'@'%'",
        )

    def run(self, *statements: str, params: tuple | None = None) -> list[tuple]:
        """Run ``statements`` (each with ``params``); the rows of the last one."""
        rows: list[tuple] = []
        with self.connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement, params)
                rows = list(cursor.fetchall())
        return rows

    def create(self, name: str) -> str:
        """Create the database and make it the session's current one."""
        name = f"{self.prefix}{name}"
        self.databases.add(name)
        self.run(f"CREATE DATABASE `{name}`", f"USE `{name}`")
        return name

    def use(self, name: str) -> None:
        self.run(f"USE `{name}`")

    def drop(self, name: str) -> None:
        self.run(f"DROP DATABASE IF EXISTS `{name}`")

    def size(self, name: str) -> int:
        """Data plus index bytes of ``name`` as root reads them."""
        ((size,),) = self.run(
            "SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = %s",
            params=(name,),
        )
        return int(size)

    def close(self) -> None:
        for name in self.databases:
            self.drop(name)
        self.run(f"DROP USER IF EXISTS '{self.monitor}'@'%'")
        self.connection.close()


@pytest.fixture
def mariadb(monkeypatch):
    server = MariaDB()
    monkeypatch.setattr(
        "inventory.engines.mysql.is_system_database",
        lambda engine, name: not name.startswith(server.prefix),
    )
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def shop(mariadb) -> str:
    """A database with a MyISAM table, whose lengths change at once when rows are added."""
    shop = mariadb.create("Shop")
    mariadb.run(
        "CREATE TABLE orders (id INT NOT NULL, note CHAR(100) NOT NULL) ENGINE=MyISAM",
        "INSERT INTO orders SELECT seq, 'x' FROM seq_1_to_500",  # MariaDB's Sequence engine
    )
    return shop


@pytest.fixture
def mariadb_instance(mariadb):
    credential = CredentialFactory(username=mariadb.monitor, secret=PASSWORD)
    return InstanceFactory(engine="mysql", host="127.0.0.1", port=3306, credential=credential)


def databases(instance) -> dict[str, Database]:
    return {d.name: d for d in Database.objects.filter(instance=instance)}


def samples(instance, day=None) -> dict[str, DatabaseSizeSample]:
    day = day or timezone.localdate()
    return {
        s.database.name: s
        for s in DatabaseSizeSample.objects.filter(
            database__instance=instance, day=day
        ).select_related("database")
    }


def test_first_collection_inventories_the_databases_and_samples_today(
    mariadb, shop, mariadb_instance
):
    empty = mariadb.create("empty")
    before = timezone.now()

    outcome = capacity_collect_instance(instance=mariadb_instance, run_id=7)

    assert (outcome.created, outcome.changed, outcome.removed, outcome.unchanged) == (2, 0, 0, 0)
    assert outcome.remote_queries >= 2
    stored = databases(mariadb_instance)
    assert set(stored) == {shop, empty}
    size = mariadb.size(shop)
    assert size > 500 * 100
    assert (stored[shop].total_bytes, stored[shop].data_bytes) == (size, size)
    assert stored[shop].log_bytes is None, "MySQL's logs belong to the server"
    assert (stored[empty].total_bytes, stored[empty].data_bytes) == (0, 0)
    for database in stored.values():
        assert database.first_seen_at == database.last_seen_at == database.collected_at
        assert database.first_seen_at >= before
        assert database.removed_at is None

    today = samples(mariadb_instance)
    assert {name: s.total_bytes for name, s in today.items()} == {shop: size, empty: 0}
    assert today[shop].log_bytes is None
    instance_sample = InstanceSizeSample.objects.get(instance=mariadb_instance)
    assert (instance_sample.day, instance_sample.total_bytes, instance_sample.database_count) == (
        timezone.localdate(),
        size,
        2,
    )
    capacity = InstanceCapacity.objects.get(instance=mariadb_instance)
    assert (capacity.total_bytes, capacity.database_count) == (size, 2)
    assert capacity.collected_at == stored[shop].collected_at
    assert outcome.detail == {
        "day": timezone.localdate().isoformat(),
        "databases": 2,
        "sampled": 2,
        "total_bytes": size,
    }


def test_collecting_the_same_day_again_overwrites_its_samples(mariadb, shop, mariadb_instance):
    capacity_collect_instance(instance=mariadb_instance)
    first = samples(mariadb_instance)[shop]
    mariadb.use(shop)
    mariadb.run("INSERT INTO orders SELECT seq, 'y' FROM seq_501_to_1000")
    grown = mariadb.size(shop)
    assert grown > first.total_bytes

    outcome = capacity_collect_instance(instance=mariadb_instance)

    assert (outcome.created, outcome.changed, outcome.removed, outcome.unchanged) == (0, 1, 0, 0)
    again = samples(mariadb_instance)
    assert again[shop].total_bytes == grown
    assert again[shop].collected_at > first.collected_at
    assert DatabaseSizeSample.objects.filter(database__instance=mariadb_instance).count() == 1
    assert InstanceSizeSample.objects.get(instance=mariadb_instance).total_bytes == grown
    database = Database.objects.get(instance=mariadb_instance, name=shop)
    assert database.total_bytes == grown
    assert database.first_seen_at < database.last_seen_at

    unchanged = capacity_collect_instance(instance=mariadb_instance)
    assert (unchanged.created, unchanged.changed, unchanged.unchanged) == (0, 0, 1)


def test_dropped_databases_are_removed_stop_being_sampled_and_come_back(
    mariadb, shop, mariadb_instance, monkeypatch
):
    archive = mariadb.create("archive")
    capacity_collect_instance(instance=mariadb_instance)
    first_seen = Database.objects.get(instance=mariadb_instance, name=archive).first_seen_at

    mariadb.drop(archive)
    outcome = capacity_collect_instance(instance=mariadb_instance)

    assert (outcome.created, outcome.changed, outcome.removed, outcome.unchanged) == (0, 0, 1, 1)
    gone = Database.objects.get(instance=mariadb_instance, name=archive)
    assert gone.removed_at is not None
    assert gone.total_bytes == 0, "the last known size stays on the row"
    assert set(samples(mariadb_instance)) == {shop}, "the day's sample of a removed one goes"
    assert InstanceSizeSample.objects.get(instance=mariadb_instance).database_count == 1
    assert InstanceCapacity.objects.get(instance=mariadb_instance).database_count == 1

    # The next day: still gone, still not sampled.
    tomorrow = timezone.now() + timedelta(days=1)
    monkeypatch.setattr("django.utils.timezone.now", lambda: tomorrow)
    capacity_collect_instance(instance=mariadb_instance)
    assert set(samples(mariadb_instance, timezone.localdate(tomorrow))) == {shop}
    assert Database.objects.get(pk=gone.pk).removed_at == gone.removed_at

    mariadb.create("archive")
    later = tomorrow + timedelta(hours=1)
    monkeypatch.setattr("django.utils.timezone.now", lambda: later)
    back = capacity_collect_instance(instance=mariadb_instance)

    assert (back.created, back.changed, back.removed, back.restored) == (0, 0, 0, 1)
    restored = Database.objects.get(pk=gone.pk)
    assert restored.removed_at is None
    assert restored.first_seen_at == first_seen
    assert restored.last_seen_at == later
    assert set(samples(mariadb_instance, timezone.localdate(later))) == {shop, archive}


def test_an_empty_listing_where_databases_existed_removes_nothing(mariadb, shop, mariadb_instance):
    capacity_collect_instance(instance=mariadb_instance)
    before = list(Database.objects.filter(instance=mariadb_instance).values())
    sample_before = InstanceSizeSample.objects.get(instance=mariadb_instance)
    mariadb.drop(shop)

    with pytest.raises(CollectionRefused, match="listed no databases where 1 existed") as caught:
        capacity_collect_instance(instance=mariadb_instance)

    assert caught.value.fail_closed is True
    assert list(Database.objects.filter(instance=mariadb_instance).values()) == before
    assert InstanceSizeSample.objects.get(instance=mariadb_instance) == sample_before
    assert (
        InstanceSizeSample.objects.get(instance=mariadb_instance).collected_at
        == sample_before.collected_at
    )
    assert len(samples(mariadb_instance)) == 1


def test_an_instance_without_databases_records_an_empty_day(mariadb, mariadb_instance):
    outcome = capacity_collect_instance(instance=mariadb_instance)

    assert (outcome.created, outcome.removed, outcome.unchanged) == (0, 0, 0)
    sample = InstanceSizeSample.objects.get(instance=mariadb_instance)
    assert (sample.total_bytes, sample.database_count) == (0, 0)


# --- Table sizes --------------------------------------------------------------------------


def test_table_sizes_replace_the_databases_snapshot(mariadb, shop, mariadb_instance):
    mariadb.use(shop)
    mariadb.run(
        "CREATE TABLE customers (id INT PRIMARY KEY, name CHAR(20)) ENGINE=MyISAM",
        "INSERT INTO customers SELECT seq, 'c' FROM seq_1_to_20",
    )
    capacity_collect_instance(instance=mariadb_instance)
    database = Database.objects.get(instance=mariadb_instance, name=shop)
    stale = TableSizeSnapshotFactory(database=database, schema_name="", table_name="dropped")
    other = TableSizeSnapshotFactory()

    assert table_sizes_refresh(database=database) == 2

    tables = {t.table_name: t for t in TableSizeSnapshot.objects.filter(database=database)}
    assert set(tables) == {"customers", "orders"}
    assert not TableSizeSnapshot.objects.filter(pk=stale.pk).exists()
    assert TableSizeSnapshot.objects.filter(pk=other.pk).exists(), "other databases untouched"
    orders = tables["orders"]
    assert orders.schema_name == "", "a MySQL table's schema is the database itself"
    assert orders.row_count == 500
    assert orders.data_bytes > 0
    assert orders.total_bytes == orders.data_bytes + orders.index_bytes
    assert tables["customers"].index_bytes > 0
    assert orders.total_bytes + tables["customers"].total_bytes == mariadb.size(shop)

    mariadb.run(f"DROP TABLE `{shop}`.customers")
    assert table_sizes_refresh(database=database) == 1
    assert list(
        TableSizeSnapshot.objects.filter(database=database).values_list("table_name", flat=True)
    ) == ["orders"]


def test_table_sizes_of_a_database_gone_fail_and_keep_the_snapshot(mariadb, mariadb_instance):
    database = DatabaseFactory(instance=mariadb_instance, name=f"{mariadb.prefix}never")
    kept = TableSizeSnapshotFactory(database=database)

    with pytest.raises(EngineFailure, match="no database named"):
        table_sizes_refresh(database=database)

    assert TableSizeSnapshot.objects.filter(pk=kept.pk).exists()


# --- SQL Server and Oracle through the fakes ---------------------------------------------


@pytest.fixture
def sqlserver(fake_sqlserver):
    catalog = fake_sqlserver.use_catalog()
    catalog.create_login("mon")
    catalog.grant("VIEW ANY DEFINITION", to="mon")
    catalog.grant("CONNECT ANY DATABASE", to="mon")
    return catalog


@pytest.fixture
def sqlserver_instance(sqlserver):
    return InstanceFactory(
        engine="sqlserver",
        host="mssql.example.test",
        port=1433,
        credential=CredentialFactory(username="mon"),
    )


def test_sqlserver_log_files_are_collected(sqlserver, sqlserver_instance):
    shop = sqlserver.create_database("Shop")
    shop.add_file("Shop_data2", pages=2048)
    shop.add_file("Shop_log2", log=True, pages=512)
    sqlserver.create_database("Reports")

    outcome = capacity_collect_instance(instance=sqlserver_instance)

    assert (outcome.created, outcome.removed) == (2, 0)
    assert outcome.remote_queries == 3
    stored = databases(sqlserver_instance)
    data, log = (MODEL_PAGES + 2048) * PAGE, (MODEL_PAGES + 512) * PAGE
    assert (stored["Shop"].data_bytes, stored["Shop"].log_bytes) == (data, log)
    assert stored["Shop"].total_bytes == data + log
    assert stored["Reports"].log_bytes == MODEL_PAGES * PAGE
    sample = samples(sqlserver_instance)["Shop"]
    assert (sample.total_bytes, sample.data_bytes, sample.log_bytes) == (data + log, data, log)
    assert InstanceSizeSample.objects.get(instance=sqlserver_instance).total_bytes == (
        data + log + 2 * MODEL_PAGES * PAGE
    )

    shop.resize_file("Shop_log2", 4096)
    sqlserver.drop_database("Reports")
    again = capacity_collect_instance(instance=sqlserver_instance)

    assert (again.created, again.changed, again.removed, again.unchanged) == (0, 1, 1, 0)
    assert Database.objects.get(instance=sqlserver_instance, name="Shop").log_bytes == (
        (MODEL_PAGES + 4096) * PAGE
    )
    assert set(samples(sqlserver_instance)) == {"Shop"}


def test_sqlserver_empty_listing_fails_the_run_item_and_removes_nothing(
    sqlserver, sqlserver_instance
):
    sqlserver.create_database("Shop")
    capacity_collect_instance(instance=sqlserver_instance)
    sqlserver.drop_database("Shop")
    run = runs.run_create(
        kind=RunKind.CAPACITY, trigger=RunTrigger.MANUAL, instance_ids=[sqlserver_instance.pk]
    )
    item = run.items.get()

    runs.run_item_execute(item_id=item.pk)

    item.refresh_from_db()
    assert item.status == ItemStatus.FAILED
    assert item.error == (
        "the instance listed no databases where 1 existed; nothing was marked removed"
    )
    assert Database.objects.get(instance=sqlserver_instance, name="Shop").removed_at is None
    assert not WorkLock.objects.exists()


@pytest.fixture
def oracle(fake_oracle):
    catalog = fake_oracle.use_catalog()
    catalog.create_user("WHALEFALL")
    catalog.grant("CREATE SESSION", to="WHALEFALL")
    catalog.grant("SELECT_CATALOG_ROLE", to="WHALEFALL")
    return catalog


@pytest.fixture
def oracle_instance(oracle):
    return InstanceFactory(
        engine="oracle",
        host="oracle.example.test",
        port=1521,
        database_name="ORCLPDB1",
        credential=CredentialFactory(username="WHALEFALL"),
    )


def test_oracle_tablespaces_are_the_databases_users_included(oracle, oracle_instance):
    oracle.create_tablespace("APP_DATA", file_bytes=(100 * MIB, 50 * MIB))

    outcome = capacity_collect_instance(instance=oracle_instance)

    stored = databases(oracle_instance)
    assert set(stored) == {"APP_DATA", "TEMP", "UNDOTBS1", "USERS"}
    assert outcome.created == 4
    assert stored["APP_DATA"].total_bytes == 150 * MIB
    assert stored["USERS"].total_bytes == 5 * MIB
    assert stored["APP_DATA"].log_bytes is None
    assert InstanceSizeSample.objects.get(instance=oracle_instance).database_count == 4

    oracle.drop_tablespace("APP_DATA")
    again = capacity_collect_instance(instance=oracle_instance)
    assert (again.removed, again.unchanged) == (1, 3)
    assert databases(oracle_instance)["APP_DATA"].removed_at is not None


# --- Run machinery ------------------------------------------------------------------------


def test_capacity_runs_call_the_collection(sqlserver, sqlserver_instance):
    sqlserver.create_database("Shop")
    run = runs.run_create(
        kind=RunKind.CAPACITY, trigger=RunTrigger.SCHEDULED, instance_ids=[sqlserver_instance.pk]
    )

    runs.run_item_execute(item_id=run.items.get().pk)

    run.refresh_from_db()
    item = run.items.get()
    assert (run.status, item.status) == (RunStatus.SUCCEEDED, ItemStatus.SUCCEEDED)
    assert (item.created_count, item.changed_count, item.removed_count) == (1, 0, 0)
    assert item.detail["sampled"] == 1
    assert Database.objects.filter(instance=sqlserver_instance, name="Shop").exists()


def test_a_second_capacity_item_on_the_same_instance_is_skipped(sqlserver, sqlserver_instance):
    sqlserver.create_database("Shop")
    first = runs.run_create(
        kind=RunKind.CAPACITY, trigger=RunTrigger.SCHEDULED, instance_ids=[sqlserver_instance.pk]
    ).items.get()
    # The first item holds the lock, as while its collection runs.
    assert runs.work_lock_acquire(
        kind=RunKind.CAPACITY, instance_id=sqlserver_instance.pk, item_id=first.pk
    )
    second = runs.run_create(
        kind=RunKind.CAPACITY, trigger=RunTrigger.MANUAL, instance_ids=[sqlserver_instance.pk]
    ).items.get()

    runs.run_item_execute(item_id=second.pk)

    second.refresh_from_db()
    assert second.status == ItemStatus.SKIPPED
    assert f"run #{first.run_id}" in second.skip_reason
    assert not Database.objects.filter(instance=sqlserver_instance).exists()


def test_a_listed_database_without_size_is_kept_unsampled_and_reported(
    sqlserver, sqlserver_instance
):
    sqlserver.create_database("Shop")
    ghost = sqlserver.create_database("Ghost")
    capacity_collect_instance(instance=sqlserver_instance)
    # Dropped between the listing and the sizing: listed, but no files any more.
    sqlserver.master_files.delete(database_id=ghost.row["database_id"])

    outcome = capacity_collect_instance(instance=sqlserver_instance)

    assert (outcome.removed, outcome.unchanged) == (0, 2)
    assert outcome.detail["unsized"] == ["Ghost"]
    assert outcome.detail["problems"] == ["1 listed database(s) returned no size, e.g. 'Ghost'"]
    stored = databases(sqlserver_instance)
    assert stored["Ghost"].removed_at is None
    assert stored["Ghost"].total_bytes == 2 * MODEL_PAGES * PAGE, "the last known size stays"
    assert set(samples(sqlserver_instance)) == {"Shop"}
    assert InstanceSizeSample.objects.get(instance=sqlserver_instance).database_count == 1

    sqlserver.master_files.delete(database_id=sqlserver.databases["Shop"].row["database_id"])
    with pytest.raises(CollectionRefused, match="listed 2 database"):
        capacity_collect_instance(instance=sqlserver_instance)

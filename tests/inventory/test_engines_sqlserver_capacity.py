"""SQL Server databases, data and log files and table sizes through the fake server's catalog."""

import pytest

from inventory.engines.base import (
    ConnectionTarget,
    DatabaseRecord,
    DatabaseSize,
    EngineFailure,
    InsufficientPrivileges,
    TableSize,
    Timeout,
    Unreachable,
    engine_class,
)
from tests import fakedb

PAGE = 8192
MODEL_PAGES = 1024  # CREATE DATABASE copies model's 8 MB data and 8 MB log files


def target(username: str = "mon") -> ConnectionTarget:
    return ConnectionTarget(
        engine="sqlserver",
        host="mssql.example.test",
        port=1433,
        database="",
        username=username,
        secret="Wf-t3st-pa55",
    )


def open_engine():
    return engine_class("sqlserver")(target())


def inventory() -> tuple[list[DatabaseRecord], dict[str, DatabaseSize], int]:
    """(databases, sizes of the listed databases by name, statements) of one session."""
    with open_engine() as engine:
        databases = engine.run(engine.list_databases)
        sizes = engine.run(engine.database_sizes, [d.name for d in databases])
        return databases, {size.name: size for size in sizes}, engine.queries


@pytest.fixture
def catalog(fake_sqlserver):
    """A server whose monitoring login ``mon`` holds the documented grants."""
    catalog = fake_sqlserver.use_catalog()
    catalog.create_login("mon")
    catalog.grant("VIEW ANY DEFINITION", to="mon")
    catalog.grant("CONNECT ANY DATABASE", to="mon")
    return catalog


@pytest.fixture
def shop(catalog):
    shop = catalog.create_database("Shop")
    shop.create_schema("sales")
    shop.create_object("sales.orders", columns=("id", "customer", "photo"))
    shop.create_object("dbo.audit_log", columns=("id", "message"))
    return shop


# --- Databases ----------------------------------------------------------------------------


def test_lists_user_databases_in_their_real_case(catalog, shop):
    catalog.create_database("Q]1 o'brien")
    catalog.create_database("Archive", state=6)  # OFFLINE: still a database with files
    catalog.create_database("ReportServer")
    catalog.create_database("ReportServerTempDB")
    catalog.create_database("Shop_snapshot", snapshot_of="Shop")

    databases, _sizes, _queries = inventory()

    assert databases == [
        DatabaseRecord("Archive"),
        DatabaseRecord("Q]1 o'brien"),
        DatabaseRecord("Shop"),
    ]
    # master, model, msdb, tempdb and ReportServer% are system databases; a snapshot's
    # sparse files mirror its source and would count it twice.


def test_system_databases_can_be_extended_by_settings(catalog, shop, settings):
    catalog.create_database("distribution")
    defaults = settings.WHALEFALL_SYSTEM_DATABASES
    settings.WHALEFALL_SYSTEM_DATABASES = {
        **defaults,
        "sqlserver": [*defaults["sqlserver"], "distribution"],
    }

    databases, _sizes, _queries = inventory()

    assert [d.name for d in databases] == ["Shop"]


def test_sizes_count_data_files_and_log_files(catalog, shop):
    shop.add_file("Shop_data2", pages=2048)
    shop.resize_file("Shop_log", pages=4096)
    shop.add_file("Shop_log2", log=True, pages=512)
    catalog.create_database("Empty")

    _databases, sizes, _queries = inventory()

    assert sizes["Shop"] == DatabaseSize(
        "Shop", data_bytes=(MODEL_PAGES + 2048) * PAGE, log_bytes=(4096 + 512) * PAGE
    )
    assert sizes["Shop"].total_bytes == (MODEL_PAGES + 2048 + 4096 + 512) * PAGE
    assert sizes["Empty"] == DatabaseSize(
        "Empty", data_bytes=MODEL_PAGES * PAGE, log_bytes=MODEL_PAGES * PAGE
    )


def test_sizes_of_the_names_asked_only(catalog, shop):
    catalog.create_database("Other")

    with open_engine() as engine:
        sizes = engine.database_sizes(["Shop", "Gone"])
        nothing = engine.database_sizes([])

    assert [size.name for size in sizes] == ["Shop"]  # a dropped database is left out
    assert nothing == []


@pytest.mark.parametrize("databases", [3, 40])
def test_the_number_of_statements_does_not_depend_on_the_databases(catalog, databases):
    for index in range(databases):
        catalog.create_database(f"db{index:02}")

    listed, sizes, queries = inventory()

    assert len(listed) == len(sizes) == databases
    assert queries == 3  # permissions, databases, files


def test_a_login_that_cannot_see_the_files_is_refused(catalog, shop, fake_sqlserver):
    catalog.revoke("VIEW ANY DEFINITION", from_="mon")

    with pytest.raises(InsufficientPrivileges, match=r"GRANT VIEW ANY DEFINITION TO \[mon\]"):
        inventory()

    # What the server would have answered: databases without their files.
    assert not catalog.sees_files("mon", fake_sqlserver.version)


def test_a_login_that_cannot_see_every_database_is_refused(catalog, shop, fake_sqlserver):
    catalog.deny("VIEW ANY DATABASE", to="mon")

    with pytest.raises(InsufficientPrivileges, match=r"GRANT VIEW ANY DATABASE TO \[mon\]"):
        inventory()

    assert not catalog.sees_database("mon", shop, fake_sqlserver.version)


def test_a_sysadmin_monitoring_login_needs_no_other_grant(catalog, shop):
    catalog.revoke("VIEW ANY DEFINITION", from_="mon")
    catalog.revoke("CONNECT ANY DATABASE", from_="mon")
    catalog.add_server_role_member("sysadmin", "mon")

    databases, sizes, _queries = inventory()

    assert [d.name for d in databases] == ["Shop"]
    assert sizes["Shop"].log_bytes == MODEL_PAGES * PAGE


# --- Table sizes ---------------------------------------------------------------------------


def test_table_sizes_follow_sp_spaceused(catalog, shop, fake_sqlserver):
    # Clustered index with LOB data, a nonclustered index, and a heap.
    shop.allocate("sales.orders", rows=1000, in_row=(40, 35, 30), lob=(24, 20))
    shop.allocate("sales.orders", index_id=2, rows=1000, in_row=(16, 10, 8))
    shop.allocate("dbo.audit_log", index_id=0, rows=50, in_row=(8, 3, 2), row_overflow=(8, 1))

    with open_engine() as engine:
        tables = engine.run(engine.table_sizes, "Shop")

    assert tables == [
        TableSize(
            "dbo",
            "audit_log",
            rows=50,
            data_bytes=(2 + 1) * PAGE,
            index_bytes=(3 + 1 - 3) * PAGE,
            total_bytes=16 * PAGE,
        ),
        TableSize(
            "sales",
            "orders",
            rows=1000,  # counted once, on the clustered index
            data_bytes=(30 + 20) * PAGE,  # in-row data pages and LOB pages
            index_bytes=(35 + 20 + 10 - 50) * PAGE,  # used pages beyond data
            total_bytes=(40 + 24 + 16) * PAGE,  # reserved
        ),
    ]
    assert any("FROM [Shop].sys.tables AS t" in sql for sql in fake_sqlserver.statements)


def test_partitions_add_up_and_shipped_tables_are_left_out(catalog, shop):
    shop.allocate("sales.orders", partition_number=1, rows=700, in_row=(24, 20, 18))
    shop.allocate("sales.orders", partition_number=2, rows=300, in_row=(16, 9, 8))
    diagrams = shop.create_object("dbo.sysdiagrams", columns=("name",))
    shop.objects.update(diagrams, is_ms_shipped=True)
    shop.allocate("dbo.sysdiagrams", rows=1, in_row=(8, 2, 1))

    with open_engine() as engine:
        tables = engine.table_sizes("Shop")

    assert tables == [TableSize("sales", "orders", 1000, 26 * PAGE, 3 * PAGE, 40 * PAGE)]


def test_table_sizes_through_a_quoted_three_part_name(catalog, fake_sqlserver):
    odd = catalog.create_database("Q]1 o'brien")
    odd.create_object("dbo.t", columns=("id",))
    odd.allocate("dbo.t", rows=3, in_row=(8, 2, 1))

    with open_engine() as engine:
        tables = engine.table_sizes("Q]1 o'brien")

    assert [(t.schema, t.table, t.rows) for t in tables] == [("dbo", "t", 3)]
    assert any("FROM [Q]]1 o'brien].sys.tables" in sql for sql in fake_sqlserver.statements)


def test_table_sizes_take_a_fixed_number_of_statements(catalog, shop):
    for index in range(30):
        shop.create_object(f"dbo.t{index:02}", columns=("id",))
        shop.allocate(f"dbo.t{index:02}", rows=index, in_row=(8, 2, 1))

    with open_engine() as engine:
        tables = engine.table_sizes("Shop")
        queries = engine.queries

    assert len(tables) == 30
    assert queries == 3  # permissions, the database's state, the tables


def test_table_sizes_of_a_missing_or_offline_database_fail_clearly(catalog, shop):
    catalog.create_database("Archive", state=6)

    with open_engine() as engine:
        with pytest.raises(EngineFailure, match="no database named 'Gone'"):
            engine.table_sizes("Gone")
        with pytest.raises(EngineFailure, match="database 'Archive' is OFFLINE"):
            engine.table_sizes("Archive")


def test_table_sizes_of_a_database_the_login_cannot_enter_are_refused(catalog, shop):
    catalog.revoke("CONNECT ANY DATABASE", from_="mon")

    with (
        open_engine() as engine,
        pytest.raises(InsufficientPrivileges, match=r"GRANT CONNECT ANY DATABASE TO \[mon\]"),
    ):
        engine.table_sizes("Shop")


# --- Errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("driver_error", "expected"),
    [
        pytest.param(fakedb.mssql_query_timeout(), Timeout, id="query-timeout"),
        pytest.param(fakedb.mssql_connection_reset(), Unreachable, id="connection-reset"),
    ],
)
def test_statement_errors_are_classified(catalog, shop, fake_sqlserver, driver_error, expected):
    fake_sqlserver.on(r"JOIN sys\.master_files AS f", driver_error)

    with open_engine() as engine, pytest.raises(expected) as raised:
        engine.run(engine.database_sizes, ["Shop"])

    assert str(raised.value).startswith(f"{expected.label}: ")

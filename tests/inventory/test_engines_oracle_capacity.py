"""Oracle tablespaces, their files and table sizes through the fake server's dictionary."""

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

MIB = 1024 * 1024
KIB = 1024


def target() -> ConnectionTarget:
    return ConnectionTarget(
        engine="oracle",
        host="oracle.example.test",
        port=1521,
        database="",
        username="whalefall",
        secret="Wf-t3st-pa55",
    )


def open_engine():
    return engine_class("oracle")(target())


def inventory() -> tuple[list[DatabaseRecord], dict[str, DatabaseSize], int]:
    """(tablespaces, sizes of the listed ones by name, statements) of one session."""
    with open_engine() as engine:
        databases = engine.run(engine.list_databases)
        sizes = engine.run(engine.database_sizes, [d.name for d in databases])
        return databases, {size.name: size for size in sizes}, engine.queries


def monitored(catalog: fakedb.OracleCatalog) -> fakedb.OracleCatalog:
    catalog.create_user("WHALEFALL")
    catalog.grant("CREATE SESSION", to="WHALEFALL")
    catalog.grant("SELECT_CATALOG_ROLE", to="WHALEFALL")
    return catalog


@pytest.fixture
def catalog(fake_oracle):
    """A fresh 19c database (SYSTEM, SYSAUX, UNDOTBS1, TEMP, USERS) whose monitoring user
    holds the documented grants."""
    return monitored(fake_oracle.use_catalog())


# --- Tablespaces ---------------------------------------------------------------------------


def test_tablespaces_are_the_databases_users_and_temporary_ones_included(catalog):
    catalog.create_tablespace("APP_DATA")
    catalog.create_tablespace("TEMP_BATCH", contents="TEMPORARY")

    databases, _sizes, _queries = inventory()

    assert databases == [
        DatabaseRecord("APP_DATA", kind="tablespace"),
        DatabaseRecord("TEMP", kind="temporary tablespace"),
        DatabaseRecord("TEMP_BATCH", kind="temporary tablespace"),
        DatabaseRecord("UNDOTBS1", kind="undo tablespace"),
        # The predecessor left out USERS, where users' tables go by default.
        DatabaseRecord("USERS", kind="tablespace"),
    ]
    # SYSTEM and SYSAUX are Oracle's own.


def test_sizes_sum_data_files_and_temp_files(catalog):
    catalog.create_tablespace("APP_DATA", file_bytes=(100 * MIB, 50 * MIB))
    catalog.add_file("USERS", 10 * MIB)
    catalog.add_file("TEMP", 64 * MIB)

    _databases, sizes, _queries = inventory()

    assert sizes["APP_DATA"] == DatabaseSize("APP_DATA", data_bytes=150 * MIB)
    assert sizes["USERS"] == DatabaseSize("USERS", data_bytes=(5 + 10) * MIB)
    assert sizes["TEMP"] == DatabaseSize("TEMP", data_bytes=(32 + 64) * MIB)
    assert sizes["UNDOTBS1"].total_bytes == 340 * MIB
    assert {size.log_bytes for size in sizes.values()} == {0}  # redo is database-wide


def test_a_file_the_database_cannot_read_counts_for_nothing(catalog):
    catalog.create_tablespace("APP_DATA", file_bytes=(100 * MIB,))
    catalog.add_file("APP_DATA", None)
    catalog.create_tablespace("LOST", file_bytes=())
    catalog.add_file("LOST", None)

    _databases, sizes, _queries = inventory()

    assert sizes["APP_DATA"].data_bytes == 100 * MIB
    assert sizes["LOST"].data_bytes == 0


def test_sizes_of_the_names_asked_only(catalog):
    with open_engine() as engine:
        sizes = engine.database_sizes(["USERS", "DROPPED_TS"])
        nothing = engine.database_sizes([])

    assert sizes == [DatabaseSize("USERS", data_bytes=5 * MIB)]
    assert nothing == []


@pytest.mark.parametrize("tablespaces", [3, 40])
def test_the_number_of_statements_does_not_depend_on_the_tablespaces(catalog, tablespaces):
    for index in range(tablespaces):
        catalog.create_tablespace(f"APP{index:02}")

    listed, sizes, queries = inventory()

    assert len(listed) == len(sizes) == tablespaces + 3
    assert queries == 2


def test_without_select_catalog_role_the_tablespaces_are_refused(catalog, fake_oracle):
    catalog.revoke("SELECT_CATALOG_ROLE", from_="WHALEFALL")

    with pytest.raises(InsufficientPrivileges, match="GRANT SELECT_CATALOG_ROLE TO whalefall"):
        inventory()
    with (
        open_engine() as engine,
        pytest.raises(InsufficientPrivileges, match="DBA_DATA_FILES and DBA_TEMP_FILES"),
    ):
        engine.database_sizes(["USERS"])

    assert not any("user_" in sql.lower() for sql in fake_oracle.statements)


def test_oracle_11g_has_the_same_tablespace_views(fake_oracle):
    monitored(fake_oracle.use_catalog(fakedb.OracleCatalog(release="11g")))

    databases, sizes, _queries = inventory()

    assert [d.name for d in databases] == ["TEMP", "UNDOTBS1", "USERS"]
    assert sizes["USERS"].data_bytes == 5 * MIB


# --- Table sizes ---------------------------------------------------------------------------


@pytest.fixture
def app_data(catalog):
    catalog.create_tablespace("APP_DATA")
    catalog.create_table("HR.EMPLOYEES", tablespace="APP_DATA", size=MIB, num_rows=107)
    catalog.create_index("HR.EMP_PK", on="HR.EMPLOYEES", tablespace="APP_DATA", size=64 * KIB)
    catalog.create_index("HR.EMP_NAME_IX", on="HR.EMPLOYEES", tablespace="USERS", size=128 * KIB)
    catalog.add_lob("HR.EMPLOYEES", "PHOTO", tablespace="APP_DATA", size=2 * MIB)
    catalog.create_table("SALES.ORDERS", tablespace="APP_DATA", partitions=(MIB, 3 * MIB))
    catalog.create_table("HR.JOBS", tablespace="USERS", size=64 * KIB, num_rows=19)
    return catalog


def test_table_sizes_sum_the_segments_of_the_tablespace_under_their_table(app_data):
    with open_engine() as engine:
        tables = engine.run(engine.table_sizes, "APP_DATA")

    assert tables == [
        TableSize(
            "HR",
            "EMPLOYEES",
            rows=107,
            data_bytes=MIB + 2 * MIB,  # the table and its LOB segment
            index_bytes=64 * KIB + 64 * KIB,  # its primary key and its LOB index
            total_bytes=3 * MIB + 128 * KIB,
        ),
        # Partitions add up; no statistics gathered yet: no row estimate.
        TableSize("SALES", "ORDERS", None, 4 * MIB, 0, 4 * MIB),
    ]
    # EMP_NAME_IX and HR.JOBS are stored in USERS.


def test_an_index_in_another_tablespace_is_counted_there(app_data):
    with open_engine() as engine:
        tables = engine.table_sizes("USERS")

    assert tables == [
        TableSize("HR", "EMPLOYEES", 107, 0, 128 * KIB, 128 * KIB),
        TableSize("HR", "JOBS", 19, 64 * KIB, 0, 64 * KIB),
    ]


def test_table_sizes_take_a_fixed_number_of_statements(app_data, fake_oracle):
    for index in range(30):
        app_data.create_table(f"APP.T{index:02}", tablespace="APP_DATA", num_rows=index)

    with open_engine() as engine:
        tables = engine.table_sizes("APP_DATA")
        queries = engine.queries

    assert len(tables) == 32
    assert queries == 2  # the tablespaces, the segments
    assert fake_oracle.executed[-1].params == {"tablespace": "APP_DATA"}


def test_table_sizes_of_a_missing_tablespace_fail_clearly(catalog):
    with (
        open_engine() as engine,
        pytest.raises(EngineFailure, match="no tablespace named 'GONE'"),
    ):
        engine.table_sizes("GONE")


# --- Errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("driver_error", "expected"),
    [
        pytest.param(fakedb.oracle_call_timeout(120_000), Timeout, id="DPY-4024"),
        pytest.param(fakedb.oracle_connection_closed(), Unreachable, id="DPY-4011"),
    ],
)
def test_statement_errors_are_classified(catalog, fake_oracle, driver_error, expected):
    fake_oracle.on(r"FROM dba_data_files GROUP BY", driver_error)

    with open_engine() as engine, pytest.raises(expected) as raised:
        engine.run(engine.database_sizes, ["USERS"])

    assert str(raised.value).startswith(f"{expected.label}: ")

"""PostgreSQL databases and their sizes against the local PostgreSQL server.

Every database and role is created under a random prefix and dropped afterwards, so runs
can overlap without touching each other's objects. The monitoring role is a member of
``whalefall_password_auth``, so the server makes it authenticate with its password.
"""

import secrets
import time

import psycopg
import pytest
from psycopg import sql

from inventory.engines.base import (
    ConnectionTarget,
    DatabaseRecord,
    EngineFailure,
    InsufficientPrivileges,
    Timeout,
    Unreachable,
    engine_class,
)

HOST = "127.0.0.1"
PORT = 5432
PASSWORD = "Mon-" + secrets.token_hex(8)
ORDERS = 20000  # rows with a 200-character note, a primary key and a secondary index


def _admin(database: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(host=HOST, port=PORT, user="postgres", dbname=database, autocommit=True)


class PostgreSQL:
    """Superuser session on the local PostgreSQL, remembering what to drop."""

    def __init__(self) -> None:
        self.prefix = f"wfc{secrets.token_hex(3)}_"
        self.connection = _admin()
        self.databases: list[str] = []
        self.roles: list[str] = []

    def run(self, statement: str, database: str | None = None) -> list[tuple]:
        if database is None:
            cursor = self.connection.execute(statement)
            return cursor.fetchall() if cursor.description else []
        with _admin(database) as connection:
            cursor = connection.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def database(self, name: str, *options: str) -> str:
        self.databases.append(name)
        self.run(f'CREATE DATABASE "{name}" {" ".join(options)}')
        return name

    def role(self, name: str) -> str:
        role = f"{self.prefix}{name}"
        self.roles.append(role)
        self.run(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE whalefall_password_auth")
            .format(sql.Identifier(role), sql.Literal(PASSWORD))
            .as_string(self.connection)
        )
        return role

    def close(self) -> None:
        for name in self.databases:
            self.run(f'ALTER DATABASE "{name}" IS_TEMPLATE false')  # a template cannot go
            self.run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for role in self.roles:
            self.run(f'DROP ROLE IF EXISTS "{role}"')
        self.connection.close()


@pytest.fixture(scope="module")
def server():
    server = PostgreSQL()
    try:
        shop = server.database(f"{server.prefix}Shop")  # mixed case: kept as created
        for statement in (
            "CREATE SCHEMA sales",
            "CREATE TABLE sales.orders (id int PRIMARY KEY, customer int, note text)",
            "INSERT INTO sales.orders SELECT n, n % 97, repeat('x', 200)"
            " FROM generate_series(1, 20000) AS n",  # ORDERS
            "CREATE INDEX orders_customer ON sales.orders (customer)",
            "CREATE TABLE sales.events (day date, body text) PARTITION BY RANGE (day)",
            "CREATE TABLE sales.events_2025 PARTITION OF sales.events"
            " FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')",
            "CREATE TABLE sales.events_2026 PARTITION OF sales.events"
            " FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
            "INSERT INTO sales.events SELECT date '2025-01-01' + n % 365, 'e'"
            " FROM generate_series(1, 1000) AS n",
            "ANALYZE",
            # Never vacuumed nor analysed (and no index, whose creation would count rows).
            "CREATE TABLE public.fresh (id int)",
            "INSERT INTO public.fresh VALUES (1), (2), (3)",
        ):
            server.run(statement, database=shop)
        server.database(f"{server.prefix}empty")
        server.database(f"pg_{server.prefix}system")  # a system pattern: pg\_%
        server.database(f"pg{server.prefix}kept")  # not pg_…: the _ is not a wildcard
        server.database(f"{server.prefix}template", "IS_TEMPLATE true")
        server.role("monitor")
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def shop(server) -> str:
    return f"{server.prefix}Shop"


def target(server: PostgreSQL, **overrides) -> ConnectionTarget:
    values = {
        "engine": "postgresql",
        "host": HOST,
        "port": PORT,
        "database": "",
        "username": f"{server.prefix}monitor",
        "secret": PASSWORD,
        "connect_timeout": 2.0,
        "query_timeout": 10.0,
    }
    return ConnectionTarget(**(values | overrides))


def open_engine(server: PostgreSQL, **overrides):
    return engine_class("postgresql")(target(server, **overrides))


# --- Databases ----------------------------------------------------------------------------


def test_lists_databases_in_their_real_case_without_system_ones(server, shop):
    with open_engine(server) as engine:
        databases = engine.run(engine.list_databases)

    names = {d.name for d in databases}
    mine = {name for name in names if server.prefix in name}
    assert mine == {shop, f"{server.prefix}empty", f"pg{server.prefix}kept"}
    assert not names & {"postgres", "template0", "template1"}
    assert DatabaseRecord(shop) in databases


def test_sizes_are_those_of_pg_database_size(server, shop):
    empty = f"{server.prefix}empty"

    with open_engine(server) as engine:
        sizes = {s.name: s for s in engine.run(engine.database_sizes, [shop, empty, "wf_gone"])}

    assert set(sizes) == {shop, empty}  # a database that does not exist is left out
    ((expected,),) = server.run(f"SELECT pg_database_size('{shop}')")
    assert sizes[shop].data_bytes == expected
    assert sizes[shop].log_bytes == 0  # the WAL belongs to the whole server
    assert sizes[shop].total_bytes == sizes[shop].data_bytes
    # A new database is a copy of template1; the shop holds its orders on top of that.
    assert sizes[empty].data_bytes > 1024 * 1024
    assert sizes[shop].data_bytes - sizes[empty].data_bytes > ORDERS * 200


def test_table_sizes_of_one_database(server, shop):
    with open_engine(server) as engine:
        tables = {(t.schema, t.table): t for t in engine.run(engine.table_sizes, shop)}

    # Partitions hold the data of a partitioned table, which has none of its own.
    assert set(tables) == {
        ("public", "fresh"),
        ("sales", "events_2025"),
        ("sales", "events_2026"),
        ("sales", "orders"),
    }
    orders = tables["sales", "orders"]
    assert orders.rows == ORDERS  # ANALYZE read every row of so small a table
    assert orders.data_bytes > ORDERS * 200
    assert orders.index_bytes > 2 * ORDERS * 8  # two indexes of int keys
    assert orders.total_bytes == orders.data_bytes + orders.index_bytes
    assert tables["public", "fresh"].rows is None  # no estimate before the first ANALYZE
    events_2025, events_2026 = tables["sales", "events_2025"], tables["sales", "events_2026"]
    assert (events_2025.rows, events_2026.rows) == (1000, 0)
    assert events_2026.total_bytes < events_2025.total_bytes


def test_the_number_of_statements_does_not_depend_on_the_databases(server):
    def statements() -> tuple[int, int]:
        with open_engine(server) as engine:
            databases = engine.list_databases()
            engine.database_sizes([d.name for d in databases])
            return len(databases), engine.queries

    few, few_queries = statements()
    for index in range(3):
        server.database(f"{server.prefix}more{index}")
    many, many_queries = statements()

    assert many == few + 3
    assert few_queries == many_queries == 2


def test_table_sizes_read_in_one_statement(server, shop):
    with open_engine(server) as engine:
        engine.table_sizes(shop)

    assert engine.queries == 1


def test_table_sizes_of_a_missing_database_are_an_engine_failure(server):
    # The name is echoed by the server; "tls" and "ssl" in it must not make a TLS error.
    missing = f"{server.prefix}outlets_tls_ssl"

    with open_engine(server) as engine, pytest.raises(EngineFailure) as raised:
        engine.run(engine.table_sizes, missing)

    assert type(raised.value) is EngineFailure
    assert "does not exist" in str(raised.value)


def test_table_sizes_without_connect_are_refused(server):
    locked = server.database(f"{server.prefix}locked")
    server.run(f'REVOKE CONNECT ON DATABASE "{locked}" FROM PUBLIC')

    with (
        open_engine(server) as engine,
        pytest.raises(InsufficientPrivileges, match="GRANT CONNECT ON DATABASE"),
    ):
        engine.run(engine.table_sizes, locked)


def test_table_sizes_stop_at_the_query_timeout(server, shop):
    with _admin(shop) as blocker:
        blocker.autocommit = False
        blocker.execute("LOCK TABLE sales.orders IN ACCESS EXCLUSIVE MODE")
        with open_engine(server, query_timeout=1) as engine:
            started = time.monotonic()
            with pytest.raises(Timeout, match="statement timeout"):
                engine.run(engine.table_sizes, shop)
            elapsed = time.monotonic() - started
        blocker.rollback()

    assert 0.9 < elapsed < 3


def test_a_session_terminated_on_the_server_is_unreachable(server):
    with open_engine(server) as engine:
        ((pid,),) = engine.query("SELECT pg_backend_pid()")
        server.run(f"SELECT pg_terminate_backend({pid})")
        with pytest.raises(Unreachable, match="terminating connection"):
            engine.run(engine.list_databases)

"""MySQL/MariaDB databases and their sizes against the local MariaDB.

Every database and account is created under a random prefix and dropped afterwards, so
runs can overlap without touching each other's objects.
"""

import secrets

import MySQLdb
import pytest

from inventory.engines.base import (
    ConnectionTarget,
    DatabaseRecord,
    DatabaseSize,
    EngineFailure,
    InsufficientPrivileges,
    Unreachable,
    engine_class,
)

HOST = "127.0.0.1"
PORT = 3306
PASSWORD = "Mon-" + secrets.token_hex(8)
ORDERS = 5000  # rows of 200 characters, InnoDB, with a secondary index
ARCHIVE = 1000  # rows of CHAR(100), MyISAM: exact row count and lengths


class MariaDB:
    """Root session on the local MariaDB, remembering what to drop."""

    def __init__(self) -> None:
        self.prefix = f"wfc{secrets.token_hex(3)}_"
        self.connection = MySQLdb.connect(
            host=HOST, port=PORT, user="root", password="", autocommit=True
        )
        self.databases: list[str] = []
        self.users: list[str] = []

    def run(self, *statements: str, params: tuple | None = None) -> list[tuple]:
        """Run ``statements`` (each with ``params``); the rows of the last one."""
        rows: list[tuple] = []
        with self.connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement, params)
                rows = list(cursor.fetchall())
        return rows

    def database(self, name: str) -> str:
        self.databases.append(name)
        self.run(f"CREATE DATABASE `{name}`")
        return name

    def user(self, name: str, *grants: str) -> str:
        user = f"{self.prefix}{name}"
        self.users.append(user)
        self.run(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}'")
        for grant in grants:
            self.run(f"GRANT {grant} TO '{user}'@'%'")
        return user

    def close(self) -> None:
        for user in self.users:
            self.run(f"DROP USER IF EXISTS '{user}'@'%'")
        for name in self.databases:
            self.run(f"DROP DATABASE IF EXISTS `{name}`")
        self.connection.close()


@pytest.fixture(scope="module")
def server():
    server = MariaDB()
    try:
        shop = server.database(f"{server.prefix}Shop")  # mixed case: kept as created
        server.run(f"USE `{shop}`")
        server.run(
            "CREATE TABLE orders (id INT PRIMARY KEY, customer INT, note VARCHAR(200),"
            " KEY customer (customer)) ENGINE=InnoDB",
            "CREATE TABLE archive (id INT NOT NULL, body CHAR(100) NOT NULL) ENGINE=MyISAM",
            "CREATE VIEW big_orders AS SELECT * FROM orders",
        )
        server.run(  # ORDERS and ARCHIVE rows, from MariaDB's Sequence engine
            "INSERT INTO orders SELECT seq, seq % 97, REPEAT('x', 200) FROM seq_1_to_5000",
            "INSERT INTO archive SELECT seq, 'y' FROM seq_1_to_1000",
        )
        server.run("ANALYZE TABLE orders")
        server.database(f"{server.prefix}empty")
        server.database(f"tmp_{server.prefix}scratch")  # a system pattern: tmp\_%
        server.database(f"tmp{server.prefix}kept")  # not tmp_…: the _ is not a wildcard
        server.user("monitor", "SELECT ON mysql.*", "SHOW VIEW ON *.*")
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def shop(server) -> str:
    return f"{server.prefix}Shop"


def target(user: str, **overrides) -> ConnectionTarget:
    values = {
        "engine": "mysql",
        "host": HOST,
        "port": PORT,
        "database": "",
        "username": user,
        "secret": PASSWORD,
        "connect_timeout": 2.0,
        "query_timeout": 10.0,
    }
    return ConnectionTarget(**(values | overrides))


def open_engine(server: MariaDB, user: str = "monitor"):
    return engine_class("mysql")(target(f"{server.prefix}{user}"))


def root_sizes(server: MariaDB, schema: str) -> int:
    """What root sees in information_schema for ``schema``."""
    ((total,),) = server.run(
        "SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = %s",
        params=(schema,),
    )
    return int(total)


# --- Databases ----------------------------------------------------------------------------


def test_lists_databases_in_their_real_case_without_system_ones(server, shop):
    with open_engine(server) as engine:
        databases = engine.run(engine.list_databases)

    names = {d.name for d in databases}
    mine = {name for name in names if server.prefix in name}
    assert mine == {shop, f"{server.prefix}empty", f"tmp{server.prefix}kept"}
    assert not names & {"information_schema", "performance_schema", "mysql", "sys"}
    assert DatabaseRecord(shop) in databases
    assert [d.name for d in databases] == sorted(names)


def test_sizes_are_data_and_index_lengths_and_an_empty_database_weighs_nothing(server, shop):
    empty = f"{server.prefix}empty"

    with open_engine(server) as engine:
        sizes = {s.name: s for s in engine.run(engine.database_sizes, [shop, empty, "wf_gone"])}

    assert set(sizes) == {shop, empty}  # a database that does not exist is left out
    assert sizes[empty] == DatabaseSize(empty, data_bytes=0)
    # The monitoring account sees every table root sees, and nothing is a log.
    assert sizes[shop] == DatabaseSize(shop, data_bytes=root_sizes(server, shop))
    assert ORDERS * 200 + ARCHIVE * 100 < sizes[shop].total_bytes < 16 * 1024 * 1024


def test_table_sizes_of_one_database(server, shop):
    with open_engine(server) as engine:
        tables = {t.table: t for t in engine.run(engine.table_sizes, shop)}

    assert set(tables) == {"archive", "orders"}  # the view takes no space
    orders, archive = tables["orders"], tables["archive"]
    assert orders.schema == shop
    assert 0.5 * ORDERS < orders.rows < 1.5 * ORDERS  # InnoDB samples its row count
    assert orders.data_bytes > ORDERS * 200
    assert orders.index_bytes > 0  # the secondary index
    assert orders.total_bytes == orders.data_bytes + orders.index_bytes
    assert archive.rows == ARCHIVE  # MyISAM counts exactly
    assert archive.data_bytes >= ARCHIVE * 100
    assert archive.total_bytes == archive.data_bytes + archive.index_bytes


def test_table_sizes_of_an_empty_or_missing_database(server):
    with open_engine(server) as engine:
        assert engine.table_sizes(f"{server.prefix}empty") == []
        with pytest.raises(EngineFailure, match="no database named 'wf_gone'"):
            engine.table_sizes("wf_gone")


def test_the_number_of_statements_does_not_depend_on_the_databases(server, shop):
    def statements() -> tuple[int, int]:
        with open_engine(server) as engine:
            before = engine.queries  # the session's own set-up statements
            databases = engine.list_databases()
            engine.database_sizes([d.name for d in databases])
            return len(databases), engine.queries - before

    few, few_queries = statements()
    for index in range(5):
        server.database(f"{server.prefix}more{index}")
    many, many_queries = statements()

    assert many == few + 5
    assert few_queries == many_queries == 3  # SHOW GRANTS, the databases, their sizes


def test_an_account_without_a_global_table_privilege_is_refused(server, shop):
    # information_schema would silently show it its own database only.
    server.user("narrow", "SELECT ON mysql.*", f"SELECT ON `{shop}`.*")

    with (
        open_engine(server, "narrow") as engine,
        pytest.raises(InsufficientPrivileges, match=r"GRANT SHOW VIEW ON \*\.\* TO it"),
    ):
        engine.list_databases()
    with open_engine(server, "narrow") as engine, pytest.raises(InsufficientPrivileges):
        engine.database_sizes([shop])


def test_the_refusal_never_shows_the_password_hash(server):
    user = server.user("hashed")

    with open_engine(server, "hashed") as engine, pytest.raises(InsufficientPrivileges) as raised:
        engine.list_databases()

    ((grants,),) = server.run(f"SHOW GRANTS FOR '{user}'@'%'")
    assert "PASSWORD" in grants  # MariaDB prints the hash in SHOW GRANTS
    assert "*" not in str(raised.value).replace("*.*", "")


def test_a_session_killed_on_the_server_is_unreachable(server):
    with open_engine(server) as engine:
        (connection_id,) = engine.query("SELECT CONNECTION_ID()")[0]
        server.run(f"KILL {connection_id}")
        with pytest.raises(Unreachable):
            engine.run(engine.list_databases)

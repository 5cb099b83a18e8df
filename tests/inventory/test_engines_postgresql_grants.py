"""PostgreSQL accounts, grants and role memberships against the local PostgreSQL server.

Every role and database is created under a random prefix and dropped afterwards. The
monitoring role is an ordinary login role (no superuser, no USAGE on any schema), so every
read below is one the documented monitoring role can make. The server is shared with other
runs, so deep reads are limited to this module's databases (``Engine`` below) and the
assertions look at this module's objects only.
"""

import secrets

import psycopg
import pytest
from psycopg import sql

from inventory.engines.base import (
    PUBLIC_ACCOUNT,
    ConnectionTarget,
    InsufficientPrivileges,
    engine_class,
    object_name,
)

HOST = "127.0.0.1"
PORT = 5432
PASSWORD = "Mon-" + secrets.token_hex(8)
PUBLIC = PUBLIC_ACCOUNT.key


def _connect(database: str = "postgres", user: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(host=HOST, port=PORT, user=user, dbname=database, autocommit=True)


class Server:
    """Superuser session on the local PostgreSQL, remembering what to drop."""

    def __init__(self) -> None:
        self.prefix = f"wfg{secrets.token_hex(3)}_"
        self.connection = _connect()
        self.roles: list[str] = []
        self.databases: list[str] = []

    def run(self, *statements: str, database: str | None = None, user: str = "postgres"):
        with _connect(database or "postgres", user) as connection:
            for statement in statements:
                connection.execute(statement)

    def role(self, name: str, options: str = "NOLOGIN") -> str:
        role = f"{self.prefix}{name}"
        self.roles.append(role)
        self.connection.execute(sql.SQL("CREATE ROLE {} " + options).format(sql.Identifier(role)))
        return role

    def database(self, name: str, owner: str) -> str:
        database = f"{self.prefix}{name}"
        self.databases.append(database)
        self.connection.execute(f'CREATE DATABASE "{database}" OWNER "{owner}"')
        return database

    def drop(self, database: str) -> None:
        """Drop ``database`` now: one without CONNECT for PUBLIC would stop the deep reads
        of other runs on this server."""
        self.connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    def close(self) -> None:
        for name in self.databases:
            self.connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for name in reversed(self.roles):
            self.connection.execute(f'DROP ROLE IF EXISTS "{name}"')
        self.connection.close()


class Engine(engine_class("postgresql")):
    """The engine, reading deep privileges of this module's databases only (other runs
    create and drop databases on the same server, some without CONNECT for PUBLIC), and
    counting the statements of each database's read."""

    prefix = ""

    def _deep_grants(self, datname, acl_item):
        if not datname.startswith(self.prefix):
            return
        before = self.queries
        super()._deep_grants(datname, acl_item)
        self.per_database[datname] = self.queries - before


def open_engine(server: Server, monitor: str) -> Engine:
    engine = Engine(
        ConnectionTarget(
            engine="postgresql",
            host=HOST,
            port=PORT,
            database="",
            username=monitor,
            secret=PASSWORD,
            connect_timeout=2.0,
            query_timeout=20.0,
        )
    )
    engine.prefix = server.prefix
    engine.per_database = {}
    return engine


def read(server: Server, monitor: str, *, deep: bool) -> dict:
    with open_engine(server, monitor) as engine:
        return engine.collect_privileges(engine.list_accounts(), deep=deep)


def user(name: str) -> tuple[str, str, str]:
    return ("user", name, "")


def role(name: str) -> tuple[str, str, str]:
    return ("role", name, "")


@pytest.fixture(scope="module")
def server():
    server = Server()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def monitor(server) -> str:
    return server.role("monitor", f"LOGIN PASSWORD '{PASSWORD}'")


@pytest.fixture(scope="module")
def scene(server, monitor) -> dict:
    """Roles, memberships and one database holding every kind of grant."""
    owner = server.role("owner", "LOGIN")
    app = server.role("app", "LOGIN")
    group = server.role("group")
    noinherit = server.role("noinherit", "LOGIN NOINHERIT")
    server.run(
        f"GRANT {group} TO {app} WITH ADMIN OPTION",
        f"GRANT {group} TO {noinherit}",
        f"GRANT pg_execute_server_program TO {group}",
        f"GRANT pg_read_all_data TO {app}",
    )
    shop = server.database("shop", owner)
    server.run(
        # the schema "a.b" with table c, and the schema a with table "b.c"
        'CREATE SCHEMA "a.b"',
        'CREATE TABLE "a.b".c (x int)',
        "CREATE SCHEMA a",
        'CREATE TABLE a."b.c" (x int, y int)',
        f'GRANT SELECT ON "a.b".c TO {app}',
        f'GRANT SELECT ON a."b.c" TO {app} WITH GRANT OPTION',
        f'GRANT UPDATE (y) ON a."b.c" TO {app}',
        # routines: NULL ACLs (PUBLIC EXECUTE) and an explicit one
        "CREATE SCHEMA s",
        "CREATE FUNCTION s.add(a integer, b integer) RETURNS integer LANGUAGE sql "
        "AS 'SELECT a + b'",
        "CREATE AGGREGATE s.total(integer) (SFUNC = int4pl, STYPE = integer)",
        "CREATE PROCEDURE s.tidy() LANGUAGE sql AS 'SELECT 1'",
        "REVOKE EXECUTE ON PROCEDURE s.tidy() FROM PUBLIC",
        f"GRANT EXECUTE ON PROCEDURE s.tidy() TO {app}",
        # default privileges: per schema, global, and a built-in default revoked
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA s GRANT SELECT ON TABLES TO {app} WITH GRANT OPTION",
        f"ALTER DEFAULT PRIVILEGES GRANT USAGE ON SEQUENCES TO {group}",
        "ALTER DEFAULT PRIVILEGES GRANT USAGE ON SCHEMAS TO PUBLIC",
        "ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC",
        "CREATE TABLE s.later (id int)",  # created after: gets the default privileges
        database=shop,
        user=owner,
    )
    return {
        "owner": owner,
        "app": app,
        "group": group,
        "noinherit": noinherit,
        "shop": shop,
    }


@pytest.fixture(scope="module")
def deep(server, monitor, scene) -> tuple[dict, Engine]:
    with open_engine(server, monitor) as engine:
        accounts = engine.list_accounts()
        instance_statements = engine.queries
        privileges = engine.collect_privileges(accounts, deep=True)
    return privileges, engine, instance_statements


# --- Accounts ---------------------------------------------------------------------------


def test_accounts_are_keyed_by_kind_name_and_host_with_the_public_account(server, monitor, scene):
    with open_engine(server, monitor) as engine:
        accounts = engine.list_accounts()
    keys = {account.key for account in accounts}

    assert accounts[0] == PUBLIC_ACCOUNT
    assert PUBLIC == ("public", "PUBLIC", "")
    assert {user(scene["app"]), user(scene["owner"]), role(scene["group"])} <= keys
    assert user("postgres") in keys
    assert not any(name.startswith("pg_") for _kind, name, _host in keys)


# --- PUBLIC -----------------------------------------------------------------------------


def test_public_holds_the_built_in_database_defaults(server, monitor, scene):
    privileges = read(server, monitor, deep=False)
    shop = object_name(scene["shop"])

    public = privileges[PUBLIC]
    assert public["engine"] == "postgresql"
    assert public["attributes"] == {}
    assert public["roles"] == public["memberships"] == []
    assert ("database", shop, "CONNECT", "") in public["grants"]
    assert ("database", shop, "TEMPORARY", "") in public["grants"]
    assert not any(grant[1] in ("template0", "template1") for grant in public["grants"])
    # no deep grants without deep privileges
    assert {grant[0] for grant in public["grants"]} == {"database"}
    # never copied onto other accounts; the owner holds ownership, not its privileges
    assert privileges[user(scene["app"])]["grants"] == []
    assert [g for g in privileges[user(scene["owner"])]["grants"] if g[1] == shop] == [
        ("database", shop, "OWNER", "")
    ]


def test_revoking_connect_from_public_removes_it(server, monitor, scene):
    other = server.database("revoked", scene["owner"])
    try:
        before = read(server, monitor, deep=False)[PUBLIC]["grants"]
        server.run(f'REVOKE CONNECT ON DATABASE "{other}" FROM PUBLIC')
        after = read(server, monitor, deep=False)[PUBLIC]["grants"]
    finally:
        server.drop(other)

    assert ("database", other, "CONNECT", "") in before
    assert ("database", other, "CONNECT", "") not in after
    assert ("database", other, "TEMPORARY", "") in after


def test_public_schema_grants_follow_the_schema_acl(server, monitor, scene):
    other = server.database("schema", scene["owner"])
    public_schema = object_name(other, "public")
    before = read(server, monitor, deep=True)[PUBLIC]["grants"]
    server.run("GRANT CREATE ON SCHEMA public TO PUBLIC", database=other)
    after = read(server, monitor, deep=True)[PUBLIC]["grants"]

    # PostgreSQL 15: USAGE only on a new database's schema public
    assert [g for g in before if g[1] == public_schema] == [("schema", public_schema, "USAGE", "")]
    assert set(after) - set(before) == {("schema", public_schema, "CREATE", "")}


def test_public_holds_execute_on_routines_with_a_null_acl(deep, scene):
    privileges, _engine, _statements = deep
    shop, app, owner = scene["shop"], scene["app"], scene["owner"]
    public = privileges[PUBLIC]["grants"]
    add = object_name(shop, "s", "add(a integer, b integer)")
    total = object_name(shop, "s", "total(integer)")
    tidy = object_name(shop, "s", "tidy()")

    assert ("function", add, "EXECUTE", "") in public
    assert ("function", total, "EXECUTE", "") in public
    assert not [g for g in public if g[1] == tidy]
    assert ("procedure", tidy, "EXECUTE", "") in privileges[user(app)]["grants"]
    owner_grants = privileges[user(owner)]["grants"]
    assert ("function", add, "OWNER", "") in owner_grants
    assert ("procedure", tidy, "OWNER", "") in owner_grants
    assert not [g for g in owner_grants if g[1] == add and g[2] != "OWNER"]
    assert ("schema", object_name(shop, "public"), "USAGE", "") in public


# --- Deep grants ------------------------------------------------------------------------


def test_default_privileges(deep, scene):
    privileges, _engine, _statements = deep
    shop, app, owner, group = scene["shop"], scene["app"], scene["owner"], scene["group"]
    in_s = object_name(shop, owner, "s")
    everywhere = object_name(shop, owner, "")

    assert everywhere == f'{shop}.{owner}.""'
    assert ("default", in_s, "SELECT ON TABLES", "GRANT") in privileges[user(app)]["grants"]
    assert ("default", everywhere, "USAGE ON SEQUENCES", "") in privileges[role(group)]["grants"]
    public = [g for g in privileges[PUBLIC]["grants"] if g[0] == "default"]
    assert ("default", everywhere, "USAGE ON SCHEMAS", "") in public
    # the global entry for functions revoked PUBLIC's EXECUTE: only the owner's item is left
    assert not [g for g in public if g[1] == everywhere and g[2].endswith("FUNCTIONS")]
    assert not [g for g in privileges[user(owner)]["grants"] if g[0] == "default"]
    # what a default privilege promises, the table created afterwards has
    later = object_name(shop, "s", "later")
    assert ("table", later, "SELECT", "GRANT") in privileges[user(app)]["grants"]


def test_object_names_keep_dotted_parts_apart(deep, scene):
    privileges, _engine, _statements = deep
    shop = scene["shop"]
    grants = privileges[user(scene["app"])]["grants"]
    owner_grants = privileges[user(scene["owner"])]["grants"]

    assert ("table", f'{shop}."a.b".c', "SELECT", "") in grants
    assert ("table", f'{shop}.a."b.c"', "SELECT", "GRANT") in grants
    assert ("column", f'{shop}.a."b.c".y', "UPDATE", "") in grants
    assert ("schema", f'{shop}."a.b"', "OWNER", "") in owner_grants
    assert ("schema", f"{shop}.a", "OWNER", "") in owner_grants
    assert ("table", f'{shop}."a.b".c', "OWNER", "") in owner_grants


# --- Memberships --------------------------------------------------------------------------


def test_memberships_before_16(deep, scene):
    privileges, _engine, _statements = deep
    app, group, noinherit = user(scene["app"]), role(scene["group"]), user(scene["noinherit"])

    assert privileges[app]["roles"] == sorted(["pg_read_all_data", scene["group"]])
    assert privileges[app]["attributes"]["admin_roles"] == [scene["group"]]
    assert privileges[app]["memberships"] == sorted(
        [
            {"role": group, "inherit": True, "set": True, "admin": True},
            {"role": role("pg_read_all_data"), "inherit": True, "set": True, "admin": False},
        ],
        key=lambda edge: edge["role"],
    )
    # NOINHERIT: the role's privileges only through SET ROLE
    assert privileges[noinherit]["memberships"] == [
        {"role": group, "inherit": False, "set": True, "admin": False}
    ]
    assert privileges[group]["memberships"] == [
        {
            "role": role("pg_execute_server_program"),
            "inherit": True,
            "set": True,
            "admin": False,
        }
    ]
    assert "listed" not in privileges[app]
    assert "listed" not in privileges[group]


def test_unlisted_roles_reached_are_graph_only_principals(deep, scene):
    privileges, _engine, _statements = deep

    program = privileges[role("pg_execute_server_program")]
    assert program["listed"] is False
    assert program["display"] == "pg_execute_server_program"
    assert program["attributes"]["superuser"] is False
    assert program["attributes"]["can_login"] is False
    assert program["grants"] == program["memberships"] == []
    assert privileges[role("pg_read_all_data")]["listed"] is False


def test_pg_database_owner_is_a_principal_per_database(deep, scene):
    privileges, _engine, _statements = deep
    shop, owner = scene["shop"], user(scene["owner"])
    node = ("role", "pg_database_owner", shop)

    # PostgreSQL 15: schema public belongs to pg_database_owner, whose member is the owner
    assert privileges[node]["listed"] is False
    assert privileges[node]["display"] == f"pg_database_owner in {shop}"
    assert privileges[node]["grants"] == [("schema", object_name(shop, "public"), "OWNER", "")]
    assert {"role": node, "inherit": True, "set": True, "admin": False} in privileges[owner][
        "memberships"
    ]
    assert role("pg_database_owner") not in privileges


def test_a_noinherit_database_owner_reaches_pg_database_owner_through_set_role(
    server, monitor, scene
):
    other = server.database("noinherit", scene["noinherit"])
    privileges = read(server, monitor, deep=True)
    node = ("role", "pg_database_owner", other)

    assert {"role": node, "inherit": False, "set": True, "admin": False} in privileges[
        user(scene["noinherit"])
    ]["memberships"]


def test_memberships_from_16_use_the_edge_options(server, monitor, scene, monkeypatch):
    """PostgreSQL 16 rows (one per grantor) fed to the engine: options merge over grantors,
    an edge neither inherited nor settable is left out, the role name stays in ``roles``."""
    with _connect() as connection:
        oids = dict(
            connection.execute(
                "SELECT rolname, oid::int FROM pg_roles WHERE rolname = ANY(%s)",
                ([scene["app"], scene["group"], scene["noinherit"]],),
            ).fetchall()
        )
    app, group, noinherit = oids[scene["app"]], oids[scene["group"]], oids[scene["noinherit"]]
    rows = [
        (app, group, False, False, True),
        (app, group, True, True, False),  # the same membership from another grantor
        (noinherit, group, False, False, False),
    ]
    statements = []
    with open_engine(server, monitor) as engine:
        real_query = engine.query

        def query(statement, params=None):
            statements.append(statement)
            if "inherit_option" in statement:
                return rows
            return real_query(statement, params)

        monkeypatch.setattr(engine, "query", query)
        monkeypatch.setattr(engine, "_server_version_num", lambda: 160004)
        privileges = engine.collect_privileges(engine.list_accounts())

    assert any("m.inherit_option, m.set_option" in s for s in statements)
    assert privileges[user(scene["app"])]["memberships"] == [
        {"role": role(scene["group"]), "inherit": True, "set": True, "admin": True}
    ]
    assert privileges[user(scene["noinherit"])]["memberships"] == []
    assert privileges[user(scene["noinherit"])]["roles"] == [scene["group"]]


# --- Databases out of reach ----------------------------------------------------------------


def test_a_database_dropped_during_the_read_is_left_out(server, monitor, scene, monkeypatch):
    gone = server.database("gone", scene["owner"])
    with open_engine(server, monitor) as engine:
        real_query = engine.query

        def query(statement, params=None):
            rows = real_query(statement, params)
            if "FROM pg_database d" in statement:  # listed, then dropped before it is read
                server.connection.execute(f'DROP DATABASE "{gone}" WITH (FORCE)')
            return rows

        monkeypatch.setattr(engine, "query", query)
        privileges = engine.collect_privileges(engine.list_accounts(), deep=True)

    assert engine.per_database[gone] == 0  # no statement on it
    assert scene["shop"] in engine.per_database
    assert ("database", gone, "OWNER", "") in privileges[user(scene["owner"])]["grants"]


def test_deep_privileges_without_connect_are_refused(server, monitor, scene):
    closed = server.database("closed", scene["owner"])
    server.run(f'REVOKE CONNECT ON DATABASE "{closed}" FROM PUBLIC')
    try:
        with pytest.raises(InsufficientPrivileges) as raised:
            read(server, monitor, deep=True)
    finally:
        server.drop(closed)

    assert f"cannot connect to database '{closed}'" in str(raised.value)
    assert raised.value.__cause__ is None


# --- Statements ---------------------------------------------------------------------------


def test_a_fixed_number_of_statements_whatever_the_accounts(server, monitor, scene, deep):
    _privileges, engine, instance_statements = deep

    assert instance_statements == 1  # pg_roles
    # memberships and databases, then five per database read
    assert engine.queries == instance_statements + 2 + 5 * len(engine.per_database)
    assert engine.per_database[scene["shop"]] == 5
    with open_engine(server, monitor) as engine:
        accounts = engine.list_accounts()
        engine.collect_privileges(accounts[:2])
        few = engine.queries
        engine.collect_privileges(accounts)
        assert engine.queries - few == few - 1 == 2

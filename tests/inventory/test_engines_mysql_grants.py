"""Accounts and privileges of the MySQL/MariaDB engine, read exactly (issue 11).

Against the real local MariaDB 10.11 (root on 127.0.0.1:3306, no password): every account,
role and database is created under a random prefix and dropped afterwards. The decoding
of global privilege masks and the MySQL 8 role tables are also checked without a server.

What the server was seen to store (and the tests below check again):

* ``GRANT … TO PUBLIC`` creates the role row ``User='PUBLIC', Host=''`` (``is_role``) in
  ``mysql.global_priv``, and ``mysql.db`` keeps the grant under ``User='PUBLIC', Host=''``;
  ``GRANT role TO PUBLIC`` is a ``mysql.roles_mapping`` row ``Host='', User='PUBLIC'``, and
  that role (with its own roles) is active for every user without SET ROLE.
* ``GRANT SELECT (c) ON t TO u WITH GRANT OPTION`` stores ``Table_priv='Grant'`` and
  ``Column_priv='Select'`` in ``mysql.tables_priv``: the grant option of a table row is
  that of its column grants too (SHOW GRANTS prints every column grant of the table with
  WITH GRANT OPTION).
* An anonymous account is a ``mysql.global_priv`` row with ``User=''``; a user created
  with host ``''`` is stored with host ``%``, so only roles and PUBLIC have an empty host.
* ``IDENTIFIED VIA mysql_native_password USING PASSWORD('x') OR mysql_native_password``
  keeps the hash at the top and the empty-password alternative in ``auth_or``.
"""

import secrets

import MySQLdb
import pytest

from inventory.engines import mysql
from inventory.engines.base import (
    PUBLIC_ACCOUNT,
    AccountRecord,
    ConnectionTarget,
    EngineFailure,
    engine_class,
)
from tests.accounts.conftest import PASSWORD, MariaDB

HOST, PORT = "127.0.0.1", 3306
ALL_BITS = 2**64 - 1


def engine_for(username: str):
    target = ConnectionTarget(
        engine="mysql",
        host=HOST,
        port=PORT,
        database="",
        username=username,
        secret=PASSWORD,
        connect_timeout=2.0,
        query_timeout=10.0,
    )
    return engine_class("mysql")(target)


def read(username: str):
    """List the accounts and collect their privileges, as the account sync does."""
    with engine_for(username) as engine:
        records = engine.run(engine.list_accounts)
        return records, engine.run(engine.collect_privileges, records)


def as_root_on_socket(*statements: str) -> None:
    """PROXY can only be granted by an account holding PROXY … WITH GRANT OPTION: the
    install's root@localhost (unix socket)."""
    connection = MySQLdb.connect(host="localhost", user="root", password="", autocommit=True)
    try:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        connection.close()


def rows(server: MariaDB, sql: str, params: tuple = ()) -> list[tuple]:
    with server.connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


@pytest.fixture(scope="module")
def server():
    """One scenario for the module: ten accounts and roles, three databases."""
    server = MariaDB(prefix=f"wfg{secrets.token_hex(2)}_")
    p = server.prefix
    names = {
        "p": p,
        "shop": server.database(f"{p}shop"),
        "dotted_db": server.database(f"{p}a.b"),
        "plain_db": server.database(f"{p}a"),
        "monitor": f"{p}monitor",
        "app": f"{p}app",
        "k": f"{p}k",
        "k_host": f"{p}h",
        "k_role": server.role(f"k@{p}h"),
        "anon_host": f"{p}anon.invalid",
        "backup": f"mysql.{p}backup",
        "r1": server.role("r1"),
        "r2": server.role("r2"),
        "r3": server.role("r3"),
        "rx": server.role("rx"),
    }
    n = names
    monitor, app = server.user("monitor"), server.user("app")
    k = server.user("k", host=n["k_host"])
    anonymous = f"''@'{n['anon_host']}'"
    backup = f"'{n['backup']}'@'localhost'"
    server.users |= {anonymous, backup}
    shop = f"`{n['shop']}`"
    try:
        server.run(
            f"CREATE DATABASE {shop}",
            f"CREATE TABLE {shop}.t (c INT, d INT, e INT)",
            f"CREATE TABLE {shop}.u (x INT)",
            f"CREATE DATABASE `{n['dotted_db']}`",
            f"CREATE TABLE `{n['dotted_db']}`.c (i INT)",
            f"CREATE DATABASE `{n['plain_db']}`",
            f"CREATE TABLE `{n['plain_db']}`.`b.c` (i INT)",
            f"CREATE PROCEDURE {shop}.p() SELECT 1",
            f"CREATE FUNCTION {shop}.f() RETURNS INT RETURN 1",
            "SET SESSION sql_mode = 'ORACLE'",
            f"CREATE PACKAGE {shop}.pkg AS PROCEDURE pp; END;",
            f"CREATE PACKAGE BODY {shop}.pkg AS PROCEDURE pp AS BEGIN NULL; END; END;",
            "SET SESSION sql_mode = DEFAULT",
            f"CREATE USER {monitor} IDENTIFIED BY '{PASSWORD}'",
            f"GRANT SELECT ON mysql.* TO {monitor}",
            # A user 'k'@'h' with every global privilege, and a role named `k@h`.
            f"CREATE USER {k}",
            f"GRANT ALL PRIVILEGES ON *.* TO {k} WITH GRANT OPTION",
            f"CREATE ROLE `{n['k_role']}`",
            f"GRANT SELECT ON {shop}.* TO `{n['k_role']}`",
            # Anonymous, and a real account whose name starts with "mysql.".
            f"CREATE USER {anonymous}",
            f"GRANT SELECT ON {shop}.u TO {anonymous}",
            f"CREATE USER {backup} IDENTIFIED VIA mysql_native_password "
            "USING PASSWORD('x') OR mysql_native_password",
            # The application: grants at every level, odd names, routines, roles.
            f"CREATE USER {app} IDENTIFIED BY 'app-pw'",
            f"GRANT SELECT, INSERT ON {shop}.* TO {app}",
            f"GRANT UPDATE ON {shop}.u TO {app}",
            f"GRANT SELECT (x) ON {shop}.u TO {app}",
            f"GRANT SELECT (c), INSERT (d) ON {shop}.t TO {app} WITH GRANT OPTION",
            f"GRANT SELECT ON `{n['dotted_db']}`.c TO {app}",
            f"GRANT SELECT ON `{n['plain_db']}`.`b.c` TO {app}",
            f"GRANT EXECUTE ON PROCEDURE {shop}.p TO {app}",
            f"GRANT EXECUTE, ALTER ROUTINE ON FUNCTION {shop}.f TO {app} WITH GRANT OPTION",
            "SET SESSION sql_mode = 'ORACLE'",
            f"GRANT EXECUTE ON PACKAGE {shop}.pkg TO {app}",
            f"GRANT EXECUTE ON PACKAGE BODY {shop}.pkg TO {app}",
            "SET SESSION sql_mode = DEFAULT",
            # r1 -> r2 -> r3: app holds r1 (its default role) and rx (not default).
            *(f"CREATE ROLE {n[r]}" for r in ("r1", "r2", "r3", "rx")),
            f"GRANT SELECT ON `{n['plain_db']}`.* TO {n['r3']}",
            f"GRANT {n['r3']} TO {n['r2']}",
            f"GRANT {n['r2']} TO {n['r1']}",
            f"GRANT {n['r1']} TO {app}",
            f"GRANT {n['rx']} TO {app} WITH ADMIN OPTION",
            f"SET DEFAULT ROLE {n['r1']} FOR {app}",
        )
        as_root_on_socket(f"GRANT PROXY ON {k} TO {app}")
        # The install scripts write 2**64-1 for "all privileges" (as for mysql@localhost):
        # set it in the table only (no FLUSH PRIVILEGES), for the engine to read.
        rows(
            server,
            "UPDATE mysql.global_priv SET Priv = JSON_SET(Priv, '$.access', %s) "
            "WHERE User = %s AND Host = %s",
            (ALL_BITS, n["k"], n["k_host"]),
        )
        yield server, names
    finally:
        server.close()


@pytest.fixture(scope="module")
def collected(server):
    server, n = server
    records, privileges = read(n["monitor"])
    return n, records, privileges


def grants(privileges, key) -> set[tuple[str, str, str, str]]:
    return set(privileges[key]["grants"])


# --- Identity -------------------------------------------------------------------------------


def test_keys_are_tuples_and_a_user_k_at_h_is_not_the_role_k_at_h(collected):
    n, records, privileges = collected
    user = ("user", n["k"], n["k_host"])
    role = ("role", n["k_role"], "")
    assert n["k_role"] == f"{n['k']}@{n['k_host']}"
    keys = {r.key for r in records}
    assert {user, role} <= keys
    assert AccountRecord(name=n["k"], host=n["k_host"]).key == user
    assert privileges[user]["attributes"]["superuser"] is True
    assert ("global", "", "ALL PRIVILEGES", "GRANT") in grants(privileges, user)
    assert privileges[role]["attributes"]["superuser"] is False
    assert privileges[role]["attributes"]["can_login"] is False
    assert grants(privileges, role) == {("database", n["shop"], "SELECT", "")}


def test_all_bits_set_is_all_privileges_with_grant_option_never_a_bit_number(server, collected):
    n, _records, privileges = collected
    (access,) = rows(
        server[0],
        "SELECT JSON_VALUE(Priv, '$.access') FROM mysql.global_priv WHERE User=%s AND Host=%s",
        (n["k"], n["k_host"]),
    )[0]
    assert int(access) == ALL_BITS
    own = grants(privileges, ("user", n["k"], n["k_host"]))
    names = {privilege for _scope, _obj, privilege, _option in own}
    assert not [name for name in names if "BIT" in name]
    assert {option for *_rest, option in own} == {"GRANT"}
    # Every global privilege MariaDB 10.11 defines (bits 0-38 but GRANT OPTION), plus the
    # ALL PRIVILEGES mark.
    assert names == {n for n in mysql.MARIADB_GLOBAL_BITS[:39] if n} | {"ALL PRIVILEGES"}


def test_anonymous_accounts_are_listed_and_flagged(server, collected):
    n, records, privileges = collected
    stored = rows(
        server[0], "SELECT User, Host FROM mysql.global_priv WHERE Host = %s", (n["anon_host"],)
    )
    assert stored == [("", n["anon_host"])]
    key = ("user", "", n["anon_host"])
    assert key in {r.key for r in records}
    attributes = privileges[key]["attributes"]
    assert attributes["anonymous"] is True
    assert attributes["password_set"] is False
    assert grants(privileges, key) == {("table", f"{n['shop']}.u", "SELECT", "")}
    assert "anonymous" not in privileges[("user", n["app"], "%")]["attributes"]


def test_system_accounts_are_matched_by_user_at_host_and_mysql_dot_names_are_listed(collected):
    n, records, _privileges = collected
    listed = {(r.name, r.host) for r in records}
    assert (n["backup"], "localhost") in listed
    assert ("mariadb.sys", "localhost") not in listed
    assert ("root", "localhost") in listed


def test_password_set_says_whether_a_password_is_needed_without_keeping_the_hash(server, collected):
    n, _records, privileges = collected
    ((app_hash,),) = rows(
        server[0],
        "SELECT JSON_VALUE(Priv, '$.authentication_string') FROM mysql.global_priv WHERE User = %s",
        (n["app"],),
    )
    attributes = {key: value["attributes"] for key, value in privileges.items()}
    assert attributes[("user", n["app"], "%")]["password_set"] is True
    assert attributes[("user", n["monitor"], "%")]["password_set"] is True
    assert attributes[("user", n["k"], n["k_host"])]["password_set"] is False
    # A second, empty-password way in (auth_or) means no password is needed.
    assert attributes[("user", n["backup"], "localhost")]["password_set"] is False
    assert attributes[("user", n["app"], "%")]["plugin"] == "mysql_native_password"
    assert "password_set" not in attributes[("role", n["r1"], "")]
    assert app_hash.startswith("*")
    assert app_hash not in repr(privileges)


# --- Grants -------------------------------------------------------------------------------


def test_every_grant_of_an_account_with_unambiguous_objects_and_routine_scopes(collected):
    n, _records, privileges = collected
    shop = n["shop"]
    assert grants(privileges, ("user", n["app"], "%")) == {
        ("database", shop, "SELECT", ""),
        ("database", shop, "INSERT", ""),
        ("table", f"{shop}.u", "UPDATE", ""),
        ("column", f"{shop}.u.x", "SELECT", ""),
        # The table row of t holds only Grant: the option of its column grants.
        ("column", f"{shop}.t.c", "SELECT", "GRANT"),
        ("column", f"{shop}.t.d", "INSERT", "GRANT"),
        ("table", f'"{n["dotted_db"]}".c', "SELECT", ""),
        ("table", f'{n["plain_db"]}."b.c"', "SELECT", ""),
        ("procedure", f"{shop}.p", "EXECUTE", ""),
        ("function", f"{shop}.f", "EXECUTE", "GRANT"),
        ("function", f"{shop}.f", "ALTER ROUTINE", "GRANT"),
        ("package", f"{shop}.pkg", "EXECUTE", ""),  # PACKAGE and PACKAGE BODY
        ("global", f"{n['k']}.{n['k_host']}", "PROXY", ""),
    }


def test_a_column_grant_option_is_stored_on_the_table_row_and_stays_on_the_columns(server):
    server, n = server
    stored = rows(
        server,
        "SELECT Table_priv, Column_priv FROM mysql.tables_priv "
        "WHERE User = %s AND Db = %s AND Table_name = 't'",
        (n["app"], n["shop"]),
    )
    assert stored == [("Grant", "Select,Insert")]


def test_dotted_names_give_different_objects(collected):
    n, _records, privileges = collected
    objects = {obj for scope, obj, *_ in grants(privileges, ("user", n["app"], "%"))}
    assert f'"{n["dotted_db"]}".c' in objects  # `a.b`.`c`
    assert f'{n["plain_db"]}."b.c"' in objects  # `a`.`b.c`


# --- Roles ----------------------------------------------------------------------------------


def test_memberships_are_the_direct_edges_with_the_default_role_inherited(collected):
    n, _records, privileges = collected
    app = privileges[("user", n["app"], "%")]
    assert sorted(app["memberships"], key=lambda m: m["role"]) == [
        {"role": ("role", n["r1"], ""), "inherit": True, "set": True, "admin": False},
        {"role": ("role", n["rx"], ""), "inherit": False, "set": True, "admin": True},
    ]
    assert sorted(app["roles"]) == [n["r1"], n["rx"]]
    assert app["attributes"]["admin_roles"] == [n["rx"]]
    assert app["attributes"]["default_role"] == n["r1"]
    # An active role's own roles are active with it: role-to-role edges inherit.
    chain = [privileges[("role", n[r], "")]["memberships"] for r in ("r1", "r2", "r3")]
    assert chain == [
        [{"role": ("role", n["r2"], ""), "inherit": True, "set": True, "admin": False}],
        [{"role": ("role", n["r3"], ""), "inherit": True, "set": True, "admin": False}],
        [],
    ]
    assert grants(privileges, ("role", n["r3"], "")) == {("database", n["plain_db"], "SELECT", "")}


def test_public_is_the_pseudo_account_holding_the_grants_to_public(server):
    server, n = server
    role, shop, privilege = n["r3"], f"`{n['shop']}`.*", "DELETE"
    server.run(f"GRANT {privilege} ON {shop} TO PUBLIC", f"GRANT {role} TO PUBLIC")
    try:
        # mysql.db stores the grant to PUBLIC under User='PUBLIC', Host=''.
        stored = rows(
            server, "SELECT User, Host, Delete_priv FROM mysql.db WHERE Db = %s", (n["shop"],)
        )
        public_role = rows(
            server, "SELECT Host, User FROM mysql.roles_mapping WHERE Role = %s", (role,)
        )
        records, privileges = read(n["monitor"])
    finally:
        server.run(f"REVOKE {privilege} ON {shop} FROM PUBLIC", f"REVOKE {role} FROM PUBLIC")
    assert ("PUBLIC", "", "Y") in stored
    assert ("", "PUBLIC") in public_role
    assert PUBLIC_ACCOUNT in records
    assert PUBLIC_ACCOUNT.key == ("public", "PUBLIC", "")
    public = privileges[PUBLIC_ACCOUNT.key]
    assert ("database", n["shop"], "DELETE", "") in public["grants"]
    assert {"role": ("role", role, ""), "inherit": True, "set": True, "admin": False} in public[
        "memberships"
    ]
    assert public["attributes"]["can_login"] is False
    assert "password_set" not in public["attributes"]
    # PUBLIC's grants stay on PUBLIC.
    assert ("database", n["shop"], "DELETE", "") not in privileges[("user", n["app"], "%")][
        "grants"
    ]


# --- Failures and budgets ---------------------------------------------------------------------


def test_a_bit_the_server_does_not_define_fails_the_read_naming_account_and_bit(collected):
    n, _records, _privileges = collected
    with engine_for(n["monitor"]) as engine:
        records = engine.list_accounts()
        # A record as a newer server would write it (bit 45), shown to this 10.11 server.
        engine._account_rows.append(
            {
                "User": "odd",
                "Host": "%",
                "priv": {"access": (1 << 45) | 1, "version_id": 101119},
                "password_set": True,
            }
        )
        engine._keys[("odd", "%")] = ("user", "odd", "%")
        with pytest.raises(EngineFailure) as raised:
            engine.run(engine.collect_privileges, [*records, AccountRecord("odd", "%")])
    message = str(raised.value)
    assert "'odd'@'%'" in message
    assert "bit 45" in message
    assert "PRIVILEGE BIT" not in message


def test_privileges_are_read_in_a_fixed_number_of_queries(server, collected):
    server, n = server
    with engine_for(n["monitor"]) as engine:
        before = engine.queries
        engine.collect_privileges(engine.list_accounts())
        few = engine.queries - before
    extra = server.user("extra")
    server.run(f"CREATE USER {extra}", f"GRANT SELECT ON `{n['shop']}`.t TO {extra}")
    with engine_for(n["monitor"]) as engine:
        before = engine.queries
        engine.collect_privileges(engine.list_accounts())
        assert engine.queries - before == few == 7


# --- Global privilege masks, without a server -------------------------------------------------

V10_4, V10_5_2, V10_5_8, V10_5_9, V10_11, V11_3 = (
    (10, 4, 34),
    (10, 5, 2),
    (10, 5, 8),
    (10, 5, 9),
    (10, 11, 19),
    (11, 3, 2),
)
SPLIT_FROM_SUPER = {
    "SET USER", "FEDERATED ADMIN", "CONNECTION ADMIN", "READ_ONLY ADMIN",
    "REPLICATION SLAVE ADMIN", "BINLOG ADMIN", "BINLOG REPLAY",
}  # fmt: skip


def bits(*numbers: int) -> int:
    return sum(1 << n for n in numbers)


@pytest.mark.parametrize(
    ("server", "last"),
    [(V10_4, 29), (V10_5_2, 37), (V10_5_8, 37), (V10_5_9, 38), (V10_11, 38), (V11_3, 39)],
)
def test_the_last_known_bit_follows_the_server_version(server, last):
    assert mysql.mariadb_last_bit(server) == last


@pytest.mark.parametrize("server", [V10_4, V10_5_9, V10_11, V11_3])
def test_all_64_bits_are_every_privilege_of_the_version_with_grant_option(server):
    decoded = mysql.decode_mariadb_access(ALL_BITS, None, server)
    last = mysql.mariadb_last_bit(server)
    assert decoded.grantable
    assert not decoded.unknown_bits
    assert decoded.privileges[-1] == "ALL PRIVILEGES"
    assert len(decoded.privileges) == last + 1  # every bit but GRANT OPTION, plus ALL
    assert not [p for p in decoded.privileges if "BIT" in p]


def test_a_full_mask_of_the_version_is_all_privileges():
    root = mysql.decode_mariadb_access(2**39 - 1, 101119, V10_11)
    assert root.grantable
    assert "ALL PRIVILEGES" in root.privileges
    without_grant = mysql.decode_mariadb_access(0x7FFFFFFBFF, 101119, V10_11)
    assert not without_grant.grantable
    assert "ALL PRIVILEGES" in without_grant.privileges
    one_short = mysql.decode_mariadb_access(0x7FFFFFFBFF - (1 << 38), 101119, V10_11)
    assert "ALL PRIVILEGES" not in one_short.privileges
    assert "ALL PRIVILEGES" in mysql.decode_mariadb_access(2**30 - 1, None, V10_4).privileges


@pytest.mark.parametrize(
    ("access", "version_id", "server", "unknown", "last"),
    [
        (bits(0, 39), 101119, V10_11, (39,), 38),
        (bits(45, 63), 101119, V10_11, (45, 63), 38),
        (bits(38), 100508, V10_5_8, (38,), 37),
        (bits(30), None, V10_4, (30,), 29),
        # A record without version_id is a 10.4 record: bit 30 is not one of its bits.
        (bits(30), None, V10_11, (30,), 29),
        (bits(39), 110302, V10_11, (39,), 38),  # written by a newer server
    ],
)
def test_a_bit_beyond_the_version_is_reported_not_named(access, version_id, server, unknown, last):
    decoded = mysql.decode_mariadb_access(access, version_id, server)
    assert decoded.unknown_bits == unknown
    assert decoded.last_bit == last
    assert decoded.privileges == ()


@pytest.mark.parametrize(
    ("bit", "server", "name"),
    [
        (20, V10_4, "REPLICATION CLIENT"),
        (20, V10_11, "BINLOG MONITOR"),
        (29, V10_4, "DELETE HISTORY"),
        (37, V10_5_2, "BINLOG REPLAY"),
        (38, V10_5_9, "SLAVE MONITOR"),
        (39, V11_3, "SHOW CREATE ROUTINE"),
    ],
)
def test_each_bit_has_the_name_of_its_version(bit, server, name):
    version_id = {V10_4: None, V10_5_2: 100502, V10_5_9: 100509}.get(server, 110302)
    assert mysql.decode_mariadb_access(1 << bit, version_id, server).privileges == (name,)


def test_a_10_4_record_with_super_holds_what_super_was_split_into():
    super_only = mysql.decode_mariadb_access(bits(15), None, V10_11)
    assert set(super_only.privileges) == {"SUPER"} | SPLIT_FROM_SUPER
    with_slave = mysql.decode_mariadb_access(bits(15, 19), None, V10_11)
    assert set(with_slave.privileges) == {"SUPER", "REPLICATION SLAVE"} | SPLIT_FROM_SUPER | {
        "REPLICATION MASTER ADMIN",
        "SLAVE MONITOR",
    }
    client = mysql.decode_mariadb_access(bits(20), None, V10_11)
    assert set(client.privileges) == {"BINLOG MONITOR", "SLAVE MONITOR"}
    # A 10.5.2 record with REPLICATION SLAVE ADMIN also holds SLAVE MONITOR ...
    admin = mysql.decode_mariadb_access(bits(34), 100502, V10_11)
    assert set(admin.privileges) == {"REPLICATION SLAVE ADMIN", "SLAVE MONITOR"}
    # ... a current one only what it says; on 10.4 itself nothing is added.
    assert mysql.decode_mariadb_access(bits(15), 101119, V10_11).privileges == ("SUPER",)
    assert mysql.decode_mariadb_access(bits(15), None, V10_4).privileges == ("SUPER",)


@pytest.mark.parametrize(
    ("value", "roles"),
    [
        ("", []),
        ("r1", [("r1", "%")]),
        ("r1,r2@localhost", [("r1", "%"), ("r2", "localhost")]),
        ("`r,1`@`%`, 'o''b'@'h.x' ,\"q\"", [("r,1", "%"), ("o'b", "h.x"), ("q", "%")]),
    ],
)
def test_role_lists_are_parsed_with_quoting(value, roles):
    assert mysql.parse_role_list(value) == roles


# --- MySQL 8 role tables, through a fake connection --------------------------------------------


class FakeCursor:
    def __init__(self, tables):
        self.tables, self.description, self.rows = tables, None, []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, sql, params=None):
        if sql not in self.tables:
            raise MySQLdb.ProgrammingError(1146, f"no table for {sql!r}")
        columns, self.rows = self.tables[sql]
        self.description = [(c,) for c in columns]

    def fetchall(self):
        return tuple(self.rows)


class FakeConnection:
    def __init__(self, tables):
        self.tables = tables

    def cursor(self):
        return FakeCursor(self.tables)


PRIV_COLUMNS = ["Select_priv", "Insert_priv", "Grant_priv", "Super_priv", "Create_role_priv"]


def mysql8(activate_all: int, mandatory: str):
    """A MySQL 8.0 server's grant tables, shaped as the server's (column names, Y/N ENUMs,
    role_edges FROM = the role, TO = the grantee)."""

    def user(name, host="%", privs="NNNNN", auth="", locked="Y"):
        values = ["Y" if c == "Y" else "N" for c in privs]
        return (host, name, *values, "caching_sha2_password", auth, "N", None, locked)

    users = [
        user("root", "localhost", "YYYYY", "$A$005$hash", "N"),
        user("mysql.sys", "localhost"),
        user("app", auth="$A$005$apphash", locked="N"),
        user("nopw", locked="N"),
        user("r_read"),
        user("r_base"),
        user("r_write"),
        user("r_mand"),
    ]
    columns = [
        "Host", "User", *PRIV_COLUMNS, "plugin", "authentication_string", "password_expired",
        "password_last_changed", "account_locked",
    ]  # fmt: skip
    return {
        "SELECT * FROM mysql.user": (columns, users),
        "SELECT FROM_HOST, FROM_USER, TO_HOST, TO_USER, WITH_ADMIN_OPTION FROM mysql.role_edges": (
            ["FROM_HOST", "FROM_USER", "TO_HOST", "TO_USER", "WITH_ADMIN_OPTION"],
            [
                ("%", "r_read", "%", "app", "N"),
                ("%", "r_write", "%", "app", "Y"),
                ("%", "r_base", "%", "r_read", "N"),
            ],
        ),
        "SELECT @@activate_all_roles_on_login, @@mandatory_roles": (
            ["@@activate_all_roles_on_login", "@@mandatory_roles"],
            [(activate_all, mandatory)],
        ),
        "SELECT HOST, USER, DEFAULT_ROLE_HOST, DEFAULT_ROLE_USER FROM mysql.default_roles": (
            ["HOST", "USER", "DEFAULT_ROLE_HOST", "DEFAULT_ROLE_USER"],
            [("%", "app", "%", "r_read")],
        ),
        "SELECT USER, HOST, PRIV, WITH_GRANT_OPTION FROM mysql.global_grants": (
            ["USER", "HOST", "PRIV", "WITH_GRANT_OPTION"],
            [("r_write", "%", "ROLE_ADMIN", "N")],
        ),
        "SELECT * FROM mysql.db": (
            ["Host", "Db", "User", "Select_priv", "Insert_priv", "Grant_priv"],
            [("%", "shop", "r_base", "Y", "N", "N")],
        ),
        "SELECT Host, Db, User, Table_name, Table_priv, Column_priv FROM mysql.tables_priv": (
            ["Host", "Db", "User", "Table_name", "Table_priv", "Column_priv"],
            [],
        ),
        "SELECT Host, Db, User, Table_name, Column_name, Column_priv FROM mysql.columns_priv": (
            ["Host", "Db", "User", "Table_name", "Column_name", "Column_priv"],
            [],
        ),
        "SELECT Host, Db, User, Routine_name, Routine_type, Proc_priv FROM mysql.procs_priv": (
            ["Host", "Db", "User", "Routine_name", "Routine_type", "Proc_priv"],
            [("%", "shop", "app", "total", "FUNCTION", "Execute")],
        ),
        "SELECT Host, User, Proxied_host, Proxied_user, With_grant FROM mysql.proxies_priv": (
            ["Host", "User", "Proxied_host", "Proxied_user", "With_grant"],
            [],
        ),
    }


def mysql8_engine(activate_all=0, mandatory=""):
    engine = engine_for("whalefall")
    engine.connection = FakeConnection(mysql8(activate_all, mandatory))
    engine._version = "8.0.36"
    return engine


def edge(role, inherit, admin=False):
    return {"role": ("role", role, "%"), "inherit": inherit, "set": True, "admin": admin}


def test_mysql8_roles_are_the_granted_accounts_and_edges_follow_default_roles():
    engine = mysql8_engine(mandatory="`r_mand`@`%`")
    records = engine.list_accounts()
    kinds = {r.name: r.kind for r in records}
    assert kinds == {
        "root": "user",
        "app": "user",
        "nopw": "user",
        "r_read": "role",
        "r_base": "role",
        "r_write": "role",
        "r_mand": "role",
    }
    privileges = engine.collect_privileges(records)
    app = privileges[("user", "app", "%")]
    assert sorted(app["memberships"], key=lambda m: m["role"]) == [
        edge("r_mand", False),  # mandatory, but neither default nor activated at login
        edge("r_read", True),  # the default role
        edge("r_write", False, admin=True),
    ]
    assert sorted(app["roles"]) == ["r_read@%", "r_write@%"]
    assert app["attributes"]["admin_roles"] == ["r_write@%"]
    assert app["attributes"]["password_set"] is True
    assert app["grants"] == [("function", "shop.total", "EXECUTE", "")]
    # Only direct edges: r_read's own role is on r_read.
    assert privileges[("role", "r_read", "%")]["memberships"] == [edge("r_base", True)]
    assert privileges[("role", "r_base", "%")]["grants"] == [("database", "shop", "SELECT", "")]
    assert privileges[("role", "r_write", "%")]["grants"] == [("global", "", "ROLE_ADMIN", "")]
    assert "password_set" not in privileges[("role", "r_read", "%")]["attributes"]
    assert privileges[("user", "nopw", "%")]["attributes"]["password_set"] is False
    root = privileges[("user", "root", "localhost")]
    assert ("global", "", "ALL PRIVILEGES", "GRANT") in root["grants"]
    assert root["memberships"] == [edge("r_mand", False)]


def test_mysql8_activate_all_roles_on_login_makes_every_granted_role_inherit():
    engine = mysql8_engine(activate_all=1, mandatory="r_mand")
    privileges = engine.collect_privileges(engine.list_accounts())
    app = privileges[("user", "app", "%")]
    assert sorted(app["memberships"], key=lambda m: m["role"]) == [
        edge("r_mand", True),
        edge("r_read", True),
        edge("r_write", True, admin=True),
    ]

"""PostgreSQL, through psycopg 3.

Monitoring account — read-only, no superuser::

    CREATE ROLE whalefall LOGIN PASSWORD '…';
    GRANT pg_read_all_settings, pg_read_all_stats TO whalefall;   -- versions, sizes
    GRANT CONNECT ON DATABASE <each database> TO whalefall;        -- per-database reads

CONNECT is granted to PUBLIC unless revoked, so the last line is only needed where it was.
Role attributes, memberships and database ACLs come from ``pg_roles``, ``pg_auth_members``
and ``pg_database``, which every role can read. Deep privileges (schema, table, column,
function and procedure grants, default privileges) read ``pg_namespace``, ``pg_class``,
``pg_attribute``, ``pg_proc`` and ``pg_default_acl`` in a session on each database: every
role that may connect can read them, without USAGE on the schemas. ``pg_database_size``
needs CONNECT on the database or ``pg_read_all_stats``; table sizes connect to the database
itself (CONNECT) and read ``pg_class`` with the size functions, which check no privilege.
Timeouts: libpq's ``connect_timeout`` bounds connection set-up including authentication;
``statement_timeout`` is set for the session, and every session is read-only
(``default_transaction_read_only``). Authentication: libpq answers SCRAM-SHA-256 only (and
md5 when the instance allows it), never a request for the cleartext password
(``require_auth``, libpq 16+); ``sslmode=require`` refuses a server without TLS before the
startup message.

Grants are read exactly from the ACLs, a NULL ACL standing for its built-in default
(``acldefault``): every database grants CONNECT and TEMPORARY to PUBLIC, every function and
procedure EXECUTE, unless revoked. Grants to PUBLIC belong to the ``PUBLIC`` pseudo-account.
An object's owner holds one ``OWNER`` grant on it instead of its individual privileges.
Objects are named with :func:`~inventory.engines.base.object_name` from their catalog parts:
``database``, ``database.schema``, ``database.schema.table[.column]``,
``database.schema.function(argument types)``; a default privilege is scope ``default``,
object ``database.<role whose future objects it covers>.<schema, or "" for all>``,
privilege ``"SELECT ON TABLES"`` and the like.
"""

import functools
from collections import defaultdict
from datetime import UTC, datetime

import psycopg
from psycopg import errors as pg_errors

from inventory.engines.base import (
    PUBLIC_ACCOUNT,
    AccountKey,
    AccountRecord,
    AuthenticationFailed,
    DatabaseRecord,
    DatabaseSize,
    Engine,
    EngineError,
    EngineFailure,
    InsufficientPrivileges,
    TableSize,
    Timeout,
    TlsError,
    Unreachable,
    VersionInfo,
    is_system_account,
    is_system_database,
    object_name,
    parse_version,
    without_names,
)

SSL_MODES = {
    "disabled": "disable",
    "preferred": "prefer",
    "required": "require",
    "verify": "verify-full",
}

# The authentication methods libpq may answer (require_auth, libpq 16+). Never "password",
# which sends the password itself to whoever listens at host:port; md5 only when the
# instance allows it; "none" (a server that asks for nothing) learns nothing either.
_REQUIRE_AUTH = ("none", "scram-sha-256")
_REQUIRE_AUTH_WITH_MD5 = (*_REQUIRE_AUTH, "md5")
_REQUIRE_AUTH_LIBPQ = 160000

_AUTH_STATES = {"28P01", "28000"}
_AUTH_MARKERS = (
    "password authentication failed",
    "no pg_hba.conf entry",
    "authentication failed",
    "authentication method requirement",  # require_auth refused what the server asked for
)
_UNREACHABLE_MARKERS = (
    "connection refused",
    "could not translate host name",
    "name or service not known",
    "no route to host",
    "network is unreachable",
    "could not connect to server",
    # the session was lost after connecting: server shutdown, terminated backend, network
    "terminating connection",
    "server closed the connection unexpectedly",
    "the connection is closed",
)
_TLS_MARKERS = ("ssl", "certificate", "tls")


class _PostgreSQLConnection(Engine):
    name = "postgresql"
    default_database = "postgres"

    # Databases this engine connected to, besides the target's: the server's errors quote
    # their names, which must not decide how an error is classified.
    _other_databases: frozenset[str] = frozenset()

    def connect_to(self, database: str) -> psycopg.Connection:
        """A new session on ``database`` of the same server, with the same limits."""
        target = self.target
        if database != self.database:
            self._other_databases = self._other_databases | {database}
        timeout_ms = max(1, round(target.query_timeout * 1000))
        if psycopg.pq.version() < _REQUIRE_AUTH_LIBPQ:
            # An older libpq rejects require_auth as an unknown option: say why, and never
            # connect without it.
            raise EngineFailure(
                f"{EngineFailure.label}: libpq {psycopg.pq.version()} cannot refuse cleartext "
                "password authentication (require_auth needs libpq 16 or later)"
            )
        # libpq dials the addresses the outbound guard checked (hostaddr), never the name
        # again, and still verifies the server's certificate against the name (host).
        addresses = target.addresses
        endpoint = (
            {"host": ",".join([target.host] * len(addresses)), "hostaddr": ",".join(addresses)}
            if addresses
            else {"host": target.host}
        )
        return psycopg.connect(
            **endpoint,
            port=target.port,
            dbname=database,
            user=target.username,
            password=target.secret,
            connect_timeout=max(2, round(target.connect_timeout)),
            sslmode=SSL_MODES.get(target.tls_mode, "prefer"),
            require_auth=",".join(
                _REQUIRE_AUTH_WITH_MD5 if target.allow_md5_auth else _REQUIRE_AUTH
            ),
            application_name="whalefall",
            options=f"-c statement_timeout={timeout_ms} -c default_transaction_read_only=on",
            autocommit=True,
        )

    def open(self) -> None:
        self.connection = self.connect_to(self.database)

    def close(self) -> None:
        connection = getattr(self, "connection", None)
        if connection is not None:
            connection.close()
            self.connection = None

    def query(self, sql: str, params: tuple | dict | None = None) -> list[tuple]:
        """Run one read-only statement and return every row."""
        with self.remote(), self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def fetch_version(self) -> str:
        return self.query("SELECT version()")[0][0]

    @classmethod
    def parse_version(cls, raw: str) -> VersionInfo:
        # "PostgreSQL 15.19 (Debian 15.19-0+deb12u1) on x86_64-pc-linux-gnu, …",
        # "PostgreSQL 9.6.24 on …" (three parts before 10), "PostgreSQL 17beta1"
        return parse_version(raw, r"PostgreSQL (\d+)(?:\.(\d+))?(?:\.(\d+))?", 3)

    def classify(self, exc: BaseException) -> type[EngineError]:
        if isinstance(exc, EngineError):
            return type(exc)
        if isinstance(exc, pg_errors.ConnectionTimeout | pg_errors.QueryCanceled):
            return Timeout
        message = without_names(
            str(exc), self.target.host, self.target.username, self.database, *self._other_databases
        ).lower()
        if getattr(exc, "sqlstate", None) in _AUTH_STATES or any(
            marker in message for marker in _AUTH_MARKERS
        ):
            return AuthenticationFailed
        if "timeout expired" in message or "timed out" in message:
            return Timeout
        if any(marker in message for marker in _TLS_MARKERS):
            return TlsError
        if isinstance(exc, psycopg.OperationalError) and any(
            marker in message for marker in _UNREACHABLE_MARKERS
        ):
            return Unreachable
        return EngineFailure


# --- Accounts and privileges ------------------------------------------------------------

ROLES_SQL = """
SELECT oid, rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin,
       rolreplication, rolbypassrls, rolconnlimit, rolvaliduntil
FROM pg_roles
"""
# One row per membership edge (from 16, one per grantor of the same membership). The edge's
# own INHERIT and SET options exist from PostgreSQL 16; before, privileges flow when the
# member has INHERIT and SET ROLE is always allowed.
MEMBERSHIPS_SQL = """
SELECT m.member, m.roleid, m.admin_option, m.inherit_option, m.set_option
FROM pg_auth_members m
"""
MEMBERSHIPS_BEFORE_16_SQL = """
SELECT m.member, m.roleid, m.admin_option, u.rolinherit, true
FROM pg_auth_members m JOIN pg_roles u ON u.oid = m.member
"""
# A NULL ACL stands for the built-in default (acldefault): for a database, CONNECT and
# TEMPORARY to PUBLIC; for a function or procedure, EXECUTE to PUBLIC; for schemas, tables
# and sequences, the owner's privileges only. Every ACL item is one grant; the owner's own
# items are left out, as ownership is its own grant (OWNER), which holds them all.
DATABASES_SQL = """
SELECT d.datname, d.datdba, d.datallowconn AND d.datconnlimit <> -2,
       a.grantee, a.privilege_type, a.is_grantable
FROM pg_database d
LEFT JOIN LATERAL aclexplode(COALESCE(d.datacl, acldefault('d', d.datdba))) a ON true
WHERE NOT d.datistemplate
"""
SCHEMAS_SQL = """
SELECT n.nspname, n.nspowner, a.grantee, a.privilege_type, a.is_grantable
FROM pg_namespace n
LEFT JOIN LATERAL aclexplode(COALESCE(n.nspacl, acldefault('n', n.nspowner))) a ON true
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg\\_temp\\_%'
  AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'
"""
TABLES_SQL = """
SELECT n.nspname, c.relname, c.relowner, a.grantee, a.privilege_type, a.is_grantable
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN LATERAL aclexplode(COALESCE(c.relacl, acldefault(
    CASE WHEN c.relkind = 'S' THEN 's'::"char" ELSE 'r'::"char" END, c.relowner))) a ON true
WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f', 'S')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg\\_temp\\_%'
  AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'
"""
# A column has no default ACL: NULL means no column grant.
COLUMNS_SQL = """
SELECT n.nspname, c.relname, att.attname, a.grantee, a.privilege_type, a.is_grantable
FROM pg_attribute att
JOIN pg_class c ON c.oid = att.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL aclexplode(att.attacl) a
WHERE att.attacl IS NOT NULL AND NOT att.attisdropped
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg\\_temp\\_%'
  AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'
"""
# Functions, procedures, aggregates and window functions, named with their argument types
# (overloads are different objects).
ROUTINES_SQL = """
SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), p.prokind,
       p.proowner, a.grantee, a.privilege_type, a.is_grantable
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
LEFT JOIN LATERAL aclexplode(COALESCE(p.proacl, acldefault('f', p.proowner))) a ON true
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg\\_temp\\_%'
  AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'
"""
# ALTER DEFAULT PRIVILEGES: what objects that defaclrole creates later (in one schema, or
# anywhere when defaclnamespace is 0) will grant.
DEFAULT_ACLS_SQL = """
SELECT d.defaclrole, n.nspname, d.defaclobjtype, a.grantee, a.privilege_type, a.is_grantable
FROM pg_default_acl d
LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
CROSS JOIN LATERAL aclexplode(d.defaclacl) a
"""
OWNER = "OWNER"
ROUTINE_SCOPES = {"f": "function", "p": "procedure", "a": "function", "w": "function"}
DEFAULT_OBJECT_TYPES = {
    "r": "TABLES",
    "S": "SEQUENCES",
    "f": "FUNCTIONS",
    "T": "TYPES",
    "n": "SCHEMAS",
}
_DROPPED_DATABASE = 'database "{}" does not exist'
# Its members are, implicitly, the owner of the current database: one principal per database.
DATABASE_OWNER_ROLE = "pg_database_owner"


def _valid_until(value) -> str | None:
    if value is None or not isinstance(value, datetime) or value.year >= 9999:
        return None  # NULL or 'infinity'
    return value.astimezone(UTC).isoformat()


def _role_key(row) -> AccountKey:
    """The account key of a ``pg_roles`` row: kind user when it can log in, role otherwise."""
    return ("user" if row[6] else "role", row[1], "")


def _attributes(row, now: datetime) -> dict:
    _oid, _name, superuser, inherit, createrole, createdb, canlogin = row[:7]
    replication, bypassrls, connlimit, validuntil = row[7:]
    expires = _valid_until(validuntil)
    expired = validuntil is not None and expires is not None and validuntil < now
    return {
        "superuser": superuser,
        "inherit": inherit,
        "create_role": createrole,
        "create_db": createdb,
        "can_login": canlogin,
        "replication": replication,
        "bypass_rls": bypassrls,
        "connection_limit": connlimit,
        "valid_until": expires,
        "locked": (not canlogin) or expired,
    }


def _reachable(start: set, edges: dict) -> set:
    """``start`` and every principal reachable from it through membership edges."""
    seen, stack = set(start), list(start)
    while stack:
        for role in edges.get(stack.pop(), ()):
            if role not in seen:
                seen.add(role)
                stack.append(role)
    return seen


class PostgreSQLAccountsMixin:
    """Roles, memberships and database ACLs in three queries; with deep privileges, five
    more per database (schemas, tables, columns, routines, default privileges): never a
    query per account.

    Accounts are the roles (kind ``user`` when they can log in, ``role`` otherwise) except
    the system ones (``WHALEFALL_SYSTEM_ACCOUNTS``: the predefined ``pg_*`` roles…), plus
    the ``PUBLIC`` pseudo-account, which holds every grant made to PUBLIC. A role that is not
    listed but that a listed one reaches through memberships (``pg_execute_server_program``,
    ``pg_read_all_data``…) is returned as a graph-only principal (``"listed": False``), with
    its attributes, grants and memberships; so is ``pg_database_owner`` of each database
    where it holds grants, keyed ``("role", "pg_database_owner", <database>)``, the
    database's owner being its one (implicit) member.
    """

    def list_accounts(self) -> list[AccountRecord]:
        rows = self.query(ROLES_SQL)
        self._role_rows = {row[0]: row for row in rows}
        return [PUBLIC_ACCOUNT] + [
            AccountRecord(name=row[1], kind=_role_key(row)[0])
            for row in rows
            if not is_system_account("postgresql", row[1]) or row[1] == "postgres"
        ]

    def _server_version_num(self) -> int:
        return self.connection.info.server_version  # server_version_num, from the handshake

    def collect_privileges(self, accounts: list[AccountRecord], *, deep: bool = False) -> dict:
        """Canonical-ready privilege sets of ``accounts``, keyed by account key, and of the
        graph-only principals they reach."""
        wanted = {a.key for a in accounts}
        if not wanted:
            return {}
        if getattr(self, "_role_rows", None) is None:
            self.list_accounts()
        role_rows = self._role_rows
        keys: dict[int, AccountKey] = {oid: _role_key(row) for oid, row in role_rows.items()}
        keys[0] = PUBLIC_ACCOUNT.key  # grantee 0 in an ACL is PUBLIC
        rows_by_key = {keys[oid]: row for oid, row in role_rows.items()}
        database_owner_oid = next(
            (oid for oid, row in role_rows.items() if row[1] == DATABASE_OWNER_ROLE), None
        )
        since_16 = self._server_version_num() >= 160000

        # Membership edges: member → role → [inherit, set, admin] (merged over grantors).
        edges: dict[AccountKey, dict[AccountKey, list[bool]]] = defaultdict(dict)
        roles: dict[AccountKey, set] = defaultdict(set)
        admin_roles: dict[AccountKey, set] = defaultdict(set)
        memberships_sql = MEMBERSHIPS_SQL if since_16 else MEMBERSHIPS_BEFORE_16_SQL
        for member, role, admin, inherit, can_set in self.query(memberships_sql):
            if member not in keys or role not in keys:
                continue  # created after the roles were read
            member_key, role_key = keys[member], keys[role]
            roles[member_key].add(role_key[1])
            if admin:
                admin_roles[member_key].add(role_key[1])
            flags = edges[member_key].setdefault(role_key, [False, False, False])
            flags[0] |= bool(inherit)
            flags[1] |= bool(can_set)
            flags[2] |= bool(admin)
        for member_key in edges:  # an edge neither inherited nor settable gives nothing
            edges[member_key] = {r: f for r, f in edges[member_key].items() if f[0] or f[1]}
        relevant = _reachable(wanted, edges)

        grants: dict[AccountKey, set] = defaultdict(set)
        database_owners: dict[AccountKey, AccountKey] = {}  # pg_database_owner node → owner

        def principal(oid: int, database: str) -> AccountKey | None:
            if oid == database_owner_oid:
                return ("role", DATABASE_OWNER_ROLE, database)
            return keys.get(oid)

        def acl_item(database, scope, obj, owner, grantee, privilege, grantable):
            """The OWNER grant of ``obj`` and one ACL item on it (the owner's own left out)."""
            if owner is not None:
                key = principal(owner, database)
                if key in relevant:
                    grants[key].add((scope, obj, OWNER, ""))
            if grantee is not None and grantee != owner:
                key = principal(grantee, database)
                if key in relevant:
                    grants[key].add((scope, obj, privilege, "GRANT" if grantable else ""))

        connectable = set()
        for datname, owner, allowconn, grantee, privilege, grantable in self.query(DATABASES_SQL):
            owner_key = keys.get(owner)
            node = ("role", DATABASE_OWNER_ROLE, datname)
            if owner_key in relevant and node not in database_owners:
                database_owners[node] = owner_key
                relevant.add(node)
            if allowconn:
                connectable.add(datname)
            acl_item(
                datname, "database", object_name(datname), owner, grantee, privilege, grantable
            )

        if deep:
            for datname in sorted(connectable):
                self._deep_grants(datname, functools.partial(acl_item, datname))

        now = datetime.now(UTC)
        memberships: dict[AccountKey, list] = defaultdict(list)
        for member_key, targets in edges.items():
            for role_key, (inherit, can_set, admin) in targets.items():
                memberships[member_key].append(
                    {"role": role_key, "inherit": inherit, "set": can_set, "admin": admin}
                )
        for node, owner_key in database_owners.items():
            if grants[node]:  # implicit, inherited from 16 whatever the owner's INHERIT
                inherit = since_16 or bool(rows_by_key[owner_key][3])
                memberships[owner_key].append(
                    {"role": node, "inherit": inherit, "set": True, "admin": False}
                )

        result = {}
        for key in sorted(relevant):
            if key == PUBLIC_ACCOUNT.key:
                entry = {"engine": "postgresql", "attributes": {}, "roles": []}
            elif key in database_owners:
                if not grants[key] or database_owner_oid is None:
                    continue
                entry = {
                    "engine": "postgresql",
                    "attributes": _attributes(role_rows[database_owner_oid], now),
                    "roles": [],
                }
            elif key in rows_by_key:
                entry = {
                    "engine": "postgresql",
                    "attributes": _attributes(rows_by_key[key], now),
                    "roles": sorted(roles[key]),
                }
                if admin_roles[key]:
                    entry["attributes"]["admin_roles"] = sorted(admin_roles[key])
            else:
                continue  # dropped since it was listed
            entry["grants"] = sorted(grants[key])
            entry["memberships"] = sorted(memberships[key], key=lambda edge: edge["role"])
            if key not in wanted:
                entry["listed"] = False
                entry["display"] = f"{key[1]} in {key[2]}" if key[2] else key[1]
            result[key] = entry
        return result

    def _deep_grants(self, datname: str, acl_item) -> None:
        """Schema, table, column, routine and default privilege grants of one database (its
        own session); ``acl_item(scope, object, owner, grantee, privilege, grantable)``."""
        try:
            connection = self.connect_to(datname)
        except psycopg.OperationalError as exc:
            # A refused connection carries no SQLSTATE, only the server's text.
            if _DROPPED_DATABASE.format(datname) in str(exc):
                return  # dropped since pg_database was read: it holds no grant any more
            if _NO_CONNECT_PRIVILEGE in str(exc):
                raise InsufficientPrivileges(
                    f"{InsufficientPrivileges.label}: cannot connect to database {datname!r} "
                    "for deep privileges (GRANT CONNECT ON DATABASE to the monitoring role)"
                ) from None
            raise
        with connection:

            def rows(sql):
                with self.remote(), connection.cursor() as cursor:
                    cursor.execute(sql)
                    return cursor.fetchall()

            for schema, owner, grantee, privilege, grantable in rows(SCHEMAS_SQL):
                obj = object_name(datname, schema)
                acl_item("schema", obj, owner, grantee, privilege, grantable)
            for schema, table, owner, grantee, privilege, grantable in rows(TABLES_SQL):
                obj = object_name(datname, schema, table)
                acl_item("table", obj, owner, grantee, privilege, grantable)
            for schema, table, column, grantee, privilege, grantable in rows(COLUMNS_SQL):
                obj = object_name(datname, schema, table, column)
                acl_item("column", obj, None, grantee, privilege, grantable)
            for schema, name, arguments, kind, owner, grantee, privilege, grantable in rows(
                ROUTINES_SQL
            ):
                obj = object_name(datname, schema, f"{name}({arguments})")
                scope = ROUTINE_SCOPES.get(kind, "function")
                acl_item(scope, obj, owner, grantee, privilege, grantable)
            names = {oid: row[1] for oid, row in self._role_rows.items()}
            for role, schema, objtype, grantee, privilege, grantable in rows(DEFAULT_ACLS_SQL):
                if role not in names:
                    continue  # created after the roles were read
                obj = object_name(datname, names[role], schema or "")
                privilege = f"{privilege} ON {DEFAULT_OBJECT_TYPES.get(objtype, objtype)}"
                # the future owner's own items are left out, as on objects
                if grantee != role:
                    acl_item("default", obj, None, grantee, privilege, grantable)


# --- Databases and sizes ----------------------------------------------------------------

# Templates are not databases anyone stores data in; a database whose DROP was interrupted
# (datconnlimit -2, PostgreSQL 15.4 and later) cannot be sized or entered.
DATABASE_LIST_SQL = """
SELECT datname FROM pg_database WHERE NOT datistemplate AND datconnlimit <> -2
"""
DATABASE_SIZES_SQL = """
SELECT datname, pg_database_size(oid) FROM pg_database WHERE datname = ANY(%s)
"""
# Tables, their partitions and materialized views outside the system schemas (TOAST tables
# are counted with their table, temporary tables belong to other sessions); partitioned
# parents hold no data of their own. reltuples is -1 before the first VACUUM or ANALYZE.
TABLE_SIZES_SQL = """
SELECT n.nspname, c.relname, c.reltuples::bigint, pg_table_size(c.oid),
       pg_indexes_size(c.oid), pg_total_relation_size(c.oid)
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
"""
_NO_CONNECT_PRIVILEGE = "permission denied for database"


class PostgreSQLCapacityMixin:
    """Databases and their sizes from ``pg_database`` (one statement each, whatever the
    number of databases); table sizes from a session on the database itself."""

    def list_databases(self) -> list[DatabaseRecord]:
        return [
            DatabaseRecord(name=name)
            for (name,) in sorted(self.query(DATABASE_LIST_SQL))
            if not is_system_database("postgresql", name)
        ]

    def database_sizes(self, names) -> list[DatabaseSize]:
        """``pg_database_size`` of each database in ``names`` (PostgreSQL's WAL belongs to
        the whole server: log bytes are 0); a database that no longer exists is left out."""
        wanted = sorted(set(names))
        if not wanted:
            return []
        try:
            rows = self.query(DATABASE_SIZES_SQL, (wanted,))
        except pg_errors.InsufficientPrivilege:
            raise InsufficientPrivileges(
                f"{InsufficientPrivileges.label}: the monitoring role may not size every "
                f"database (GRANT pg_read_all_stats TO {self.target.username})"
            ) from None
        return sorted(
            (
                DatabaseSize(name=name, data_bytes=int(size))
                for name, size in rows
                if size is not None
            ),
            key=lambda size: size.name,
        )

    def table_sizes(self, database: str) -> list[TableSize]:
        """Tables of ``database`` (their own session): ``reltuples`` as the row estimate,
        the table with its TOAST data, its indexes, and both together."""
        try:
            connection = self.connect_to(database)
        except psycopg.OperationalError as exc:
            # A refused connection carries no SQLSTATE, only the server's text.
            if _NO_CONNECT_PRIVILEGE in str(exc):
                raise InsufficientPrivileges(
                    f"{InsufficientPrivileges.label}: cannot connect to database "
                    f"{database!r} (GRANT CONNECT ON DATABASE to the monitoring role)"
                ) from None
            raise
        with connection, self.remote(), connection.cursor() as cursor:
            cursor.execute(TABLE_SIZES_SQL)
            rows = cursor.fetchall()
        return sorted(
            (
                TableSize(
                    schema=schema,
                    table=table,
                    rows=estimate if estimate >= 0 else None,
                    data_bytes=data,
                    index_bytes=index,
                    total_bytes=total,
                )
                for schema, table, estimate, data, index, total in rows
                if total is not None  # dropped while the statement ran
            ),
            key=lambda size: (size.schema, size.table),
        )


class PostgreSQLEngine(PostgreSQLAccountsMixin, PostgreSQLCapacityMixin, _PostgreSQLConnection):
    """PostgreSQL: connection, version, roles and privileges, databases and sizes."""

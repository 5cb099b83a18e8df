"""PostgreSQL, through psycopg 3.

Monitoring account — read-only, no superuser::

    CREATE ROLE whalefall LOGIN PASSWORD '…';
    GRANT pg_read_all_settings, pg_read_all_stats TO whalefall;   -- versions, sizes
    GRANT CONNECT ON DATABASE <each database> TO whalefall;        -- per-database reads
    -- deep privileges (schema and table grants) also need USAGE on the schemas to list:
    -- GRANT USAGE ON SCHEMA <schema> TO whalefall;  (in each database)

Role attributes, memberships and database ACLs come from ``pg_roles``, ``pg_auth_members``
and ``pg_database``, which every role can read. ``pg_database_size`` needs CONNECT on the
database or ``pg_read_all_stats`` (CONNECT is granted to PUBLIC unless revoked); table
sizes connect to the database itself (CONNECT) and read ``pg_class``, which every role can
read, with the size functions, which check no privilege. Timeouts: libpq's ``connect_timeout``
bounds connection set-up including authentication; ``statement_timeout`` is set for the
session, and every session is read-only (``default_transaction_read_only``).
"""

from collections import defaultdict
from datetime import UTC, datetime

import psycopg
from psycopg import errors as pg_errors

from inventory.engines.base import (
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
    parse_version,
    without_names,
)

SSL_MODES = {
    "disabled": "disable",
    "preferred": "prefer",
    "required": "require",
    "verify": "verify-full",
}

_AUTH_STATES = {"28P01", "28000"}
_AUTH_MARKERS = ("password authentication failed", "no pg_hba.conf entry", "authentication failed")
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
        return psycopg.connect(
            host=target.host,
            port=target.port,
            dbname=database,
            user=target.username,
            password=target.secret,
            connect_timeout=max(2, round(target.connect_timeout)),
            sslmode=SSL_MODES.get(target.tls_mode, "prefer"),
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
MEMBERSHIPS_SQL = """
SELECT m.member, r.rolname, m.admin_option
FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
"""
# Explicit database grants (aclexplode of the stored ACL) and each database's owner. Grants
# to PUBLIC and the owner's implicit ones are left out: ownership is its own grant.
DATABASES_SQL = """
SELECT d.datname, d.datdba, d.datallowconn, a.grantee, a.privilege_type, a.is_grantable
FROM pg_database d
LEFT JOIN LATERAL aclexplode(d.datacl) a ON true
WHERE NOT d.datistemplate
"""
SCHEMAS_SQL = """
SELECT n.nspname, n.nspowner, a.grantee, a.privilege_type, a.is_grantable
FROM pg_namespace n
LEFT JOIN LATERAL aclexplode(n.nspacl) a ON true
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg\\_temp\\_%'
  AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'
"""
TABLES_SQL = """
SELECT n.nspname, c.relname, c.relowner, a.grantee, a.privilege_type, a.is_grantable
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN LATERAL aclexplode(c.relacl) a ON true
WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f', 'S')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
"""
COLUMNS_SQL = """
SELECT n.nspname, c.relname, att.attname, a.grantee, a.privilege_type, a.is_grantable
FROM pg_attribute att
JOIN pg_class c ON c.oid = att.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL aclexplode(att.attacl) a
WHERE att.attacl IS NOT NULL AND NOT att.attisdropped
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
"""
OWNER = "OWNER"


def _valid_until(value) -> str | None:
    if value is None or not isinstance(value, datetime) or value.year >= 9999:
        return None  # NULL or 'infinity'
    return value.astimezone(UTC).isoformat()


class PostgreSQLAccountsMixin:
    """Roles, memberships and database ACLs in three queries; with deep privileges, three
    more per database (schemas, tables, columns): never a query per account."""

    def list_accounts(self) -> list[AccountRecord]:
        rows = self.query(ROLES_SQL)
        self._role_rows = {row[0]: row for row in rows}
        return [
            AccountRecord(name=row[1], kind="user" if row[6] else "role")
            for row in rows
            if not is_system_account("postgresql", row[1]) or row[1] == "postgres"
        ]

    def collect_privileges(self, accounts: list[AccountRecord], *, deep: bool = False) -> dict:
        """Canonical-ready privilege sets of ``accounts``, keyed by role name."""
        wanted = {a.key for a in accounts}
        if not wanted:
            return {}
        if getattr(self, "_role_rows", None) is None:
            self.list_accounts()
        names = {oid: row[1] for oid, row in self._role_rows.items()}
        grants: dict[str, set] = defaultdict(set)
        roles: dict[str, set] = defaultdict(set)
        admin_roles: dict[str, set] = defaultdict(set)

        def grant(grantee_oid, scope, obj, privilege, grantable):
            name = names.get(grantee_oid)
            if name in wanted:
                grants[name].add((scope, obj, privilege, "GRANT" if grantable else ""))

        for member, role, admin in self.query(MEMBERSHIPS_SQL):
            name = names.get(member)
            if name in wanted:
                roles[name].add(role)
                if admin:
                    admin_roles[name].add(role)

        connectable = []
        for datname, owner, allowconn, grantee, privilege, grantable in self.query(DATABASES_SQL):
            grant(owner, "database", datname, OWNER, False)
            if allowconn:
                connectable.append(datname)
            if grantee is not None and grantee not in (0, owner):
                grant(grantee, "database", datname, privilege, grantable)

        if deep:
            for datname in sorted(set(connectable)):
                self._deep_grants(datname, grant)

        now = datetime.now(UTC)
        result = {}
        for row in self._role_rows.values():
            name = row[1]
            if name not in wanted:
                continue
            _oid, _name, superuser, inherit, createrole, createdb, canlogin = row[:7]
            replication, bypassrls, connlimit, validuntil = row[7:]
            expires = _valid_until(validuntil)
            expired = validuntil is not None and expires is not None and validuntil < now
            attributes = {
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
            if admin_roles[name]:
                attributes["admin_roles"] = sorted(admin_roles[name])
            result[name] = {
                "engine": "postgresql",
                "attributes": attributes,
                "roles": sorted(roles[name]),
                "grants": sorted(grants[name]),
            }
        return result

    def _deep_grants(self, datname: str, grant) -> None:
        """Schema, table and column grants of one database (its own session)."""
        try:
            connection = self.connect_to(datname)
        except psycopg.OperationalError as exc:
            raise InsufficientPrivileges(
                f"{InsufficientPrivileges.label}: cannot connect to database {datname!r} for "
                "deep privileges (GRANT CONNECT ON DATABASE to the monitoring role)"
            ) from exc
        with connection:

            def rows(sql):
                with self.remote(), connection.cursor() as cursor:
                    cursor.execute(sql)
                    return cursor.fetchall()

            for schema, owner, grantee, privilege, grantable in rows(SCHEMAS_SQL):
                obj = f"{datname}.{schema}"
                grant(owner, "schema", obj, OWNER, False)
                if grantee is not None and grantee not in (0, owner):
                    grant(grantee, "schema", obj, privilege, grantable)
            for schema, table, owner, grantee, privilege, grantable in rows(TABLES_SQL):
                obj = f"{datname}.{schema}.{table}"
                grant(owner, "table", obj, OWNER, False)
                if grantee is not None and grantee not in (0, owner):
                    grant(grantee, "table", obj, privilege, grantable)
            for schema, table, column, grantee, privilege, grantable in rows(COLUMNS_SQL):
                if grantee != 0:
                    grant(
                        grantee,
                        "column",
                        f"{datname}.{schema}.{table}.{column}",
                        privilege,
                        grantable,
                    )


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

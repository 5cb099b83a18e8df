"""PostgreSQL, through psycopg 3.

Monitoring account — read-only, no superuser::

    CREATE ROLE whalefall LOGIN PASSWORD '…';
    GRANT pg_read_all_settings, pg_read_all_stats TO whalefall;   -- versions, sizes
    GRANT CONNECT ON DATABASE <each database> TO whalefall;        -- per-database reads
    -- deep privileges (schema and table grants) also need USAGE on the schemas to list:
    -- GRANT USAGE ON SCHEMA <schema> TO whalefall;  (in each database)

Role attributes, memberships and database ACLs come from ``pg_roles``, ``pg_auth_members``
and ``pg_database``, which every role can read. Timeouts: libpq's ``connect_timeout``
bounds connection set-up including authentication; ``statement_timeout`` is set for the
session, and every session is read-only (``default_transaction_read_only``).
"""

import psycopg
from psycopg import errors as pg_errors

from inventory.engines.base import (
    AuthenticationFailed,
    Engine,
    EngineError,
    EngineFailure,
    Timeout,
    TlsError,
    Unreachable,
    VersionInfo,
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
)
_TLS_MARKERS = ("ssl", "certificate", "tls")


class PostgreSQLEngine(Engine):
    name = "postgresql"
    default_database = "postgres"

    def connect_to(self, database: str) -> psycopg.Connection:
        """A new session on ``database`` of the same server, with the same limits."""
        target = self.target
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
        self.queries += 1
        with self.connection.cursor() as cursor:
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
            str(exc), self.target.host, self.target.username, self.database
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

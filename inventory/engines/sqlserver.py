"""SQL Server, through mssql-python (its own ODBC driver; no system driver needed).

Monitoring login — server-wide read of metadata, nothing else::

    CREATE LOGIN whalefall WITH PASSWORD = '…', CHECK_POLICY = ON;
    GRANT VIEW SERVER STATE TO whalefall;          -- sizes, sessions
    GRANT VIEW ANY DEFINITION TO whalefall;        -- logins, roles, permissions, principals
    GRANT CONNECT ANY DATABASE TO whalefall;       -- per-database principals and permissions
    -- SQL Server 2022+: VIEW SERVER SECURITY STATE and VIEW ANY SECURITY DEFINITION
    -- may replace VIEW ANY DEFINITION.

Without VIEW ANY DEFINITION, ``sys.server_principals`` silently shows only the caller:
the engine refuses such a partial listing. Timeouts: the driver's login timeout bounds
connection set-up; ``Connection.timeout`` bounds every statement.
"""

import mssql_python

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
)

# Encrypt / TrustServerCertificate per TLS mode. SQL Server always offers TLS (with a
# self-signed certificate unless one is installed), so "preferred" encrypts without
# verifying and "verify" also checks the certificate and the host name.
TLS_OPTIONS = {
    "disabled": {"Encrypt": "no"},
    "preferred": {"Encrypt": "yes", "TrustServerCertificate": "yes"},
    "required": {"Encrypt": "yes", "TrustServerCertificate": "yes"},
    "verify": {"Encrypt": "yes", "TrustServerCertificate": "no"},
}

_AUTH_MARKERS = ("login failed", "(18456)", "28000", "password expired", "(18488)")
_TIMEOUT_MARKERS = ("timeout expired", "timeout error", "hyt00", "hyt01", "query timeout")
_TLS_MARKERS = ("ssl provider", "certificate", "encryption", "tls")
_UNREACHABLE_MARKERS = (
    "tcp provider",
    "named pipes provider",
    "server was not found",
    "network-related",
    "08001",
    "unable to establish connection",
)


def odbc_value(value: str) -> str:
    """Quote a connection-string value: braces make ``;``, ``=`` and spaces literal."""
    return "{" + value.replace("}", "}}") + "}"


class SQLServerEngine(Engine):
    name = "sqlserver"
    default_database = "master"

    def connection_string(self, database: str | None = None) -> str:
        target = self.target
        parts = {
            "Server": f"tcp:{target.host},{target.port}",
            "Database": odbc_value(database or self.database),
            "UID": odbc_value(target.username),
            "PWD": odbc_value(target.secret),
            # No APP keyword: mssql-python sets APP itself and rejects a connection string
            # that names it ("Reserved keyword 'app' is controlled by the driver").
            "ApplicationIntent": "ReadOnly",
            **TLS_OPTIONS.get(target.tls_mode, TLS_OPTIONS["preferred"]),
        }
        return ";".join(f"{key}={value}" for key, value in parts.items())

    def open(self) -> None:
        self.connection = mssql_python.connect(
            self.connection_string(),
            autocommit=True,
            timeout=max(1, round(self.target.connect_timeout)),
        )
        self.connection.timeout = max(1, round(self.target.query_timeout))

    def close(self) -> None:
        connection = getattr(self, "connection", None)
        if connection is not None:
            connection.close()
            self.connection = None

    def query(self, sql: str, params: tuple | None = None) -> list[tuple]:
        """Run one read-only statement and return every row."""
        self.queries += 1
        cursor = self.connection.cursor()
        try:
            if params is None:
                cursor.execute(sql)
            else:
                cursor.execute(sql, params)
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def fetch_version(self) -> str:
        return self.query("SELECT @@VERSION")[0][0]

    @classmethod
    def parse_version(cls, raw: str) -> VersionInfo:
        # "Microsoft SQL Server 2019 (RTM-CU22) (KB5027702) - 15.0.4322.2 (X64) …"
        return parse_version(raw, r"\b(\d+)\.(\d+)\.(\d+)\.(\d+)\b", 4)

    def classify(self, exc: BaseException) -> type[EngineError]:
        if isinstance(exc, EngineError):
            return type(exc)
        message = str(exc).lower()
        if any(marker in message for marker in _AUTH_MARKERS):
            return AuthenticationFailed
        if any(marker in message for marker in _TIMEOUT_MARKERS):
            return Timeout
        if any(marker in message for marker in _TLS_MARKERS):
            return TlsError
        if any(marker in message for marker in _UNREACHABLE_MARKERS):
            return Unreachable
        return EngineFailure

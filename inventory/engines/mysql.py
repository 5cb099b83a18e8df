"""MySQL and MariaDB, through mysqlclient.

Monitoring account — read-only access to the grant tables and the catalog::

    CREATE USER 'whalefall'@'%' IDENTIFIED BY '…';
    GRANT SELECT ON mysql.* TO 'whalefall'@'%';          -- accounts and privileges
    GRANT SELECT, SHOW VIEW, PROCESS ON *.* TO 'whalefall'@'%';  -- database and table sizes
    -- MySQL 8 only, to read role edges: GRANT SELECT ON performance_schema.* is not needed;
    -- mysql.role_edges and mysql.default_roles are covered by SELECT ON mysql.*.

Any account that can read ``mysql.*`` can read password hashes: WhaleFall never reads or
stores ``authentication_string``. Timeouts: ``connect_timeout`` bounds the TCP connect and
handshake; ``read_timeout``/``write_timeout`` bound every network read and write, and the
session's ``max_statement_time`` (MariaDB, seconds) or ``max_execution_time`` (MySQL,
milliseconds) stops a statement on the server.
"""

import MySQLdb

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

# mysqlclient ssl_mode per TLS mode of the instance. With MariaDB Connector/C the client
# does not enforce REQUIRED, so the engine checks the session cipher itself.
SSL_MODES = {
    "disabled": "DISABLED",
    "preferred": "PREFERRED",
    "required": "REQUIRED",
    "verify": "VERIFY_IDENTITY",
}

_AUTH_ERRORS = {1044, 1045, 1251, 1698, 4151}  # access denied, auth plugin, account locked
_UNREACHABLE_ERRORS = {2002, 2003, 2005, 2006}
_TLS_ERRORS = {2026, 3159}
_TIMEOUT_ERRORS = {1969, 3024}  # max_statement_time / max_execution_time exceeded
_ETIMEDOUT = ("system error: 110", "(110)", "timed out", "timeout")
# The client's read/write timeouts only back up the server's statement timeout: equal values
# race, and a lost race reports a statement timeout as a lost connection (error 2013).
_NETWORK_TIMEOUT_MARGIN = 5


class MySQLEngine(Engine):
    name = "mysql"

    def open(self) -> None:
        target = self.target
        timeout = max(1, round(target.query_timeout))
        self.connection = MySQLdb.connect(
            host=target.host,
            port=target.port,
            user=target.username,
            password=target.secret,
            database=target.database or "",
            connect_timeout=max(1, round(target.connect_timeout)),
            read_timeout=timeout + _NETWORK_TIMEOUT_MARGIN,
            write_timeout=timeout + _NETWORK_TIMEOUT_MARGIN,
            ssl_mode=SSL_MODES.get(target.tls_mode, "PREFERRED"),
            charset="utf8mb4",
            autocommit=True,
        )
        self._version = self.query("SELECT VERSION()")[0][0]
        if "mariadb" in self._version.lower():
            self.query(f"SET SESSION max_statement_time = {timeout}")
        else:
            self.query(f"SET SESSION max_execution_time = {timeout * 1000}")
        if target.tls_mode in {"required", "verify"}:
            cipher = self.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            if not cipher or not cipher[0][1]:
                raise TlsError(f"{TlsError.label}: the server did not encrypt the connection")

    def close(self) -> None:
        connection = getattr(self, "connection", None)
        if connection is not None:
            connection.close()
            self.connection = None

    def query(self, sql: str, params: tuple | None = None) -> list[tuple]:
        """Run one read-only statement and return every row."""
        self.queries += 1
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def fetch_version(self) -> str:
        return self._version

    @classmethod
    def parse_version(cls, raw: str) -> VersionInfo:
        # 8.0.36, 8.4.0-log, 10.11.19-MariaDB-0+deb12u1, 5.5.5-10.6.12-MariaDB (old handshake)
        raw_clean = (raw or "").strip()
        if raw_clean.startswith("5.5.5-") and "mariadb" in raw_clean.lower():
            raw_clean = raw_clean[len("5.5.5-") :]
        info = parse_version(raw_clean, r"^(\d+)\.(\d+)(?:\.(\d+))?", 3)
        return VersionInfo(
            raw=(raw or "").strip()[:500], major_minor=info.major_minor, full=info.full
        )

    def classify(self, exc: BaseException) -> type[EngineError]:
        if isinstance(exc, EngineError):
            return type(exc)
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        message = without_names(
            str(exc), self.target.host, self.target.username, self.target.database
        ).lower()
        if code in _AUTH_ERRORS:
            return AuthenticationFailed
        if code in _TLS_ERRORS or "ssl" in message or "tls" in message:
            return TlsError
        if code in _TIMEOUT_ERRORS:
            return Timeout
        if code in _UNREACHABLE_ERRORS | {2013}:
            return Timeout if any(marker in message for marker in _ETIMEDOUT) else Unreachable
        return EngineFailure

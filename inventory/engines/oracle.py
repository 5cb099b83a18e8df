"""Oracle, through python-oracledb in thin mode (no Oracle client libraries).

Monitoring account — dictionary read access only::

    CREATE USER whalefall IDENTIFIED BY "…";
    GRANT CREATE SESSION TO whalefall;
    GRANT SELECT_CATALOG_ROLE TO whalefall;   -- DBA_USERS, DBA_ROLE_PRIVS, DBA_SYS_PRIVS,
                                              -- DBA_TAB_PRIVS, DBA_TS_QUOTAS, DBA_DATA_FILES,
                                              -- DBA_SEGMENTS, V$VERSION
    -- or, narrower: GRANT SELECT ON each of those views TO whalefall;

Without them the ``DBA_*`` views do not exist for the account (ORA-00942); the engine
never falls back to ``ALL_*``/``USER_*`` views, which show only part of the database.

Timeouts: thin mode's ``tcp_connect_timeout`` covers only the TCP connect, and a listener
that accepts but never answers would hold ``connect()`` forever. The engine therefore
drives the driver's asyncio API from a private event loop and bounds the whole connect
(and every statement) with ``asyncio.wait_for``; ``call_timeout`` bounds each round trip
on the server side too. ``tls_mode`` "required"/"verify" use TCPS ("required" does not check
the certificate); Oracle has no opportunistic TLS, so "preferred" connects over plain TCP.
"""

import asyncio
import re
import ssl

import oracledb

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

_AUTH_CODES = {"ORA-01017", "ORA-28000", "ORA-28001", "ORA-01045", "ORA-28040", "DPY-4001"}
_TIMEOUT_CODES = {"DPY-4024", "ORA-03156", "ORA-12170", "ORA-01013"}
_UNREACHABLE_CODES = {
    "DPY-6005",
    "DPY-6000",
    "DPY-4011",
    "DPY-4027",
    "ORA-12541",
    "ORA-12543",
    "ORA-12545",
}
_TLS_MARKERS = ("ssl", "certificate", "tls", "tcps")
_VERSION_5 = r"(\d+)\.(\d+)\.(\d+)\.(\d+)\.(\d+)"
# DPY-6005 carries a random base64 id that can spell "ssl" or "tls" by chance.
_CONNECTION_ID = re.compile(r"\(CONNECTION_ID=[^)]*\)")


def unverified_tls_context() -> ssl.SSLContext:
    """TLS for tls_mode "required": encrypt, do not verify (thin mode verifies by default)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class OracleEngine(Engine):
    name = "oracle"
    default_database = "ORCL"

    def open(self) -> None:
        target = self.target
        self._loop = asyncio.Runner()
        tls = target.tls_mode in {"required", "verify"}

        async def connect() -> oracledb.AsyncConnection:
            # connect_async starts connecting when called: it needs the running loop.
            return await oracledb.connect_async(
                user=target.username,
                password=target.secret,
                host=target.host,
                port=target.port,
                service_name=self.database,
                protocol="tcps" if tls else "tcp",
                ssl_server_dn_match=target.tls_mode == "verify",
                ssl_context=unverified_tls_context() if target.tls_mode == "required" else None,
                tcp_connect_timeout=target.connect_timeout,
                program="whalefall",
            )

        self.connection = self._loop.run(
            asyncio.wait_for(connect(), timeout=target.connect_timeout)
        )
        self.connection.call_timeout = max(1, round(target.query_timeout * 1000))

    def close(self) -> None:
        connection = getattr(self, "connection", None)
        loop = getattr(self, "_loop", None)
        try:
            if connection is not None and loop is not None:
                loop.run(connection.close())
        finally:
            self.connection = None
            if loop is not None:
                loop.close()
                self._loop = None

    async def _fetch(self, sql: str, params: dict | None) -> list[tuple]:
        with self.connection.cursor() as cursor:
            await cursor.execute(sql, params or {})
            return [tuple(row) for row in await cursor.fetchall()]

    def query(self, sql: str, params: dict | None = None) -> list[tuple]:
        """Run one read-only statement and return every row."""
        self.queries += 1
        # call_timeout stops the server; wait_for also bounds a peer that stops answering.
        return self._loop.run(
            asyncio.wait_for(self._fetch(sql, params), timeout=self.target.query_timeout + 5)
        )

    def fetch_version(self) -> str:
        return self.query("SELECT banner FROM v$version WHERE banner LIKE 'Oracle%'")[0][0]

    def server_version(self) -> VersionInfo:
        # The banner says "Release 19.0.0.0.0"; the session knows the patched 19.3.0.0.0.
        info = super().server_version()
        session_version = getattr(self.connection, "version", "") or ""
        if re.fullmatch(_VERSION_5, session_version):
            parts = session_version.split(".")
            return VersionInfo(
                raw=info.raw, major_minor=f"{parts[0]}.{parts[1]}", full=session_version
            )
        return info

    @classmethod
    def parse_version(cls, raw: str) -> VersionInfo:
        # "Oracle Database 19c Enterprise Edition Release 19.0.0.0.0 - Production
        #  Version 19.3.0.0.0" (banner_full); older banners carry only the Release part.
        match = re.search(r"Version\s+" + _VERSION_5, raw or "")
        if match:
            return VersionInfo(
                raw=(raw or "").strip()[:500],
                major_minor=f"{match.group(1)}.{match.group(2)}",
                full=".".join(match.groups()),
            )
        return parse_version(raw, _VERSION_5, 5)

    def classify(self, exc: BaseException) -> type[EngineError]:
        if isinstance(exc, EngineError):
            return type(exc)
        if isinstance(exc, TimeoutError | asyncio.TimeoutError):
            return Timeout
        error = exc.args[0] if exc.args else None
        code = getattr(error, "full_code", "") or ""
        message = _CONNECTION_ID.sub("", str(exc)).lower()
        if code in _AUTH_CODES:
            return AuthenticationFailed
        if code in _TIMEOUT_CODES or "timed out" in message:
            return Timeout
        if any(marker in message for marker in _TLS_MARKERS):
            return TlsError
        # Thin mode lets socket errors of name resolution (socket.gaierror) through unwrapped.
        if code in _UNREACHABLE_CODES or isinstance(exc, OSError):
            return Unreachable
        return EngineFailure

    def translate_error(self, exc: BaseException) -> EngineError:
        if isinstance(exc, TimeoutError | asyncio.TimeoutError):
            return Timeout(f"{Timeout.label}: the server did not answer in time")
        return super().translate_error(exc)

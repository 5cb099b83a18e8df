"""Fake SQL Server and Oracle servers behind the real drivers' connect functions.

Neither server runs in the test environment, so the SQL Server engine (mssql-python) and
the Oracle engine (python-oracledb thin, through its asyncio API) are tested against a
:class:`FakeServer`: a catalog that maps the statements an engine sends to the rows the
real server answers with, plus the errors it raises, plus a record of every connect and
every statement.

The rule that keeps the fake honest
-----------------------------------
**Every statement an engine sends needs a catalog entry** whose columns and rows are shaped
exactly like the system view or function the statement reads (same column names, same
value types, same text). A statement without an entry raises the driver's own
``ProgrammingError`` (SQL Server) or ``DatabaseError`` (Oracle) *and* fails the test at
teardown, so a new engine query cannot pass unnoticed. Add the entry here when the query
is general (a system view every test reads), or in the test with :meth:`FakeServer.on`.

Requests are checked the way the drivers check them: the SQL Server connection string goes
through mssql-python's own parser (unknown or reserved keywords fail exactly as they would:
``APP=`` for instance is reserved), its timeouts through the driver's own validation; the
Oracle keyword arguments go through ``oracledb.ConnectParams``, and ``connect_async``, like
the driver's, must be called with an event loop running (it starts connecting at once).

Where the shapes come from
--------------------------
SQL Server (Transact-SQL reference, "@@VERSION"):
    ``SELECT @@VERSION`` returns one unnamed ``nvarchar(300)`` column; the text spans four
    lines joined by ``"\\n\\t"``: product, release and build (``15.0.4198.2``), build date,
    copyright, edition and operating system.
Oracle (Database Reference, "V$VERSION"):
    11g: one ``BANNER`` VARCHAR2(80) column, five rows (Oracle Database, PL/SQL, CORE, TNS,
    NLSRTL). 18c and later: ``BANNER``, ``BANNER_FULL`` VARCHAR2(160) (the banner plus a
    ``"\\nVersion 19.3.0.0.0"`` line), ``BANNER_LEGACY`` and ``CON_ID`` NUMBER, one row. The
    session's patched version is ``Connection.version`` (``"19.3.0.0.0"``), while the banner
    says ``Release 19.0.0.0.0``.

Errors are built the way the drivers build them:
    mssql-python turns the SQLSTATE and text of the first ODBC diagnostic record into an
    exception with ``mssql_python.exceptions.sqlstate_to_exception`` (which also drops the
    ``[ODBC Driver 18 for SQL Server]`` part of the text). Texts are those of ODBC Driver 18;
    against real local sockets it reports ``08001`` "TCP Provider: Error code 0x2749" for a
    closed port, "Error code 0x2AF9" for an unknown host and "TCP Provider: Timeout error
    [258]." for a listener that never answers.
    python-oracledb raises ``error.exc_type(error)`` for an ``oracledb.errors._Error``: server
    errors carry their ORA- number in ``code``; driver errors (DPY-) come from
    ``oracledb.errors._create_exception``, with the socket or TLS error as the context line,
    e.g. ``DPY-6005: cannot connect to database (CONNECTION_ID=…).\\n[Errno 111] Connect call
    failed ('127.0.0.1', 1521)``.

Use the ``fake_sqlserver`` and ``fake_oracle`` fixtures (import them into a ``conftest.py``)
or :func:`install_sqlserver` / :func:`install_oracle` with a ``monkeypatch``.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import mssql_python
import oracledb
import pytest
from mssql_python import exceptions as mssql_exceptions
from mssql_python.connection import Connection as MSSQLConnection
from mssql_python.connection_string_parser import _ConnectionStringParser
from mssql_python.row import Row
from oracledb import errors as oracle_errors

# --- Recorded server texts --------------------------------------------------------------

SQLSERVER_2016_VERSION = (
    "Microsoft SQL Server 2016 (SP3) (KB5003279) - 13.0.6300.2 (X64) \n"
    "\tAug  7 2021 01:20:37 \n"
    "\tCopyright (c) Microsoft Corporation\n"
    "\tStandard Edition (64-bit) on Windows Server 2016 Standard 10.0 <X64> "
    "(Build 14393: ) (Hypervisor)\n"
)
SQLSERVER_2017_VERSION = (
    "Microsoft SQL Server 2017 (RTM-CU31) (KB5016884) - 14.0.3456.2 (X64) \n"
    "\tSep  2 2022 11:01:50 \n"
    "\tCopyright (C) 2017 Microsoft Corporation\n"
    "\tDeveloper Edition (64-bit) on Linux (Ubuntu 18.04.6 LTS)"
)
SQLSERVER_2019_VERSION = (
    "Microsoft SQL Server 2019 (RTM-CU15) (KB5008996) - 15.0.4198.2 (X64) \n"
    "\tJan 12 2022 22:30:08 \n"
    "\tCopyright (C) 2019 Microsoft Corporation\n"
    "\tDeveloper Edition (64-bit) on Linux (Ubuntu 20.04.3 LTS) <X64>"
)
SQLSERVER_2022_VERSION = (
    "Microsoft SQL Server 2022 (RTM-CU12) (KB5033663) - 16.0.4115.5 (X64) \n"
    "\tMar  4 2024 08:56:10 \n"
    "\tCopyright (C) 2022 Microsoft Corporation\n"
    "\tEnterprise Edition: Core-based Licensing (64-bit) on Windows Server 2022 Datacenter "
    "10.0 <X64> (Build 20348: ) (Hypervisor)\n"
)


@dataclass(frozen=True)
class Result:
    """The answer to one statement: column names and rows, as the driver returns them."""

    columns: tuple[str, ...]
    rows: tuple[tuple, ...] = ()

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"row {row!r} does not fit the columns {self.columns!r}")


@dataclass(frozen=True)
class Table:
    """A recorded system view: every column and every row, as the server holds them."""

    columns: tuple[str, ...]
    rows: tuple[tuple, ...]

    def has(self, column: str) -> bool:
        return column.upper() in self.columns

    def select(self, *columns: str, where: Callable[[dict], bool] | None = None) -> Result:
        """Project ``columns`` (case-insensitive) of the rows ``where`` accepts."""
        names = tuple(c.upper() for c in columns)
        indexes = [self.columns.index(name) for name in names]
        rows = tuple(
            tuple(row[i] for i in indexes)
            for row in self.rows
            if where is None or where(dict(zip(self.columns, row, strict=True)))
        )
        return Result(names, rows)


ORACLE_11G_V_VERSION = Table(
    ("BANNER",),
    (
        ("Oracle Database 11g Enterprise Edition Release 11.2.0.1.0 - 64bit Production",),
        ("PL/SQL Release 11.2.0.1.0 - Production",),
        ("CORE\t11.2.0.1.0\tProduction",),
        ("TNS for Linux: Version 11.2.0.1.0 - Production",),
        ("NLSRTL Version 11.2.0.1.0 - Production",),
    ),
)


def _v_version_18_plus(banner: str, version: str) -> Table:
    return Table(
        ("BANNER", "BANNER_FULL", "BANNER_LEGACY", "CON_ID"),
        ((banner, f"{banner}\nVersion {version}", banner, 0),),
    )


ORACLE_19C_V_VERSION = _v_version_18_plus(
    "Oracle Database 19c Enterprise Edition Release 19.0.0.0.0 - Production", "19.3.0.0.0"
)
ORACLE_23AI_V_VERSION = _v_version_18_plus(
    "Oracle Database 23ai Free Release 23.0.0.0.0 - Develop, Learn, and Run for Free",
    "23.5.0.24.07",
)


# --- Records of what the engine did ------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    """One executed statement, with the connection's statement timeout when it ran."""

    sql: str  # normalised: whitespace collapsed, no trailing semicolon
    params: Any
    timeout: int  # SQL Server: Connection.timeout (s); Oracle: call_timeout (ms)


@dataclass
class ConnectAttempt:
    """One call of the driver's connect function."""

    kwargs: dict[str, Any]
    connection_string: str = ""  # SQL Server only
    params: dict[str, str] = field(default_factory=dict)  # parsed keywords, lower-case keys


Answer = Result | BaseException | Callable[[re.Match, Any], Result]


def normalise(sql: str) -> str:
    """The SQL text catalog patterns are matched against."""
    return " ".join(sql.split()).rstrip(";").rstrip()


class FakeServer:
    """A catalog of statement patterns and answers, with connect and statement records."""

    def __init__(self) -> None:
        self._catalog: list[tuple[re.Pattern, Answer]] = []
        self.connect_error: BaseException | None = None
        self.attempts: list[ConnectAttempt] = []
        self.connections: list[Any] = []
        self.executed: list[Statement] = []
        self.unmatched: list[str] = []

    def on(self, pattern: str, answer: Answer) -> None:
        """Answer statements whose normalised text matches ``pattern`` (``re.search``,
        case-insensitive; anchor it). ``answer`` is a :class:`Result`, an exception to raise,
        or a callable ``(match, params) -> Result``. The latest matching entry wins."""
        self._catalog.insert(0, (re.compile(pattern, re.IGNORECASE), answer))

    def fail_connect(self, error: BaseException) -> None:
        """Make every connect raise ``error``."""
        self.connect_error = error

    @property
    def statements(self) -> list[str]:
        return [statement.sql for statement in self.executed]

    def answer(self, sql: str, params: Any, timeout: int) -> Result:
        text = normalise(sql)
        self.executed.append(Statement(text, params, timeout))
        for pattern, answer in self._catalog:
            match = pattern.search(text)
            if match is None:
                continue
            if isinstance(answer, BaseException):
                raise answer
            if callable(answer):
                return answer(match, params)
            return answer
        self.unmatched.append(text)
        raise self.unknown_statement(text)

    def unknown_statement(self, sql: str) -> Exception:
        raise NotImplementedError

    def check_all_matched(self) -> None:
        """Fail the test when the engine sent a statement the catalog does not know."""
        if self.unmatched:
            pytest.fail(
                "The engine sent statements without a catalog entry in the fake "
                f"{type(self).__name__}: {self.unmatched!r}. Record the real answer with .on().",
                pytrace=False,
            )


# --- SQL Server (mssql-python) -----------------------------------------------------------

ODBC_PREFIX = "[Microsoft][ODBC Driver 18 for SQL Server]"


def mssql_error(sqlstate: str, text: str, *, from_server: bool = False) -> Exception:
    """The exception mssql-python raises for an ODBC diagnostic record."""
    message = ODBC_PREFIX + ("[SQL Server]" if from_server else "") + text
    error = mssql_exceptions.sqlstate_to_exception(sqlstate, message)
    if error is None:
        error = mssql_exceptions.DatabaseError(
            driver_error=f"An error occurred with SQLSTATE code: {sqlstate}", ddbc_error=message
        )
    return error


def mssql_login_failed(user: str = "mon") -> Exception:
    """Wrong password, unknown or disabled login (server error 18456)."""
    return mssql_error("28000", f"Login failed for user '{user}'.", from_server=True)


def mssql_port_refused() -> Exception:
    """Nothing listens on the port (WSAECONNREFUSED family, reported as 0x2749)."""
    return mssql_error("08001", "TCP Provider: Error code 0x2749")


def mssql_host_unknown() -> Exception:
    """The host name does not resolve (WSAHOST_NOT_FOUND, 0x2AF9)."""
    return mssql_error("08001", "TCP Provider: Error code 0x2AF9")


def mssql_network_timeout() -> Exception:
    """The TCP connection opened but the server never answered the pre-login."""
    return mssql_error("08001", "TCP Provider: Timeout error [258]. ")


def mssql_login_timeout() -> Exception:
    return mssql_error("HYT00", "Login timeout expired")


def mssql_certificate_untrusted() -> Exception:
    """Encrypt=yes with TrustServerCertificate=no and a self-signed server certificate."""
    return mssql_error(
        "08001",
        "SSL Provider: [error:0A000086:SSL routines::certificate verify failed:"
        "self-signed certificate]",
    )


def mssql_query_timeout() -> Exception:
    """A statement ran longer than ``Connection.timeout``."""
    return mssql_error("HYT00", "Query timeout expired")


def mssql_invalid_object(name: str) -> Exception:
    """The login cannot see the object (error 208), e.g. a missing permission."""
    return mssql_error("42S02", f"Invalid object name '{name}'.", from_server=True)


def _python_type(values: list) -> type:
    present = [value for value in values if value is not None]
    return type(present[0]) if present else str


class FakeSQLServerCursor:
    """An mssql-python cursor over catalog answers; rows are ``mssql_python.row.Row``."""

    def __init__(self, connection: FakeSQLServerConnection) -> None:
        self.connection = connection
        self.description: list[tuple] | None = None
        self.rowcount = -1
        self.closed = False
        self._rows: list[Row] = []

    def execute(self, operation: str, *parameters, use_prepare=True, reset_cursor=True):
        self._check_open()
        # mssql-python unwraps a single tuple, list or dict argument into the parameters.
        if len(parameters) == 1 and isinstance(parameters[0], tuple | list | dict):
            parameters = parameters[0]
        result = self.connection.server.answer(
            operation, parameters or None, timeout=self.connection.timeout
        )
        column_map = {name: index for index, name in enumerate(result.columns)}
        self.description = [
            (
                name,
                _python_type([row[index] for row in result.rows]),
                None,
                None,
                None,
                None,
                True,
            )
            for index, name in enumerate(result.columns)
        ]
        self._rows = [Row(list(row), column_map) for row in result.rows]
        return self

    def fetchall(self) -> list[Row]:
        self._check_open()
        rows, self._rows = self._rows, []
        return rows

    def fetchone(self) -> Row | None:
        self._check_open()
        return self._rows.pop(0) if self._rows else None

    def fetchmany(self, size: int = 1) -> list[Row]:
        self._check_open()
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows

    def close(self) -> None:
        self.closed = True

    def __iter__(self) -> Iterator[Row]:
        while (row := self.fetchone()) is not None:
            yield row

    def __enter__(self) -> FakeSQLServerCursor:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _check_open(self) -> None:
        if self.closed:
            raise mssql_exceptions.ProgrammingError(
                driver_error="Operation cannot be performed: The cursor is closed.",
                ddbc_error="",
            )


class FakeSQLServerConnection:
    """An open mssql-python connection to the fake server."""

    def __init__(self, server: SQLServerFake, autocommit: bool) -> None:
        self.server = server
        self.autocommit = autocommit
        self.closed = False
        self._timeout = 0

    @property
    def timeout(self) -> int:
        return self._timeout

    @timeout.setter
    def timeout(self, value: int) -> None:
        self._timeout = MSSQLConnection._validate_timeout(value, kind="Query timeout")

    def cursor(self) -> FakeSQLServerCursor:
        if self.closed:
            raise mssql_exceptions.InterfaceError(
                driver_error="Connection is closed", ddbc_error="Connection is closed"
            )
        return FakeSQLServerCursor(self)

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class SQLServerFake(FakeServer):
    """A SQL Server reached through ``mssql_python.connect``."""

    def __init__(self, version: str = SQLSERVER_2019_VERSION) -> None:
        super().__init__()
        self.version = version
        self.on(r"^SELECT @@VERSION$", lambda _match, _params: Result(("",), ((self.version,),)))

    def connect(
        self,
        connection_str: str = "",
        autocommit: bool = False,
        attrs_before: dict | None = None,
        timeout: int = 0,
        **kwargs,
    ) -> FakeSQLServerConnection:
        """Stands in for ``mssql_python.connect``."""
        params = _ConnectionStringParser(validate_keywords=True)._parse(connection_str)
        MSSQLConnection._validate_timeout(timeout, kind="Login timeout")
        self.attempts.append(
            ConnectAttempt(
                kwargs={
                    "autocommit": autocommit,
                    "attrs_before": attrs_before,
                    "timeout": timeout,
                    **kwargs,
                },
                connection_string=connection_str,
                params=params,
            )
        )
        if self.connect_error is not None:
            raise self.connect_error
        connection = FakeSQLServerConnection(self, autocommit)
        self.connections.append(connection)
        return connection

    def unknown_statement(self, sql: str) -> Exception:
        return mssql_error(
            "42000", f"The fake server has no catalog entry for: {sql}", from_server=True
        )


def install_sqlserver(monkeypatch: pytest.MonkeyPatch, server: SQLServerFake | None = None):
    """Route ``mssql_python.connect`` to ``server`` (a new :class:`SQLServerFake` by default)."""
    server = server or SQLServerFake()
    monkeypatch.setattr(mssql_python, "connect", server.connect)
    return server


@pytest.fixture
def fake_sqlserver(monkeypatch) -> Iterator[SQLServerFake]:
    """A fake SQL Server 2019 behind ``mssql_python.connect``."""
    server = install_sqlserver(monkeypatch)
    yield server
    server.check_all_matched()


# --- Oracle (python-oracledb thin, asyncio API) ------------------------------------------

ORACLE_CONNECTION_ID = "TN1dqWudJ6MkSwvCpR7mBQ=="


def oracle_server_error(code: int, text: str) -> Exception:
    """The exception thin mode raises for an ORA- error sent by the server."""
    error = oracle_errors._Error(f"ORA-{code:05}: {text}", code=code)
    return error.exc_type(error)


def oracle_driver_error(number: int, cause: BaseException | None = None, **args) -> Exception:
    """A DPY- error, built by the driver's own factory."""
    return oracle_errors._create_exception(number, cause=cause, **args)


def oracle_invalid_credentials() -> Exception:
    return oracle_server_error(1017, "invalid credential or not authorized; logon denied")


def oracle_account_locked() -> Exception:
    return oracle_server_error(28000, "The account is locked.")


def oracle_connection_refused(
    host: str = "127.0.0.1", port: int = 1521, connection_id: str = ORACLE_CONNECTION_ID
) -> Exception:
    return oracle_driver_error(
        oracle_errors.ERR_CONNECTION_FAILED,
        cause=ConnectionRefusedError(111, f"Connect call failed ('{host}', {port})"),
        connection_id=connection_id,
    )


def oracle_certificate_untrusted(connection_id: str = ORACLE_CONNECTION_ID) -> Exception:
    """TCPS against a server whose certificate does not chain to a trusted root."""
    return oracle_driver_error(
        oracle_errors.ERR_CONNECTION_FAILED,
        cause=ssl.SSLCertVerificationError(
            1,
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
            "self-signed certificate (_ssl.c:1006)",
        ),
        connection_id=connection_id,
    )


def oracle_certificate_name_mismatch(
    expected_name: str, connection_id: str = ORACLE_CONNECTION_ID
) -> Exception:
    """TCPS with ``ssl_server_dn_match`` and a certificate issued to another name."""
    return oracle_driver_error(
        oracle_errors.ERR_CONNECTION_FAILED,
        cause=oracle_driver_error(
            oracle_errors.ERR_INVALID_SERVER_NAME, expected_name=expected_name
        ),
        connection_id=connection_id,
    )


def oracle_call_timeout(milliseconds: int) -> Exception:
    """A round trip took longer than ``Connection.call_timeout``."""
    return oracle_driver_error(oracle_errors.ERR_CALL_TIMEOUT_EXCEEDED, timeout=milliseconds)


def oracle_table_missing() -> Exception:
    """The account cannot see a dictionary view (no SELECT_CATALOG_ROLE)."""
    return oracle_server_error(942, "table or view does not exist")


def _oracle_type(values: list) -> Any:
    python_type = _python_type(values)
    if python_type in {int, float, Decimal}:
        return oracledb.DB_TYPE_NUMBER
    if python_type is bytes:
        return oracledb.DB_TYPE_RAW
    return oracledb.DB_TYPE_VARCHAR


class FakeOracleCursor:
    """An ``oracledb.AsyncCursor``: a sync context manager whose I/O methods are awaited."""

    def __init__(self, connection: FakeOracleConnection) -> None:
        self.connection = connection
        self.description: list[tuple] | None = None
        self._rows: list[tuple] | None = None

    async def execute(self, statement: str, parameters: Any = None, **keyword_parameters):
        self.connection.check_open()
        params = parameters if parameters is not None else (keyword_parameters or None)
        result = self.connection.server.answer(
            statement, params, timeout=self.connection.call_timeout
        )
        self.description = [
            (name, _oracle_type([row[i] for row in result.rows]), None, None, None, None, True)
            for i, name in enumerate(result.columns)
        ]
        self._rows = list(result.rows)

    async def fetchall(self) -> list[tuple]:
        rows = self._fetched()
        self._rows = []
        return rows

    async def fetchone(self) -> tuple | None:
        rows = self._fetched()
        return rows.pop(0) if rows else None

    async def fetchmany(self, size: int = 1) -> list[tuple]:
        rows = self._fetched()
        self._rows = rows[size:]
        return rows[:size]

    def close(self) -> None:
        self._rows = None

    def __enter__(self) -> FakeOracleCursor:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _fetched(self) -> list[tuple]:
        if self._rows is None:
            raise oracle_driver_error(oracle_errors.ERR_NO_STATEMENT_EXECUTED)
        return self._rows


class FakeOracleConnection:
    """An ``oracledb.AsyncConnection`` to the fake server."""

    def __init__(self, server: OracleFake) -> None:
        self.server = server
        self.version = server.version
        self.closed = False
        self._call_timeout = 0

    @property
    def call_timeout(self) -> int:
        return self._call_timeout

    @call_timeout.setter
    def call_timeout(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise TypeError(f"call_timeout must be a non-negative integer, not {value!r}")
        self._call_timeout = value

    def check_open(self) -> None:
        if self.closed:
            raise oracle_driver_error(oracle_errors.ERR_NOT_CONNECTED)

    def cursor(self) -> FakeOracleCursor:
        self.check_open()
        return FakeOracleCursor(self)

    async def close(self) -> None:
        self.check_open()
        self.closed = True

    async def __aenter__(self) -> FakeOracleConnection:
        return self

    async def __aexit__(self, *exc_info) -> None:
        if not self.closed:
            await self.close()


_V_VERSION_QUERY = (
    r"^SELECT (?P<columns>\w+(?:\s*,\s*\w+)*) FROM v\$version"
    r"(?: WHERE (?P<column>\w+) LIKE '(?P<prefix>[^%']*)%')?$"
)


class OracleFake(FakeServer):
    """An Oracle database reached through ``oracledb.connect_async``.

    ``v_version`` is the recorded ``V$VERSION`` view, ``version`` the session version;
    ``connect_hangs`` makes connect behave like a listener that never answers."""

    def __init__(
        self, v_version: Table = ORACLE_19C_V_VERSION, version: str = "19.3.0.0.0"
    ) -> None:
        super().__init__()
        self.v_version = v_version
        self.version = version
        self.connect_hangs = False
        self.on(_V_VERSION_QUERY, self._select_v_version)

    def _select_v_version(self, match: re.Match, _params: Any) -> Result:
        columns = [c.strip() for c in match["columns"].split(",")]
        for column in [*columns, match["column"]]:
            if column and not self.v_version.has(column):
                raise oracle_server_error(904, f'"{column.upper()}": invalid identifier')
        if not match["column"]:
            return self.v_version.select(*columns)
        column, prefix = match["column"].upper(), match["prefix"]
        return self.v_version.select(
            *columns, where=lambda row: (row[column] or "").startswith(prefix)
        )

    def connect_async(
        self,
        dsn: str | None = None,
        *,
        pool: Any = None,
        pool_alias: str | None = None,
        conn_class: Any = None,
        params: oracledb.ConnectParams | None = None,
        **kwargs,
    ) -> Coroutine[Any, Any, FakeOracleConnection]:
        """Stands in for ``oracledb.connect_async``, which starts connecting when called:
        outside a running event loop it raises ``RuntimeError: no running event loop``."""
        asyncio.get_running_loop()
        oracledb.ConnectParams(**kwargs)  # unknown keywords fail as in the driver
        return self._connect(dsn, kwargs)

    async def _connect(self, dsn: str | None, kwargs: dict[str, Any]) -> FakeOracleConnection:
        self.attempts.append(ConnectAttempt(kwargs={"dsn": dsn, **kwargs}))
        if self.connect_hangs:
            await asyncio.Event().wait()
        if self.connect_error is not None:
            raise self.connect_error
        connection = FakeOracleConnection(self)
        self.connections.append(connection)
        return connection

    def unknown_statement(self, sql: str) -> Exception:
        return oracle_server_error(
            900, f"invalid SQL statement (the fake server has no catalog entry for: {sql})"
        )


def install_oracle(monkeypatch: pytest.MonkeyPatch, server: OracleFake | None = None):
    """Route ``oracledb.connect_async`` to ``server`` (a new :class:`OracleFake` by default)."""
    server = server or OracleFake()
    monkeypatch.setattr(oracledb, "connect_async", server.connect_async)
    return server


@pytest.fixture
def fake_oracle(monkeypatch) -> Iterator[OracleFake]:
    """A fake Oracle 19c behind ``oracledb.connect_async``."""
    server = install_oracle(monkeypatch)
    yield server
    server.check_all_matched()

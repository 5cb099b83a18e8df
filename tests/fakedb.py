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

Scenario catalogs
-----------------
The account and capacity statements are answered from a scenario, not from canned rows:
``fake_sqlserver.use_catalog()`` returns a :class:`SQLServerCatalog` and
``fake_oracle.use_catalog()`` an :class:`OracleCatalog`, which a test changes the way a DBA
changes the server (``create_login``, ``deny``, ``create_database(…).create_user(…)``,
``add_file``, ``allocate``, ``alter_user(status=…)``, ``grant_object``, ``quota``,
``create_tablespace``, ``create_table`` …). They hold the system views with
their real column names and types (:class:`View`); the fake recognises the engine's
statements by their normalised text (another join or column has no entry) and derives
every row from those views, for the account the engine connected as: what that account
may see and enter (VIEW ANY DEFINITION, HAS_DBACCESS, SELECT_CATALOG_ROLE) follows the
server's rules, so a monitoring account without them gets what the server would give it.

Use the ``fake_sqlserver`` and ``fake_oracle`` fixtures (import them into a ``conftest.py``)
or :func:`install_sqlserver` / :func:`install_oracle` with a ``monkeypatch``.
"""

from __future__ import annotations

import asyncio
import datetime
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


# --- Scenario catalogs --------------------------------------------------------------------

# Python type of each SQL type the recorded views use, as the drivers return it.
_SQL_PYTHON_TYPES = (
    ("bit", bool),
    ("bigint", int),
    ("tinyint", int),
    ("smallint", int),
    ("int", int),
    ("number", (int, float, Decimal)),
    ("sysname", str),
    ("nvarchar", str),
    ("varchar", str),
    ("char", str),
    ("varbinary", bytes),
    ("raw", bytes),
    ("datetime", datetime.datetime),
    ("date", datetime.datetime),
    ("timestamp", datetime.datetime),
)


def _python_type_of(sql_type: str) -> type | tuple[type, ...]:
    lowered = sql_type.lower()
    for prefix, python_type in _SQL_PYTHON_TYPES:
        if lowered.startswith(prefix):
            return python_type
    raise ValueError(f"no Python type recorded for SQL type {sql_type!r}")


class View:
    """A system view of a scenario catalog: its real columns (name and SQL type) and rows.

    Rows are dicts keyed by the view's own column names; column names given to
    :meth:`insert` and :meth:`find` are matched case-insensitively, and every value is
    checked against the column's type (``None`` is NULL)."""

    def __init__(self, name: str, columns: tuple[tuple[str, str], ...]) -> None:
        self.name = name
        self.columns = columns
        self.rows: list[dict[str, Any]] = []
        self._names = {column.lower(): column for column, _type in columns}
        self._types = {column: _python_type_of(sql_type) for column, sql_type in columns}

    def column(self, name: str) -> str | None:
        """The view's spelling of column ``name``, or None when the view has no such column."""
        return self._names.get(name.lower())

    def _row(self, values: dict[str, Any], *, known_only: bool) -> dict[str, Any]:
        row = dict.fromkeys(self._types)
        for name, value in values.items():
            column = self.column(name)
            if column is None:
                if known_only:
                    continue
                raise KeyError(f"{self.name} has no column {name!r}")
            expected = self._types[column]
            wrong_bool = isinstance(value, bool) and expected is int
            if value is not None and (wrong_bool or not isinstance(value, expected)):
                raise TypeError(f"{self.name}.{column} cannot hold {value!r}")
            row[column] = value
        return row

    def insert(self, *, known_only: bool = False, **values: Any) -> dict[str, Any]:
        """Add a row; ``known_only`` drops values of columns this release of the view lacks."""
        row = self._row(values, known_only=known_only)
        self.rows.append(row)
        return row

    def _matches(self, row: dict[str, Any], where: dict[str, Any]) -> bool:
        return all(row[self.column(name)] == value for name, value in where.items())

    def find(self, **where: Any) -> list[dict[str, Any]]:
        return [row for row in self.rows if self._matches(row, where)]

    def get(self, **where: Any) -> dict[str, Any]:
        rows = self.find(**where)
        if len(rows) != 1:
            raise LookupError(f"{len(rows)} rows of {self.name} match {where!r}")
        return rows[0]

    def delete(self, **where: Any) -> int:
        before = len(self.rows)
        self.rows = [row for row in self.rows if not self._matches(row, where)]
        return before - len(self.rows)

    def update(self, row: dict[str, Any], **values: Any) -> None:
        row.update(self._row({**row, **values}, known_only=False))


def exact(sql: str) -> str:
    """A catalog pattern that matches ``sql`` only, once normalised."""
    return "^" + re.escape(normalise(sql)) + "$"


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


def mssql_connection_reset() -> Exception:
    """The server or the network dropped an open session (ECONNRESET, 0x68)."""
    return mssql_error("08S01", "TCP Provider: Error code 0x68")


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


# --- SQL Server catalog ---------------------------------------------------------------------
#
# The views and columns are those of the Transact-SQL reference ("sys.server_principals",
# "sys.sql_logins", "sys.server_role_members", "sys.server_permissions", "sys.endpoints",
# "sys.databases", "sys.master_files", "sys.database_principals",
# "sys.database_role_members", "sys.database_permissions", "sys.schemas",
# "sys.all_objects", "sys.all_columns", "sys.partitions", "sys.allocation_units"), with
# the types mssql-python returns: bit -> bool, int/tinyint/smallint/bigint -> int,
# sysname/nvarchar/char -> str, varbinary -> bytes, datetime -> datetime. Columns of types
# the engine never reads (uniqueidentifier, numeric LSNs) are left out.

_SERVER_PRINCIPAL_COLUMNS = (
    ("name", "sysname"),
    ("principal_id", "int"),
    ("sid", "varbinary(85)"),
    ("type", "char(1)"),
    ("type_desc", "nvarchar(60)"),
    ("is_disabled", "bit"),
    ("create_date", "datetime"),
    ("modify_date", "datetime"),
    ("default_database_name", "sysname"),
    ("default_language_name", "sysname"),
    ("credential_id", "int"),
    ("owning_principal_id", "int"),
    ("is_fixed_role", "bit"),
)
_SQL_LOGIN_COLUMNS = (
    *_SERVER_PRINCIPAL_COLUMNS,
    ("is_policy_checked", "bit"),
    ("is_expiration_checked", "bit"),
    ("password_hash", "varbinary(256)"),
)
_ROLE_MEMBER_COLUMNS = (("role_principal_id", "int"), ("member_principal_id", "int"))
_PERMISSION_COLUMNS = (
    ("class", "tinyint"),
    ("class_desc", "nvarchar(60)"),
    ("major_id", "int"),
    ("minor_id", "int"),
    ("grantee_principal_id", "int"),
    ("grantor_principal_id", "int"),
    ("type", "char(4)"),
    ("permission_name", "nvarchar(128)"),
    ("state", "char(1)"),
    ("state_desc", "nvarchar(60)"),
)
_ENDPOINT_COLUMNS = (
    ("name", "sysname"),
    ("endpoint_id", "int"),
    ("principal_id", "int"),
    ("protocol", "tinyint"),
    ("protocol_desc", "nvarchar(60)"),
    ("type", "tinyint"),
    ("type_desc", "nvarchar(60)"),
    ("state", "tinyint"),
    ("state_desc", "nvarchar(60)"),
    ("is_admin_endpoint", "bit"),
)
_DATABASE_COLUMNS = (
    ("name", "sysname"),
    ("database_id", "int"),
    ("source_database_id", "int"),
    ("owner_sid", "varbinary(85)"),
    ("create_date", "datetime"),
    ("compatibility_level", "tinyint"),
    ("collation_name", "sysname"),
    ("user_access", "tinyint"),
    ("user_access_desc", "nvarchar(60)"),
    ("is_read_only", "bit"),
    ("state", "tinyint"),
    ("state_desc", "nvarchar(60)"),
)
_DATABASE_PRINCIPAL_COLUMNS = (
    ("name", "sysname"),
    ("principal_id", "int"),
    ("type", "char(1)"),
    ("type_desc", "nvarchar(60)"),
    ("default_schema_name", "sysname"),
    ("create_date", "datetime"),
    ("modify_date", "datetime"),
    ("owning_principal_id", "int"),
    ("sid", "varbinary(85)"),
    ("is_fixed_role", "bit"),
    ("authentication_type", "int"),
    ("authentication_type_desc", "nvarchar(60)"),
    ("default_language_name", "sysname"),
    ("default_language_lcid", "int"),
    ("allow_encrypted_value_modifications", "bit"),
)
_SCHEMA_COLUMNS = (("name", "sysname"), ("schema_id", "int"), ("principal_id", "int"))
_OBJECT_COLUMNS = (
    ("name", "sysname"),
    ("object_id", "int"),
    ("principal_id", "int"),
    ("schema_id", "int"),
    ("parent_object_id", "int"),
    ("type", "char(2)"),
    ("type_desc", "nvarchar(60)"),
    ("create_date", "datetime"),
    ("modify_date", "datetime"),
    ("is_ms_shipped", "bit"),
    ("is_published", "bit"),
    ("is_schema_published", "bit"),
)
_COLUMN_COLUMNS = (
    ("object_id", "int"),
    ("name", "sysname"),
    ("column_id", "int"),
    ("system_type_id", "tinyint"),
    ("user_type_id", "int"),
    ("max_length", "smallint"),
    ("precision", "tinyint"),
    ("scale", "tinyint"),
    ("collation_name", "sysname"),
    ("is_nullable", "bit"),
    ("is_identity", "bit"),
    ("is_computed", "bit"),
)

_MASTER_FILE_COLUMNS = (
    ("database_id", "int"),
    ("file_id", "int"),
    ("type", "tinyint"),
    ("type_desc", "nvarchar(60)"),
    ("data_space_id", "int"),
    ("name", "sysname"),
    ("physical_name", "nvarchar(260)"),
    ("state", "tinyint"),
    ("state_desc", "nvarchar(60)"),
    ("size", "int"),  # 8 KB pages
    ("max_size", "int"),
    ("growth", "int"),
    ("is_media_read_only", "bit"),
    ("is_read_only", "bit"),
    ("is_sparse", "bit"),
    ("is_percent_growth", "bit"),
    ("is_name_reserved", "bit"),
)
_PARTITION_COLUMNS = (
    ("partition_id", "bigint"),
    ("object_id", "int"),
    ("index_id", "int"),
    ("partition_number", "int"),
    ("hobt_id", "bigint"),
    ("rows", "bigint"),
    ("filestream_filegroup_id", "smallint"),
    ("data_compression", "tinyint"),
    ("data_compression_desc", "nvarchar(60)"),
)
_ALLOCATION_UNIT_COLUMNS = (
    ("allocation_unit_id", "bigint"),
    ("type", "tinyint"),
    ("type_desc", "nvarchar(60)"),
    ("container_id", "bigint"),
    ("data_space_id", "int"),
    ("total_pages", "bigint"),
    ("used_pages", "bigint"),
    ("data_pages", "bigint"),
)

_SERVER_TYPE_DESC = {
    "S": "SQL_LOGIN",
    "U": "WINDOWS_LOGIN",
    "G": "WINDOWS_GROUP",
    "R": "SERVER_ROLE",
    "C": "CERTIFICATE_MAPPED_LOGIN",
    "K": "ASYMMETRIC_KEY_MAPPED_LOGIN",
    "E": "EXTERNAL_LOGIN",
    "X": "EXTERNAL_GROUP",
}
_DATABASE_TYPE_DESC = {
    "S": "SQL_USER",
    "U": "WINDOWS_USER",
    "G": "WINDOWS_GROUP",
    "R": "DATABASE_ROLE",
    "A": "APPLICATION_ROLE",
    "E": "EXTERNAL_USER",
    "X": "EXTERNAL_GROUPS",
}
_STATE_DESC = {"G": "GRANT", "W": "GRANT_WITH_GRANT_OPTION", "D": "DENY"}
_SERVER_CLASS_DESC = {100: "SERVER", 101: "SERVER_PRINCIPAL", 105: "ENDPOINT"}
_DATABASE_CLASS_DESC = {0: "DATABASE", 1: "OBJECT_OR_COLUMN", 3: "SCHEMA", 4: "DATABASE_PRINCIPAL"}
_PERMISSION_TYPES = {
    "CONNECT SQL": "COSQ",
    "CONTROL SERVER": "CL",
    "VIEW ANY DEFINITION": "VWAD",
    "VIEW ANY SECURITY DEFINITION": "VASD",
    "VIEW ANY DATABASE": "VWDB",
    "VIEW SERVER STATE": "VWSS",
    "CONNECT ANY DATABASE": "CADB",
    "ALTER ANY LOGIN": "ALLG",
    "CONNECT": "CO",
    "CONTROL": "CL",
    "IMPERSONATE": "IM",
    "SELECT": "SL",
    "INSERT": "IN",
    "UPDATE": "UP",
    "DELETE": "DL",
    "EXECUTE": "EX",
    "ALTER": "AL",
}
_USER_ACCESS_DESC = {0: "MULTI_USER", 1: "SINGLE_USER", 2: "RESTRICTED_USER"}
_FILE_TYPE_DESC = {0: "ROWS", 1: "LOG"}
_ALLOCATION_UNIT_TYPES = {"IN_ROW_DATA": 1, "LOB_DATA": 2, "ROW_OVERFLOW_DATA": 3}
# CREATE DATABASE copies model: one 8 MB data file and one 8 MB log file (SQL Server 2016+).
_MODEL_FILE_PAGES = 1024
_FIRST_HOBT_ID = 72057594043170816  # hobt and partition ids are bigints of this shape
_DATABASE_STATE_DESC = {0: "ONLINE", 1: "RESTORING", 2: "RECOVERING", 6: "OFFLINE"}
_FIXED_SERVER_ROLES = (
    "sysadmin",
    "securityadmin",
    "serveradmin",
    "setupadmin",
    "processadmin",
    "diskadmin",
    "dbcreator",
    "bulkadmin",
)
_FIXED_DATABASE_ROLES = {
    "db_owner": 16384,
    "db_accessadmin": 16385,
    "db_securityadmin": 16386,
    "db_ddladmin": 16387,
    "db_backupoperator": 16389,
    "db_datareader": 16390,
    "db_datawriter": 16391,
    "db_denydatareader": 16392,
    "db_denydatawriter": 16393,
}
_ENDPOINTS = (
    (1, "Dedicated Admin Connection", 2, "TCP"),
    (2, "TSQL Local Machine", 2, "SHARED_MEMORY"),
    (3, "TSQL Named Pipes", 3, "NAMED_PIPES"),
    (4, "TSQL Default TCP", 2, "TCP"),
    (5, "TSQL Default VIA", 4, "VIA"),
)
_ROLE_SID_PREFIX = bytes.fromhex("010500000000000904000000")
_CREATED = datetime.datetime(2024, 3, 4, 8, 56, 10)
SA_SID = b"\x01"
GUEST_SID = b"\x00"


def _permission_type(permission: str) -> str:
    return _PERMISSION_TYPES.get(permission, "".join(w[0] for w in permission.split())[:4])


def _set_permission(
    view: View,
    klass: int,
    class_desc: str,
    major: int,
    minor: int,
    grantee: int,
    permission: str,
    state: str | None,
) -> None:
    """GRANT, GRANT … WITH GRANT OPTION, DENY (one row per permission and securable, the
    last statement wins) or REVOKE (``state`` None: the row goes)."""
    view.delete(
        **{"class": klass},
        major_id=major,
        minor_id=minor,
        grantee_principal_id=grantee,
        permission_name=permission,
    )
    if state is not None:
        view.insert(
            **{"class": klass},
            class_desc=class_desc,
            major_id=major,
            minor_id=minor,
            grantee_principal_id=grantee,
            grantor_principal_id=1,
            type=_permission_type(permission),
            permission_name=permission,
            state=state,
            state_desc=_STATE_DESC[state],
        )


def _state(*, deny: bool = False, with_grant_option: bool = False) -> str:
    return "D" if deny else ("W" if with_grant_option else "G")


class SQLServerDatabase:
    """One database of a :class:`SQLServerCatalog`: its principals, memberships,
    permissions, schemas, objects and columns, as ``[db].sys.*`` shows them."""

    def __init__(self, catalog: SQLServerCatalog, row: dict[str, Any]) -> None:
        self.catalog = catalog
        self.row = row
        self.principals = View("sys.database_principals", _DATABASE_PRINCIPAL_COLUMNS)
        self.role_members = View("sys.database_role_members", _ROLE_MEMBER_COLUMNS)
        self.permissions = View("sys.database_permissions", _PERMISSION_COLUMNS)
        self.schemas = View("sys.schemas", _SCHEMA_COLUMNS)
        self.objects = View("sys.all_objects", _OBJECT_COLUMNS)
        self.columns = View("sys.all_columns", _COLUMN_COLUMNS)
        self.partitions = View("sys.partitions", _PARTITION_COLUMNS)
        self.allocation_units = View("sys.allocation_units", _ALLOCATION_UNIT_COLUMNS)
        self._next_principal = 5
        self._next_object = 245575913
        self._next_hobt = _FIRST_HOBT_ID
        self._seed()

    @property
    def name(self) -> str:
        return self.row["name"]

    def _seed(self) -> None:
        """What CREATE DATABASE puts in every database."""
        self._principal("public", 0, "R", sid=self._role_sid(0))
        self._principal("dbo", 1, "S", sid=self.row["owner_sid"], default_schema="dbo")
        self._principal("guest", 2, "S", sid=GUEST_SID, default_schema="guest")
        self._principal("INFORMATION_SCHEMA", 3, "S", sid=None)
        self._principal("sys", 4, "S", sid=None)
        for role, principal_id in _FIXED_DATABASE_ROLES.items():
            self._principal(role, principal_id, "R", sid=self._role_sid(principal_id), fixed=True)
        self.role_members.insert(role_principal_id=16384, member_principal_id=1)
        for schema_id, name in enumerate(("dbo", "guest", "INFORMATION_SCHEMA", "sys"), start=1):
            self.schemas.insert(name=name, schema_id=schema_id, principal_id=schema_id)
        if self.name in {"master", "tempdb", "msdb"}:
            self.grant("CONNECT", to="guest")

    def _role_sid(self, principal_id: int) -> bytes:
        return _ROLE_SID_PREFIX + self.row["database_id"].to_bytes(4) + principal_id.to_bytes(4)

    def _principal(
        self,
        name: str,
        principal_id: int,
        kind: str,
        *,
        sid: bytes | None,
        default_schema: str | None = None,
        fixed: bool = False,
        authentication_type: int = 0,
    ) -> dict[str, Any]:
        return self.principals.insert(
            name=name,
            principal_id=principal_id,
            type=kind,
            type_desc=_DATABASE_TYPE_DESC[kind],
            default_schema_name=default_schema,
            create_date=_CREATED,
            modify_date=_CREATED,
            owning_principal_id=1 if kind == "R" and principal_id else None,
            sid=sid,
            is_fixed_role=fixed,
            authentication_type=authentication_type,
            authentication_type_desc={0: "NONE", 1: "INSTANCE", 3: "WINDOWS"}[authentication_type],
            default_language_lcid=0,
            allow_encrypted_value_modifications=False,
        )

    def principal(self, name: str) -> dict[str, Any]:
        return self.principals.get(name=name)

    def create_user(
        self, name: str, *, login: str | None = None, sid: bytes | None = None
    ) -> dict[str, Any]:
        """CREATE USER name FOR LOGIN login (the login's SID) or WITHOUT LOGIN (a new SID,
        or ``sid`` as given); like the server, it grants CONNECT to the new user."""
        if login is not None:
            source = self.catalog.principal(login)
            kind, sid = (
                {"S": "S", "U": "U", "G": "G", "E": "E", "X": "X"}[source["type"]],
                source["sid"],
            )
            authentication = 3 if kind in {"U", "G"} else 1
        else:
            kind, authentication = "S", 0
            sid = sid if sid is not None else self.catalog.new_sid()
        user = self._principal(
            name,
            self._new_principal_id(),
            kind,
            sid=sid,
            default_schema="dbo",
            authentication_type=authentication,
        )
        self.grant("CONNECT", to=name)
        return user

    def create_role(self, name: str) -> dict[str, Any]:
        principal_id = self._new_principal_id()
        return self._principal(name, principal_id, "R", sid=self._role_sid(principal_id))

    def _new_principal_id(self) -> int:
        principal_id, self._next_principal = self._next_principal, self._next_principal + 1
        return principal_id

    def drop_user(self, name: str) -> None:
        principal_id = self.principal(name)["principal_id"]
        self.principals.delete(principal_id=principal_id)
        self.role_members.delete(member_principal_id=principal_id)
        self.permissions.delete(grantee_principal_id=principal_id)

    def add_role_member(self, role: str, member: str) -> None:
        self.role_members.insert(
            role_principal_id=self.principal(role)["principal_id"],
            member_principal_id=self.principal(member)["principal_id"],
        )

    def drop_role_member(self, role: str, member: str) -> None:
        self.role_members.delete(
            role_principal_id=self.principal(role)["principal_id"],
            member_principal_id=self.principal(member)["principal_id"],
        )

    def create_schema(self, name: str, owner: str = "dbo") -> dict[str, Any]:
        schema_id = max(row["schema_id"] for row in self.schemas.rows if row["schema_id"] < 16384)
        return self.schemas.insert(
            name=name, schema_id=schema_id + 1, principal_id=self.principal(owner)["principal_id"]
        )

    def create_object(
        self, name: str, *, type: str = "U", columns: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """An object ``schema.name`` with ``columns``, of a sys.objects ``type``: a table
        (U), view (V), procedure (P, CLR PC, extended X) or function (scalar FN, inline IF
        or multi-statement TF table-valued; CLR FS, FT; CLR aggregate AF)."""
        schema, _, object_name = name.rpartition(".")
        descriptions = {
            "U": "USER_TABLE",
            "V": "VIEW",
            "P": "SQL_STORED_PROCEDURE",
            "PC": "CLR_STORED_PROCEDURE",
            "X": "EXTENDED_STORED_PROCEDURE",
            "FN": "SQL_SCALAR_FUNCTION",
            "IF": "SQL_INLINE_TABLE_VALUED_FUNCTION",
            "TF": "SQL_TABLE_VALUED_FUNCTION",
            "FS": "CLR_SCALAR_FUNCTION",
            "FT": "CLR_TABLE_VALUED_FUNCTION",
            "AF": "AGGREGATE_FUNCTION",
        }
        object_id, self._next_object = self._next_object, self._next_object + 16004
        obj = self.objects.insert(
            name=object_name,
            object_id=object_id,
            schema_id=self.schemas.get(name=schema or "dbo")["schema_id"],
            parent_object_id=0,
            type=type.ljust(2),
            type_desc=descriptions[type],
            create_date=_CREATED,
            modify_date=_CREATED,
            is_ms_shipped=schema == "sys",
            is_published=False,
            is_schema_published=False,
        )
        for column_id, column in enumerate(columns, start=1):
            self.columns.insert(
                object_id=object_id,
                name=column,
                column_id=column_id,
                system_type_id=56,
                user_type_id=56,
                max_length=4,
                precision=10,
                scale=0,
                is_nullable=True,
                is_identity=False,
                is_computed=False,
            )
        return obj

    def tables(self) -> list[dict[str, Any]]:
        """The rows of sys.tables: the user tables of sys.objects (system tables are in
        sys.all_objects only)."""
        system = {row["schema_id"] for row in self.schemas.find(name="sys")}
        return [
            obj
            for obj in self.objects.rows
            if obj["type"] == "U " and obj["schema_id"] not in system
        ]

    # Files and storage --------------------------------------------------------------------

    def add_file(self, name: str | None = None, *, log: bool = False, pages: int = 1024):
        """ALTER DATABASE … ADD FILE / ADD LOG FILE: a ROWS or LOG file of ``pages`` 8 KB
        pages in sys.master_files (the first ROWS file is the primary ``.mdf``)."""
        files = self.catalog.master_files
        database_id = self.row["database_id"]
        own = files.find(database_id=database_id)
        kind = 1 if log else 0
        name = name or (f"{self.name}_log" if log else self.name)
        extension = (
            ".ldf" if log else (".ndf" if files.find(database_id=database_id, type=0) else ".mdf")
        )
        return files.insert(
            database_id=database_id,
            file_id=1 + max((row["file_id"] for row in own), default=0),
            type=kind,
            type_desc=_FILE_TYPE_DESC[kind],
            data_space_id=0 if log else 1,
            name=name,
            physical_name=f"/var/opt/mssql/data/{name}{extension}",
            state=0,
            state_desc="ONLINE",
            size=pages,
            max_size=268435456 if log else -1,
            growth=8192,
            is_media_read_only=False,
            is_read_only=False,
            is_sparse=False,
            is_percent_growth=False,
            is_name_reserved=False,
        )

    def resize_file(self, name: str, pages: int) -> None:
        """ALTER DATABASE … MODIFY FILE (NAME = name, SIZE = …): the file grows or shrinks."""
        files = self.catalog.master_files
        files.update(files.get(database_id=self.row["database_id"], name=name), size=pages)

    def allocate(
        self,
        table: str,
        *,
        index_id: int = 1,
        partition_number: int = 1,
        rows: int = 0,
        in_row: tuple[int, int, int] = (0, 0, 0),
        lob: tuple[int, int] | None = None,
        row_overflow: tuple[int, int] | None = None,
    ) -> dict[str, Any]:
        """One partition of index ``index_id`` of table ``schema.name`` (0 the heap, 1 the
        clustered index, 2 and up nonclustered) holding ``rows``, with its allocation
        units: IN_ROW_DATA pages as (total, used, data), LOB_DATA and ROW_OVERFLOW_DATA
        pages as (total, used). In-row and row-overflow units belong to the hobt, LOB units
        to the partition (the same id since SQL Server 2008)."""
        schema, _, object_name = table.rpartition(".")
        obj = self.objects.get(
            name=object_name, schema_id=self.schemas.get(name=schema or "dbo")["schema_id"]
        )
        hobt_id, self._next_hobt = self._next_hobt, self._next_hobt + 65536
        partition = self.partitions.insert(
            partition_id=hobt_id,
            object_id=obj["object_id"],
            index_id=index_id,
            partition_number=partition_number,
            hobt_id=hobt_id,
            rows=rows,
            filestream_filegroup_id=0,
            data_compression=0,
            data_compression_desc="NONE",
        )
        units = [("IN_ROW_DATA", in_row, hobt_id)]
        if lob is not None:
            units.append(("LOB_DATA", (*lob, 0), hobt_id))
        if row_overflow is not None:
            units.append(("ROW_OVERFLOW_DATA", (*row_overflow, 0), hobt_id))
        for offset, (kind, (total, used, data), container) in enumerate(units):
            self.allocation_units.insert(
                allocation_unit_id=hobt_id + offset,
                type=_ALLOCATION_UNIT_TYPES[kind],
                type_desc=kind,
                container_id=container,
                data_space_id=1,
                total_pages=total,
                used_pages=used,
                data_pages=data,
            )
        return partition

    def _securable(self, on: str | None) -> tuple[int, int, int]:
        """(class, major_id, minor_id) of ``on``: None (the database), ``SCHEMA::s``,
        ``USER::u`` / ``ROLE::r``, ``schema.object`` or ``schema.object(column)``."""
        if on is None:
            return 0, 0, 0
        kind, separator, name = on.partition("::")
        if separator and kind.upper() == "SCHEMA":
            return 3, self.schemas.get(name=name)["schema_id"], 0
        if separator:
            return 4, self.principal(name)["principal_id"], 0
        target, _, column = on.partition("(")
        schema, _, object_name = target.rpartition(".")
        obj = self.objects.get(
            name=object_name, schema_id=self.schemas.get(name=schema or "dbo")["schema_id"]
        )
        if not column:
            return 1, obj["object_id"], 0
        column_row = self.columns.get(object_id=obj["object_id"], name=column.rstrip(")"))
        return 1, obj["object_id"], column_row["column_id"]

    def _permission(self, permission: str, principal: str, on: str | None, state) -> None:
        klass, major, minor = self._securable(on)
        grantee = self.principal(principal)["principal_id"]
        _set_permission(
            self.permissions,
            klass,
            _DATABASE_CLASS_DESC[klass],
            major,
            minor,
            grantee,
            permission,
            state,
        )

    def grant(
        self, permission: str, *, to: str, on: str | None = None, with_grant_option: bool = False
    ) -> None:
        self._permission(permission, to, on, _state(with_grant_option=with_grant_option))

    def deny(self, permission: str, *, to: str, on: str | None = None) -> None:
        self._permission(permission, to, on, _state(deny=True))

    def revoke(self, permission: str, *, from_: str, on: str | None = None) -> None:
        self._permission(permission, from_, on, None)


class SQLServerCatalog:
    """The catalog of a fake SQL Server, built by a test like the server would be (CREATE
    LOGIN, ALTER SERVER ROLE, GRANT/DENY/REVOKE, CREATE DATABASE with its files, CREATE
    USER, tables and their storage …).

    :meth:`SQLServerFake.use_catalog` makes the fake answer the account and capacity
    statements of the engine from these views, evaluated for the login the engine connected
    as: what the login may see (VIEW ANY DEFINITION, VIEW ANY DATABASE), HAS_PERMS_BY_NAME
    and HAS_DBACCESS follow the server's rules."""

    def __init__(self) -> None:
        self.server_principals = View("sys.server_principals", _SERVER_PRINCIPAL_COLUMNS)
        self.sql_logins = View("sys.sql_logins", _SQL_LOGIN_COLUMNS)
        self.server_role_members = View("sys.server_role_members", _ROLE_MEMBER_COLUMNS)
        self.server_permissions = View("sys.server_permissions", _PERMISSION_COLUMNS)
        self.endpoints = View("sys.endpoints", _ENDPOINT_COLUMNS)
        self.databases_view = View("sys.databases", _DATABASE_COLUMNS)
        self.master_files = View("sys.master_files", _MASTER_FILE_COLUMNS)
        self.databases: dict[str, SQLServerDatabase] = {}
        # LOGINPROPERTY(name, 'IsLocked' | 'IsExpired' | 'IsMustChange') per SQL login id.
        self.login_properties: dict[int, dict[str, int]] = {}
        self._next_principal = 256
        self._next_sid = 0x5A0000
        self._seed()

    def _seed(self) -> None:
        """What a new instance holds: sa, the fixed server roles, public and its grants,
        the service logins, the endpoints and the four system databases."""
        self.create_login("sa", sid=SA_SID, principal_id=1)
        self._server_principal("public", 2, "R", sid=b"\x02", fixed=False)
        for offset, role in enumerate(_FIXED_SERVER_ROLES):
            self._server_principal(role, 3 + offset, "R", sid=bytes([3 + offset]), fixed=True)
        self.add_server_role_member("sysadmin", "sa")
        self.create_login("##MS_PolicyEventProcessingLogin##", disabled=True)
        self.create_login("##MS_PolicyTsqlExecutionLogin##", disabled=True)
        self.create_login("NT AUTHORITY\\SYSTEM", type="U")
        self.create_login("NT SERVICE\\MSSQLSERVER", type="U")
        self.create_login("BUILTIN\\Administrators", type="G")
        self.add_server_role_member("sysadmin", "NT SERVICE\\MSSQLSERVER")
        for endpoint_id, name, protocol, protocol_desc in _ENDPOINTS:
            self.endpoints.insert(
                name=name,
                endpoint_id=endpoint_id,
                principal_id=1,
                protocol=protocol,
                protocol_desc=protocol_desc,
                type=2,
                type_desc="TSQL",
                state=0,
                state_desc="STARTED",
                is_admin_endpoint=endpoint_id == 1,
            )
            if endpoint_id > 1:
                self.grant("CONNECT", to="public", on=f"ENDPOINT::{name}")
        self.grant("VIEW ANY DATABASE", to="public")
        for name in ("master", "tempdb", "model", "msdb"):
            self.create_database(name)

    def new_sid(self) -> bytes:
        """A SID no other principal has (SQL Server generates 16 random bytes)."""
        self._next_sid += 1
        return self._next_sid.to_bytes(16)

    def _server_principal(
        self,
        name: str,
        principal_id: int,
        kind: str,
        *,
        sid: bytes,
        fixed: bool = False,
        disabled: bool = False,
        default_database: str | None = None,
    ) -> dict[str, Any]:
        return self.server_principals.insert(
            name=name,
            principal_id=principal_id,
            sid=sid,
            type=kind,
            type_desc=_SERVER_TYPE_DESC[kind],
            is_disabled=disabled,
            create_date=_CREATED,
            modify_date=_CREATED,
            default_database_name=default_database,
            default_language_name="us_english" if kind != "R" else None,
            owning_principal_id=1 if kind == "R" and not fixed and principal_id > 2 else None,
            is_fixed_role=fixed,
        )

    def principal(self, name: str) -> dict[str, Any]:
        return self.server_principals.get(name=name)

    # Logins and server roles ----------------------------------------------------------

    def create_login(
        self,
        name: str,
        *,
        type: str = "S",
        sid: bytes | None = None,
        disabled: bool = False,
        default_database: str = "master",
        check_policy: bool = True,
        check_expiration: bool = False,
        principal_id: int | None = None,
    ) -> dict[str, Any]:
        """CREATE LOGIN (SQL login ``S``, Windows user ``U`` or group ``G``, Entra ``E``/``X``);
        like the server, it grants CONNECT SQL to the new login."""
        if principal_id is None:
            principal_id, self._next_principal = self._next_principal, self._next_principal + 1
        login = self._server_principal(
            name,
            principal_id,
            type,
            sid=sid if sid is not None else self.new_sid(),
            disabled=disabled,
            default_database=default_database,
        )
        if type == "S":
            self.sql_logins.insert(
                **login,
                is_policy_checked=check_policy,
                is_expiration_checked=check_expiration,
                password_hash=b"\x02\x00" + bytes(68),
            )
            self.login_properties[principal_id] = {"IsLocked": 0, "IsExpired": 0, "IsMustChange": 0}
        self.grant("CONNECT SQL", to=name)
        return login

    def alter_login(
        self,
        name: str,
        *,
        disabled: bool | None = None,
        locked_out: bool | None = None,
        expired: bool | None = None,
        must_change: bool | None = None,
    ) -> None:
        """ALTER LOGIN … ENABLE/DISABLE, and the password states LOGINPROPERTY reports."""
        login = self.principal(name)
        if disabled is not None:
            self.server_principals.update(login, is_disabled=disabled)
            for row in self.sql_logins.find(principal_id=login["principal_id"]):
                self.sql_logins.update(row, is_disabled=disabled)
        properties = self.login_properties[login["principal_id"]] if login["type"] == "S" else {}
        for key, value in (
            ("IsLocked", locked_out),
            ("IsExpired", expired),
            ("IsMustChange", must_change),
        ):
            if value is not None:
                properties[key] = int(value)

    def drop_login(self, name: str) -> None:
        """DROP LOGIN: its memberships and server permissions go; database users stay,
        orphaned, with the dropped login's SID."""
        principal_id = self.principal(name)["principal_id"]
        self.server_principals.delete(principal_id=principal_id)
        self.sql_logins.delete(principal_id=principal_id)
        self.server_role_members.delete(member_principal_id=principal_id)
        self.server_permissions.delete(grantee_principal_id=principal_id)
        self.login_properties.pop(principal_id, None)

    def create_server_role(self, name: str) -> dict[str, Any]:
        principal_id, self._next_principal = self._next_principal, self._next_principal + 1
        return self._server_principal(name, principal_id, "R", sid=self.new_sid())

    def add_server_role_member(self, role: str, member: str) -> None:
        self.server_role_members.insert(
            role_principal_id=self.principal(role)["principal_id"],
            member_principal_id=self.principal(member)["principal_id"],
        )

    def drop_server_role_member(self, role: str, member: str) -> None:
        self.server_role_members.delete(
            role_principal_id=self.principal(role)["principal_id"],
            member_principal_id=self.principal(member)["principal_id"],
        )

    def _securable(self, on: str | None) -> tuple[int, int]:
        """(class, major_id) of ``on``: None (the server), ``LOGIN::x``,
        ``SERVER ROLE::x`` or ``ENDPOINT::x``."""
        if on is None:
            return 100, 0
        kind, _, name = on.partition("::")
        if kind.upper() == "ENDPOINT":
            return 105, self.endpoints.get(name=name)["endpoint_id"]
        return 101, self.principal(name)["principal_id"]

    def _permission(self, permission: str, principal: str, on: str | None, state) -> None:
        klass, major = self._securable(on)
        grantee = self.principal(principal)["principal_id"]
        _set_permission(
            self.server_permissions,
            klass,
            _SERVER_CLASS_DESC[klass],
            major,
            0,
            grantee,
            permission,
            state,
        )

    def grant(
        self, permission: str, *, to: str, on: str | None = None, with_grant_option: bool = False
    ) -> None:
        self._permission(permission, to, on, _state(with_grant_option=with_grant_option))

    def deny(self, permission: str, *, to: str, on: str | None = None) -> None:
        self._permission(permission, to, on, _state(deny=True))

    def revoke(self, permission: str, *, from_: str, on: str | None = None) -> None:
        self._permission(permission, from_, on, None)

    # Databases --------------------------------------------------------------------------

    def create_database(
        self,
        name: str,
        *,
        owner: str = "sa",
        state: int = 0,
        user_access: int = 0,
        snapshot_of: str | None = None,
    ) -> SQLServerDatabase:
        """CREATE DATABASE (with model's data and log files), or CREATE DATABASE … AS
        SNAPSHOT OF ``snapshot_of`` (a sparse file per data file of the source, no log)."""
        source = self.databases[snapshot_of] if snapshot_of is not None else None
        row = self.databases_view.insert(
            name=name,
            database_id=1 + max((r["database_id"] for r in self.databases_view.rows), default=0),
            source_database_id=source.row["database_id"] if source else None,
            owner_sid=self.principal(owner)["sid"],
            create_date=_CREATED,
            compatibility_level=150,
            collation_name="SQL_Latin1_General_CP1_CI_AS",
            user_access=user_access,
            user_access_desc=_USER_ACCESS_DESC[user_access],
            is_read_only=source is not None,
            state=state,
            state_desc=_DATABASE_STATE_DESC[state],
        )
        database = self.databases[name] = SQLServerDatabase(self, row)
        if source is None:
            database.add_file(pages=_MODEL_FILE_PAGES)
            database.add_file(log=True, pages=_MODEL_FILE_PAGES)
        else:
            for file in self.master_files.find(database_id=source.row["database_id"], type=0):
                copy = database.add_file(f"{file['name']}_snapshot", pages=file["size"])
                self.master_files.update(copy, is_sparse=True, is_read_only=True)
        return database

    def alter_database(
        self, name: str, *, state: int | None = None, user_access: int | None = None
    ) -> None:
        row = self.databases[name].row
        if state is not None:
            self.databases_view.update(row, state=state, state_desc=_DATABASE_STATE_DESC[state])
        if user_access is not None:
            self.databases_view.update(
                row, user_access=user_access, user_access_desc=_USER_ACCESS_DESC[user_access]
            )

    def drop_database(self, name: str) -> None:
        database = self.databases.pop(name)
        self.databases_view.delete(name=name)
        self.master_files.delete(database_id=database.row["database_id"])

    # What a login may see and do --------------------------------------------------------

    def _roles_of(self, principal_id: int) -> set[int]:
        roles, pending = set(), [principal_id]
        while pending:
            member = pending.pop()
            for row in self.server_role_members.find(member_principal_id=member):
                if row["role_principal_id"] not in roles:
                    roles.add(row["role_principal_id"])
                    pending.append(row["role_principal_id"])
        return roles

    def _login_id(self, login: str | None) -> int | None:
        rows = self.server_principals.find(name=login) if login else []
        return rows[0]["principal_id"] if rows else None

    def is_sysadmin(self, login: str | None) -> bool:
        principal_id = self._login_id(login)
        return principal_id is not None and (
            self.principal("sysadmin")["principal_id"] in self._roles_of(principal_id)
        )

    def has_server_permission(
        self, login: str | None, permission: str, version: str
    ) -> bool | None:
        """HAS_PERMS_BY_NAME(NULL, NULL, permission) for ``login``: 1/0 as bool, None when
        the server does not know the permission."""
        if permission == "VIEW ANY SECURITY DEFINITION" and " - 16." not in version:
            return None
        principal_id = self._login_id(login)
        if principal_id is None:
            return False
        if self.is_sysadmin(login):
            return True
        holders = {principal_id, 2, *self._roles_of(principal_id)}
        implied = {permission, "CONTROL SERVER"}
        if permission == "VIEW ANY SECURITY DEFINITION":
            implied.add("VIEW ANY DEFINITION")
        states = {
            row["state"]
            for row in self.server_permissions.rows
            if row["class"] == 100
            and row["grantee_principal_id"] in holders
            and row["permission_name"] in implied
        }
        return "D" not in states and bool(states & {"G", "W"})

    def sees_every_principal(self, login: str | None, version: str) -> bool:
        return bool(
            self.has_server_permission(login, "VIEW ANY DEFINITION", version)
            or self.has_server_permission(login, "VIEW ANY SECURITY DEFINITION", version)
        )

    def visible_principal_ids(self, login: str | None, version: str) -> set[int]:
        """Without VIEW ANY DEFINITION a login sees itself, sa, public and the fixed roles,
        and the roles it is a member of: everyone else is silently left out."""
        every = {row["principal_id"] for row in self.server_principals.rows}
        if self.sees_every_principal(login, version):
            return every
        own = self._login_id(login)
        mine = {own, *self._roles_of(own)} if own is not None else set()
        return {i for i in every if i < 256 or i in mine}

    def sees_database(self, login: str | None, database: SQLServerDatabase, version) -> bool:
        """sys.databases shows everyone master, tempdb and the databases they own; the
        others need VIEW ANY DATABASE (granted to public unless revoked) or more."""
        if database.name in {"master", "tempdb"}:
            return True
        if self.has_server_permission(login, "VIEW ANY DATABASE", version):
            return True
        principal_id = self._login_id(login)
        sid = self.server_principals.get(principal_id=principal_id)["sid"] if principal_id else None
        return sid is not None and database.row["owner_sid"] == sid

    def sees_files(self, login: str | None, version) -> bool:
        """sys.master_files shows a row only with VIEW ANY DEFINITION, ALTER ANY DATABASE
        or CREATE DATABASE (or anything implying them)."""
        return any(
            self.has_server_permission(login, permission, version)
            for permission in ("VIEW ANY DEFINITION", "ALTER ANY DATABASE", "CREATE ANY DATABASE")
        )

    def has_database_access(self, login: str | None, database: SQLServerDatabase, version) -> bool:
        """HAS_DBACCESS: the database is online and the login is a sysadmin or, in
        multi-user mode, holds CONNECT ANY DATABASE or maps to a user (or guest) with
        CONNECT."""
        row = database.row
        if row["state"] != 0:
            return False
        if self.is_sysadmin(login):
            return True
        if row["user_access"] != 0:
            return False
        if self.has_server_permission(login, "CONNECT ANY DATABASE", version):
            return True
        principal_id = self._login_id(login)
        sid = self.server_principals.get(principal_id=principal_id)["sid"] if principal_id else None
        users = [p for p in database.principals.rows if p["sid"] in {sid, GUEST_SID}]
        return any(
            database.permissions.find(
                grantee_principal_id=user["principal_id"], permission_name="CONNECT", state="G"
            )
            for user in users
        )

    # Statements ---------------------------------------------------------------------------

    def answer_visibility(self, match: re.Match, login: str | None, version: str) -> Result:
        permissions = re.findall(r"HAS_PERMS_BY_NAME\(NULL, NULL, '([^']*)'\)", match.string)
        values = []
        for permission in permissions:
            held = self.has_server_permission(login, permission, version)
            values.append(None if held is None else int(held))
        return Result(("",) * len(values), (tuple(values),))

    def answer_principals(self, login: str | None, version: str) -> Result:
        visible = self.visible_principal_ids(login, version)
        rows = []
        for p in self.server_principals.rows:
            if p["principal_id"] not in visible or p["type"] not in {"S", "U", "G", "E", "X", "R"}:
                continue
            sql_login = self.sql_logins.find(principal_id=p["principal_id"])
            properties = self.login_properties.get(p["principal_id"], {})
            rows.append(
                (
                    p["principal_id"],
                    p["name"],
                    p["sid"],
                    p["type"],
                    p["type_desc"],
                    p["is_disabled"],
                    p["is_fixed_role"],
                    p["default_database_name"],
                    sql_login[0]["is_policy_checked"] if sql_login else None,
                    sql_login[0]["is_expiration_checked"] if sql_login else None,
                    properties.get("IsLocked"),
                    properties.get("IsExpired"),
                    properties.get("IsMustChange"),
                )
            )
        return Result(
            (
                "principal_id",
                "name",
                "sid",
                "type",
                "type_desc",
                "is_disabled",
                "is_fixed_role",
                "default_database_name",
                "is_policy_checked",
                "is_expiration_checked",
                "is_locked",
                "is_expired",
                "is_must_change",
            ),
            tuple(rows),
        )

    def answer_server_role_members(self, login: str | None, version: str) -> Result:
        visible = self.visible_principal_ids(login, version)
        rows = []
        for rm in self.server_role_members.rows:
            if {rm["role_principal_id"], rm["member_principal_id"]} <= visible:
                role = self.server_principals.get(principal_id=rm["role_principal_id"])
                rows.append((rm["member_principal_id"], rm["role_principal_id"], role["name"]))
        return Result(("member_principal_id", "role_principal_id", "role_name"), tuple(rows))

    def answer_server_permissions(self, login: str | None, version: str) -> Result:
        visible = self.visible_principal_ids(login, version)
        rows = []
        for sp in self.server_permissions.rows:
            if sp["grantee_principal_id"] not in visible:
                continue
            target = (
                self.server_principals.find(principal_id=sp["major_id"])
                if sp["class"] == 101
                else []
            )
            endpoint = self.endpoints.find(endpoint_id=sp["major_id"]) if sp["class"] == 105 else []
            rows.append(
                (
                    sp["grantee_principal_id"],
                    sp["class"],
                    sp["class_desc"],
                    sp["major_id"],
                    sp["permission_name"],
                    sp["state"],
                    target[0]["name"] if target else None,
                    target[0]["type"] if target else None,
                    endpoint[0]["name"] if endpoint else None,
                )
            )
        return Result(
            (
                "grantee_principal_id",
                "class",
                "class_desc",
                "major_id",
                "permission_name",
                "state",
                "principal_name",
                "principal_type",
                "endpoint_name",
            ),
            tuple(rows),
        )

    def answer_databases(self, login: str | None, version: str) -> Result:
        rows = tuple(
            (
                database.name,
                database.row["owner_sid"],
                database.row["state"],
                database.row["user_access"],
                int(self.has_database_access(login, database, version)),
            )
            for database in self.databases.values()
            if self.sees_database(login, database, version)
        )
        return Result(("name", "owner_sid", "state", "user_access", "has_access"), rows)

    def _visible_databases(self, login, version) -> list[SQLServerDatabase]:
        """The databases of sys.databases the login sees, snapshots left out."""
        return [
            database
            for database in self.databases.values()
            if database.row["source_database_id"] is None
            and self.sees_database(login, database, version)
        ]

    def answer_database_list(self, login: str | None, version: str) -> Result:
        rows = tuple((database.name,) for database in self._visible_databases(login, version))
        return Result(("name",), rows)

    def answer_database_files(self, login: str | None, version: str) -> Result:
        """sys.databases joined with sys.master_files, pages summed by file type."""
        sees_files = self.sees_files(login, version)
        rows = []
        for database in self._visible_databases(login, version):
            files = self.master_files.find(database_id=database.row["database_id"])
            if not sees_files or not files:
                continue  # the inner join drops a database without visible files
            rows.append(
                (
                    database.name,
                    sum(f["size"] for f in files if f["type"] == 0),
                    sum(f["size"] for f in files if f["type"] == 1),
                )
            )
        return Result(("name", "data_pages", "log_pages"), tuple(rows))

    def answer_database_state(self, params, login: str | None, version: str) -> Result:
        if not isinstance(params, tuple | list) or len(params) != 1:
            raise mssql_error("07002", "COUNT field incorrect or syntax error")
        # The server's collation (…_CI_AS) compares names case-insensitively.
        rows = tuple(
            (
                database.row["state_desc"],
                int(self.has_database_access(login, database, version)),
            )
            for database in self.databases.values()
            if database.name.lower() == str(params[0]).lower()
            and self.sees_database(login, database, version)
        )
        return Result(("state_desc", "has_access"), rows)

    def answer_table_sizes(self, match: re.Match, login: str | None, version: str) -> Result:
        """sp_spaceused over one database's sys.tables, sys.partitions and
        sys.allocation_units, read through three-part names."""
        name = match["database"].replace("]]", "]")
        database = self.databases.get(name)
        if database is None:
            raise mssql_invalid_object(f"{name}.sys.tables")
        if not self.has_database_access(login, database, version):
            raise mssql_error(
                "08004",
                f'The server principal "{login}" is not able to access the database '
                f'"{name}" under the current security context.',
                from_server=True,
            )
        # Without VIEW ANY DEFINITION the catalog hides the tables the login has no
        # permission on; the fake hides them all.
        tables = database.tables() if self.sees_files(login, version) else []
        rows = []
        for table in tables:
            if table["is_ms_shipped"]:
                continue
            totals = {"rows": 0, "data": 0, "used": 0, "total": 0}
            joined = False
            for partition in database.partitions.find(object_id=table["object_id"]):
                for unit in database.allocation_units.rows:
                    in_hobt = (
                        unit["type"] in (1, 3) and unit["container_id"] == partition["hobt_id"]
                    )
                    in_partition = (
                        unit["type"] == 2 and unit["container_id"] == partition["partition_id"]
                    )
                    if not (in_hobt or in_partition):
                        continue
                    joined = True
                    heap_or_clustered = partition["index_id"] < 2
                    if heap_or_clustered and unit["type"] == 1:
                        totals["rows"] += partition["rows"]
                    if unit["type"] != 1:
                        totals["data"] += unit["used_pages"]
                    elif heap_or_clustered:
                        totals["data"] += unit["data_pages"]
                    totals["used"] += unit["used_pages"]
                    totals["total"] += unit["total_pages"]
            if joined:  # inner joins: a table without allocation units has no row
                schema = database.schemas.get(schema_id=table["schema_id"])["name"]
                rows.append(
                    (
                        schema,
                        table["name"],
                        totals["rows"],
                        totals["data"],
                        totals["used"],
                        totals["total"],
                    )
                )
        return Result(
            ("schema_name", "table_name", "row_count", "data_pages", "used_pages", "total_pages"),
            tuple(rows),
        )

    def _batch(self, template: str, sql: str, login: str | None, version: str):
        """The databases of a UNION ALL statement made of ``template`` blocks, in order."""
        block = _block_pattern(template)
        databases, position = [], 0
        while True:
            match = block.match(sql, position)
            if match is None:
                raise mssql_error("42000", "Incorrect syntax near 'UNION'.", from_server=True)
            name = match["database"].replace("]]", "]")
            if match["literal"].replace("''", "'") != name:
                raise AssertionError(f"the literal {match['literal']!r} does not name [{name}]")
            database = self.databases.get(name)
            if database is None:
                raise mssql_invalid_object(f"{name}.sys.database_principals")
            if not self.has_database_access(login, database, version):
                raise mssql_error(
                    "08004",
                    f'The server principal "{login}" is not able to access the database '
                    f'"{name}" under the current security context.',
                    from_server=True,
                )
            databases.append(database)
            position = match.end()
            if position == len(sql):
                return databases
            if not sql.startswith(" UNION ALL ", position):
                raise mssql_error("42000", "Incorrect syntax.", from_server=True)
            position += len(" UNION ALL ")

    def answer_database_principals(self, match, login, version) -> Result:
        """Every user and role (types S, U, G, E, X, R) of each database of the batch,
        left-joined with its direct role memberships: one row per role it is in, or one
        row with NULL role columns when it is in none."""
        rows = []
        for database in self._batch(_DATABASE_PRINCIPALS_BLOCK, match.string, login, version):
            for member in database.principals.rows:
                if member["type"] not in {"S", "U", "G", "E", "X", "R"}:
                    continue
                memberships = database.role_members.find(member_principal_id=member["principal_id"])
                roles = [
                    database.principals.find(principal_id=rm["role_principal_id"])
                    for rm in memberships
                ] or [None]
                for role in roles:
                    rows.append(
                        (
                            database.name,
                            member["principal_id"],
                            member["name"],
                            member["type"],
                            member["sid"],
                            role[0]["principal_id"] if role else None,
                            role[0]["name"] if role else None,
                        )
                    )
        return Result(
            (
                "database_name",
                "principal_id",
                "principal_name",
                "principal_type",
                "sid",
                "role_principal_id",
                "role_name",
            ),
            tuple(rows),
        )

    def answer_database_permissions(self, match, login, version) -> Result:
        rows = []
        for database in self._batch(_DATABASE_PERMISSIONS_BLOCK, match.string, login, version):
            for dp in database.permissions.rows:
                grantee = database.principals.get(principal_id=dp["grantee_principal_id"])
                if grantee["type"] not in {"S", "U", "G", "E", "X", "R"}:
                    continue
                klass = dp["class"]
                schema = database.schemas.find(schema_id=dp["major_id"]) if klass == 3 else []
                obj = database.objects.find(object_id=dp["major_id"]) if klass == 1 else []
                object_schema = database.schemas.find(schema_id=obj[0]["schema_id"]) if obj else []
                column = (
                    database.columns.find(object_id=dp["major_id"], column_id=dp["minor_id"])
                    if klass == 1 and dp["minor_id"] > 0
                    else []
                )
                target = database.principals.find(principal_id=dp["major_id"]) if klass == 4 else []
                rows.append(
                    (
                        database.name,
                        dp["grantee_principal_id"],
                        klass,
                        dp["class_desc"],
                        dp["major_id"],
                        dp["minor_id"],
                        dp["permission_name"],
                        dp["state"],
                        schema[0]["name"] if schema else None,
                        object_schema[0]["name"] if object_schema else None,
                        obj[0]["name"] if obj else None,
                        obj[0]["type"] if obj else None,
                        column[0]["name"] if column else None,
                        target[0]["name"] if target else None,
                        target[0]["type"] if target else None,
                    )
                )
        return Result(
            (
                "database_name",
                "grantee_principal_id",
                "class",
                "class_desc",
                "major_id",
                "minor_id",
                "permission_name",
                "state",
                "schema_name",
                "object_schema",
                "object_name",
                "object_type",
                "column_name",
                "principal_name",
                "principal_type",
            ),
            tuple(rows),
        )


# The statements the fake recognises, as SQL Server would receive them. A statement that
# differs in any way (another join condition, a missing column) has no catalog entry.
_VISIBILITY_QUERY = (
    r"^SELECT HAS_PERMS_BY_NAME\(NULL, NULL, '[^']*'\)"
    r"(?:, HAS_PERMS_BY_NAME\(NULL, NULL, '[^']*'\))*$"
)
_PRINCIPALS_QUERY = """
SELECT p.principal_id, p.name, p.sid, p.type, p.type_desc, p.is_disabled, p.is_fixed_role,
       p.default_database_name, l.is_policy_checked, l.is_expiration_checked,
       CAST(LOGINPROPERTY(p.name, 'IsLocked') AS int) AS is_locked,
       CAST(LOGINPROPERTY(p.name, 'IsExpired') AS int) AS is_expired,
       CAST(LOGINPROPERTY(p.name, 'IsMustChange') AS int) AS is_must_change
FROM sys.server_principals AS p
LEFT JOIN sys.sql_logins AS l ON l.principal_id = p.principal_id
WHERE p.type IN ('S', 'U', 'G', 'E', 'X', 'R')
"""
_SERVER_ROLE_MEMBERS_QUERY = """
SELECT rm.member_principal_id, rm.role_principal_id, r.name AS role_name
FROM sys.server_role_members AS rm
JOIN sys.server_principals AS r ON r.principal_id = rm.role_principal_id
"""
_SERVER_PERMISSIONS_QUERY = """
SELECT sp.grantee_principal_id, sp.class, sp.class_desc, sp.major_id, sp.permission_name,
       sp.state, tp.name AS principal_name, tp.type AS principal_type, e.name AS endpoint_name
FROM sys.server_permissions AS sp
LEFT JOIN sys.server_principals AS tp ON sp.class = 101 AND tp.principal_id = sp.major_id
LEFT JOIN sys.endpoints AS e ON sp.class = 105 AND e.endpoint_id = sp.major_id
"""
_DATABASES_QUERY = """
SELECT d.name, d.owner_sid, d.state, d.user_access, HAS_DBACCESS(d.name) AS has_access
FROM sys.databases AS d
"""
_DATABASE_PRINCIPALS_BLOCK = """
SELECT {literal} AS database_name, m.principal_id,
       m.name COLLATE DATABASE_DEFAULT AS principal_name,
       m.type COLLATE DATABASE_DEFAULT AS principal_type, m.sid,
       rm.role_principal_id, r.name COLLATE DATABASE_DEFAULT AS role_name
FROM {database}.sys.database_principals AS m
LEFT JOIN {database}.sys.database_role_members AS rm ON rm.member_principal_id = m.principal_id
LEFT JOIN {database}.sys.database_principals AS r ON r.principal_id = rm.role_principal_id
WHERE m.type IN ('S', 'U', 'G', 'E', 'X', 'R')
"""
_DATABASE_PERMISSIONS_BLOCK = """
SELECT {literal} AS database_name, dp.grantee_principal_id, dp.class,
       dp.class_desc COLLATE DATABASE_DEFAULT AS class_desc, dp.major_id, dp.minor_id,
       dp.permission_name COLLATE DATABASE_DEFAULT AS permission_name,
       dp.state COLLATE DATABASE_DEFAULT AS state,
       s.name COLLATE DATABASE_DEFAULT AS schema_name,
       os.name COLLATE DATABASE_DEFAULT AS object_schema,
       o.name COLLATE DATABASE_DEFAULT AS object_name,
       o.type COLLATE DATABASE_DEFAULT AS object_type,
       c.name COLLATE DATABASE_DEFAULT AS column_name,
       tp.name COLLATE DATABASE_DEFAULT AS principal_name,
       tp.type COLLATE DATABASE_DEFAULT AS principal_type
FROM {database}.sys.database_permissions AS dp
JOIN {database}.sys.database_principals AS pr ON pr.principal_id = dp.grantee_principal_id
LEFT JOIN {database}.sys.schemas AS s ON dp.class = 3 AND s.schema_id = dp.major_id
LEFT JOIN {database}.sys.all_objects AS o ON dp.class = 1 AND o.object_id = dp.major_id
LEFT JOIN {database}.sys.schemas AS os ON os.schema_id = o.schema_id
LEFT JOIN {database}.sys.all_columns AS c
       ON dp.class = 1 AND dp.minor_id > 0 AND c.object_id = dp.major_id
      AND c.column_id = dp.minor_id
LEFT JOIN {database}.sys.database_principals AS tp
       ON dp.class = 4 AND tp.principal_id = dp.major_id
WHERE pr.type IN ('S', 'U', 'G', 'E', 'X', 'R')
"""


_DATABASE_LIST_QUERY = """
SELECT d.name FROM sys.databases AS d WHERE d.source_database_id IS NULL
"""
_DATABASE_FILES_QUERY = """
SELECT d.name,
       SUM(CASE WHEN f.type = 0 THEN CAST(f.size AS bigint) ELSE 0 END) AS data_pages,
       SUM(CASE WHEN f.type = 1 THEN CAST(f.size AS bigint) ELSE 0 END) AS log_pages
FROM sys.databases AS d
JOIN sys.master_files AS f ON f.database_id = d.database_id
WHERE d.source_database_id IS NULL
GROUP BY d.name
"""
_DATABASE_STATE_QUERY = """
SELECT d.state_desc, HAS_DBACCESS(d.name) AS has_access
FROM sys.databases AS d
WHERE d.name = ?
"""
_TABLE_SIZES_TEMPLATE = """
SELECT s.name AS schema_name, t.name AS table_name,
       SUM(CASE WHEN p.index_id < 2 AND a.type = 1 THEN p.rows ELSE 0 END) AS row_count,
       SUM(CASE WHEN a.type <> 1 THEN a.used_pages
                WHEN p.index_id < 2 THEN a.data_pages ELSE 0 END) AS data_pages,
       SUM(a.used_pages) AS used_pages, SUM(a.total_pages) AS total_pages
FROM {database}.sys.tables AS t
JOIN {database}.sys.schemas AS s ON s.schema_id = t.schema_id
JOIN {database}.sys.partitions AS p ON p.object_id = t.object_id
JOIN {database}.sys.allocation_units AS a
  ON (a.type IN (1, 3) AND a.container_id = p.hobt_id)
  OR (a.type = 2 AND a.container_id = p.partition_id)
WHERE t.is_ms_shipped = 0
GROUP BY s.name, t.name
"""


def _block_pattern(template: str) -> re.Pattern:
    """A block of ``template`` for one database: ``N'…'`` names it, ``[…]`` reads from it."""
    pattern = []
    seen_database = False
    for piece in re.split(r"(\{literal\}|\{database\})", normalise(template)):
        if piece == "{literal}":
            pattern.append(r"N'(?P<literal>(?:[^']|'')*)'")
        elif piece == "{database}" and not seen_database:
            pattern.append(r"\[(?P<database>(?:[^\]]|\]\])*)\]")
            seen_database = True
        elif piece == "{database}":
            pattern.append(r"\[(?P=database)\]")
        else:
            pattern.append(re.escape(piece))
    return re.compile("".join(pattern))


class SQLServerFake(FakeServer):
    """A SQL Server reached through ``mssql_python.connect``."""

    def __init__(self, version: str = SQLSERVER_2019_VERSION) -> None:
        super().__init__()
        self.version = version
        self.catalog: SQLServerCatalog | None = None
        self.session_login: str | None = None  # the UID of the latest connection
        self.on(r"^SELECT @@VERSION$", lambda _match, _params: Result(("",), ((self.version,),)))

    def use_catalog(self, catalog: SQLServerCatalog | None = None) -> SQLServerCatalog:
        """Answer the security-catalog statements of the engine from ``catalog`` (a new
        :class:`SQLServerCatalog` by default), for the login of the session."""
        catalog = self.catalog = catalog or SQLServerCatalog()

        def answer(method: Callable, *, with_match: bool = False) -> Answer:
            if with_match:
                return lambda match, _params: method(match, self.session_login, self.version)
            return lambda _match, _params: method(self.session_login, self.version)

        self.on(_VISIBILITY_QUERY, answer(catalog.answer_visibility, with_match=True))
        self.on(exact(_PRINCIPALS_QUERY), answer(catalog.answer_principals))
        self.on(exact(_SERVER_ROLE_MEMBERS_QUERY), answer(catalog.answer_server_role_members))
        self.on(exact(_SERVER_PERMISSIONS_QUERY), answer(catalog.answer_server_permissions))
        self.on(exact(_DATABASES_QUERY), answer(catalog.answer_databases))
        self.on(
            "^" + _block_pattern(_DATABASE_PRINCIPALS_BLOCK).pattern,
            answer(catalog.answer_database_principals, with_match=True),
        )
        self.on(
            "^" + _block_pattern(_DATABASE_PERMISSIONS_BLOCK).pattern,
            answer(catalog.answer_database_permissions, with_match=True),
        )
        self.on(exact(_DATABASE_LIST_QUERY), answer(catalog.answer_database_list))
        self.on(exact(_DATABASE_FILES_QUERY), answer(catalog.answer_database_files))
        self.on(
            exact(_DATABASE_STATE_QUERY),
            lambda _match, params: catalog.answer_database_state(
                params, self.session_login, self.version
            ),
        )
        self.on(
            "^" + _block_pattern(_TABLE_SIZES_TEMPLATE).pattern + "$",
            answer(catalog.answer_table_sizes, with_match=True),
        )
        return catalog

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
        self.session_login = params.get("uid")
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


def oracle_connection_closed() -> Exception:
    """The database or the network dropped an open session."""
    return oracle_driver_error(oracle_errors.ERR_CONNECTION_CLOSED)


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


# --- Oracle data dictionary ------------------------------------------------------------------
#
# Columns of the Oracle Database Reference for 19c (and 11g Release 2, where ORACLE_MAINTAINED,
# COMMON, INHERITED and the newer administrative privileges do not exist yet), with the types
# python-oracledb returns: VARCHAR2 -> str, NUMBER -> int, DATE -> datetime.

_ORACLE_19C_VIEWS: dict[str, tuple[tuple[str, str], ...]] = {
    "DBA_USERS": (
        ("USERNAME", "VARCHAR2(128)"),
        ("USER_ID", "NUMBER"),
        ("PASSWORD", "VARCHAR2(4000)"),
        ("ACCOUNT_STATUS", "VARCHAR2(32)"),
        ("LOCK_DATE", "DATE"),
        ("EXPIRY_DATE", "DATE"),
        ("DEFAULT_TABLESPACE", "VARCHAR2(30)"),
        ("TEMPORARY_TABLESPACE", "VARCHAR2(30)"),
        ("LOCAL_TEMP_TABLESPACE", "VARCHAR2(30)"),
        ("CREATED", "DATE"),
        ("PROFILE", "VARCHAR2(128)"),
        ("INITIAL_RSRC_CONSUMER_GROUP", "VARCHAR2(128)"),
        ("EXTERNAL_NAME", "VARCHAR2(4000)"),
        ("PASSWORD_VERSIONS", "VARCHAR2(17)"),
        ("EDITIONS_ENABLED", "VARCHAR2(1)"),
        ("AUTHENTICATION_TYPE", "VARCHAR2(8)"),
        ("PROXY_ONLY_CONNECT", "VARCHAR2(1)"),
        ("COMMON", "VARCHAR2(3)"),
        ("LAST_LOGIN", "TIMESTAMP(9) WITH TIME ZONE"),
        ("ORACLE_MAINTAINED", "VARCHAR2(1)"),
        ("INHERITED", "VARCHAR2(3)"),
        ("DEFAULT_COLLATION", "VARCHAR2(100)"),
        ("IMPLICIT", "VARCHAR2(3)"),
        ("ALL_SHARD", "VARCHAR2(3)"),
    ),
    "DBA_ROLES": (
        ("ROLE", "VARCHAR2(128)"),
        ("ROLE_ID", "NUMBER"),
        ("PASSWORD_REQUIRED", "VARCHAR2(8)"),
        ("AUTHENTICATION_TYPE", "VARCHAR2(11)"),
        ("COMMON", "VARCHAR2(3)"),
        ("ORACLE_MAINTAINED", "VARCHAR2(1)"),
        ("INHERITED", "VARCHAR2(3)"),
        ("IMPLICIT", "VARCHAR2(3)"),
        ("EXTERNAL_NAME", "VARCHAR2(4000)"),
    ),
    "DBA_ROLE_PRIVS": (
        ("GRANTEE", "VARCHAR2(128)"),
        ("GRANTED_ROLE", "VARCHAR2(128)"),
        ("ADMIN_OPTION", "VARCHAR2(3)"),
        ("DELEGATE_OPTION", "VARCHAR2(3)"),
        ("DEFAULT_ROLE", "VARCHAR2(3)"),
        ("COMMON", "VARCHAR2(3)"),
        ("INHERITED", "VARCHAR2(3)"),
    ),
    "DBA_SYS_PRIVS": (
        ("GRANTEE", "VARCHAR2(128)"),
        ("PRIVILEGE", "VARCHAR2(40)"),
        ("ADMIN_OPTION", "VARCHAR2(3)"),
        ("COMMON", "VARCHAR2(3)"),
        ("INHERITED", "VARCHAR2(3)"),
    ),
    "DBA_TS_QUOTAS": (
        ("TABLESPACE_NAME", "VARCHAR2(30)"),
        ("USERNAME", "VARCHAR2(128)"),
        ("BYTES", "NUMBER"),
        ("MAX_BYTES", "NUMBER"),
        ("BLOCKS", "NUMBER"),
        ("MAX_BLOCKS", "NUMBER"),
        ("DROPPED", "VARCHAR2(3)"),
    ),
    "DBA_TAB_PRIVS": (
        ("GRANTEE", "VARCHAR2(128)"),
        ("OWNER", "VARCHAR2(128)"),
        ("TABLE_NAME", "VARCHAR2(128)"),
        ("GRANTOR", "VARCHAR2(128)"),
        ("PRIVILEGE", "VARCHAR2(40)"),
        ("GRANTABLE", "VARCHAR2(3)"),
        ("HIERARCHY", "VARCHAR2(3)"),
        ("COMMON", "VARCHAR2(3)"),
        ("TYPE", "VARCHAR2(24)"),
        ("INHERITED", "VARCHAR2(3)"),
    ),
    "DBA_COL_PRIVS": (
        ("GRANTEE", "VARCHAR2(128)"),
        ("OWNER", "VARCHAR2(128)"),
        ("TABLE_NAME", "VARCHAR2(128)"),
        ("COLUMN_NAME", "VARCHAR2(128)"),
        ("GRANTOR", "VARCHAR2(128)"),
        ("PRIVILEGE", "VARCHAR2(40)"),
        ("GRANTABLE", "VARCHAR2(3)"),
        ("COMMON", "VARCHAR2(3)"),
        ("INHERITED", "VARCHAR2(3)"),
    ),
    "V$PWFILE_USERS": (
        ("USERNAME", "VARCHAR2(128)"),
        ("SYSDBA", "VARCHAR2(5)"),
        ("SYSOPER", "VARCHAR2(5)"),
        ("SYSASM", "VARCHAR2(5)"),
        ("SYSBACKUP", "VARCHAR2(5)"),
        ("SYSDG", "VARCHAR2(5)"),
        ("SYSKM", "VARCHAR2(5)"),
        ("ACCOUNT_STATUS", "VARCHAR2(30)"),
        ("PASSWORD_PROFILE", "VARCHAR2(128)"),
        ("LAST_LOGIN", "TIMESTAMP(9) WITH TIME ZONE"),
        ("LOCK_DATE", "DATE"),
        ("EXPIRY_DATE", "DATE"),
        ("EXTERNAL_NAME", "VARCHAR2(1024)"),
        ("AUTHENTICATION_TYPE", "VARCHAR2(8)"),
        ("COMMON", "VARCHAR2(3)"),
        ("CON_ID", "NUMBER"),
    ),
    # Storage views; the in-memory and sharding columns are left out.
    "DBA_TABLESPACES": (
        ("TABLESPACE_NAME", "VARCHAR2(30)"),
        ("BLOCK_SIZE", "NUMBER"),
        ("INITIAL_EXTENT", "NUMBER"),
        ("NEXT_EXTENT", "NUMBER"),
        ("MIN_EXTENTS", "NUMBER"),
        ("MAX_EXTENTS", "NUMBER"),
        ("MAX_SIZE", "NUMBER"),
        ("PCT_INCREASE", "NUMBER"),
        ("MIN_EXTLEN", "NUMBER"),
        ("STATUS", "VARCHAR2(9)"),
        ("CONTENTS", "VARCHAR2(21)"),
        ("LOGGING", "VARCHAR2(9)"),
        ("FORCE_LOGGING", "VARCHAR2(3)"),
        ("EXTENT_MANAGEMENT", "VARCHAR2(10)"),
        ("ALLOCATION_TYPE", "VARCHAR2(9)"),
        ("PLUGGED_IN", "VARCHAR2(3)"),
        ("SEGMENT_SPACE_MANAGEMENT", "VARCHAR2(6)"),
        ("DEF_TAB_COMPRESSION", "VARCHAR2(8)"),
        ("RETENTION", "VARCHAR2(11)"),
        ("BIGFILE", "VARCHAR2(3)"),
        ("PREDICATE_EVALUATION", "VARCHAR2(7)"),
        ("ENCRYPTED", "VARCHAR2(3)"),
        ("COMPRESS_FOR", "VARCHAR2(30)"),
        ("SHARED", "VARCHAR2(13)"),
        ("LOST_WRITE_PROTECT", "VARCHAR2(7)"),
        ("CHUNK_TABLESPACE", "VARCHAR2(1)"),
    ),
    "DBA_DATA_FILES": (
        ("FILE_NAME", "VARCHAR2(513)"),
        ("FILE_ID", "NUMBER"),
        ("TABLESPACE_NAME", "VARCHAR2(30)"),
        ("BYTES", "NUMBER"),  # NULL when the file cannot be read
        ("BLOCKS", "NUMBER"),
        ("STATUS", "VARCHAR2(9)"),
        ("RELATIVE_FNO", "NUMBER"),
        ("AUTOEXTENSIBLE", "VARCHAR2(3)"),
        ("MAXBYTES", "NUMBER"),
        ("MAXBLOCKS", "NUMBER"),
        ("INCREMENT_BY", "NUMBER"),
        ("USER_BYTES", "NUMBER"),
        ("USER_BLOCKS", "NUMBER"),
        ("ONLINE_STATUS", "VARCHAR2(7)"),
        ("LOST_WRITE_PROTECT", "VARCHAR2(7)"),
    ),
    "DBA_TEMP_FILES": (
        ("FILE_NAME", "VARCHAR2(513)"),
        ("FILE_ID", "NUMBER"),
        ("TABLESPACE_NAME", "VARCHAR2(30)"),
        ("BYTES", "NUMBER"),
        ("BLOCKS", "NUMBER"),
        ("STATUS", "VARCHAR2(7)"),
        ("RELATIVE_FNO", "NUMBER"),
        ("AUTOEXTENSIBLE", "VARCHAR2(3)"),
        ("MAXBYTES", "NUMBER"),
        ("MAXBLOCKS", "NUMBER"),
        ("INCREMENT_BY", "NUMBER"),
        ("USER_BYTES", "NUMBER"),
        ("USER_BLOCKS", "NUMBER"),
        ("SHARED", "VARCHAR2(13)"),
        ("INST_ID", "NUMBER"),
    ),
    "DBA_SEGMENTS": (
        ("OWNER", "VARCHAR2(128)"),
        ("SEGMENT_NAME", "VARCHAR2(128)"),
        ("PARTITION_NAME", "VARCHAR2(128)"),
        ("SEGMENT_TYPE", "VARCHAR2(18)"),
        ("SEGMENT_SUBTYPE", "VARCHAR2(10)"),
        ("TABLESPACE_NAME", "VARCHAR2(30)"),
        ("HEADER_FILE", "NUMBER"),
        ("HEADER_BLOCK", "NUMBER"),
        ("BYTES", "NUMBER"),
        ("BLOCKS", "NUMBER"),
        ("EXTENTS", "NUMBER"),
        ("INITIAL_EXTENT", "NUMBER"),
        ("NEXT_EXTENT", "NUMBER"),
        ("MIN_EXTENTS", "NUMBER"),
        ("MAX_EXTENTS", "NUMBER"),
        ("MAX_SIZE", "NUMBER"),
        ("RETENTION", "VARCHAR2(7)"),
        ("MINRETENTION", "NUMBER"),
        ("PCT_INCREASE", "NUMBER"),
        ("FREELISTS", "NUMBER"),
        ("FREELIST_GROUPS", "NUMBER"),
        ("RELATIVE_FNO", "NUMBER"),
        ("BUFFER_POOL", "VARCHAR2(7)"),
        ("FLASH_CACHE", "VARCHAR2(7)"),
        ("CELL_FLASH_CACHE", "VARCHAR2(7)"),
    ),
    # DBA_TABLES and DBA_INDEXES have some 60 columns each: the leading ones and those
    # about statistics and state.
    "DBA_TABLES": (
        ("OWNER", "VARCHAR2(128)"),
        ("TABLE_NAME", "VARCHAR2(128)"),
        ("TABLESPACE_NAME", "VARCHAR2(30)"),
        ("CLUSTER_NAME", "VARCHAR2(128)"),
        ("IOT_NAME", "VARCHAR2(128)"),
        ("STATUS", "VARCHAR2(8)"),
        ("PCT_FREE", "NUMBER"),
        ("LOGGING", "VARCHAR2(3)"),
        ("NUM_ROWS", "NUMBER"),
        ("BLOCKS", "NUMBER"),
        ("EMPTY_BLOCKS", "NUMBER"),
        ("AVG_ROW_LEN", "NUMBER"),
        ("SAMPLE_SIZE", "NUMBER"),
        ("LAST_ANALYZED", "DATE"),
        ("PARTITIONED", "VARCHAR2(3)"),
        ("IOT_TYPE", "VARCHAR2(12)"),
        ("TEMPORARY", "VARCHAR2(1)"),
        ("NESTED", "VARCHAR2(3)"),
        ("COMPRESSION", "VARCHAR2(8)"),
        ("DROPPED", "VARCHAR2(3)"),
        ("READ_ONLY", "VARCHAR2(3)"),
        ("SEGMENT_CREATED", "VARCHAR2(3)"),
    ),
    "DBA_INDEXES": (
        ("OWNER", "VARCHAR2(128)"),
        ("INDEX_NAME", "VARCHAR2(128)"),
        ("INDEX_TYPE", "VARCHAR2(27)"),
        ("TABLE_OWNER", "VARCHAR2(128)"),
        ("TABLE_NAME", "VARCHAR2(128)"),
        ("TABLE_TYPE", "VARCHAR2(11)"),
        ("UNIQUENESS", "VARCHAR2(9)"),
        ("COMPRESSION", "VARCHAR2(13)"),
        ("TABLESPACE_NAME", "VARCHAR2(30)"),
        ("STATUS", "VARCHAR2(8)"),
        ("NUM_ROWS", "NUMBER"),
        ("LAST_ANALYZED", "DATE"),
        ("PARTITIONED", "VARCHAR2(3)"),
        ("TEMPORARY", "VARCHAR2(1)"),
        ("GENERATED", "VARCHAR2(1)"),
        ("DROPPED", "VARCHAR2(3)"),
        ("SEGMENT_CREATED", "VARCHAR2(3)"),
    ),
    "DBA_LOBS": (
        ("OWNER", "VARCHAR2(128)"),
        ("TABLE_NAME", "VARCHAR2(128)"),
        ("COLUMN_NAME", "VARCHAR2(4000)"),
        ("SEGMENT_NAME", "VARCHAR2(128)"),
        ("TABLESPACE_NAME", "VARCHAR2(30)"),
        ("INDEX_NAME", "VARCHAR2(128)"),
        ("CHUNK", "NUMBER"),
        ("PCTVERSION", "NUMBER"),
        ("RETENTION", "NUMBER"),
        ("FREEPOOLS", "NUMBER"),
        ("CACHE", "VARCHAR2(10)"),
        ("LOGGING", "VARCHAR2(7)"),
        ("ENCRYPT", "VARCHAR2(4)"),
        ("COMPRESSION", "VARCHAR2(6)"),
        ("DEDUPLICATION", "VARCHAR2(15)"),
        ("IN_ROW", "VARCHAR2(3)"),
        ("FORMAT", "VARCHAR2(15)"),
        ("PARTITIONED", "VARCHAR2(3)"),
        ("SECUREFILE", "VARCHAR2(3)"),
        ("SEGMENT_CREATED", "VARCHAR2(3)"),
        ("RETENTION_TYPE", "VARCHAR2(7)"),
        ("RETENTION_VALUE", "NUMBER"),
    ),
}
_ORACLE_11G_COLUMNS = {
    "DBA_USERS": (
        "USERNAME", "USER_ID", "PASSWORD", "ACCOUNT_STATUS", "LOCK_DATE", "EXPIRY_DATE",
        "DEFAULT_TABLESPACE", "TEMPORARY_TABLESPACE", "CREATED", "PROFILE",
        "INITIAL_RSRC_CONSUMER_GROUP", "EXTERNAL_NAME", "PASSWORD_VERSIONS", "EDITIONS_ENABLED",
        "AUTHENTICATION_TYPE",
    ),
    "DBA_ROLES": ("ROLE", "PASSWORD_REQUIRED", "AUTHENTICATION_TYPE"),
    "DBA_ROLE_PRIVS": ("GRANTEE", "GRANTED_ROLE", "ADMIN_OPTION", "DEFAULT_ROLE"),
    "DBA_SYS_PRIVS": ("GRANTEE", "PRIVILEGE", "ADMIN_OPTION"),
    "DBA_TS_QUOTAS": (
        "TABLESPACE_NAME", "USERNAME", "BYTES", "MAX_BYTES", "BLOCKS", "MAX_BLOCKS", "DROPPED",
    ),
    "DBA_TAB_PRIVS": (
        "GRANTEE", "OWNER", "TABLE_NAME", "GRANTOR", "PRIVILEGE", "GRANTABLE", "HIERARCHY",
    ),
    "DBA_COL_PRIVS": (
        "GRANTEE", "OWNER", "TABLE_NAME", "COLUMN_NAME", "GRANTOR", "PRIVILEGE", "GRANTABLE",
    ),
    "V$PWFILE_USERS": ("USERNAME", "SYSDBA", "SYSOPER", "SYSASM"),
    "DBA_TABLESPACES": (
        "TABLESPACE_NAME", "BLOCK_SIZE", "INITIAL_EXTENT", "NEXT_EXTENT", "MIN_EXTENTS",
        "MAX_EXTENTS", "MAX_SIZE", "PCT_INCREASE", "MIN_EXTLEN", "STATUS", "CONTENTS",
        "LOGGING", "FORCE_LOGGING", "EXTENT_MANAGEMENT", "ALLOCATION_TYPE", "PLUGGED_IN",
        "SEGMENT_SPACE_MANAGEMENT", "DEF_TAB_COMPRESSION", "RETENTION", "BIGFILE",
        "PREDICATE_EVALUATION", "ENCRYPTED", "COMPRESS_FOR",
    ),
    "DBA_DATA_FILES": (
        "FILE_NAME", "FILE_ID", "TABLESPACE_NAME", "BYTES", "BLOCKS", "STATUS", "RELATIVE_FNO",
        "AUTOEXTENSIBLE", "MAXBYTES", "MAXBLOCKS", "INCREMENT_BY", "USER_BYTES", "USER_BLOCKS",
        "ONLINE_STATUS",
    ),
    "DBA_TEMP_FILES": (
        "FILE_NAME", "FILE_ID", "TABLESPACE_NAME", "BYTES", "BLOCKS", "STATUS", "RELATIVE_FNO",
        "AUTOEXTENSIBLE", "MAXBYTES", "MAXBLOCKS", "INCREMENT_BY", "USER_BYTES", "USER_BLOCKS",
    ),
    "DBA_SEGMENTS": tuple(column for column, _type in _ORACLE_19C_VIEWS["DBA_SEGMENTS"]),
    "DBA_TABLES": tuple(column for column, _type in _ORACLE_19C_VIEWS["DBA_TABLES"]),
    "DBA_INDEXES": tuple(column for column, _type in _ORACLE_19C_VIEWS["DBA_INDEXES"]),
    "DBA_LOBS": tuple(
        column
        for column, _type in _ORACLE_19C_VIEWS["DBA_LOBS"]
        if column not in {"RETENTION_TYPE", "RETENTION_VALUE"}
    ),
}  # fmt: skip
_ORACLE_PWFILE_PRIVILEGES = ("SYSDBA", "SYSOPER", "SYSASM", "SYSBACKUP", "SYSDG", "SYSKM")
# Oracle's own accounts and roles in a fresh 19c database (a subset), with their statuses.
_ORACLE_MAINTAINED_USERS = (
    ("SYS", "OPEN", "SYSTEM"),
    ("SYSTEM", "OPEN", "SYSTEM"),
    ("XDB", "LOCKED", "SYSAUX"),
    ("DBSNMP", "LOCKED", "SYSAUX"),
    ("OUTLN", "LOCKED", "SYSTEM"),
    ("APEX_200200", "LOCKED", "SYSAUX"),
    ("GSMADMIN_INTERNAL", "EXPIRED & LOCKED", "SYSAUX"),
    ("XS$NULL", "EXPIRED & LOCKED", "SYSTEM"),
)
_ORACLE_MAINTAINED_ROLES = (
    "CONNECT", "RESOURCE", "DBA", "SELECT_CATALOG_ROLE", "EXP_FULL_DATABASE",
    "IMP_FULL_DATABASE", "AUDIT_ADMIN", "XDBADMIN", "APEX_ADMINISTRATOR_ROLE",
)  # fmt: skip
_ORACLE_CREATED = datetime.datetime(2019, 4, 17, 0, 56, 2)
_DICTIONARY_READERS = {"SELECT_CATALOG_ROLE", "DBA"}
_ORACLE_BLOCK = 8192
_MIB = 1024 * 1024
# The tablespaces of a fresh 19c database (DBCA's general-purpose template), with the
# sizes of their files.
_ORACLE_TABLESPACES = (
    ("SYSTEM", "PERMANENT", 900 * _MIB),
    ("SYSAUX", "PERMANENT", 630 * _MIB),
    ("UNDOTBS1", "UNDO", 340 * _MIB),
    ("TEMP", "TEMPORARY", 32 * _MIB),
    ("USERS", "PERMANENT", 5 * _MIB),
)
_TABLE_SEGMENT_TYPES = ("TABLE", "TABLE PARTITION", "TABLE SUBPARTITION")
_LOB_SEGMENT_TYPES = ("LOBSEGMENT", "LOB PARTITION", "LOB SUBPARTITION")
_INDEX_SEGMENT_TYPES = ("INDEX", "INDEX PARTITION", "INDEX SUBPARTITION", "LOBINDEX")


class OracleCatalog:
    """The data dictionary of a fake Oracle database, built by a test like the database
    would be (CREATE USER, ALTER USER, CREATE ROLE, GRANT, REVOKE, quotas, the password
    file, CREATE TABLESPACE, ADD DATAFILE, CREATE TABLE / INDEX with their segments), for
    ``release`` "19c" or "11g" (the views' columns differ). A new catalog holds the
    tablespaces of a fresh database: SYSTEM, SYSAUX, UNDOTBS1, TEMP and USERS.

    :meth:`OracleFake.use_catalog` makes the fake answer plain projections of these views
    (``SELECT col, … FROM view``), and the engine's size statements, for the user the
    engine connected as: without SELECT_CATALOG_ROLE (or SELECT ANY DICTIONARY) the views
    do not exist for it (ORA-00942), and a column the release lacks is ORA-00904."""

    def __init__(self, release: str = "19c") -> None:
        self.release = release
        self.views: dict[str, View] = {}
        for name, columns in _ORACLE_19C_VIEWS.items():
            if release == "11g":
                kept = _ORACLE_11G_COLUMNS[name]
                columns = tuple(column for column in columns if column[0] in kept)
            self.views[name] = View(name, columns)
        self._next_id = 100
        self._seed()

    def view(self, name: str) -> View:
        return self.views[name.upper()]

    def _seed(self) -> None:
        for name, contents, size in _ORACLE_TABLESPACES:
            self.create_tablespace(name, contents=contents, file_bytes=(size,))
        for name, status, tablespace in _ORACLE_MAINTAINED_USERS:
            self.create_user(
                name, status=status, default_tablespace=tablespace, oracle_maintained=True
            )
        for role in _ORACLE_MAINTAINED_ROLES:
            self.create_role(role, oracle_maintained=True)
        self.grant("CREATE SESSION", to="CONNECT")
        for privilege in ("CREATE TABLE", "CREATE SEQUENCE", "CREATE PROCEDURE"):
            self.grant(privilege, to="RESOURCE")
        for privilege in (
            "CREATE USER", "ALTER USER", "DROP USER", "CREATE SESSION", "GRANT ANY PRIVILEGE",
            "GRANT ANY ROLE", "GRANT ANY OBJECT PRIVILEGE", "SELECT ANY TABLE",
        ):  # fmt: skip
            self.grant(privilege, to="DBA", admin=True)
        self.grant("SELECT_CATALOG_ROLE", to="DBA", admin=True)
        for role in _ORACLE_MAINTAINED_ROLES:
            self.grant(role, to="SYS", admin=True)
        self.grant("DBA", to="SYSTEM", admin=True)
        self.grant("UNLIMITED TABLESPACE", to="SYSTEM", admin=True)
        self.password_file("SYS", sysdba=True, sysoper=True)

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _maintained(self, value: bool) -> dict[str, str]:
        return {"oracle_maintained": "Y" if value else "N", "common": "NO", "inherited": "NO"}

    # Users and roles ----------------------------------------------------------------------

    def create_user(
        self,
        name: str,
        *,
        status: str = "OPEN",
        profile: str = "DEFAULT",
        default_tablespace: str = "USERS",
        authentication: str = "PASSWORD",
        oracle_maintained: bool = False,
        created: datetime.datetime = _ORACLE_CREATED,
        expiry_date: datetime.datetime | None = None,
    ) -> dict[str, Any]:
        """CREATE USER (names as Oracle stores them: upper case unless quoted)."""
        return self.view("DBA_USERS").insert(
            known_only=True,
            username=name,
            user_id=self._new_id(),
            account_status=status,
            lock_date=created if "LOCKED" in status else None,
            expiry_date=expiry_date,
            default_tablespace=default_tablespace,
            temporary_tablespace="TEMP",
            created=created,
            profile=profile,
            initial_rsrc_consumer_group="DEFAULT_CONSUMER_GROUP",
            password_versions="11G 12C" if authentication == "PASSWORD" else None,
            editions_enabled="N",
            authentication_type=authentication,
            proxy_only_connect="N",
            default_collation="USING_NLS_COMP",
            implicit="NO",
            all_shard="NO",
            **self._maintained(oracle_maintained),
        )

    def alter_user(self, name: str, *, status: str | None = None, **values: Any) -> None:
        """ALTER USER … ACCOUNT LOCK/UNLOCK, PASSWORD EXPIRE, PROFILE, DEFAULT TABLESPACE."""
        row = self.view("DBA_USERS").get(username=name)
        if status is not None:
            values |= {
                "account_status": status,
                "lock_date": _ORACLE_CREATED if "LOCKED" in status else None,
            }
        self.view("DBA_USERS").update(row, **values)

    def drop_user(self, name: str) -> None:
        """DROP USER … CASCADE: what was granted to it goes with it."""
        self.view("DBA_USERS").delete(username=name)
        self._drop_grantee(name)
        self.view("DBA_TS_QUOTAS").delete(username=name)
        self.view("V$PWFILE_USERS").delete(username=name)

    def create_role(self, name: str, *, oracle_maintained: bool = False) -> dict[str, Any]:
        return self.view("DBA_ROLES").insert(
            known_only=True,
            role=name,
            role_id=self._new_id(),
            password_required="NO",
            authentication_type="NONE",
            implicit="NO",
            **self._maintained(oracle_maintained),
        )

    def drop_role(self, name: str) -> None:
        self.view("DBA_ROLES").delete(role=name)
        self._drop_grantee(name)
        self.view("DBA_ROLE_PRIVS").delete(granted_role=name)

    def _drop_grantee(self, name: str) -> None:
        for view in ("DBA_ROLE_PRIVS", "DBA_SYS_PRIVS", "DBA_TAB_PRIVS", "DBA_COL_PRIVS"):
            self.view(view).delete(grantee=name)

    def _is_role(self, name: str) -> bool:
        return bool(self.view("DBA_ROLES").find(role=name))

    # Grants ---------------------------------------------------------------------------------

    def grant(
        self, privilege_or_role: str, *, to: str, admin: bool = False, default: bool = True
    ) -> None:
        """GRANT a role or a system privilege [WITH ADMIN OPTION] (re-granting replaces).
        A role granted to a user is one of its default roles, unless ``default`` is false
        (as after ALTER USER … DEFAULT ROLE ALL EXCEPT role): DEFAULT_ROLE is then NO."""
        self.revoke(privilege_or_role, from_=to)
        option = "YES" if admin else "NO"
        if self._is_role(privilege_or_role):
            self.view("DBA_ROLE_PRIVS").insert(
                known_only=True,
                grantee=to,
                granted_role=privilege_or_role,
                admin_option=option,
                delegate_option="NO",
                default_role="YES" if default else "NO",
                common="NO",
                inherited="NO",
            )
        else:
            self.view("DBA_SYS_PRIVS").insert(
                known_only=True,
                grantee=to,
                privilege=privilege_or_role,
                admin_option=option,
                common="NO",
                inherited="NO",
            )

    def revoke(self, privilege_or_role: str, *, from_: str) -> None:
        if self._is_role(privilege_or_role):
            self.view("DBA_ROLE_PRIVS").delete(grantee=from_, granted_role=privilege_or_role)
        else:
            self.view("DBA_SYS_PRIVS").delete(grantee=from_, privilege=privilege_or_role)

    def grant_object(
        self,
        privilege: str,
        *,
        on: str,
        to: str,
        grantable: bool = False,
        object_type: str = "TABLE",
    ) -> None:
        """GRANT privilege ON owner.object TO grantee [WITH GRANT OPTION]; with a column,
        ``on`` is ``owner.table(column)`` (GRANT UPDATE (column) ON …)."""
        target, _, column = on.partition("(")
        owner, _, table = target.partition(".")
        common = {
            "grantee": to,
            "owner": owner,
            "table_name": table,
            "grantor": owner,
            "privilege": privilege,
            "grantable": "YES" if grantable else "NO",
            "common": "NO",
            "inherited": "NO",
        }
        if column:
            self.view("DBA_COL_PRIVS").insert(
                known_only=True, column_name=column.rstrip(")"), **common
            )
        else:
            self.view("DBA_TAB_PRIVS").insert(
                known_only=True, hierarchy="NO", type=object_type, **common
            )

    def revoke_object(self, privilege: str, *, on: str, from_: str) -> None:
        target, _, column = on.partition("(")
        owner, _, table = target.partition(".")
        where = {"grantee": from_, "owner": owner, "table_name": table, "privilege": privilege}
        if column:
            self.view("DBA_COL_PRIVS").delete(column_name=column.rstrip(")"), **where)
        else:
            self.view("DBA_TAB_PRIVS").delete(**where)

    def quota(self, user: str, tablespace: str, max_bytes: int | None = None) -> None:
        """ALTER USER … QUOTA max_bytes ON tablespace (None: UNLIMITED; MAX_BYTES is -1)."""
        self.view("DBA_TS_QUOTAS").delete(username=user, tablespace_name=tablespace)
        self.view("DBA_TS_QUOTAS").insert(
            tablespace_name=tablespace,
            username=user,
            bytes=0,
            max_bytes=-1 if max_bytes is None else max_bytes,
            blocks=0,
            max_blocks=-1 if max_bytes is None else max_bytes // 8192,
            dropped="NO",
        )

    def password_file(self, user: str, **privileges: bool) -> None:
        """GRANT SYSDBA (sysdba=True), SYSOPER, … : the user's row of the password file."""
        view = self.view("V$PWFILE_USERS")
        view.delete(username=user)
        flags = {
            p.lower(): "TRUE" if privileges.get(p.lower()) else "FALSE"
            for p in _ORACLE_PWFILE_PRIVILEGES
        }
        if any(privileges.values()):
            view.insert(
                known_only=True,
                username=user,
                account_status="OPEN",
                authentication_type="PASSWORD",
                common="NO",
                con_id=0,
                **flags,
            )

    # Tablespaces, files and segments --------------------------------------------------------

    def create_tablespace(
        self, name: str, *, contents: str = "PERMANENT", file_bytes: tuple[int, ...] = (100 * _MIB,)
    ) -> dict[str, Any]:
        """CREATE [TEMPORARY | UNDO] TABLESPACE name DATAFILE (TEMPFILE) … SIZE …, one file
        per entry of ``file_bytes``."""
        temporary, undo = contents == "TEMPORARY", contents == "UNDO"
        row = self.view("DBA_TABLESPACES").insert(
            known_only=True,
            tablespace_name=name,
            block_size=_ORACLE_BLOCK,
            initial_extent=_MIB if temporary else 65536,
            next_extent=_MIB if temporary else None,
            min_extents=1,
            max_extents=None if temporary else 2147483645,
            max_size=2147483645,
            pct_increase=0 if temporary else None,
            min_extlen=_MIB if temporary else 65536,
            status="ONLINE",
            contents=contents,
            logging="NOLOGGING" if temporary else "LOGGING",
            force_logging="NO",
            extent_management="LOCAL",
            allocation_type="UNIFORM" if temporary else "SYSTEM",
            plugged_in="NO",
            segment_space_management="MANUAL" if temporary or undo else "AUTO",
            def_tab_compression="DISABLED",
            retention="NOGUARANTEE" if undo else "NOT APPLY",
            bigfile="NO",
            predicate_evaluation="HOST",
            encrypted="NO",
            shared="SHARED",
            lost_write_protect="OFF",
            chunk_tablespace="N",
        )
        for size in file_bytes:
            self.add_file(name, size)
        return row

    def add_file(self, tablespace: str, size: int | None) -> dict[str, Any]:
        """ALTER TABLESPACE … ADD DATAFILE (TEMPFILE for a temporary tablespace) … SIZE
        ``size``; ``None`` is a file the database cannot read (BYTES and BLOCKS NULL)."""
        contents = self.view("DBA_TABLESPACES").get(tablespace_name=tablespace)["CONTENTS"]
        temporary = contents == "TEMPORARY"
        view = self.view("DBA_TEMP_FILES" if temporary else "DBA_DATA_FILES")
        file_id = 1 + max((row["FILE_ID"] for row in view.rows), default=0)
        ordinal = len(view.find(tablespace_name=tablespace)) + 1
        blocks = None if size is None else size // _ORACLE_BLOCK
        return view.insert(
            known_only=True,
            file_name=f"/opt/oracle/oradata/ORCLCDB/{tablespace.lower()}{ordinal:02}.dbf",
            file_id=file_id,
            tablespace_name=tablespace,
            bytes=size,
            blocks=blocks,
            status="ONLINE" if temporary else ("AVAILABLE" if size is not None else "INVALID"),
            relative_fno=file_id,
            autoextensible="YES",
            maxbytes=34359721984,
            maxblocks=4194302,
            increment_by=160,
            user_bytes=None if size is None else size - _MIB,
            user_blocks=None if blocks is None else blocks - 128,
            online_status="ONLINE" if size is not None else "RECOVER",
            lost_write_protect="OFF",
            shared="SHARED",
        )

    def drop_tablespace(self, name: str) -> None:
        """DROP TABLESPACE … INCLUDING CONTENTS AND DATAFILES."""
        for view in ("DBA_TABLESPACES", "DBA_DATA_FILES", "DBA_TEMP_FILES", "DBA_SEGMENTS"):
            self.view(view).delete(tablespace_name=name)

    def _segment(
        self,
        owner: str,
        name: str,
        segment_type: str,
        tablespace: str,
        size: int,
        partition: str | None = None,
    ) -> dict[str, Any]:
        blocks = size // _ORACLE_BLOCK
        return self.view("DBA_SEGMENTS").insert(
            known_only=True,
            owner=owner,
            segment_name=name,
            partition_name=partition,
            segment_type=segment_type,
            segment_subtype="SECUREFILE" if segment_type.startswith("LOB") else "ASSM",
            tablespace_name=tablespace,
            header_file=self._tablespace_file(tablespace),
            header_block=130 + self._new_id(),
            bytes=size,
            blocks=blocks,
            extents=max(1, blocks // 8),
            initial_extent=65536,
            next_extent=_MIB,
            min_extents=1,
            max_extents=2147483645,
            max_size=2147483645,
            pct_increase=None,
            freelists=None,
            freelist_groups=None,
            relative_fno=self._tablespace_file(tablespace),
            buffer_pool="DEFAULT",
            flash_cache="DEFAULT",
            cell_flash_cache="DEFAULT",
        )

    def _tablespace_file(self, tablespace: str) -> int:
        return self.view("DBA_DATA_FILES").find(tablespace_name=tablespace)[0]["FILE_ID"]

    def create_table(
        self,
        table: str,
        *,
        tablespace: str = "USERS",
        size: int = 65536,
        num_rows: int | None = None,
        partitions: tuple[int, ...] = (),
    ) -> dict[str, Any]:
        """CREATE TABLE owner.name … TABLESPACE ``tablespace``: one segment of ``size``
        bytes, or one per partition of the sizes ``partitions`` lists; ``num_rows`` as the
        gathered optimizer statistics (None: never gathered)."""
        owner, _, name = table.partition(".")
        for index, partition_size in enumerate(partitions, start=1):
            self._segment(owner, name, "TABLE PARTITION", tablespace, partition_size, f"P{index}")
        if not partitions:
            self._segment(owner, name, "TABLE", tablespace, size)
        return self.view("DBA_TABLES").insert(
            known_only=True,
            owner=owner,
            table_name=name,
            tablespace_name=None if partitions else tablespace,
            status="VALID",
            pct_free=10,
            logging="YES",
            num_rows=num_rows,
            last_analyzed=_ORACLE_CREATED if num_rows is not None else None,
            partitioned="YES" if partitions else "NO",
            temporary="N",
            nested="NO",
            compression="DISABLED",
            dropped="NO",
            read_only="NO",
            segment_created="YES",
        )

    def create_index(
        self,
        index: str,
        *,
        on: str,
        tablespace: str = "USERS",
        size: int = 65536,
        index_type: str = "NORMAL",
    ) -> dict[str, Any]:
        """CREATE INDEX owner.name ON owner.table … TABLESPACE ``tablespace``."""
        owner, _, name = index.partition(".")
        table_owner, _, table = on.partition(".")
        self._segment(owner, name, "LOBINDEX" if index_type == "LOB" else "INDEX", tablespace, size)
        return self.view("DBA_INDEXES").insert(
            known_only=True,
            owner=owner,
            index_name=name,
            index_type=index_type,
            table_owner=table_owner,
            table_name=table,
            table_type="TABLE",
            uniqueness="UNIQUE" if index_type == "LOB" else "NONUNIQUE",
            compression="DISABLED",
            tablespace_name=tablespace,
            status="VALID",
            partitioned="NO",
            temporary="N",
            generated="Y" if index_type == "LOB" else "N",
            dropped="NO",
            segment_created="YES",
        )

    def add_lob(
        self, table: str, column: str, *, tablespace: str = "USERS", size: int = 65536
    ) -> dict[str, Any]:
        """A LOB column of ``table`` stored out of line in ``tablespace``: its LOB segment
        of ``size`` bytes and its LOB index (SYS_LOB… and SYS_IL… as Oracle names them)."""
        owner, _, name = table.partition(".")
        suffix = f"{self._new_id():010}C00002$$"
        segment, index = f"SYS_LOB{suffix}", f"SYS_IL{suffix}"
        self._segment(owner, segment, "LOBSEGMENT", tablespace, size)
        self.create_index(f"{owner}.{index}", on=table, tablespace=tablespace, index_type="LOB")
        return self.view("DBA_LOBS").insert(
            known_only=True,
            owner=owner,
            table_name=name,
            column_name=column,
            segment_name=segment,
            tablespace_name=tablespace,
            index_name=index,
            chunk=8192,
            cache="NO",
            logging="YES",
            encrypt="NO",
            compression="NO",
            deduplication="NO",
            in_row="YES",
            format="ENDIAN NEUTRAL",
            partitioned="NO",
            securefile="YES",
            segment_created="YES",
            retention_type="DEFAULT",
        )

    # Statements ---------------------------------------------------------------------------

    def _roles_of(self, grantee: str) -> set[str]:
        roles, pending = set(), [grantee, "PUBLIC"]
        while pending:
            current = pending.pop()
            for row in self.view("DBA_ROLE_PRIVS").find(grantee=current):
                if row["GRANTED_ROLE"] not in roles:
                    roles.add(row["GRANTED_ROLE"])
                    pending.append(row["GRANTED_ROLE"])
        return roles

    def reads_dictionary(self, user: str | None) -> bool:
        """SELECT_CATALOG_ROLE (directly, through DBA or another role) or SELECT ANY
        DICTIONARY: what makes the DBA_ views and V$ views visible."""
        if not user:
            return False
        user = user.upper()
        if not self.view("DBA_USERS").find(username=user):
            return False
        holders = {user, "PUBLIC", *self._roles_of(user)}
        if holders & _DICTIONARY_READERS:
            return True
        return any(
            self.view("DBA_SYS_PRIVS").find(grantee=holder, privilege="SELECT ANY DICTIONARY")
            for holder in holders
        )

    def answer_select(self, match: re.Match, user: str | None) -> Result:
        view_name = match["view"].upper()
        if view_name not in self.views or not self.reads_dictionary(user):
            raise oracle_table_missing()
        view = self.views[view_name]
        columns = []
        for name in (c.strip() for c in match["columns"].split(",")):
            column = view.column(name)
            if column is None:
                raise oracle_server_error(904, f'"{name.upper()}": invalid identifier')
            columns.append(column)
        return Result(tuple(columns), tuple(tuple(row[c] for c in columns) for row in view.rows))

    def answer_tablespace_sizes(self, user: str | None) -> Result:
        """SUM(bytes) of DBA_DATA_FILES, then of DBA_TEMP_FILES, grouped by tablespace."""
        if not self.reads_dictionary(user):
            raise oracle_table_missing()
        rows = []
        for view in ("DBA_DATA_FILES", "DBA_TEMP_FILES"):
            sizes: dict[str, list[int]] = {}
            for row in self.view(view).rows:
                sizes.setdefault(row["TABLESPACE_NAME"], [])
                if row["BYTES"] is not None:
                    sizes[row["TABLESPACE_NAME"]].append(row["BYTES"])
            # SUM over NULLs only is NULL
            rows += [(name, sum(values) if values else None) for name, values in sizes.items()]
        return Result(("TABLESPACE_NAME", "BYTES"), tuple(rows))

    def answer_table_sizes(self, params: Any, user: str | None) -> Result:
        """The segments of one tablespace summed under their table (see the statement)."""
        if not isinstance(params, dict) or "tablespace" not in params:
            raise oracle_server_error(1008, "not all variables bound")
        if not self.reads_dictionary(user):
            raise oracle_table_missing()
        tablespace = params["tablespace"]
        lobs = {
            (r["OWNER"], r["SEGMENT_NAME"]): r["TABLE_NAME"] for r in self.view("DBA_LOBS").rows
        }
        indexes = {
            (r["OWNER"], r["INDEX_NAME"]): (r["TABLE_OWNER"], r["TABLE_NAME"])
            for r in self.view("DBA_INDEXES").rows
        }
        sizes: dict[tuple[str, str], list[int]] = {}
        for segment in self.view("DBA_SEGMENTS").find(tablespace_name=tablespace):
            key = (segment["OWNER"], segment["SEGMENT_NAME"])
            kind = segment["SEGMENT_TYPE"]
            if kind in _TABLE_SEGMENT_TYPES:
                table, data, index = key, segment["BYTES"], 0
            elif kind in _LOB_SEGMENT_TYPES and key in lobs:
                table, data, index = (segment["OWNER"], lobs[key]), segment["BYTES"], 0
            elif kind in _INDEX_SEGMENT_TYPES and key in indexes:
                table, data, index = indexes[key], 0, segment["BYTES"]
            else:
                continue
            totals = sizes.setdefault(table, [0, 0])
            totals[0] += data
            totals[1] += index
        num_rows = {
            (r["OWNER"], r["TABLE_NAME"]): r["NUM_ROWS"] for r in self.view("DBA_TABLES").rows
        }
        return Result(
            ("OWNER", "TABLE_NAME", "NUM_ROWS", "DATA_BYTES", "INDEX_BYTES"),
            tuple(
                (owner, table, num_rows.get((owner, table)), data, index)
                for (owner, table), (data, index) in sizes.items()
            ),
        )


# A plain projection of one dictionary view, the only shape of statement the engine sends to
# the dictionary; the view must be one the catalog holds.
_DICTIONARY_QUERY = (
    r"^SELECT (?P<columns>[\w$#]+(?:, [\w$#]+)*) "
    r"FROM (?P<view>dba_users|dba_roles|dba_role_privs|dba_sys_privs|dba_ts_quotas"
    r"|dba_tab_privs|dba_col_privs|v\$pwfile_users|dba_tablespaces|dba_data_files"
    r"|dba_temp_files|dba_segments|dba_tables|dba_indexes|dba_lobs)$"
)
_TABLESPACE_SIZES_QUERY = """
SELECT tablespace_name, SUM(bytes) AS bytes FROM dba_data_files GROUP BY tablespace_name
UNION ALL
SELECT tablespace_name, SUM(bytes) AS bytes FROM dba_temp_files GROUP BY tablespace_name
"""
_TABLE_SIZES_QUERY = """
SELECT x.owner, x.table_name, t.num_rows,
       SUM(x.data_bytes) AS data_bytes, SUM(x.index_bytes) AS index_bytes
FROM (
    SELECT g.owner, g.segment_name AS table_name, g.bytes AS data_bytes, 0 AS index_bytes
    FROM dba_segments g
    WHERE g.tablespace_name = :tablespace
      AND g.segment_type IN ('TABLE', 'TABLE PARTITION', 'TABLE SUBPARTITION')
    UNION ALL
    SELECT l.owner, l.table_name, g.bytes, 0
    FROM dba_segments g
    JOIN dba_lobs l ON l.owner = g.owner AND l.segment_name = g.segment_name
    WHERE g.tablespace_name = :tablespace
      AND g.segment_type IN ('LOBSEGMENT', 'LOB PARTITION', 'LOB SUBPARTITION')
    UNION ALL
    SELECT i.table_owner, i.table_name, 0, g.bytes
    FROM dba_segments g
    JOIN dba_indexes i ON i.owner = g.owner AND i.index_name = g.segment_name
    WHERE g.tablespace_name = :tablespace
      AND g.segment_type IN ('INDEX', 'INDEX PARTITION', 'INDEX SUBPARTITION', 'LOBINDEX')
) x
LEFT JOIN dba_tables t ON t.owner = x.owner AND t.table_name = x.table_name
GROUP BY x.owner, x.table_name, t.num_rows
"""


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
        self.catalog: OracleCatalog | None = None
        self.session_user: str | None = None  # the user of the latest connection
        self.on(_V_VERSION_QUERY, self._select_v_version)

    def use_catalog(self, catalog: OracleCatalog | None = None) -> OracleCatalog:
        """Answer projections of the dictionary views from ``catalog`` (a new 19c
        :class:`OracleCatalog` by default), for the user of the session."""
        catalog = self.catalog = catalog or OracleCatalog()
        self.on(
            _DICTIONARY_QUERY,
            lambda match, _params: catalog.answer_select(match, self.session_user),
        )
        self.on(
            exact(_TABLESPACE_SIZES_QUERY),
            lambda _match, _params: catalog.answer_tablespace_sizes(self.session_user),
        )
        self.on(
            exact(_TABLE_SIZES_QUERY),
            lambda _match, params: catalog.answer_table_sizes(params, self.session_user),
        )
        return catalog

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
        self.session_user = kwargs.get("user")
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

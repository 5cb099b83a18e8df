"""Oracle, through python-oracledb in thin mode (no Oracle client libraries).

Monitoring account — dictionary read access only::

    CREATE USER whalefall IDENTIFIED BY "…";
    GRANT CREATE SESSION TO whalefall;
    GRANT SELECT_CATALOG_ROLE TO whalefall;   -- DBA_USERS, DBA_ROLES, DBA_ROLE_PRIVS,
                                              -- DBA_SYS_PRIVS, DBA_TS_QUOTAS, DBA_TAB_PRIVS,
                                              -- DBA_COL_PRIVS, DBA_TABLESPACES,
                                              -- DBA_DATA_FILES, DBA_TEMP_FILES, DBA_SEGMENTS,
                                              -- DBA_TABLES, DBA_INDEXES, DBA_LOBS,
                                              -- V$PWFILE_USERS, V$VERSION
    -- or, narrower: GRANT SELECT ON each of those views TO whalefall;

Without them the ``DBA_*`` views do not exist for the account (ORA-00942) and the engine
raises "insufficient privileges"; it never falls back to ``ALL_*``/``USER_*`` views, which
show only part of the database.

Timeouts: thin mode's ``tcp_connect_timeout`` covers only the TCP connect, and a listener
that accepts but never answers would hold ``connect()`` forever. The engine therefore
drives the driver's asyncio API from a private event loop and bounds the whole connect
(and every statement) with ``asyncio.wait_for``; ``call_timeout`` bounds each round trip
on the server side too. ``tls_mode`` "required"/"verify" use TCPS ("required" does not check
the certificate); Oracle has no opportunistic TLS, so "preferred" connects over plain TCP.

Accounts
--------
Users from ``DBA_USERS`` (key ``("user", name, "")``) and the roles of ``DBA_ROLES``
(``("role", name, "")``; users and roles share one namespace): a role carries system,
object and role grants of its own, and what it grants is recorded once, on the role.
Oracle's own users and roles (``ORACLE_MAINTAINED = 'Y'``, Oracle 12.1 and later) and the
names of ``WHALEFALL_SYSTEM_ACCOUNTS["oracle"]`` (SYS, SYSTEM, ``APEX%``, ``XDB%``, …) are
left out. Grantee ``PUBLIC`` is the PUBLIC pseudo-account (``("public", "PUBLIC", "")``),
always listed: it holds the system privileges, roles and (with deep privileges) object
privileges granted to PUBLIC, which apply to everyone and are never copied onto accounts.

Privileges
----------
One statement per dictionary view for all accounts at once, nothing bound per account:
six statements, eight with deep privileges (one more before Oracle 12.1, whose DBA_USERS
refuses the ORACLE_MAINTAINED column).

* ``roles`` (the literal view): roles granted (``DBA_ROLE_PRIVS``), directly or through
  other roles, so that DBA reached through a custom role still counts; the directly
  granted roles held WITH ADMIN OPTION are the attribute ``admin_roles``.
* scope ``server``: system privileges of ``DBA_SYS_PRIVS`` (option ``GRANT`` with admin
  option) and the administrative privileges of the password file (``V$PWFILE_USERS``:
  SYSDBA, SYSOPER, SYSASM, SYSBACKUP, SYSDG, SYSKM).
* scope ``tablespace``: quotas of ``DBA_TS_QUOTAS``, ``QUOTA UNLIMITED`` or
  ``QUOTA <bytes>``.
* with deep privileges: object privileges of ``DBA_TAB_PRIVS``, object ``OWNER.NAME``:
  scope ``procedure``, ``function`` or ``package`` for routines, as its TYPE column says
  from Oracle 12.1 (before, it has none and every object is a ``table``), ``table`` for
  tables, views, sequences, directories…; and column privileges of ``DBA_COL_PRIVS``
  (``OWNER.TABLE.COLUMN``); option ``GRANT`` when grantable. Names are
  :func:`~inventory.engines.base.object_name` of the separate columns, so a quoted name
  holding a dot stays one part.

Role hierarchy
--------------
``memberships`` holds every direct row of ``DBA_ROLE_PRIVS``: ``set`` (any granted role
can be enabled by SET ROLE), ``admin`` (ADMIN_OPTION), and ``inherit`` when the role is on
without doing anything — a default role of a user or of PUBLIC (``DEFAULT_ROLE = 'YES'``),
and always for a role granted to a role, which is enabled with it. The resolver follows
the chain: every role reached from the accounts asked for that is not one of them (DBA,
IMP_FULL_DATABASE, SELECT_CATALOG_ROLE and Oracle's other roles, or a role left out by
name) is returned as well, ``"listed": False`` with ``display`` its name, its system
(and with deep privileges object) privileges as grants and its own memberships. Before
Oracle 12.1 the same views give the same graph; Oracle's roles are listed there, since
nothing tells them apart.

No attribute says "no password": AUTHENTICATION_TYPE NONE is a schema-only account that
cannot log in at all, and EXTERNAL or GLOBAL ones authenticate outside the database.

Tablespaces and sizes
---------------------
Tablespaces are the "databases" (``DBA_TABLESPACES``): permanent, undo and temporary
ones, USERS included; SYSTEM, SYSAUX and ``SYS%`` are Oracle's own. A tablespace's size is
the sum of its data files (``DBA_DATA_FILES``) or temp files (``DBA_TEMP_FILES``), all in
one statement; redo logs belong to the whole database, so log bytes are 0. Table sizes of a
tablespace come from the segments stored in it (``DBA_SEGMENTS``): table, partition and LOB
segments as data, index segments (through ``DBA_INDEXES``, LOB indexes included) as index,
each under the table it belongs to, with ``DBA_TABLES.NUM_ROWS`` (the optimizer statistics,
None before the first gathering) as the row estimate.

Attributes: ``account_status`` as Oracle reports it (``OPEN``, ``LOCKED``,
``EXPIRED & LOCKED``, ``EXPIRED(GRACE)``…), ``locked`` (any status other than ``OPEN``),
``expired`` (the status says EXPIRED), ``profile``, ``default_tablespace``,
``authentication_type``, ``created``, ``password_expiry_date`` and ``can_login`` (status
OPEN, a password or external authentication, and CREATE SESSION held directly, through a
role or through PUBLIC). Roles and PUBLIC have ``can_login`` and
``locked`` false.
"""

import asyncio
import re
import ssl
from collections import defaultdict

import oracledb

from inventory.engines.base import (
    PUBLIC,
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
_NO_ACCESS_CODES = {"ORA-00942", "ORA-01031"}  # no such table or view / insufficient privileges


def _error_code(exc: BaseException) -> str:
    error = exc.args[0] if exc.args else None
    return getattr(error, "full_code", "") or ""


def unverified_tls_context() -> ssl.SSLContext:
    """TLS for tls_mode "required": encrypt, do not verify (thin mode verifies by default)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class _OracleConnection(Engine):
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
                host=target.dial_host,  # the checked address, unless TLS verifies the name
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
        # call_timeout stops the server; wait_for also bounds a peer that stops answering.
        with self.remote():
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

    def _dictionary(self, sql: str, view: str, params: dict | None = None) -> list[tuple]:
        """Rows of a dictionary view; a view the account may not read is refused loudly."""
        try:
            return self.query(sql, params)
        except oracledb.DatabaseError as exc:
            if _error_code(exc) in _NO_ACCESS_CODES:
                raise InsufficientPrivileges(
                    f"{InsufficientPrivileges.label}: the monitoring account cannot read "
                    f"{view} (GRANT SELECT_CATALOG_ROLE TO {self.target.username})"
                ) from None
            raise


# --- Accounts and privileges ------------------------------------------------------------

USERS_SQL = """
SELECT username, account_status, profile, default_tablespace, authentication_type,
       created, expiry_date, oracle_maintained
FROM dba_users
"""
# Before Oracle 12.1 neither DBA_USERS nor DBA_ROLES has ORACLE_MAINTAINED, DBA_TAB_PRIVS
# has no TYPE, and the password file knows only SYSDBA, SYSOPER and SYSASM.
USERS_SQL_BEFORE_12C = """
SELECT username, account_status, profile, default_tablespace, authentication_type,
       created, expiry_date
FROM dba_users
"""
ROLES_SQL = "SELECT role, oracle_maintained FROM dba_roles"
ROLES_SQL_BEFORE_12C = "SELECT role FROM dba_roles"
ROLE_PRIVS_SQL = "SELECT grantee, granted_role, admin_option, default_role FROM dba_role_privs"
SYS_PRIVS_SQL = "SELECT grantee, privilege, admin_option FROM dba_sys_privs"
PWFILE_SQL = "SELECT username, sysdba, sysoper, sysasm, sysbackup, sysdg, syskm FROM v$pwfile_users"
PWFILE_SQL_BEFORE_12C = "SELECT username, sysdba, sysoper, sysasm FROM v$pwfile_users"
PWFILE_PRIVILEGES = ("SYSDBA", "SYSOPER", "SYSASM", "SYSBACKUP", "SYSDG", "SYSKM")
TS_QUOTAS_SQL = "SELECT username, tablespace_name, max_bytes, dropped FROM dba_ts_quotas"
TAB_PRIVS_SQL = "SELECT grantee, owner, table_name, privilege, grantable, type FROM dba_tab_privs"
TAB_PRIVS_SQL_BEFORE_12C = (
    "SELECT grantee, owner, table_name, privilege, grantable FROM dba_tab_privs"
)
COL_PRIVS_SQL = (
    "SELECT grantee, owner, table_name, column_name, privilege, grantable FROM dba_col_privs"
)
# DBA_TAB_PRIVS.TYPE of the routines; every other object keeps the scope "table".
OBJECT_SCOPES = {"PROCEDURE": "procedure", "FUNCTION": "function", "PACKAGE": "package"}

_INVALID_IDENTIFIER = "ORA-00904"
OPEN = "OPEN"
CREATE_SESSION = "CREATE SESSION"
UNLIMITED = -1


def _yes(value) -> bool:
    return (value or "").upper() == "YES"


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def _closure(granted: dict[str, set[str]], grantee: str) -> set[str]:
    """Every role ``grantee`` holds, directly or through other roles."""
    seen: set[str] = set()
    pending = list(granted.get(grantee, ()))
    while pending:
        role = pending.pop()
        if role not in seen:
            seen.add(role)
            pending.extend(granted.get(role, ()))
    return seen


class OracleAccountsMixin:
    """Users, roles, PUBLIC and privileges, with the role hierarchy, read from the DBA_*
    views, one statement per view for all accounts at once (never one per account)."""

    def _account_rows(self) -> tuple[list[tuple], list[tuple]]:
        """(users, roles) as read from DBA_USERS and DBA_ROLES, once per session."""
        cached = getattr(self, "_accounts", None)
        if cached is not None:
            return cached
        try:
            users = self._dictionary(USERS_SQL, "DBA_USERS")
            self._before_12c = False
        except oracledb.DatabaseError as exc:
            if _error_code(exc) != _INVALID_IDENTIFIER:
                raise
            self._before_12c = True
            users = [(*row, None) for row in self._dictionary(USERS_SQL_BEFORE_12C, "DBA_USERS")]
        if not users:
            # SYS always exists: an empty DBA_USERS means the account sees nothing.
            raise InsufficientPrivileges(
                f"{InsufficientPrivileges.label}: DBA_USERS looks empty to the monitoring "
                f"account (GRANT SELECT_CATALOG_ROLE TO {self.target.username})"
            )
        if self._before_12c:
            roles = [(row[0], None) for row in self._dictionary(ROLES_SQL_BEFORE_12C, "DBA_ROLES")]
        else:
            roles = self._dictionary(ROLES_SQL, "DBA_ROLES")
        self._accounts = (users, roles)
        return self._accounts

    def list_accounts(self) -> list[AccountRecord]:
        users, roles = self._account_rows()
        records = [
            AccountRecord(name=row[0], kind="user")
            for row in users
            if row[7] != "Y" and not is_system_account("oracle", row[0])
        ]
        records += [
            AccountRecord(name=role, kind="role")
            for role, maintained in roles
            if maintained != "Y" and role != PUBLIC and not is_system_account("oracle", role)
        ]
        records.append(PUBLIC_ACCOUNT)
        return records

    def collect_privileges(self, accounts: list[AccountRecord], *, deep: bool = False) -> dict:
        """Privilege sets of ``accounts`` keyed by account key, plus the roles they reach
        through other roles that are not among them (graph-only, ``"listed": False``)."""
        users, roles = self._account_rows()
        role_names = {role for role, _maintained in roles}

        def key_of(name: str) -> AccountKey:
            if name == PUBLIC:
                return PUBLIC_ACCOUNT.key
            return ("role", name, "") if name in role_names else ("user", name, "")

        wanted = {key[1] for key in {a.key for a in accounts} if key_of(key[1]) == key}
        if not wanted:
            return {}
        grants: dict[str, set[tuple[str, str, str, str]]] = defaultdict(set)
        granted_roles: dict[str, set[str]] = defaultdict(set)
        edges: dict[str, list[dict]] = defaultdict(list)
        admin_roles: dict[str, set[str]] = defaultdict(set)
        system_privileges: dict[str, set[str]] = defaultdict(set)

        role_privs = self._dictionary(ROLE_PRIVS_SQL, "DBA_ROLE_PRIVS")
        for grantee, role, _admin, _default in role_privs:
            granted_roles[grantee].add(role)
        reached = set().union(*(_closure(granted_roles, name) for name in wanted))
        nodes = wanted | reached  # every principal whose grants and edges are returned
        for grantee, role, admin, default in role_privs:
            if grantee not in nodes:
                continue
            # A role granted to a role is enabled with it; a user's (and PUBLIC's) roles
            # are on at login when they are default roles, otherwise by SET ROLE.
            inherit = grantee in role_names or _yes(default)
            edges[grantee].append(
                {"role": key_of(role), "inherit": inherit, "set": True, "admin": _yes(admin)}
            )
            if grantee in wanted and _yes(admin):
                admin_roles[grantee].add(role)

        for grantee, privilege, admin in self._dictionary(SYS_PRIVS_SQL, "DBA_SYS_PRIVS"):
            system_privileges[grantee].add(privilege)
            if grantee in nodes:
                grants[grantee].add(("server", "", privilege, "GRANT" if _yes(admin) else ""))

        pwfile = PWFILE_SQL_BEFORE_12C if self._before_12c else PWFILE_SQL
        for username, *flags in self._dictionary(pwfile, "V$PWFILE_USERS"):
            if username in wanted:
                for privilege, flag in zip(PWFILE_PRIVILEGES, flags, strict=False):
                    if (flag or "").upper() == "TRUE":
                        grants[username].add(("server", "", privilege, ""))

        for username, tablespace, max_bytes, dropped in self._dictionary(
            TS_QUOTAS_SQL, "DBA_TS_QUOTAS"
        ):
            if username in wanted and not _yes(dropped):
                quota = "UNLIMITED" if int(max_bytes) == UNLIMITED else str(int(max_bytes))
                grants[username].add(("tablespace", tablespace, f"QUOTA {quota}", ""))

        if deep:
            self._object_privileges(nodes, grants)

        public = {PUBLIC, *_closure(granted_roles, PUBLIC)}

        def holds(name: str, privilege: str) -> bool:
            holders = {name} | _closure(granted_roles, name) | public
            return any(privilege in system_privileges[holder] for holder in holders)

        def privilege_set(name: str, attributes: dict) -> dict:
            if admin_roles[name]:
                attributes["admin_roles"] = sorted(admin_roles[name])
            return {
                "engine": "oracle",
                "attributes": attributes,
                "roles": sorted(_closure(granted_roles, name)),
                "grants": sorted(grants[name]),
                "memberships": sorted(edges[name], key=lambda edge: edge["role"]),
            }

        result = {
            key_of(row[0]): privilege_set(
                row[0], _user_attributes(row, holds(row[0], CREATE_SESSION))
            )
            for row in users
            if row[0] in wanted
        }
        for name in wanted & (role_names | {PUBLIC}):
            result[key_of(name)] = privilege_set(name, {"can_login": False, "locked": False})
        for name in reached - wanted:
            result[key_of(name)] = {
                "engine": "oracle",
                "listed": False,
                "display": name,
                "attributes": {"can_login": False, "locked": False},
                "roles": [],
                "grants": sorted(grants[name]),
                "memberships": sorted(edges[name], key=lambda edge: edge["role"]),
            }
        return result

    def _object_privileges(self, nodes: set[str], grants: dict) -> None:
        """Object privileges (DBA_TAB_PRIVS: routines in their own scope from Oracle 12.1,
        whose TYPE column names the kind of object) and column privileges of ``nodes``."""
        if self._before_12c:
            rows = [
                (*row, None) for row in self._dictionary(TAB_PRIVS_SQL_BEFORE_12C, "DBA_TAB_PRIVS")
            ]
        else:
            rows = self._dictionary(TAB_PRIVS_SQL, "DBA_TAB_PRIVS")
        for grantee, owner, table, privilege, grantable, object_type in rows:
            if grantee in nodes:
                scope = OBJECT_SCOPES.get((object_type or "").upper(), "table")
                option = "GRANT" if _yes(grantable) else ""
                grants[grantee].add((scope, object_name(owner, table), privilege, option))
        for grantee, owner, table, column, privilege, grantable in self._dictionary(
            COL_PRIVS_SQL, "DBA_COL_PRIVS"
        ):
            if grantee in nodes:
                option = "GRANT" if _yes(grantable) else ""
                grants[grantee].add(
                    ("column", object_name(owner, table, column), privilege, option)
                )


def _user_attributes(row: tuple, create_session: bool) -> dict:
    _name, status, profile, tablespace, authentication, created, expiry, _maintained = row
    status = status or ""
    locked = status != OPEN
    return {
        "account_status": status,
        "locked": locked,
        "expired": "EXPIRED" in status,
        "profile": profile,
        "default_tablespace": tablespace,
        "authentication_type": authentication,
        "created": _iso(created),
        "password_expiry_date": _iso(expiry),
        "can_login": not locked and authentication != "NONE" and create_session,
    }


# --- Tablespaces and sizes ---------------------------------------------------------------

TABLESPACES_SQL = "SELECT tablespace_name, contents FROM dba_tablespaces"
TABLESPACE_KINDS = {
    "PERMANENT": "tablespace",
    "TEMPORARY": "temporary tablespace",
    "UNDO": "undo tablespace",
}
# A file the database cannot read has a NULL size: it counts for nothing.
TABLESPACE_SIZES_SQL = """
SELECT tablespace_name, SUM(bytes) AS bytes FROM dba_data_files GROUP BY tablespace_name
UNION ALL
SELECT tablespace_name, SUM(bytes) AS bytes FROM dba_temp_files GROUP BY tablespace_name
"""
# Every segment of the tablespace under the table it belongs to: the table's own segments
# and its LOB segments are data, its indexes' (LOB indexes included) are index.
TABLE_SIZES_SQL = """
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


class OracleCapacityMixin:
    """Tablespaces and their sizes in one statement each, whatever their number; the
    tables of one tablespace in one more."""

    def _tablespaces(self) -> list[tuple]:
        rows = self._dictionary(TABLESPACES_SQL, "DBA_TABLESPACES")
        if not rows:
            # SYSTEM always exists: an empty DBA_TABLESPACES means the account sees nothing.
            raise InsufficientPrivileges(
                f"{InsufficientPrivileges.label}: DBA_TABLESPACES looks empty to the "
                f"monitoring account (GRANT SELECT_CATALOG_ROLE TO {self.target.username})"
            )
        return rows

    def list_databases(self) -> list[DatabaseRecord]:
        return [
            DatabaseRecord(name=name, kind=TABLESPACE_KINDS.get(contents, "tablespace"))
            for name, contents in sorted(self._tablespaces())
            if not is_system_database("oracle", name)
        ]

    def database_sizes(self, names) -> list[DatabaseSize]:
        """Data or temp files of each tablespace in ``names``; a tablespace that no longer
        exists is left out."""
        wanted = set(names)
        if not wanted:
            return []
        rows = self._dictionary(TABLESPACE_SIZES_SQL, "DBA_DATA_FILES and DBA_TEMP_FILES")
        return sorted(
            (
                DatabaseSize(name=name, data_bytes=int(size or 0))
                for name, size in rows
                if name in wanted
            ),
            key=lambda size: size.name,
        )

    def table_sizes(self, database: str) -> list[TableSize]:
        """Tables with segments in tablespace ``database``, by owner."""
        if database not in {name for name, _contents in self._tablespaces()}:
            raise EngineFailure(f"{EngineFailure.label}: no tablespace named {database!r}")
        rows = self._dictionary(
            TABLE_SIZES_SQL,
            "DBA_SEGMENTS, DBA_LOBS, DBA_INDEXES and DBA_TABLES",
            {"tablespace": database},
        )
        tables = []
        for owner, table, num_rows, data, index in rows:
            data, index = int(data or 0), int(index or 0)
            tables.append(
                TableSize(
                    schema=owner,
                    table=table,
                    rows=int(num_rows) if num_rows is not None else None,
                    data_bytes=data,
                    index_bytes=index,
                    total_bytes=data + index,
                )
            )
        return sorted(tables, key=lambda size: (size.schema, size.table))


class OracleEngine(OracleAccountsMixin, OracleCapacityMixin, _OracleConnection):
    """Oracle: connection, version, users, roles and privileges, tablespaces and sizes."""

"""MySQL and MariaDB, through mysqlclient.

Monitoring account — read-only access to the grant tables and the catalog::

    CREATE USER 'whalefall'@'%' IDENTIFIED BY '…';
    GRANT SELECT ON mysql.* TO 'whalefall'@'%';          -- accounts and privileges
    GRANT SHOW VIEW ON *.* TO 'whalefall'@'%';           -- databases, database and table sizes
    -- MySQL 8 only, to read role edges: GRANT SELECT ON performance_schema.* is not needed;
    -- mysql.role_edges and mysql.default_roles are covered by SELECT ON mysql.*.

Any account that can read ``mysql.*`` can read password hashes: WhaleFall never reads or
stores ``authentication_string``. ``information_schema`` shows a schema or a table only to
an account with some privilege on it: ``SHOW VIEW ON *.*`` makes every one visible without
letting the account read a single row. The global grant must be the account's own (not a
role's): the engine checks it with ``SHOW GRANTS`` and refuses to report a partial
inventory without it. Timeouts: ``connect_timeout`` bounds the TCP connect and
handshake; ``read_timeout``/``write_timeout`` bound every network read and write, and the
session's ``max_statement_time`` (MariaDB, seconds) or ``max_execution_time`` (MySQL,
milliseconds) stops a statement on the server.

Authentication: the account must use ``mysql_native_password`` or ``ed25519`` (MariaDB),
which prove the password without sending it. ``caching_sha2_password`` and
``sha256_password`` (MySQL 8's default) hand the server the password, so the engine runs
them only with TLS mode "verify"; ``mysql_clear_password`` and ``dialog`` never.

Accounts and privileges come from the grant tables in a fixed number of queries (never
one ``SHOW GRANTS`` per account). An account is ``(kind, name, host)``: user and host stay
separate, so a user ``'k'@'h'`` and a role named ``k@h`` are two accounts. Anonymous
accounts (``''@host``) are listed with ``anonymous: True``; system accounts are matched
exactly as ``user@host``; on MariaDB 10.11+ the ``PUBLIC`` role row is the PUBLIC
pseudo-account. MariaDB's global ``access`` bits are decoded as the server version (and
the record's ``version_id``) defines them; a bit it does not define fails the read with
the account and bit named. Objects are named from their separate catalog columns
(``object_name``); routines get the scope of their type (procedure, function, package);
a table's grant option stays on its column grants. ``memberships`` lists the direct
edges of the role graph (``inherit`` when the role is active at login, ``set`` for any
granted role); effective privileges are resolved elsewhere.
"""

import contextlib
import functools
import json
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import MySQLdb

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
    without_names,
)

# mysqlclient ssl_mode per TLS mode of the instance. With MariaDB Connector/C the client
# does not enforce REQUIRED, so the engine checks the session cipher itself — after the
# handshake, which by then carried the user name and a challenge-response answer, never the
# password (see AUTH_OPTIONS_FILE). VERIFY_IDENTITY is enforced before the handshake.
SSL_MODES = {
    "disabled": "DISABLED",
    "preferred": "PREFERRED",
    "required": "REQUIRED",
    "verify": "VERIFY_IDENTITY",
}

# The only authentication plugins the client runs, whatever the server asks for
# (restricted-auth, read by MariaDB Connector/C 3.3.10+ from an option file; see the file):
# challenge-response plugins, and the plugins that hand the server the password only when
# TLS mode "verify" has checked its certificate. Never mysql_clear_password or dialog.
AUTH_OPTIONS_FILE = Path(__file__).with_name("mysql_auth.cnf")
AUTH_GROUPS = {"verify": "whalefall-verified-tls"}
AUTH_GROUP_DEFAULT = "whalefall-challenge-response"
_RESTRICTED_AUTH_CLIENT = (3, 3, 10)
_RESTRICTED_AUTH_REFUSED = 5010  # the server asked for a plugin outside restricted-auth

_AUTH_ERRORS = {1044, 1045, 1251, 1698, 4151}  # access denied, auth plugin, account locked
_UNREACHABLE_ERRORS = {2002, 2003, 2005, 2006}
_TLS_ERRORS = {2026, 3159}
_TIMEOUT_ERRORS = {1969, 3024}  # max_statement_time / max_execution_time exceeded
_ETIMEDOUT = ("system error: 110", "(110)", "timed out", "timeout")
_DENIED_ERRORS = {1142, 1143}  # SELECT command denied for a table / a column
# "… for table `mysql`.`procs_priv`" (MariaDB 10.5+, MySQL 8.0.28+) or "… table 'procs_priv'"
_DENIED_TABLE = re.compile(r"for table [`']([^`']+)[`'](?:\.[`']([^`']+)[`'])?")
# The client's read/write timeouts only back up the server's statement timeout: equal values
# race, and a lost race reports a statement timeout as a lost connection (error 2013).
_NETWORK_TIMEOUT_MARGIN = 5


def _require_restricted_auth() -> None:
    """Refuse to connect through a client library that cannot restrict authentication
    plugins: MariaDB Connector/C before 3.3.10, or libmysqlclient (which has no
    restricted-auth and would ignore it)."""
    client = MySQLdb.get_client_info() or ""
    numbers = re.match(r"(\d+)\.(\d+)\.(\d+)", client)
    version = tuple(int(n) for n in numbers.groups()) if numbers else ()
    if not version or version[0] != _RESTRICTED_AUTH_CLIENT[0] or version < _RESTRICTED_AUTH_CLIENT:
        raise EngineFailure(
            f"{EngineFailure.label}: the MySQL client library {client} cannot restrict "
            "authentication plugins (MariaDB Connector/C 3.3.10 or later is needed), so it "
            "could send the password in clear text"
        )


class _MySQLConnection(Engine):
    name = "mysql"

    def open(self) -> None:
        target = self.target
        timeout = max(1, round(target.query_timeout))
        _require_restricted_auth()
        self.connection = MySQLdb.connect(
            host=target.dial_host,  # the checked address, unless TLS verifies the name
            port=target.port,
            user=target.username,
            password=target.secret,
            database=target.database or "",
            connect_timeout=max(1, round(target.connect_timeout)),
            read_timeout=timeout + _NETWORK_TIMEOUT_MARGIN,
            write_timeout=timeout + _NETWORK_TIMEOUT_MARGIN,
            ssl_mode=SSL_MODES.get(target.tls_mode, "PREFERRED"),
            read_default_file=str(AUTH_OPTIONS_FILE),
            read_default_group=AUTH_GROUPS.get(target.tls_mode, AUTH_GROUP_DEFAULT),
            # Answer the handshake with a challenge-response, whatever default the server
            # names (MySQL 8: caching_sha2_password); it asks to switch when the account
            # uses another plugin, and restricted-auth decides.
            auth_plugin="mysql_native_password",
            charset="utf8mb4",
            autocommit=True,
        )
        self._read_timeout = timeout + _NETWORK_TIMEOUT_MARGIN
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

    @contextlib.contextmanager
    def remote(self):
        # The client reports its own read timeout as a lost connection (2013) with no
        # errno: one that ends after the read timeout is marked a timeout here.
        started = time.monotonic()
        try:
            with super().remote():
                yield
        except MySQLdb.OperationalError as exc:
            waited = time.monotonic() - started
            if (
                exc.args[:1] == (2013,)
                and waited >= getattr(self, "_read_timeout", float("inf")) - 0.5
            ):
                exc.read_timed_out = True
            raise

    def query(self, sql: str, params: tuple | None = None) -> list[tuple]:
        """Run one read-only statement and return every row."""
        with self.remote(), self.connection.cursor() as cursor:
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

    def translate_error(self, exc: BaseException) -> EngineError:
        if isinstance(exc, MySQLdb.OperationalError) and exc.args[:1] == (
            _RESTRICTED_AUTH_REFUSED,
        ):
            # The client's own text is empty when the refusal follows a plugin switch.
            return AuthenticationFailed(
                f"{AuthenticationFailed.label}: the server asked for an authentication method "
                "that would hand it the password (mysql_clear_password, dialog, or "
                "caching_sha2_password/sha256_password without TLS mode Verify); WhaleFall "
                "answers with mysql_native_password or ed25519 only"
            )
        if isinstance(exc, MySQLdb.MySQLError) and exc.args[:1] and exc.args[0] in _DENIED_ERRORS:
            return InsufficientPrivileges(_denied_message(exc))
        return super().translate_error(exc)

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
        if code in _DENIED_ERRORS:
            return InsufficientPrivileges
        if code == 2013 and getattr(exc, "read_timed_out", False):
            return Timeout  # the server went silent after the login
        if code in _UNREACHABLE_ERRORS | {2013}:
            return Timeout if any(marker in message for marker in _ETIMEDOUT) else Unreachable
        return EngineFailure


def _denied_message(exc: BaseException) -> str:
    """The insufficient-privileges message for a statement the server refused on a table
    (errors 1142/1143), naming the table and the grant that would allow the read."""
    match = _DENIED_TABLE.search(str(exc.args[1]) if len(exc.args) > 1 else "")
    if match is None:
        return (
            f"{InsufficientPrivileges.label}: the monitoring account cannot read the grant "
            "tables (GRANT SELECT ON mysql.* TO it)"
        )
    schema, table = match.groups() if match.group(2) else ("mysql", match.group(1))
    return (
        f"{InsufficientPrivileges.label}: the monitoring account cannot read {schema}.{table} "
        f"(GRANT SELECT ON {schema}.* TO it, or at least GRANT SELECT ON {schema}.{table})"
    )


# --- Accounts and privileges ------------------------------------------------------------

# Bit n of MariaDB's mysql.global_priv "access" is the n-th privilege (read off the server
# by granting one privilege at a time). Bit 10 is GRANT OPTION. Bit 20 is called REPLICATION
# CLIENT before MariaDB 10.5.2.
MARIADB_GLOBAL_BITS = (
    "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "RELOAD", "SHUTDOWN",
    "PROCESS", "FILE", None, "REFERENCES", "INDEX", "ALTER", "SHOW DATABASES", "SUPER",
    "CREATE TEMPORARY TABLES", "LOCK TABLES", "EXECUTE", "REPLICATION SLAVE",
    "BINLOG MONITOR", "CREATE VIEW", "SHOW VIEW", "CREATE ROUTINE", "ALTER ROUTINE",
    "CREATE USER", "EVENT", "TRIGGER", "CREATE TABLESPACE", "DELETE HISTORY", "SET USER",
    "FEDERATED ADMIN", "CONNECTION ADMIN", "READ_ONLY ADMIN", "REPLICATION SLAVE ADMIN",
    "REPLICATION MASTER ADMIN", "BINLOG ADMIN", "BINLOG REPLAY", "SLAVE MONITOR",
    "SHOW CREATE ROUTINE",
)  # fmt: skip
# The last global privilege bit each MariaDB server version defines, newest first.
MARIADB_LAST_BIT = (((11, 3, 0), 39), ((10, 5, 9), 38), ((10, 5, 2), 37), ((10, 4, 0), 29))
# The last bit a global_priv record may hold, by the record's own "version_id" (the server
# version that wrote it; none: a 10.4 record), as the server checks it when loading.
_RECORD_LAST_BIT = ((110300, 39), (100508, 38), (100502, 37), (0, 29))
ALL_BITS = 2**64 - 1  # {"access": 18446744073709551615}: ALL PRIVILEGES WITH GRANT OPTION
GRANT_OPTION_BIT = 10
SUPER_BIT = 15
_REPL_SLAVE, _BINLOG_MONITOR, _REPL_SLAVE_ADMIN = 1 << 19, 1 << 20, 1 << 34
_REPL_MASTER_ADMIN, _SLAVE_MONITOR = 1 << 35, 1 << 38
# What SUPER was split into in 10.5.2: a 10.4 record with SUPER still holds all of it.
_SUPER_SPLIT = sum(1 << bit for bit in (30, 31, 32, 33, 34, 36, 37))
ALL_PRIVILEGES = "ALL PRIVILEGES"

# *_priv column name (without the suffix) -> privilege name where the plain rule
# (underscores to spaces, upper case) does not give the name SHOW GRANTS uses.
_COLUMN_NAMES = {
    "Create_tmp_table": "CREATE TEMPORARY TABLES",
    "Show_db": "SHOW DATABASES",
    "Repl_slave": "REPLICATION SLAVE",
    "Repl_client": "REPLICATION CLIENT",
    "Delete_history": "DELETE HISTORY",
}
# Values of the SET columns of tables_priv / columns_priv / procs_priv that are not just
# upper-cased privilege names.
_SET_NAMES = {"Delete versioning rows": "DELETE HISTORY"}
# mysql.user columns that are not privileges of the *.* level.
_NOT_GLOBAL = {"Grant"}
# mysql.procs_priv.Routine_type -> canonical scope.
ROUTINE_SCOPES = {
    "PROCEDURE": "procedure",
    "FUNCTION": "function",
    "PACKAGE": "package",
    "PACKAGE BODY": "package",
}
# Plugins that check a password: an alternative (auth_or) of one of these without an
# authentication string accepts the empty password.
_PASSWORD_PLUGINS = {
    "mysql_native_password", "mysql_old_password", "ed25519", "parsec",
    "caching_sha2_password", "sha256_password",
}  # fmt: skip
# One entry of @@mandatory_roles: name[@host], each bare or quoted.
_QUOTED = r"`(?:[^`]|``)*`|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\""
_ROLE_SPEC = re.compile(
    rf"\s*(?P<user>{_QUOTED}|[^@,\s]+)\s*(?:@\s*(?P<host>{_QUOTED}|[^,\s]+))?\s*(?:,|$)"
)


def _privilege_from_column(column: str) -> str:
    base = column[: -len("_priv")]
    return _COLUMN_NAMES.get(base, base.replace("_", " ").upper())


def _set_values(value) -> list[str]:
    if not value:
        return []
    items = value if isinstance(value, set | frozenset | list | tuple) else str(value).split(",")
    return [_SET_NAMES.get(v, v.upper()) for v in items if v]


def _text(value) -> str:
    return (
        value.decode()
        if isinstance(value, bytes | bytearray)
        else ("" if value is None else str(value))
    )


def _epoch(value) -> str | None:
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat() if seconds > 0 else None


def _unquote(part: str | None) -> str | None:
    if part and part[0] in "`'\"" and len(part) > 1 and part[-1] == part[0]:
        return part[1:-1].replace(part[0] * 2, part[0])
    return part


def parse_role_list(value: str) -> list[tuple[str, str]]:
    """``(user, host)`` of each role in a role list such as ``@@mandatory_roles``
    (``r1,`r2`@`%`,'r3'@'localhost'``); the host defaults to ``%``."""
    roles, position, value = [], 0, (value or "").strip()
    while position < len(value):
        match = _ROLE_SPEC.match(value, position)
        if not match or match.end() == position:
            break
        roles.append((_unquote(match["user"]), _unquote(match["host"]) or "%"))
        position = match.end()
    return roles


def mariadb_last_bit(server: tuple[int, ...]) -> int:
    """The last global privilege bit MariaDB ``server`` (major, minor, patch) defines."""
    for first, last in MARIADB_LAST_BIT:
        if server >= first:
            return last
    return MARIADB_LAST_BIT[-1][1]


def _record_last_bit(version_id: int) -> int:
    for first, last in _RECORD_LAST_BIT:
        if version_id >= first:
            return last
    return _RECORD_LAST_BIT[-1][1]


@dataclass(frozen=True)
class GlobalAccess:
    """One decoded ``access`` mask: the global privileges it grants (``ALL PRIVILEGES``
    added when it holds every one the server defines), whether WITH GRANT OPTION, and the
    bits set that the server does not define for the record (then nothing else counts)."""

    privileges: tuple[str, ...]
    grantable: bool
    unknown_bits: tuple[int, ...] = ()
    last_bit: int = 0


def decode_mariadb_access(
    access: int, version_id: int | None, server: tuple[int, ...]
) -> GlobalAccess:
    """Decode a ``mysql.global_priv`` ``access`` as MariaDB ``server`` loads it.

    ``2**64-1`` is ALL PRIVILEGES WITH GRANT OPTION (what the install scripts write). From
    10.5.2 on, a record carries the ``version_id`` that wrote it: a record older than 10.5.2
    (or without one) with SUPER also holds what SUPER was split into, and REPLICATION
    CLIENT/SLAVE imply SLAVE MONITOR (sql_acl.cc, ``adjust_access``). A bit beyond what the
    record's version defines makes the server ignore the record's global privileges: it is
    reported in ``unknown_bits`` and never given a made-up name.
    """
    last = mariadb_last_bit(server)
    known = (1 << (last + 1)) - 1
    if access == ALL_BITS:
        effective, record_last = known, last
    else:
        versioned = server >= (10, 5, 2)
        version_id = int(version_id or 0)
        record_last = min(last, _record_last_bit(version_id)) if versioned else last
        beyond = access >> (record_last + 1)
        if beyond:
            bits = tuple(record_last + 1 + i for i in range(beyond.bit_length()) if beyond >> i & 1)
            return GlobalAccess((), False, bits, record_last)
        effective = access
        if versioned and version_id < 100502:
            if access & (1 << SUPER_BIT):
                effective |= _SUPER_SPLIT | (_REPL_MASTER_ADMIN if access & _REPL_SLAVE else 0)
            if access & (_BINLOG_MONITOR | _REPL_SLAVE):
                effective |= _SLAVE_MONITOR
        elif versioned and version_id < 100509 and access & _REPL_SLAVE_ADMIN:
            effective |= _SLAVE_MONITOR
        effective &= known
    names = list(MARIADB_GLOBAL_BITS[: last + 1])
    if server < (10, 5, 2):
        names[20] = "REPLICATION CLIENT"
    privileges = [name for bit, name in enumerate(names) if name and effective >> bit & 1]
    if effective | (1 << GRANT_OPTION_BIT) == known:
        privileges.append(ALL_PRIVILEGES)
    grantable = bool(effective >> GRANT_OPTION_BIT & 1)
    return GlobalAccess(tuple(privileges), grantable, (), record_last)


def _password_set(priv: dict) -> bool:
    """Whether a global_priv record needs a password: a non-empty authentication string,
    and no password-plugin alternative (``IDENTIFIED VIA … OR …``) without one."""
    if not priv.get("authentication_string"):
        return False
    for alternative in priv.get("auth_or") or ():
        if (
            isinstance(alternative, dict)
            and alternative.get("plugin") in _PASSWORD_PLUGINS
            and not alternative.get("authentication_string")
        ):
            return False
    return True


class _Grants:
    """Collects grants, roles and role edges per account key while the grant tables are
    read."""

    def __init__(self):
        self.grants: dict[AccountKey, set[tuple[str, str, str, str]]] = defaultdict(set)
        self.roles: dict[AccountKey, set[str]] = defaultdict(set)
        self.admin_roles: dict[AccountKey, set[str]] = defaultdict(set)
        self.memberships: dict[AccountKey, dict[AccountKey, dict]] = defaultdict(dict)

    def add(self, key: AccountKey, scope: str, obj: str, privileges, grantable: bool) -> None:
        option = "GRANT" if grantable else ""
        privileges = list(privileges)
        for privilege in privileges:
            self.grants[key].add((scope, obj, privilege, option))
        if grantable and not privileges:
            self.grants[key].add((scope, obj, "USAGE", option))

    def member(self, key: AccountKey, role: AccountKey, *, inherit: bool, admin: bool) -> None:
        """A direct edge from ``key`` to ``role`` (any granted role can be SET)."""
        self.memberships[key].setdefault(
            role, {"role": role, "inherit": inherit, "set": True, "admin": admin}
        )


class MySQLAccountsMixin:
    """Accounts and privileges read in bulk from the grant tables (a fixed number of
    queries per instance, never one SHOW GRANTS per account)."""

    def _is_mariadb(self) -> bool:
        return "mariadb" in self._version.lower()

    @functools.cached_property
    def _server(self) -> tuple[int, ...]:
        """(major, minor, patch) of the server; a very large version when unknown, so
        nothing the newest known version defines is taken for unknown."""
        full = self.parse_version(self._version).full
        return tuple(int(n) for n in full.split(".")) if full else (10**6,)

    @functools.cached_property
    def _global_priv_table(self) -> bool:
        """MariaDB 10.4+ keeps accounts in mysql.global_priv (mysql.user is a slow view)."""
        return self._is_mariadb() and (10, 4) <= self._server < (10**6,)

    def dict_rows(self, sql: str) -> list[dict]:
        """Rows of a statement as dicts keyed by column name."""
        with self.remote(), self.connection.cursor() as cursor:
            cursor.execute(sql)
            columns = [c[0] for c in cursor.description]
            rows = cursor.fetchall()
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def _read_accounts(self) -> list[dict]:
        """Every account row; the password hash is looked at (is there one?) and dropped."""
        try:
            if self._global_priv_table:
                rows = self.dict_rows("SELECT Host, User, Priv FROM mysql.global_priv")
            else:
                rows = self.dict_rows("SELECT * FROM mysql.user")
        except MySQLdb.OperationalError as exc:
            if exc.args and exc.args[0] in _DENIED_ERRORS:
                raise InsufficientPrivileges(_denied_message(exc)) from None
            if exc.args and exc.args[0] in {1044, 1227}:
                raise InsufficientPrivileges(
                    f"{InsufficientPrivileges.label}: the monitoring account cannot read the "
                    "grant tables (GRANT SELECT ON mysql.* TO it)"
                ) from None
            raise
        if not rows:
            # Every server has at least one account: an empty table means we see nothing.
            raise InsufficientPrivileges(
                f"{InsufficientPrivileges.label}: the grant tables look empty to the "
                "monitoring account"
            )
        for row in rows:
            if "Priv" in row:
                priv = json.loads(_text(row.pop("Priv")) or "{}")
                row["password_set"] = _password_set(priv)
                priv.pop("authentication_string", None)  # never kept, never stored
                priv.pop("auth_or", None)
                row["priv"] = priv
            else:
                row["password_set"] = bool(row.get("authentication_string")) or bool(
                    row.get("Password")
                )
            row.pop("authentication_string", None)
            row.pop("Password", None)
        return rows

    def _mysql8_roles(self) -> None:
        """MySQL 8: role edges, and the settings that activate roles at login (one query
        each, read once). Before 8.0 there are no roles."""
        if hasattr(self, "_role_edges"):
            return
        self._role_edges, self._activate_all, self._mandatory = [], False, []
        try:
            self._role_edges = self.query(
                "SELECT FROM_HOST, FROM_USER, TO_HOST, TO_USER, WITH_ADMIN_OPTION "
                "FROM mysql.role_edges"
            )
        except MySQLdb.ProgrammingError:  # before MySQL 8: no roles
            return
        activate_all, mandatory = self.query(
            "SELECT @@activate_all_roles_on_login, @@mandatory_roles"
        )[0]
        self._activate_all = str(activate_all) in {"1", "ON"}
        self._mandatory = parse_role_list(_text(mandatory))

    def _kinds(self, rows) -> dict[tuple[str, str], AccountKey]:
        """The key of every account row by (User, Host): user, role or PUBLIC."""
        keys: dict[tuple[str, str], AccountKey] = {}
        if self._global_priv_table:
            public = self._server >= (10, 11)
            for row in rows:
                user, host = row["User"], row["Host"]
                if not row["priv"].get("is_role"):
                    keys[(user, host)] = ("user", user, host)
                elif public and user == PUBLIC and host == "":
                    keys[(user, host)] = PUBLIC_ACCOUNT.key
                else:
                    keys[(user, host)] = ("role", user, host)
            return keys
        if "is_role" in rows[0]:  # MariaDB before 10.4
            for row in rows:
                user, host = row["User"], row["Host"]
                kind = "role" if _text(row["is_role"]) == "Y" else "user"
                keys[(user, host)] = (kind, user, host)
            return keys
        # MySQL 8 has no role flag: a role is an account granted in role_edges (or a
        # mandatory role).
        self._mysql8_roles()
        roles = {(_text(u), _text(h)) for h, u, *_ in self._role_edges} | set(self._mandatory)
        for row in rows:
            user, host = row["User"], row["Host"]
            kind = "role" if (user, host) in roles else "user"
            keys[(user, host)] = (kind, user, host)
        return keys

    def _account_keys(self) -> dict[tuple[str, str], AccountKey]:
        if getattr(self, "_account_rows", None) is None:
            self._account_rows = self._read_accounts()
            self._keys = None
        if getattr(self, "_keys", None) is None:
            self._keys = self._kinds(self._account_rows)
        return self._keys

    def list_accounts(self) -> list[AccountRecord]:
        """Every account but the system ones (matched exactly as ``user@host``), anonymous
        ones included; on MariaDB 10.11+ the PUBLIC pseudo-account."""
        self._account_rows = None  # a fresh listing on every call
        self.__dict__.pop("_role_edges", None)
        keys = self._account_keys()
        records = []
        for row in self._account_rows:
            user, host = row["User"], row["Host"]
            kind, name, host = keys[(user, host)]
            if kind != "public" and is_system_account("mysql", f"{user}@{host}"):
                continue
            records.append(AccountRecord(name=name, host=host, kind=kind))
        return records

    @functools.cached_property
    def _decoded_masks(self) -> dict[tuple[int, int], GlobalAccess]:
        return {}

    def _global_from_bits(self, row: dict) -> tuple[list[str], bool]:
        """The global privileges of a global_priv row; each distinct mask decoded once."""
        priv = row["priv"]
        access, version_id = int(priv.get("access", 0)), int(priv.get("version_id", 0) or 0)
        mask = (access, version_id)
        decoded = self._decoded_masks.get(mask)
        if decoded is None:
            decoded = self._decoded_masks[mask] = decode_mariadb_access(
                access, version_id, self._server
            )
        if decoded.unknown_bits:
            bits = ", ".join(str(bit) for bit in decoded.unknown_bits)
            written = f"version_id {version_id}" if version_id else "no version_id"
            raise EngineFailure(
                f"{EngineFailure.label}: account '{row['User']}'@'{row['Host']}' has global "
                f"privilege bit {bits} set in mysql.global_priv (access {access}), which "
                f"the server ({self._version}) does not define for a record with {written} "
                f"(bits 0 to {decoded.last_bit}); it ignores this account's global privileges"
            )
        return list(decoded.privileges), decoded.grantable

    def _global_from_columns(self, row: dict) -> tuple[list[str], bool]:
        columns = [c for c in row if c.endswith("_priv")]
        granted = [c for c in columns if _text(row[c]) == "Y" and c[:-5] not in _NOT_GLOBAL]
        privileges = [_privilege_from_column(c) for c in granted]
        if privileges and len(granted) == len([c for c in columns if c[:-5] not in _NOT_GLOBAL]):
            privileges.append(ALL_PRIVILEGES)
        return privileges, _text(row.get("Grant_priv")) == "Y"

    def collect_privileges(self, accounts: list[AccountRecord], *, deep: bool = False) -> dict:
        """Canonical-ready privilege sets of ``accounts``, keyed by ``AccountRecord.key``:
        own grants, directly granted roles and the direct edges of the role graph."""
        wanted = {a.key: a for a in accounts}
        if not wanted:
            return {}
        keys = self._account_keys()
        grants = _Grants()
        attributes: dict[AccountKey, dict] = {}
        default_roles: dict[AccountKey, str] = {}  # MariaDB: one default role per account
        names: dict[tuple[str, ...], str] = {}  # object names repeat: quote each once

        def name(*parts: str) -> str:
            found = names.get(parts)
            if found is None:
                found = names[parts] = object_name(*parts)
            return found

        for row in self._account_rows:
            key = keys[(row["User"], row["Host"])]
            if key not in wanted:
                continue
            user = key[0] == "user"
            if "priv" in row:
                priv = row["priv"]
                privileges, grantable = self._global_from_bits(row)
                changed = priv.get("password_last_changed")
                attrs = {
                    "plugin": priv.get("plugin", ""),
                    "password_last_changed": _epoch(changed) if user else None,
                    "password_expired": user and changed == 0,
                }
                locked = bool(priv.get("account_locked"))
                if priv.get("default_role"):
                    attrs["default_role"] = default_roles[key] = priv["default_role"]
                if int(priv.get("password_lifetime", -1)) >= 0:
                    attrs["password_lifetime_days"] = int(priv["password_lifetime"])
            else:
                privileges, grantable = self._global_from_columns(row)
                changed = row.get("password_last_changed")
                attrs = {
                    "plugin": _text(row.get("plugin")),
                    "password_last_changed": None
                    if not user or not changed
                    else (
                        changed.replace(tzinfo=UTC).isoformat()
                        if hasattr(changed, "isoformat")
                        else _text(changed)
                    ),
                    "password_expired": user and _text(row.get("password_expired")) == "Y",
                }
                locked = _text(row.get("account_locked")) == "Y"
                if _text(row.get("default_role")):  # MariaDB before 10.4
                    attrs["default_role"] = default_roles[key] = _text(row["default_role"])
            grants.add(key, "global", "", privileges, grantable)
            attrs |= {
                "superuser": "SUPER" in privileges or ALL_PRIVILEGES in privileges,
                "locked": locked and user,
                "can_login": user,
            }
            if user:
                attrs["password_set"] = row["password_set"]
                if row["User"] == "":
                    attrs["anonymous"] = True
            attributes[key] = attrs

        if not self._global_priv_table:
            self._dynamic_global_grants(keys, wanted, grants)

        with self.remote(), self.connection.cursor() as cursor:
            cursor.execute("SELECT * FROM mysql.db")
            columns = [c[0] for c in cursor.description]
            db_rows = cursor.fetchall()
        host_i, db_i, user_i = (columns.index(c) for c in ("Host", "Db", "User"))
        grant_i = columns.index("Grant_priv")
        privilege_columns = [
            (i, _privilege_from_column(c))
            for i, c in enumerate(columns)
            if c.endswith("_priv") and c != "Grant_priv"
        ]
        every = len(privilege_columns)
        for row in db_rows:
            key = keys.get((row[user_i], row[host_i]))
            if key not in wanted:
                continue
            privileges = [privilege for i, privilege in privilege_columns if row[i] == "Y"]
            if len(privileges) == every:
                privileges.append(ALL_PRIVILEGES)
            grantable = row[grant_i] == "Y"
            if privileges or grantable:
                grants.add(key, "database", name(row[db_i]), privileges, grantable)

        # The Grant in a table's Table_priv is the grant option of the table's privileges
        # and of its column privileges (GRANT SELECT (c) ON t … WITH GRANT OPTION stores
        # Table_priv 'Grant', Column_priv 'Select'): it stays with the columns.
        table_options = set()
        for host, db, user, table, table_privs, column_privs in self.query(
            "SELECT Host, Db, User, Table_name, Table_priv, Column_priv FROM mysql.tables_priv"
        ):
            key = keys.get((user, host))
            if key not in wanted:
                continue
            values = _set_values(table_privs)
            grantable = "GRANT" in values
            privileges = [v for v in values if v != "GRANT"]
            if grantable:
                table_options.add((host, db, user, table))
            if privileges or (grantable and not column_privs):
                grants.add(key, "table", name(db, table), privileges, grantable)

        for host, db, user, table, column, privs in self.query(
            "SELECT Host, Db, User, Table_name, Column_name, Column_priv FROM mysql.columns_priv"
        ):
            key = keys.get((user, host))
            if key in wanted:
                grantable = (host, db, user, table) in table_options
                grants.add(key, "column", name(db, table, column), _set_values(privs), grantable)

        for host, db, user, routine, routine_type, privs in self.query(
            "SELECT Host, Db, User, Routine_name, Routine_type, Proc_priv FROM mysql.procs_priv"
        ):
            key = keys.get((user, host))
            if key not in wanted:
                continue
            scope = ROUTINE_SCOPES.get(_text(routine_type).upper())
            if scope is None:
                raise EngineFailure(
                    f"{EngineFailure.label}: mysql.procs_priv has a routine of unknown type "
                    f"{_text(routine_type)!r} ({db}.{routine})"
                )
            values = _set_values(privs)
            grants.add(
                key,
                scope,
                name(db, routine),
                [v for v in values if v != "GRANT"],
                "GRANT" in values,
            )

        for host, user, proxied_host, proxied_user, with_grant in self.query(
            "SELECT Host, User, Proxied_host, Proxied_user, With_grant FROM mysql.proxies_priv"
        ):
            key = keys.get((user, host))
            if key in wanted:
                proxied = name(proxied_user, proxied_host)
                grants.add(key, "global", proxied, ["PROXY"], bool(with_grant))

        if self._is_mariadb():
            self._mariadb_roles(keys, wanted, grants, default_roles)
        else:
            self._mysql8_memberships(keys, wanted, grants)

        result = {}
        nothing = {}
        for key in wanted:
            attrs = attributes.get(key) or {}  # built for this call: no copy needed
            admin_roles = grants.admin_roles.get(key)
            if admin_roles:
                attrs["admin_roles"] = sorted(admin_roles)
            # Unsorted: canonicalisation sorts once, later.
            result[key] = {
                "engine": "mysql",
                "attributes": attrs,
                "roles": list(grants.roles.get(key, ())),
                "grants": list(grants.grants.get(key, ())),
                "memberships": list(grants.memberships.get(key, nothing).values()),
            }
        return result

    def _dynamic_global_grants(self, keys, wanted, grants: _Grants) -> None:
        """MySQL 8 dynamic privileges (BACKUP_ADMIN, SYSTEM_VARIABLES_ADMIN …)."""
        try:
            rows = self.dict_rows(
                "SELECT USER, HOST, PRIV, WITH_GRANT_OPTION FROM mysql.global_grants"
            )
        except MySQLdb.ProgrammingError:  # before MySQL 8
            return
        for row in rows:
            key = keys.get((_text(row["USER"]), _text(row["HOST"])))
            if key in wanted:
                grants.add(
                    key, "global", "", [_text(row["PRIV"])], _text(row["WITH_GRANT_OPTION"]) == "Y"
                )

    def _mariadb_roles(self, keys, wanted, grants: _Grants, default_roles) -> None:
        """MariaDB: mysql.roles_mapping holds user → role and role → role edges (Host ''
        for a role or PUBLIC member). A user's roles are active only once set: at login,
        its one default role; a role (or PUBLIC) that is active has its granted roles
        active too, so those edges inherit."""
        rows = self.query("SELECT Host, User, Role, Admin_option FROM mysql.roles_mapping")
        for host, user, role, admin in rows:
            key = keys.get((user, host))
            if key not in wanted:
                continue
            role, admin = _text(role), _text(admin) == "Y"
            grants.roles[key].add(role)
            if admin:
                grants.admin_roles[key].add(role)
            inherit = key[0] != "user" or default_roles.get(key) == role
            role_key = keys.get((role, "")) or ("role", role, "")
            grants.member(key, role_key, inherit=inherit, admin=admin)

    def _mysql8_memberships(self, keys, wanted, grants: _Grants) -> None:
        """MySQL 8: mysql.role_edges (FROM = the role, TO = the grantee) and
        mysql.default_roles. At login the default roles are active, or every granted role
        with activate_all_roles_on_login; an active role's own roles are active too.
        Mandatory roles are granted to every user, active on the same terms."""
        self._mysql8_roles()
        if not self._role_edges and not self._mandatory:
            return
        defaults: dict[AccountKey, set[AccountKey]] = defaultdict(set)
        for host, user, role_host, role_user in self.query(
            "SELECT HOST, USER, DEFAULT_ROLE_HOST, DEFAULT_ROLE_USER FROM mysql.default_roles"
        ):
            key = keys.get((_text(user), _text(host)))
            if key in wanted:
                role = (_text(role_user), _text(role_host))
                defaults[key].add(keys.get(role) or ("role", *role))
        for from_host, from_user, to_host, to_user, admin in self._role_edges:
            key = keys.get((_text(to_user), _text(to_host)))
            if key not in wanted:
                continue
            role = (_text(from_user), _text(from_host))
            role_key = keys.get(role) or ("role", *role)
            name = f"{role[0]}@{role[1]}"
            admin = _text(admin) == "Y"
            grants.roles[key].add(name)
            if admin:
                grants.admin_roles[key].add(name)
            inherit = self._activate_all or key[0] == "role" or role_key in defaults[key]
            grants.member(key, role_key, inherit=inherit, admin=admin)
        mandatory = [keys[role] for role in self._mandatory if role in keys]
        for key in wanted:
            if key[0] == "user":
                for role_key in mandatory:
                    inherit = self._activate_all or role_key in defaults[key]
                    grants.member(key, role_key, inherit=inherit, admin=False)


# --- Databases and sizes ----------------------------------------------------------------

# Any of these granted ON *.* shows every schema and table in information_schema.
_TABLE_PRIVILEGES = {
    "ALL", "ALL PRIVILEGES", "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP",
    "REFERENCES", "INDEX", "ALTER", "CREATE VIEW", "SHOW VIEW", "TRIGGER", "DELETE HISTORY",
}  # fmt: skip
_GLOBAL_GRANT = re.compile(r"^GRANT (?P<privileges>.+?) ON \*\.\* TO ", re.I)
SCHEMATA_SQL = "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA"
# Databases without tables are kept (LEFT JOIN) and weigh 0; views have NULL lengths.
SCHEMA_SIZES_SQL = """
SELECT s.SCHEMA_NAME, SUM(t.DATA_LENGTH), SUM(t.INDEX_LENGTH)
FROM information_schema.SCHEMATA AS s
LEFT JOIN information_schema.TABLES AS t ON t.TABLE_SCHEMA = s.SCHEMA_NAME
GROUP BY s.SCHEMA_NAME
"""
# One row per table, or one row with a NULL table for a database without tables; no row
# at all when the database does not exist.
TABLE_SIZES_SQL = """
SELECT t.TABLE_NAME, t.TABLE_ROWS, t.DATA_LENGTH, t.INDEX_LENGTH
FROM information_schema.SCHEMATA AS s
LEFT JOIN information_schema.TABLES AS t
       ON t.TABLE_SCHEMA = s.SCHEMA_NAME AND t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')
WHERE s.SCHEMA_NAME = %s
"""


def _bytes(value) -> int:
    return int(value) if value is not None else 0


class MySQLCapacityMixin:
    """Databases (schemas) and their sizes from ``information_schema``: one statement for
    the list, one for every database's size, one for a database's tables, after a check of
    the account's global grants once per session."""

    def _check_catalog_visibility(self) -> None:
        """Refuse to go on unless every schema and table is visible to the account."""
        if getattr(self, "_catalog_visible", False):
            return
        privileges: set[str] = set()
        for (line,) in self.query("SHOW GRANTS"):
            # The line may carry the password hash: only the privilege list is looked at.
            match = _GLOBAL_GRANT.match(_text(line))
            if match:
                privileges |= {p.strip().upper() for p in match["privileges"].split(",")}
        if not privileges & _TABLE_PRIVILEGES:
            raise InsufficientPrivileges(
                f"{InsufficientPrivileges.label}: information_schema shows the monitoring "
                "account only the schemas and tables it has privileges on (GRANT SHOW VIEW "
                "ON *.* TO it)"
            )
        if not self._is_mariadb():
            major = self.parse_version(self._version).major_minor.split(".")[0]
            if major.isdigit() and int(major) >= 8:
                # MySQL 8 caches table statistics for a day by default.
                self.query("SET SESSION information_schema_stats_expiry = 0")
        self._catalog_visible = True

    def list_databases(self) -> list[DatabaseRecord]:
        self._check_catalog_visibility()
        names = (_text(name) for (name,) in self.query(SCHEMATA_SQL))
        return [
            DatabaseRecord(name=name)
            for name in sorted(names)
            if not is_system_database("mysql", name)
        ]

    def database_sizes(self, names) -> list[DatabaseSize]:
        """Data and index bytes of the tables of each database in ``names``, in one
        statement; a database without tables weighs 0, one that no longer exists is left out."""
        wanted = set(names)
        if not wanted:
            return []
        self._check_catalog_visibility()
        sizes = []
        for name, data, index in self.query(SCHEMA_SIZES_SQL):
            name = _text(name)
            if name in wanted:
                sizes.append(DatabaseSize(name=name, data_bytes=_bytes(data) + _bytes(index)))
        return sorted(sizes, key=lambda size: size.name)

    def table_sizes(self, database: str) -> list[TableSize]:
        """Tables of ``database`` with the server's row estimate (exact for MyISAM and
        Aria, sampled for InnoDB) and data and index lengths."""
        self._check_catalog_visibility()
        rows = self.query(TABLE_SIZES_SQL, (database,))
        if not rows:
            raise EngineFailure(f"{EngineFailure.label}: no database named {database!r}")
        tables = []
        for table, estimate, data, index in rows:
            if table is None:
                continue
            data, index = _bytes(data), _bytes(index)
            tables.append(
                TableSize(
                    schema=database,
                    table=_text(table),
                    rows=int(estimate) if estimate is not None else None,
                    data_bytes=data,
                    index_bytes=index,
                    total_bytes=data + index,
                )
            )
        return sorted(tables, key=lambda size: size.table)


class MySQLEngine(MySQLAccountsMixin, MySQLCapacityMixin, _MySQLConnection):
    """MySQL and MariaDB: connection, version, accounts and privileges, databases and sizes."""

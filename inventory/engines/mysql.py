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
"""

import functools
import json
import re
from collections import defaultdict
from datetime import UTC, datetime

import MySQLdb

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


class _MySQLConnection(Engine):
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


# --- Accounts and privileges ------------------------------------------------------------

# Bit n of MariaDB's mysql.global_priv "access" is the n-th privilege (read off the server
# by granting one privilege at a time). Bit 10 is GRANT OPTION. Bit 20 is called REPLICATION
# CLIENT before MariaDB 10.5.
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
GRANT_OPTION_BIT = 10
SUPER_BIT = 15
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


class _Grants:
    """Collects grants per account key while the grant tables are read."""

    def __init__(self):
        self.grants: dict[str, set[tuple[str, str, str, str]]] = defaultdict(set)
        self.roles: dict[str, set[str]] = defaultdict(set)
        self.admin_roles: dict[str, set[str]] = defaultdict(set)

    def add(self, key: str, scope: str, obj: str, privileges, grantable: bool) -> None:
        option = "GRANT" if grantable else ""
        privileges = list(privileges)
        for privilege in privileges:
            self.grants[key].add((scope, obj, privilege, option))
        if grantable and not privileges:
            self.grants[key].add((scope, obj, "USAGE", option))


def _key(user: str, host: str) -> str:
    """``AccountRecord.key`` of a grant-table row (user@host, or the role name).

    The grant tables are utf8 text: the driver returns ``str`` (no decoding needed).
    """
    return f"{user}@{host}" if host else user


class MySQLAccountsMixin:
    """Accounts and privileges read in bulk from the grant tables (a fixed number of
    queries per instance, never one SHOW GRANTS per account)."""

    def _is_mariadb(self) -> bool:
        return "mariadb" in self._version.lower()

    @functools.cached_property
    def _global_priv_table(self) -> bool:
        """MariaDB 10.4+ keeps accounts in mysql.global_priv (mysql.user is a slow view)."""
        info = self.parse_version(self._version)
        if not self._is_mariadb() or info.major_minor == "unknown":
            return False
        major, minor = (int(n) for n in info.major_minor.split("."))
        return (major, minor) >= (10, 4)

    def dict_rows(self, sql: str) -> list[dict]:
        """Rows of a statement as dicts keyed by column name."""
        with self.remote(), self.connection.cursor() as cursor:
            cursor.execute(sql)
            columns = [c[0] for c in cursor.description]
            rows = cursor.fetchall()
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def _read_accounts(self) -> list[dict]:
        try:
            if self._global_priv_table:
                rows = self.dict_rows("SELECT Host, User, Priv FROM mysql.global_priv")
            else:
                rows = self.dict_rows("SELECT * FROM mysql.user")
        except MySQLdb.OperationalError as exc:
            if exc.args and exc.args[0] in {1142, 1044, 1227}:
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
            row.pop("authentication_string", None)
            row.pop("Password", None)
            if "Priv" in row:
                priv = json.loads(_text(row.pop("Priv")) or "{}")
                priv.pop("authentication_string", None)  # never kept, never stored
                priv.pop("auth_or", None)
                row["priv"] = priv
        return rows

    def _role_names(self, rows) -> set[str]:
        """Accounts that are roles (MySQL 8 has no flag: a role is granted in role_edges)."""
        if self._global_priv_table:
            return {_key(r["User"], r["Host"]) for r in rows if r["priv"].get("is_role")}
        if "is_role" in (rows[0] if rows else {}):
            return {_key(r["User"], r["Host"]) for r in rows if _text(r["is_role"]) == "Y"}
        try:
            edges = self.query("SELECT DISTINCT FROM_USER, FROM_HOST FROM mysql.role_edges")
        except MySQLdb.ProgrammingError:  # before MySQL 8: no roles
            return set()
        return {_key(user, host) for user, host in edges}

    def list_accounts(self) -> list[AccountRecord]:
        rows = self._read_accounts()
        self._account_rows = rows
        roles = self._role_names(rows)
        records = []
        for row in rows:
            user, host = row["User"], row["Host"]
            if is_system_account("mysql", user):
                continue
            key = _key(user, host)
            is_role = key in roles
            # MariaDB roles have an empty host; MySQL 8 roles keep theirs.
            records.append(AccountRecord(name=user, host=host, kind="role" if is_role else "user"))
        self._roles = roles
        return records

    @functools.cached_property
    def _bit_names(self) -> list[str | None]:
        """Privilege name of each access bit on this server's version."""
        names = list(MARIADB_GLOBAL_BITS)
        info = self.parse_version(self._version)
        version = info.major_minor
        if version != "unknown" and tuple(int(n) for n in version.split(".")) < (10, 5):
            names[20] = "REPLICATION CLIENT"
        return names

    def _global_from_bits(self, access: int) -> tuple[list[str], bool]:
        # Most accounts share a handful of masks: decode each distinct mask once.
        cache = self.__dict__.setdefault("_decoded_masks", {})
        if access not in cache:
            cache[access] = self._decode_bits(access)
        privileges, grantable = cache[access]
        return list(privileges), grantable

    def _decode_bits(self, access: int) -> tuple[list[str], bool]:
        names = self._bit_names
        privileges = [name for bit, name in enumerate(names) if name and access & (1 << bit)]
        unknown = access >> len(names)
        privileges += [
            f"PRIVILEGE BIT {len(names) + i}"
            for i in range(unknown.bit_length())
            if unknown >> i & 1
        ]
        top = (
            max(bit for bit, name in enumerate(names) if name and (access >> bit) & 1)
            if privileges
            else -1
        )
        everything = all(access >> bit & 1 for bit in range(top + 1) if bit != GRANT_OPTION_BIT)
        if privileges and everything and top >= SUPER_BIT:
            privileges.append(ALL_PRIVILEGES)
        return privileges, bool(access >> GRANT_OPTION_BIT & 1)

    def _global_from_columns(self, row: dict) -> tuple[list[str], bool]:
        columns = [c for c in row if c.endswith("_priv")]
        granted = [c for c in columns if _text(row[c]) == "Y" and c[:-5] not in _NOT_GLOBAL]
        privileges = [_privilege_from_column(c) for c in granted]
        if privileges and len(granted) == len([c for c in columns if c[:-5] not in _NOT_GLOBAL]):
            privileges.append(ALL_PRIVILEGES)
        return privileges, _text(row.get("Grant_priv")) == "Y"

    def collect_privileges(self, accounts: list[AccountRecord], *, deep: bool = False) -> dict:
        """Canonical-ready privilege sets of ``accounts``, keyed by ``AccountRecord.key``."""
        wanted = {a.key: a for a in accounts}
        if not wanted:
            return {}
        if getattr(self, "_account_rows", None) is None:
            self._account_rows = self._read_accounts()
        grants = _Grants()
        attributes: dict[str, dict] = {}

        for row in self._account_rows:
            key = _key(row["User"], row["Host"])
            if key not in wanted:
                continue
            is_role = wanted[key].kind == "role"
            if "priv" in row:
                priv = row["priv"]
                privileges, grantable = self._global_from_bits(int(priv.get("access", 0)))
                locked = bool(priv.get("account_locked")) and not is_role
                changed = priv.get("password_last_changed")
                attrs = {
                    "plugin": priv.get("plugin", ""),
                    "password_last_changed": None if is_role else _epoch(changed),
                    "password_expired": (not is_role) and changed == 0,
                }
                if priv.get("default_role"):
                    attrs["default_role"] = priv["default_role"]
                if int(priv.get("password_lifetime", -1)) >= 0:
                    attrs["password_lifetime_days"] = int(priv["password_lifetime"])
            else:
                privileges, grantable = self._global_from_columns(row)
                locked = _text(row.get("account_locked")) == "Y" and not is_role
                changed = row.get("password_last_changed")
                attrs = {
                    "plugin": _text(row.get("plugin")),
                    "password_last_changed": None
                    if is_role or not changed
                    else (
                        changed.replace(tzinfo=UTC).isoformat()
                        if hasattr(changed, "isoformat")
                        else _text(changed)
                    ),
                    "password_expired": (not is_role) and _text(row.get("password_expired")) == "Y",
                }
            grants.add(key, "global", "", privileges, grantable)
            attrs |= {
                "superuser": "SUPER" in privileges or ALL_PRIVILEGES in privileges,
                "locked": locked,
                "can_login": not is_role,
            }
            attributes[key] = attrs

        if not self._global_priv_table:
            self._dynamic_global_grants(wanted, grants)

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
            key = _key(row[user_i], row[host_i])
            if key not in wanted:
                continue
            privileges = [name for i, name in privilege_columns if row[i] == "Y"]
            if len(privileges) == every:
                privileges.append(ALL_PRIVILEGES)
            grantable = row[grant_i] == "Y"
            if privileges or grantable:
                grants.add(key, "database", row[db_i], privileges, grantable)

        for host, db, user, table, privs in self.query(
            "SELECT Host, Db, User, Table_name, Table_priv FROM mysql.tables_priv"
        ):
            key = _key(user, host)
            if key in wanted:
                values = _set_values(privs)
                obj = f"{_text(db)}.{_text(table)}"
                grants.add(
                    key, "table", obj, [v for v in values if v != "GRANT"], "GRANT" in values
                )

        for host, db, user, table, column, privs in self.query(
            "SELECT Host, Db, User, Table_name, Column_name, Column_priv FROM mysql.columns_priv"
        ):
            key = _key(user, host)
            if key in wanted:
                obj = f"{db}.{table}.{column}"
                grants.add(key, "column", obj, _set_values(privs), False)

        for host, db, user, routine, privs in self.query(
            "SELECT Host, Db, User, Routine_name, Proc_priv FROM mysql.procs_priv"
        ):
            key = _key(user, host)
            if key in wanted:
                values = _set_values(privs)
                obj = f"{db}.{routine}"
                grants.add(
                    key, "table", obj, [v for v in values if v != "GRANT"], "GRANT" in values
                )

        for host, user, proxied_host, proxied_user, with_grant in self.query(
            "SELECT Host, User, Proxied_host, Proxied_user, With_grant FROM mysql.proxies_priv"
        ):
            key = _key(user, host)
            if key in wanted:
                proxied = f"{proxied_user}@{proxied_host}"
                grants.add(key, "global", proxied, ["PROXY"], bool(with_grant))

        self._role_grants(wanted, grants)

        result = {}
        for key in wanted:
            attrs = dict(attributes.get(key, {}))
            if grants.admin_roles[key]:
                attrs["admin_roles"] = sorted(grants.admin_roles[key])
            # Unsorted: canonicalisation sorts once, later.
            result[key] = {
                "engine": "mysql",
                "attributes": attrs,
                "roles": list(grants.roles[key]),
                "grants": list(grants.grants[key]),
            }
        return result

    def _dynamic_global_grants(self, wanted, grants: _Grants) -> None:
        """MySQL 8 dynamic privileges (BACKUP_ADMIN, SYSTEM_VARIABLES_ADMIN …)."""
        try:
            rows = self.dict_rows(
                "SELECT USER, HOST, PRIV, WITH_GRANT_OPTION FROM mysql.global_grants"
            )
        except MySQLdb.ProgrammingError:  # before MySQL 8
            return
        for row in rows:
            key = _key(row["USER"], row["HOST"])
            if key in wanted:
                grants.add(
                    key, "global", "", [_text(row["PRIV"])], _text(row["WITH_GRANT_OPTION"]) == "Y"
                )

    def _role_grants(self, wanted, grants: _Grants) -> None:
        if self._is_mariadb():
            rows = self.query("SELECT Host, User, Role, Admin_option FROM mysql.roles_mapping")
            for host, user, role, admin in rows:
                key = _key(user, host)
                if key in wanted:
                    grants.roles[key].add(_text(role))
                    if _text(admin) == "Y":
                        grants.admin_roles[key].add(_text(role))
            return
        try:
            rows = self.query(
                "SELECT FROM_HOST, FROM_USER, TO_HOST, TO_USER, WITH_ADMIN_OPTION "
                "FROM mysql.role_edges"
            )
        except MySQLdb.ProgrammingError:  # before MySQL 8: no roles
            return
        for from_host, from_user, to_host, to_user, admin in rows:
            key = _key(to_user, to_host)
            if key in wanted:
                role = _key(from_user, from_host)
                grants.roles[key].add(role)
                if _text(admin) == "Y":
                    grants.admin_roles[key].add(role)


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

"""SQL Server, through mssql-python (its own ODBC driver; no system driver needed).

Monitoring login — server-wide read of metadata, nothing else::

    CREATE LOGIN whalefall WITH PASSWORD = '…', CHECK_POLICY = ON;
    GRANT VIEW ANY DEFINITION TO whalefall;        -- logins, roles, permissions, principals;
                                                   -- database files, tables and their sizes
    GRANT CONNECT ANY DATABASE TO whalefall;       -- per-database principals, permissions
                                                   -- and table sizes
    -- VIEW ANY DATABASE (sys.databases) is granted to public by default; keep it.
    -- SQL Server 2022+: VIEW ANY SECURITY DEFINITION may replace VIEW ANY DEFINITION for
    -- accounts, not for sizes. Before SQL Server 2014 (no CONNECT ANY DATABASE), create a
    -- user for the login in every database instead.

Without VIEW ANY DEFINITION, ``sys.server_principals`` silently shows only the caller and
``sys.master_files`` and each database's catalog hide what the login has no permission on;
without VIEW ANY DATABASE, ``sys.databases`` shows only master, tempdb and the databases
the login owns; and the permissions of a database the login cannot enter would silently go
missing: the engine checks these permissions before reading and raises "insufficient
privileges" instead of returning a partial listing. Timeouts: the driver's login timeout
bounds connection set-up; ``Connection.timeout`` bounds every statement.

Accounts
--------
Logins from ``sys.server_principals``, keyed ``(kind, name, "")``: SQL logins and Windows
or Microsoft Entra users are kind "login", Windows or Entra groups kind "group" (attributes
``windows_group``, true for a Windows group, and ``members_visible`` false: who is in a
group comes from the login token, never from the catalog). User-defined server roles are
listed too, as kind "role", so that what is granted to a role is recorded on the role;
fixed server roles are not accounts. The server role ``public`` is the PUBLIC
pseudo-account (``("public", "PUBLIC", "")``), holding what is granted to public (VIEW ANY
DATABASE, CONNECT on the endpoints …). ``WHALEFALL_SYSTEM_ACCOUNTS["sqlserver"]`` names the
logins left out (``##…##`` certificate logins, ``NT SERVICE\\…``, ``NT AUTHORITY\\…``, …).

Privileges
----------
Read in bulk: five statements for the server, plus two per batch of up to
:data:`DATABASE_BATCH` databases (one ``UNION ALL`` statement over three-part names per
batch), whatever the number of logins. Every level of the catalog is kept; the instance's
"deep privileges" option changes nothing here, because objects and columns come with the
same per-database statements.

* ``roles`` (the literal view): server roles held directly or through another server role
  (a login in a role that is a member of ``sysadmin`` is a sysadmin), then database roles
  under their plain names (``db_owner``), so that a rule such as ``has_role("db_owner")``
  matches whatever the database. A database role that bears the name of a server role (a
  user-defined ``sysadmin`` role inside one database) is not put in ``roles``: it must
  never pass for the server role. Which database a role is held in is a grant, see below.
* scope ``server``: ``sys.server_permissions``; the object is ``""`` for the server itself,
  ``LOGIN::name``, ``SERVER ROLE::name`` or ``ENDPOINT::name`` otherwise.
* per online database, through the database user mapped to the login **by SID** (never by
  name: a user with the login's name and another SID belongs to somebody else):
  ``("database", db, "ROLE <role>", "")`` for each database role held (directly or
  nested), ``("database", db, "OWNER", "")`` for the database owner, and every row of
  ``sys.database_permissions`` at its own level — ``database`` (object ``db``), ``schema``
  (``db.schema``), ``procedure`` (procedures: SQL, CLR and extended), ``function``
  (scalar, table-valued and CLR functions, CLR aggregates) and ``table`` (tables, views and
  every other object) (``db.schema.object``), ``column`` (``db.schema.object.column``);
  names are :func:`~inventory.engines.base.object_name` of the separate parts, so a dot or
  a quote inside a name cannot make two objects one. Permissions on database principals
  and other securables are database-level grants named ``"<PERMISSION> ON USER::name"``.
* option: ``""`` granted, ``"GRANT"`` with grant option, ``"DENY"`` denied. Denials are
  kept: they are part of what an account may do.

Role graph
----------
``memberships`` holds the direct edges of every principal (always ``inherit``: SQL Server
roles are active without doing anything; never ``set``; no ``admin``). Permissions of
roles are not copied onto members; the resolver follows the edges through the principals
that grant power without being accounts, returned with ``"listed": False`` and a
``display`` name:

* fixed server roles, ``("role", "sysadmin", "")``: their permissions are built into the
  server (no catalog row), so their documented ones are their grants — sysadmin CONTROL
  SERVER with grant option, securityadmin ALTER ANY LOGIN with grant option (it can grant
  server and database permissions), serveradmin, setupadmin, processadmin, diskadmin,
  dbcreator, bulkadmin as documented ("Permissions of Fixed Server Roles");
* database roles, fixed and user-defined, and each database's ``public`` role,
  ``("role", "<role>", "<database>")`` shown as ``"<role> in <database>"``: their
  ``sys.database_permissions`` rows, the documented permissions of the fixed ones (db_owner
  CONTROL with grant option, db_datareader SELECT, db_denydatareader SELECT denied …), and
  their role-in-role edges. A login is a member of the roles its mapped user is a direct
  member of, and of ``public`` of every database where it has a user;
* ``guest`` of a database where guest may CONNECT, ``("user", "guest", "<database>")``: a
  member of PUBLIC's edges (any login without a user of its own enters as guest), itself a
  member of the database's ``public``.

Only the principals reachable from the accounts asked for are returned. Offline,
restoring, single-user and restricted-user databases cannot be read and contribute nothing
until they are back in multi-user mode.

Databases and sizes
-------------------
Databases from ``sys.databases`` (snapshots left out: their files are sparse and mirror
their source's size), whatever their state. Sizes from ``sys.master_files`` in one
statement for all databases: data bytes are the ROWS files (type 0), log bytes the LOG
files (type 1), 8 KB pages each. Table sizes, for one database through three-part names,
follow ``sp_spaceused``: rows of the heap or clustered index, data pages, used pages
beyond data as index, and reserved pages as the total.

Attributes: ``login_type`` (``SQL_LOGIN``, ``WINDOWS_LOGIN``, ``WINDOWS_GROUP``,
``EXTERNAL_LOGIN``, ``EXTERNAL_GROUP``, ``SERVER_ROLE``), ``default_database``,
``disabled``, ``locked_out``, ``password_expired``, ``must_change_password``,
``policy_checked`` and ``expiration_checked`` (``None`` where the login has no SQL
password), ``can_login`` (enabled and CONNECT SQL not denied) and ``locked`` (disabled,
locked out, expired, must change its password, or CONNECT SQL denied).
"""

from collections import defaultdict

import mssql_python

from inventory.engines.base import (
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

# Encrypt / TrustServerCertificate per TLS mode. SQL Server always offers TLS (with a
# self-signed certificate unless one is installed), so "preferred" encrypts without
# verifying and "verify" also checks the certificate and the host name. The login message
# carries the password, merely obfuscated: with Encrypt=no the driver sends it in clear to
# a server that says it cannot encrypt, so even "disabled" encrypts (a real SQL Server
# always can); only "verify" keeps it from a listener holding some other certificate.
TLS_OPTIONS = {
    "disabled": {"Encrypt": "yes", "TrustServerCertificate": "yes"},
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


class _SQLServerConnection(Engine):
    name = "sqlserver"
    default_database = "master"

    def connection_string(self, database: str | None = None) -> str:
        target = self.target
        parts = {
            # The checked address, unless TLS verifies the certificate against the name.
            "Server": f"tcp:{target.dial_host},{target.port}",
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
        with self.remote():
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


# --- Accounts and privileges ------------------------------------------------------------

ACCOUNT_KINDS = {"S": "login", "U": "login", "E": "login", "G": "group", "X": "group", "R": "role"}
DATABASE_USER_TYPES = ("S", "U", "G", "E", "X")
PERMISSION_OPTIONS = {"G": "", "W": "GRANT", "D": "DENY"}
DATABASE_BATCH = 20
ONLINE = 0
MULTI_USER = 0
SERVER_CLASS = 100
SERVER_PRINCIPAL_CLASS = 101
ENDPOINT_CLASS = 105
DATABASE_CLASS = 0
OBJECT_CLASS = 1
SCHEMA_CLASS = 3
DATABASE_PRINCIPAL_CLASS = 4
DATABASE_PRINCIPAL_KINDS = {"R": "ROLE", "A": "APPLICATION ROLE"}
CONNECT_SQL = "CONNECT SQL"
CONNECT = "CONNECT"
PUBLIC_ROLE = "public"  # the server role, and the role of every database, everybody is in
GUEST = "guest"
# sys.objects.type of routines (char(2), padded with a space): procedures (SQL, CLR,
# extended) and functions (scalar, inline and table-valued, SQL or CLR; CLR aggregates).
PROCEDURE_TYPES = frozenset({"P", "PC", "X"})
FUNCTION_TYPES = frozenset({"FN", "IF", "TF", "FS", "FT", "AF"})

# What the fixed roles can do is built into the server: no catalog row shows it. These
# are the permissions the documentation gives them ("Permissions of Fixed Server Roles",
# "Permissions of Fixed Database Roles"), as (permission, option). securityadmin can grant
# server- and database-level permissions (to be treated as sysadmin), hence the GRANT.
FIXED_SERVER_ROLE_PERMISSIONS = {
    "sysadmin": (("CONTROL SERVER", "GRANT"),),
    "securityadmin": (("ALTER ANY LOGIN", "GRANT"),),
    "serveradmin": (
        ("ALTER ANY ENDPOINT", ""),
        ("ALTER RESOURCES", ""),
        ("ALTER SERVER STATE", ""),
        ("ALTER SETTINGS", ""),
        ("SHUTDOWN", ""),
        ("VIEW SERVER STATE", ""),
    ),
    "setupadmin": (("ALTER ANY LINKED SERVER", ""),),
    "processadmin": (("ALTER ANY CONNECTION", ""), ("ALTER SERVER STATE", "")),
    "diskadmin": (("ALTER RESOURCES", ""),),
    "dbcreator": (("CREATE ANY DATABASE", ""),),
    "bulkadmin": (("ADMINISTER BULK OPERATIONS", ""),),
}
DDL_ADMIN_PERMISSIONS = (
    "ALTER ANY ASSEMBLY", "ALTER ANY ASYMMETRIC KEY", "ALTER ANY CERTIFICATE",
    "ALTER ANY CONTRACT", "ALTER ANY DATABASE DDL TRIGGER",
    "ALTER ANY DATABASE EVENT NOTIFICATION", "ALTER ANY DATASPACE", "ALTER ANY FULLTEXT CATALOG",
    "ALTER ANY MESSAGE TYPE", "ALTER ANY REMOTE SERVICE BINDING", "ALTER ANY ROUTE",
    "ALTER ANY SCHEMA", "ALTER ANY SERVICE", "ALTER ANY SYMMETRIC KEY", "CHECKPOINT",
    "CREATE AGGREGATE", "CREATE DEFAULT", "CREATE FUNCTION", "CREATE PROCEDURE", "CREATE QUEUE",
    "CREATE RULE", "CREATE SYNONYM", "CREATE TABLE", "CREATE TYPE", "CREATE VIEW",
    "CREATE XML SCHEMA COLLECTION", "REFERENCES",
)  # fmt: skip
FIXED_DATABASE_ROLE_PERMISSIONS = {
    "db_owner": (("CONTROL", "GRANT"),),
    "db_accessadmin": (("ALTER ANY USER", ""), ("CREATE SCHEMA", ""), ("CONNECT", "GRANT")),
    "db_securityadmin": (
        ("ALTER ANY APPLICATION ROLE", ""),
        ("ALTER ANY ROLE", ""),
        ("CREATE SCHEMA", ""),
        ("VIEW DEFINITION", ""),
    ),
    "db_ddladmin": tuple((permission, "") for permission in DDL_ADMIN_PERMISSIONS),
    "db_backupoperator": (("BACKUP DATABASE", ""), ("BACKUP LOG", ""), ("CHECKPOINT", "")),
    "db_datareader": (("SELECT", ""),),
    "db_datawriter": (("DELETE", ""), ("INSERT", ""), ("UPDATE", "")),
    "db_denydatareader": (("SELECT", "DENY"),),
    "db_denydatawriter": (("DELETE", "DENY"), ("INSERT", "DENY"), ("UPDATE", "DENY")),
}

# HAS_PERMS_BY_NAME returns NULL for a permission the server does not know (VIEW ANY
# SECURITY DEFINITION before SQL Server 2022) and 1 when it is held, also through
# CONTROL SERVER or sysadmin.
VISIBILITY_SQL = """
SELECT HAS_PERMS_BY_NAME(NULL, NULL, 'VIEW ANY DEFINITION'),
       HAS_PERMS_BY_NAME(NULL, NULL, 'VIEW ANY SECURITY DEFINITION')
"""
# LOGINPROPERTY returns sql_variant, which ODBC drivers do not all decode: cast to int.
PRINCIPALS_SQL = """
SELECT p.principal_id, p.name, p.sid, p.type, p.type_desc, p.is_disabled, p.is_fixed_role,
       p.default_database_name, l.is_policy_checked, l.is_expiration_checked,
       CAST(LOGINPROPERTY(p.name, 'IsLocked') AS int) AS is_locked,
       CAST(LOGINPROPERTY(p.name, 'IsExpired') AS int) AS is_expired,
       CAST(LOGINPROPERTY(p.name, 'IsMustChange') AS int) AS is_must_change
FROM sys.server_principals AS p
LEFT JOIN sys.sql_logins AS l ON l.principal_id = p.principal_id
WHERE p.type IN ('S', 'U', 'G', 'E', 'X', 'R')
"""
SERVER_ROLE_MEMBERS_SQL = """
SELECT rm.member_principal_id, rm.role_principal_id, r.name AS role_name
FROM sys.server_role_members AS rm
JOIN sys.server_principals AS r ON r.principal_id = rm.role_principal_id
"""
SERVER_PERMISSIONS_SQL = """
SELECT sp.grantee_principal_id, sp.class, sp.class_desc, sp.major_id, sp.permission_name,
       sp.state, tp.name AS principal_name, tp.type AS principal_type, e.name AS endpoint_name
FROM sys.server_permissions AS sp
LEFT JOIN sys.server_principals AS tp ON sp.class = 101 AND tp.principal_id = sp.major_id
LEFT JOIN sys.endpoints AS e ON sp.class = 105 AND e.endpoint_id = sp.major_id
"""
DATABASES_SQL = """
SELECT d.name, d.owner_sid, d.state, d.user_access, HAS_DBACCESS(d.name) AS has_access
FROM sys.databases AS d
"""
# One block per database, joined with UNION ALL. Names from different databases may have
# different collations, which UNION ALL cannot mix: every text column is brought to the
# connection database's collation. Every user and role of the database, once per role it
# is a direct member of (role columns NULL when it is in none).
DATABASE_PRINCIPALS_BLOCK = """
SELECT {literal} AS database_name, m.principal_id,
       m.name COLLATE DATABASE_DEFAULT AS principal_name,
       m.type COLLATE DATABASE_DEFAULT AS principal_type, m.sid,
       rm.role_principal_id, r.name COLLATE DATABASE_DEFAULT AS role_name
FROM {database}.sys.database_principals AS m
LEFT JOIN {database}.sys.database_role_members AS rm ON rm.member_principal_id = m.principal_id
LEFT JOIN {database}.sys.database_principals AS r ON r.principal_id = rm.role_principal_id
WHERE m.type IN ('S', 'U', 'G', 'E', 'X', 'R')
"""
DATABASE_PERMISSIONS_BLOCK = """
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


def quote_name(name: str) -> str:
    """An identifier as QUOTENAME writes it: in brackets, closing brackets doubled."""
    return "[" + name.replace("]", "]]") + "]"


def quote_literal(value: str) -> str:
    """A Unicode string literal, single quotes doubled."""
    return "N'" + value.replace("'", "''") + "'"


def batched_statement(block: str, databases: list[str]) -> str:
    """``block`` repeated for each database and joined with UNION ALL."""
    return "\nUNION ALL\n".join(
        block.format(literal=quote_literal(name), database=quote_name(name)) for name in databases
    )


def _closure(direct: dict, start) -> set:
    """Every role reachable from ``start`` through the ``direct`` memberships."""
    seen: set = set()
    pending = list(direct.get(start, ()))
    while pending:
        role = pending.pop()
        if role not in seen:
            seen.add(role)
            pending.extend(direct.get(role, ()))
    return seen


def _flag(value) -> bool:
    return bool(value) if value is not None else False


def _optional_flag(value) -> bool | None:
    return None if value is None else bool(value)


def database_role_key(role: str, database: str) -> AccountKey:
    """The graph key of a database role (``public`` included): the database is the host."""
    return ("role", role, database)


def guest_key(database: str) -> AccountKey:
    return ("user", GUEST, database)


class _Privileges:
    """Every principal's grants, direct memberships and literal roles while the catalog is
    read, keyed by account key (graph-only principals included)."""

    def __init__(self) -> None:
        self.roles: dict[AccountKey, set[str]] = defaultdict(set)
        self.grants: dict[AccountKey, set[tuple[str, str, str, str]]] = defaultdict(set)
        self.memberships: dict[AccountKey, set[AccountKey]] = defaultdict(set)
        self.display: dict[AccountKey, str] = {}

    def grant(self, key: AccountKey, scope: str, obj: str, privilege: str, state: str) -> None:
        self.grants[key].add((scope, obj, privilege, PERMISSION_OPTIONS.get(state, "")))

    def reachable(self, starts) -> set[AccountKey]:
        """``starts`` and every principal reachable from them through memberships."""
        seen = set(starts)
        for key in starts:
            seen |= _closure(self.memberships, key)
        return seen

    def edges(self, key: AccountKey) -> list[dict]:
        # SQL Server roles are always active: nothing to switch on, nothing to switch to.
        return [
            {"role": role, "inherit": True, "set": False, "admin": False}
            for role in sorted(self.memberships[key])
        ]


def _server_key(row: tuple) -> AccountKey:
    """The account key of a row of sys.server_principals; the server role ``public`` is the
    PUBLIC pseudo-account."""
    _id, name, _sid, kind = row[:4]
    if kind == "R" and name == PUBLIC_ROLE:
        return PUBLIC_ACCOUNT.key
    return (ACCOUNT_KINDS[kind], name, "")


class SQLServerAccountsMixin:
    """Logins, server roles, PUBLIC and every level of permission, with the role graph
    (server roles, fixed ones included, and database roles), read in bulk from the catalog
    (a fixed number of statements plus two per batch of databases, never one per login)."""

    def _principal_rows(self) -> list[tuple]:
        rows = getattr(self, "_principals", None)
        if rows is None:
            self._check_visibility()
            rows = self._principals = self.query(PRINCIPALS_SQL)
        return rows

    def _check_visibility(self) -> None:
        any_definition, any_security_definition = self.query(VISIBILITY_SQL)[0]
        if any_definition != 1 and any_security_definition != 1:
            raise InsufficientPrivileges(
                f"{InsufficientPrivileges.label}: the monitoring login sees only part of "
                "sys.server_principals (GRANT VIEW ANY DEFINITION TO "
                f"{quote_name(self.target.username)})"
            )

    def list_accounts(self) -> list[AccountRecord]:
        records = []
        for row in self._principal_rows():
            _id, name, _sid, kind, _desc, _disabled, fixed = row[:7]
            if kind == "R" and name == PUBLIC_ROLE:
                records.append(PUBLIC_ACCOUNT)
                continue
            if kind == "R" and fixed:
                continue
            if is_system_account("sqlserver", name):
                continue
            records.append(AccountRecord(name=name, kind=ACCOUNT_KINDS[kind]))
        return records

    def collect_privileges(self, accounts: list[AccountRecord], *, deep: bool = False) -> dict:
        """Privilege sets of ``accounts`` keyed by account key, plus the graph-only
        principals (fixed server roles, database roles, guest) their memberships reach."""
        wanted = {a.key for a in accounts}
        if not wanted:
            return {}
        rows = self._principal_rows()
        principals = {row[0]: row for row in rows}
        keys = {pid: _server_key(row) for pid, row in principals.items()}
        server_roles = {row[1] for row in rows if row[3] == "R"}
        logins_by_sid = {
            bytes(row[2]): keys[pid]
            for pid, row in principals.items()
            if keys[pid] in wanted and row[2] is not None and row[3] != "R"
        }
        privileges = _Privileges()

        for pid, row in principals.items():
            key = keys[pid]
            privileges.display[key] = row[1]
            if row[3] == "R" and row[6]:  # a fixed server role
                for permission, option in FIXED_SERVER_ROLE_PERMISSIONS.get(row[1], ()):
                    privileges.grants[key].add(("server", "", permission, option))

        for member_id, role_id, _role_name in self.query(SERVER_ROLE_MEMBERS_SQL):
            if member_id in keys and role_id in keys:
                privileges.memberships[keys[member_id]].add(keys[role_id])
        for key in wanted:  # the literal view: server roles held directly or nested
            if key[0] != PUBLIC_ACCOUNT.kind:
                privileges.roles[key] = {
                    name for _kind, name, _host in _closure(privileges.memberships, key)
                }

        connect_denied: set[AccountKey] = set()
        for row in self.query(SERVER_PERMISSIONS_SQL):
            grantee, klass, class_desc, major_id, permission, state = row[:6]
            key = keys.get(grantee)
            if key is None:
                continue
            obj = _server_object(klass, class_desc, major_id, *row[6:])
            privileges.grant(key, "server", obj, permission, state)
            if klass == SERVER_CLASS and permission == CONNECT_SQL and state == "D":
                connect_denied.add(key)

        if logins_by_sid or PUBLIC_ACCOUNT.key in wanted:
            self._database_privileges(logins_by_sid, server_roles, privileges)

        result = {}
        for pid, row in principals.items():
            key = keys[pid]
            if key in wanted:
                result[key] = {
                    "engine": "sqlserver",
                    "attributes": _attributes(row, key in connect_denied),
                    "roles": sorted(privileges.roles[key]),
                    "grants": sorted(privileges.grants[key]),
                    "memberships": privileges.edges(key),
                }
        for key in privileges.reachable(result) - set(result):
            result[key] = {
                "engine": "sqlserver",
                "listed": False,
                "display": privileges.display.get(key, key[1]),
                "attributes": {"can_login": False, "locked": False},
                "roles": [],
                "grants": sorted(privileges.grants[key]),
                "memberships": privileges.edges(key),
            }
        return result

    def _readable_databases(self, logins_by_sid, privileges: _Privileges) -> list[str]:
        readable, refused = [], []
        for name, owner_sid, state, user_access, has_access in self.query(DATABASES_SQL):
            if state != ONLINE or user_access != MULTI_USER:
                continue
            if has_access != 1:
                refused.append(name)
                continue
            readable.append(name)
            owner = logins_by_sid.get(bytes(owner_sid)) if owner_sid is not None else None
            if owner is not None:
                privileges.grant(owner, "database", object_name(name), "OWNER", "G")
        if refused:
            shown = ", ".join(repr(name) for name in sorted(refused)[:5])
            raise InsufficientPrivileges(
                f"{InsufficientPrivileges.label}: the monitoring login cannot enter "
                f"{len(refused)} online database(s) ({shown}); GRANT CONNECT ANY DATABASE TO "
                f"{quote_name(self.target.username)}"
            )
        return sorted(readable)

    def _database_privileges(self, logins_by_sid, server_roles, privileges) -> None:
        databases = self._readable_databases(logins_by_sid, privileges)
        for start in range(0, len(databases), DATABASE_BATCH):
            batch = databases[start : start + DATABASE_BATCH]
            keys = self._database_principals(batch, logins_by_sid, server_roles, privileges)
            self._database_permissions(batch, keys, privileges)

    def _database_principals(self, batch, logins_by_sid, server_roles, privileges) -> dict:
        """Memberships of the batch's databases; returns the key of every database
        principal that counts, by (database, principal_id): roles (``public`` included),
        guest, and the users mapped **by SID** to the logins asked for."""
        keys: dict[tuple[str, int], AccountKey] = {}
        names: dict[tuple[str, int], str] = {}
        direct: dict[str, dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
        rows = self.query(batched_statement(DATABASE_PRINCIPALS_BLOCK, batch))
        for database, pid, name, kind, sid, role_id, _role_name in rows:
            names[database, pid] = name
            if role_id is not None:
                direct[database][pid].add(role_id)
            if (database, pid) in keys:
                continue
            if kind == "R":
                key = keys[database, pid] = database_role_key(name, database)
                privileges.display[key] = f"{name} in {database}"
                for permission, option in FIXED_DATABASE_ROLE_PERMISSIONS.get(name, ()):
                    privileges.grants[key].add(
                        ("database", object_name(database), permission, option)
                    )
            elif name == GUEST:
                key = keys[database, pid] = guest_key(database)
                privileges.display[key] = f"{GUEST} in {database}"
                privileges.memberships[key].add(database_role_key(PUBLIC_ROLE, database))
            elif kind in DATABASE_USER_TYPES and sid is not None:
                login = logins_by_sid.get(bytes(sid))
                if login is not None:
                    keys[database, pid] = login
                    privileges.memberships[login].add(database_role_key(PUBLIC_ROLE, database))
        for database, members in direct.items():
            for member_id, role_ids in members.items():
                member = keys.get((database, member_id))
                if member is None:
                    continue
                for role_id in role_ids:
                    privileges.memberships[member].add(keys[database, role_id])
                if member[0] == "role" or member[2]:  # a role or guest: no literal view
                    continue
                for role_id in _closure(members, member_id):
                    role = names[database, role_id]
                    privileges.grant(member, "database", object_name(database), f"ROLE {role}", "G")
                    if role not in server_roles:
                        privileges.roles[member].add(role)
        return keys

    def _database_permissions(self, batch, keys, privileges) -> None:
        rows = self.query(batched_statement(DATABASE_PERMISSIONS_BLOCK, batch))
        for row in rows:
            database, grantee = row[0], row[1]
            key = keys.get((database, grantee))
            if key is None:
                continue
            scope, obj, permission, state = _database_grant(database, *row[2:])
            privileges.grant(key, scope, obj, permission, state)
            guest = key == guest_key(database) and scope == "database"
            if guest and permission == CONNECT and state in ("G", "W"):
                # guest enabled: a login without a user of its own enters as guest
                privileges.memberships[PUBLIC_ACCOUNT.key].add(key)


def _server_object(klass, class_desc, major_id, principal_name, principal_type, endpoint) -> str:
    if klass == SERVER_CLASS:
        return ""
    if klass == SERVER_PRINCIPAL_CLASS and principal_name is not None:
        return f"{'SERVER ROLE' if principal_type == 'R' else 'LOGIN'}::{principal_name}"
    if klass == ENDPOINT_CLASS and endpoint is not None:
        return f"ENDPOINT::{endpoint}"
    return f"{class_desc}::{major_id}"


def _object_scope(object_type: str | None) -> str:
    kind = (object_type or "").strip()
    if kind in PROCEDURE_TYPES:
        return "procedure"
    if kind in FUNCTION_TYPES:
        return "function"
    return "table"


def _database_grant(
    database,
    klass,
    class_desc,
    major_id,
    minor_id,
    permission,
    state,
    schema,
    object_schema,
    obj,
    object_type,
    column,
    principal_name,
    principal_type,
) -> tuple[str, str, str, str]:
    """(scope, object, privilege, state) of one row of ``sys.database_permissions``."""
    if klass == DATABASE_CLASS:
        return "database", object_name(database), permission, state
    if klass == SCHEMA_CLASS and schema is not None:
        return "schema", object_name(database, schema), permission, state
    if klass == OBJECT_CLASS and obj is not None:
        if minor_id:
            column = column if column is not None else str(minor_id)
            return "column", object_name(database, object_schema, obj, column), permission, state
        name = object_name(database, object_schema, obj)
        return _object_scope(object_type), name, permission, state
    if klass == DATABASE_PRINCIPAL_CLASS and principal_name is not None:
        kind = DATABASE_PRINCIPAL_KINDS.get(principal_type, "USER")
        privilege = f"{permission} ON {kind}::{principal_name}"
        return "database", object_name(database), privilege, state
    privilege = f"{permission} ON {class_desc}::{major_id}"
    return "database", object_name(database), privilege, state


def _attributes(row: tuple, connect_denied: bool) -> dict:
    (_id, _name, _sid, kind, type_desc, disabled, _fixed, default_database) = row[:8]
    if kind == "R":
        return {"login_type": type_desc, "can_login": False, "locked": False}
    policy_checked, expiration_checked, locked_out, expired, must_change = row[8:]
    disabled, locked_out = _flag(disabled), _flag(locked_out)
    expired, must_change = _flag(expired), _flag(must_change)
    attributes = {
        "login_type": type_desc,
        "default_database": default_database,
        "disabled": disabled,
        "locked_out": locked_out,
        "password_expired": expired,
        "must_change_password": must_change,
        "policy_checked": _optional_flag(policy_checked),
        "expiration_checked": _optional_flag(expiration_checked),
        "can_login": not (disabled or connect_denied),
        "locked": disabled or locked_out or expired or must_change or connect_denied,
    }
    if ACCOUNT_KINDS[kind] == "group":
        # Who is in a Windows (or Entra) group comes from the login token, not the catalog.
        attributes["windows_group"] = kind == "G"
        attributes["members_visible"] = False
    return attributes


# --- Databases and sizes ----------------------------------------------------------------

PAGE_BYTES = 8192
DATA_FILE = 0
LOG_FILE = 1
CAPACITY_VISIBILITY_SQL = """
SELECT HAS_PERMS_BY_NAME(NULL, NULL, 'VIEW ANY DATABASE'),
       HAS_PERMS_BY_NAME(NULL, NULL, 'VIEW ANY DEFINITION')
"""
DATABASE_LIST_SQL = """
SELECT d.name FROM sys.databases AS d WHERE d.source_database_id IS NULL
"""
DATABASE_FILES_SQL = """
SELECT d.name,
       SUM(CASE WHEN f.type = 0 THEN CAST(f.size AS bigint) ELSE 0 END) AS data_pages,
       SUM(CASE WHEN f.type = 1 THEN CAST(f.size AS bigint) ELSE 0 END) AS log_pages
FROM sys.databases AS d
JOIN sys.master_files AS f ON f.database_id = d.database_id
WHERE d.source_database_id IS NULL
GROUP BY d.name
"""
DATABASE_STATE_SQL = """
SELECT d.state_desc, HAS_DBACCESS(d.name) AS has_access
FROM sys.databases AS d
WHERE d.name = ?
"""
# sp_spaceused on the catalog views: IN_ROW_DATA and ROW_OVERFLOW_DATA units belong to a
# hobt, LOB_DATA units to a partition; rows are counted once, on the in-row unit of the
# heap or clustered index.
TABLE_SIZES_SQL = """
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


class SQLServerCapacityMixin:
    """Databases and their data and log files in one statement each, whatever the number
    of databases; the tables of one database in one more, after checking the database."""

    def _check_capacity_visibility(self) -> None:
        if getattr(self, "_capacity_visible", False):
            return
        any_database, any_definition = self.query(CAPACITY_VISIBILITY_SQL)[0]
        missing = [
            permission
            for permission, held in (
                ("VIEW ANY DATABASE", any_database),
                ("VIEW ANY DEFINITION", any_definition),
            )
            if held != 1
        ]
        if missing:
            raise InsufficientPrivileges(
                f"{InsufficientPrivileges.label}: the monitoring login sees only part of the "
                f"databases and their files (GRANT {', '.join(missing)} TO "
                f"{quote_name(self.target.username)})"
            )
        self._capacity_visible = True

    def list_databases(self) -> list[DatabaseRecord]:
        self._check_capacity_visibility()
        return [
            DatabaseRecord(name=name)
            for (name,) in sorted(self.query(DATABASE_LIST_SQL))
            if not is_system_database("sqlserver", name)
        ]

    def database_sizes(self, names) -> list[DatabaseSize]:
        """Data (ROWS) and log files of each database in ``names``; a database that no
        longer exists is left out."""
        wanted = set(names)
        if not wanted:
            return []
        self._check_capacity_visibility()
        return sorted(
            (
                DatabaseSize(
                    name=name,
                    data_bytes=int(data_pages) * PAGE_BYTES,
                    log_bytes=int(log_pages) * PAGE_BYTES,
                )
                for name, data_pages, log_pages in self.query(DATABASE_FILES_SQL)
                if name in wanted
            ),
            key=lambda size: size.name,
        )

    def table_sizes(self, database: str) -> list[TableSize]:
        """User tables of ``database``, read through three-part names."""
        self._check_capacity_visibility()
        state = self.query(DATABASE_STATE_SQL, (database,))
        if not state:
            raise EngineFailure(f"{EngineFailure.label}: no database named {database!r}")
        (state_desc, has_access), *_ = state
        if state_desc != "ONLINE":
            raise EngineFailure(f"{EngineFailure.label}: database {database!r} is {state_desc}")
        if has_access != 1:
            raise InsufficientPrivileges(
                f"{InsufficientPrivileges.label}: the monitoring login cannot enter database "
                f"{database!r} (GRANT CONNECT ANY DATABASE TO "
                f"{quote_name(self.target.username)})"
            )
        rows = self.query(TABLE_SIZES_SQL.format(database=quote_name(database)))
        return sorted(
            (
                TableSize(
                    schema=schema,
                    table=table,
                    rows=int(row_count),
                    data_bytes=int(data_pages) * PAGE_BYTES,
                    index_bytes=max(int(used_pages) - int(data_pages), 0) * PAGE_BYTES,
                    total_bytes=int(total_pages) * PAGE_BYTES,
                )
                for schema, table, row_count, data_pages, used_pages, total_pages in rows
            ),
            key=lambda size: (size.schema, size.table),
        )


class SQLServerEngine(SQLServerAccountsMixin, SQLServerCapacityMixin, _SQLServerConnection):
    """SQL Server: connection, version, logins and privileges, databases and sizes."""

"""Facts derived from a canonical privilege set: what classification rules look at.

Capabilities are ``SUPERUSER``, ``GRANT_ADMIN`` and ``LOCKED`` by the engine's rules below,
plus the name of every attribute whose value is ``True``. Pure: no ORM, no I/O.

Rules per engine:

* MySQL/MariaDB — SUPERUSER: the ``superuser`` attribute (global SUPER, or ALL PRIVILEGES
  on ``*.*``); GRANT_ADMIN: any global grant held WITH GRANT OPTION; LOCKED: the ``locked``
  attribute (roles cannot log in and are never reported locked).
* PostgreSQL — SUPERUSER: ``superuser`` (rolsuper); GRANT_ADMIN: ``create_role`` or
  superuser; LOCKED: ``locked`` (cannot log in, or password validity expired).
* SQL Server — SUPERUSER: the ``sysadmin`` server role; GRANT_ADMIN: ``securityadmin``, or
  CONTROL SERVER granted (not denied), or sysadmin; LOCKED: ``locked`` (disabled, locked
  out, expired, must change password, or CONNECT SQL denied).
* Oracle — SUPERUSER: the ``DBA`` role, or SYSDBA; GRANT_ADMIN: DBA, GRANT ANY PRIVILEGE,
  GRANT ANY ROLE or GRANT ANY OBJECT PRIVILEGE; LOCKED: ``locked`` (account status other
  than OPEN).
"""

from collections.abc import Mapping
from typing import Any

from accounts.canonical import canonicalize
from inventory.engines.base import like, split_object_name

SUPERUSER = "SUPERUSER"
GRANT_ADMIN = "GRANT_ADMIN"
LOCKED = "LOCKED"

_ORACLE_GRANT_ADMIN = {"GRANT ANY PRIVILEGE", "GRANT ANY ROLE", "GRANT ANY OBJECT PRIVILEGE"}


def _server_grants(privset: Mapping[str, Any]) -> dict[str, str]:
    """Privilege -> option of server-level grants (SQL Server, Oracle system privileges)."""
    return {g["privilege"]: g["option"] for g in privset["grants"] if g["scope"] == "server"}


def _is_superuser(engine: str, attributes: Mapping, roles: set[str], privset) -> bool:
    if attributes.get("superuser") is True:
        return True
    if engine == "sqlserver":
        return "sysadmin" in roles
    if engine == "oracle":
        return "DBA" in roles or "SYSDBA" in _server_grants(privset)
    return False


def _is_grant_admin(engine: str, attributes: Mapping, roles: set[str], privset, superuser) -> bool:
    grants = privset["grants"]
    if engine == "mysql":
        return any(g["scope"] == "global" and g["option"] == "GRANT" for g in grants)
    if engine == "postgresql":
        return superuser or attributes.get("create_role") is True
    if engine == "sqlserver":
        server = _server_grants(privset)
        return (
            superuser or "securityadmin" in roles or server.get("CONTROL SERVER") in {"", "GRANT"}
        )
    if engine == "oracle":
        return "DBA" in roles or bool(_ORACLE_GRANT_ADMIN & _server_grants(privset).keys())
    return False


def derive_facts(privset: Mapping[str, Any]) -> dict[str, Any]:
    """``engine``, sorted ``capabilities``, sorted ``roles`` and the canonical ``grants``."""
    return facts_of_canonical(canonicalize(privset))


def facts_of_canonical(privset: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`derive_facts` of a set that is already canonical (no second sort)."""
    engine, attributes = privset["engine"], privset["attributes"]
    roles = set(privset["roles"])
    capabilities = {name for name, value in attributes.items() if value is True}
    superuser = _is_superuser(engine, attributes, roles, privset)
    if superuser:
        capabilities.add(SUPERUSER)
    if _is_grant_admin(engine, attributes, roles, privset, superuser):
        capabilities.add(GRANT_ADMIN)
    if attributes.get("locked") is True:
        capabilities.add(LOCKED)
    return {
        "engine": engine,
        "capabilities": sorted(capabilities),
        "roles": sorted(roles),
        "grants": privset["grants"],
    }


# --- Effective capabilities ----------------------------------------------------------------
#
# Derived from what an account can really do: its own grants, the grants of every role it
# reaches (by inheritance or SET ROLE) and PUBLIC's. ``reached`` holds the keys (kind, name,
# host) and attributes of the roles reached — a role of one database (SQL Server database
# roles, PostgreSQL's pg_database_owner) has the database as its host, so it is never taken
# for a server-level role of the same name; ``grants`` the effective (scope, object,
# privilege, option) tuples. Every rule is documented in README ("Direct and effective privileges").

ESCALATION = "ESCALATION"
ANONYMOUS = "ANONYMOUS"
NO_PASSWORD = "NO_PASSWORD"  # noqa: S105  a capability name, not a password
EFFECTIVE_CAPABILITIES = (SUPERUSER, GRANT_ADMIN, ESCALATION, ANONYMOUS, NO_PASSWORD, LOCKED)

# MySQL/MariaDB: the grant tables. Write access to any of them rewrites accounts.
_MYSQL_GRANT_TABLES = {
    "user", "global_priv", "db", "tables_priv", "columns_priv", "procs_priv", "proxies_priv",
    "roles_mapping", "role_edges", "default_roles", "global_grants", "password_history",
}  # fmt: skip
_MYSQL_WRITE = {
    "ALL PRIVILEGES", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "INDEX",
    "TRIGGER", "CREATE VIEW", "DELETE HISTORY",
}  # fmt: skip
_MYSQL_SUPER = {"SUPER", "ALL PRIVILEGES"}
_MYSQL_ESCALATING = {
    "CREATE USER", "SUPER", "SET USER", "SET_USER_ID", "SET_ANY_DEFINER", "ROLE_ADMIN",
    "FILE", "BINLOG REPLAY", "REPLICATION SLAVE ADMIN", "CLONE_ADMIN", "ALL PRIVILEGES",
    "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER",
}  # fmt: skip
# Plugins that authenticate with a password: an empty authentication string lets anyone in.
_MYSQL_PASSWORD_PLUGINS = {
    "", "mysql_native_password", "mysql_old_password", "caching_sha2_password",
    "sha256_password", "ed25519", "parsec",
}  # fmt: skip
_POSTGRESQL_ESCALATING_ROLES = {"pg_execute_server_program", "pg_write_server_files"}
_SQLSERVER_ESCALATING = {
    "CONTROL SERVER", "IMPERSONATE ANY LOGIN", "ALTER ANY LOGIN", "ALTER ANY SERVER ROLE",
    "UNSAFE ASSEMBLY", "ALTER ANY CREDENTIAL",
}  # fmt: skip
_ORACLE_ESCALATING = {
    "GRANT ANY ROLE", "GRANT ANY PRIVILEGE", "GRANT ANY OBJECT PRIVILEGE", "ALTER USER",
    "BECOME USER", "ALTER SYSTEM", "CREATE ANY PROCEDURE", "CREATE ANY TRIGGER",
    "EXECUTE ANY PROCEDURE", "CREATE EXTERNAL JOB", "CREATE ANY LIBRARY",
    "CREATE ANY DIRECTORY", "EXEMPT ACCESS POLICY", "CREATE ANY JOB", "ALTER DATABASE",
}  # fmt: skip
_ORACLE_ESCALATING_ROLES = {"DBA", "IMP_FULL_DATABASE", "DATAPUMP_IMP_FULL_DATABASE"}


def _first_part(name: str) -> str:
    return split_object_name(name)[0] if name else ""


def _mysql_covers_grant_tables(scope: str, obj: str) -> bool:
    """Whether a database- or table-scope object is (or, as a LIKE pattern, matches) one of
    the grant tables of the ``mysql`` schema."""
    if scope == "database":
        return like(_first_part(obj), "mysql")
    if scope == "table":
        parts = split_object_name(obj)
        return len(parts) == 2 and parts[0] == "mysql" and parts[1] in _MYSQL_GRANT_TABLES
    return False


def _mysql(attributes, grants, reached) -> set[str]:
    capabilities = set()
    for scope, obj, privilege, option in grants:
        if scope == "global" and not obj:
            if privilege in _MYSQL_SUPER:
                capabilities.add(SUPERUSER)
            if option == "GRANT":
                capabilities.add(GRANT_ADMIN)
            if privilege in _MYSQL_ESCALATING:
                capabilities.add(ESCALATION)
        elif scope == "global" and privilege == "PROXY":
            capabilities.add(ESCALATION)  # acts as the proxied account
        elif privilege in _MYSQL_WRITE and _mysql_covers_grant_tables(scope, obj):
            capabilities.add(ESCALATION)
    if attributes.get("anonymous") is True:
        capabilities.add(ANONYMOUS)
    if (
        attributes.get("password_set") is False
        and attributes.get("can_login") is not False
        and (attributes.get("plugin") or "") in _MYSQL_PASSWORD_PLUGINS
    ):
        capabilities.add(NO_PASSWORD)
    return capabilities


def _server_level(reached) -> set[str]:
    """Names of the instance-wide roles among those reached."""
    return {key[1] for key, _attributes in reached if not key[2]}


def _postgresql(attributes, grants, reached) -> set[str]:
    capabilities = set()
    everyone = [attributes, *(role_attributes for _key, role_attributes in reached)]
    if any(a.get("superuser") is True for a in everyone):
        capabilities |= {SUPERUSER, GRANT_ADMIN}
    if any(a.get("create_role") is True for a in everyone):
        # Before 16, CREATEROLE can grant itself any non-superuser role: as good as superuser.
        capabilities |= {GRANT_ADMIN, ESCALATION}
    if _POSTGRESQL_ESCALATING_ROLES & _server_level(reached):
        capabilities.add(ESCALATION)
    return capabilities


def _sqlserver(attributes, grants, reached) -> set[str]:
    capabilities = set()
    names = _server_level(reached)
    granted = {p for scope, obj, p, option in grants if scope == "server" and option != "DENY"}
    denied = {p for scope, obj, p, option in grants if scope == "server" and option == "DENY"}
    impersonates = any(
        scope == "server" and p == "IMPERSONATE" and option != "DENY"
        for scope, obj, p, option in grants
    )
    sysadmin = "sysadmin" in names
    effective = granted if sysadmin else granted - denied  # sysadmin skips permission checks
    if sysadmin:
        capabilities |= {SUPERUSER, GRANT_ADMIN, ESCALATION}
    if "securityadmin" in names or "CONTROL SERVER" in effective:
        capabilities |= {GRANT_ADMIN, ESCALATION}
    if _SQLSERVER_ESCALATING & effective or impersonates:
        capabilities.add(ESCALATION)
    return capabilities


def _oracle(attributes, grants, reached) -> set[str]:
    capabilities = set()
    names = _server_level(reached)
    server = {p for scope, _obj, p, _option in grants if scope == "server"}
    if "DBA" in names or "SYSDBA" in server:
        capabilities |= {SUPERUSER, GRANT_ADMIN}
    if _ORACLE_GRANT_ADMIN & server:
        capabilities.add(GRANT_ADMIN)
    if _ORACLE_ESCALATING & server or _ORACLE_ESCALATING_ROLES & names:
        capabilities.add(ESCALATION)
    if attributes.get("password_set") is False and attributes.get("can_login") is True:
        capabilities.add(NO_PASSWORD)
    return capabilities


_RULES = {"mysql": _mysql, "postgresql": _postgresql, "sqlserver": _sqlserver, "oracle": _oracle}


def stored_capabilities(facts: Mapping[str, Any] | None) -> list[str]:
    """The capabilities of stored facts: the effective ones, or the literal ones of a
    snapshot written before effective privileges were recorded."""
    if not facts:
        return []
    effective = facts.get("effective")
    return list(effective["capabilities"] if effective else facts["capabilities"])


def effective_capabilities(engine: str, attributes: Mapping, grants, reached) -> set[str]:
    """The capabilities of one account from its effective grants (4-tuples) and the
    ``(key, attributes)`` of the roles it reaches; LOCKED stays the account's own."""
    capabilities = _RULES[engine](attributes, grants, reached)
    if attributes.get("locked") is True:
        capabilities.add(LOCKED)
    return capabilities

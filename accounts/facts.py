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

"""The canonical privilege set (SPEC §5.1): one engine-neutral, sorted form per account.

Equal privileges give byte-identical JSON and therefore the same fingerprint, whatever the
order the engine reported them in. Pure: no ORM, no I/O.
"""

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from inventory.engines.base import split_object_name

ENGINES = frozenset({"mysql", "postgresql", "sqlserver", "oracle"})
SCOPES = (
    "global", "server", "database", "schema", "table", "column", "tablespace",
    "procedure", "function", "package", "default",
)  # fmt: skip
# The canonical form's version: 1 before routines had scopes of their own and object names
# were quoted part by part; snapshots remember the format they were written in.
FORMAT = 2
OPTIONS = ("", "GRANT", "DENY")
GRANT_KEYS = ("scope", "object", "privilege", "option")

Grant = tuple[str, str, str, str]  # (scope, object, privilege, option)
JsonScalar = str | int | float | bool | None


class InvalidPrivilegeSet(ValueError):
    """A raw privilege set that cannot be put in canonical form."""


def _scalar(name: str, value: Any) -> JsonScalar | list[JsonScalar]:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if hasattr(value, "isoformat"):  # date / datetime: stable text
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return sorted({_scalar(name, v) for v in value}, key=lambda v: (v is None, str(v)))
    raise InvalidPrivilegeSet(f"attribute {name!r} has an unsupported value {value!r}")


def grant_tuple(grant: Mapping[str, Any] | Iterable[str]) -> Grant:
    """One grant as a normalised ``(scope, object, privilege, option)`` tuple."""
    if isinstance(grant, Mapping):
        values = [grant.get(key, "") for key in GRANT_KEYS]
    else:
        values = list(grant)
        if len(values) != 4:
            raise InvalidPrivilegeSet(f"a grant has four parts, not {values!r}")
    scope, obj, privilege, option = (("" if v is None else str(v)) for v in values)
    scope, option, privilege = scope.strip().lower(), option.strip().upper(), privilege.strip()
    if scope not in SCOPES:
        raise InvalidPrivilegeSet(f"unknown scope {scope!r}")
    if option not in OPTIONS:
        raise InvalidPrivilegeSet(f"unknown grant option {option!r}")
    if not privilege:
        raise InvalidPrivilegeSet("a grant needs a privilege")
    if scope != "global" and scope != "server" and not obj:
        raise InvalidPrivilegeSet(f"a {scope} grant of {privilege} needs an object")
    return scope, obj, privilege, option


def canonicalize(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The sorted, de-duplicated canonical form of a raw privilege set.

    ``raw`` has ``engine``, ``attributes`` (name -> scalar), ``roles`` (names) and
    ``grants`` (mappings with scope/object/privilege/option, or 4-tuples). Scope and option
    are normalised; object, role and privilege names keep the case the engine reported.
    """
    engine = str(raw.get("engine", "")).strip().lower()
    if engine not in ENGINES:
        raise InvalidPrivilegeSet(f"unknown engine {engine!r}")
    attributes = {
        str(name): _scalar(str(name), value)
        for name, value in sorted((raw.get("attributes") or {}).items())
    }
    roles = sorted({str(role) for role in raw.get("roles") or () if str(role)})
    grants = sorted({grant_tuple(g) for g in raw.get("grants") or ()})
    return {
        "engine": engine,
        "attributes": attributes,
        "roles": roles,
        "grants": [dict(zip(GRANT_KEYS, g, strict=True)) for g in grants],
    }


def canonical_json(privset: Mapping[str, Any]) -> str:
    """Compact, key-sorted JSON of an already canonical set."""
    return json.dumps(privset, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(privset: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``privset``."""
    return hashlib.sha256(canonical_json(canonicalize(privset)).encode()).hexdigest()


def canonical_with_fingerprint(raw: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """Canonicalise once and fingerprint the result."""
    canonical, digest, _text = canonical_fingerprint_json(raw)
    return canonical, digest


def canonical_fingerprint_json(raw: Mapping[str, Any]) -> tuple[dict[str, Any], str, str]:
    """The canonical set, its fingerprint and the JSON text the fingerprint was taken of."""
    canonical = canonicalize(raw)
    text = canonical_json(canonical)
    return canonical, hashlib.sha256(text.encode()).hexdigest(), text


# --- Comparing with sets written in an earlier format -----------------------------------

_ROUTINE_SCOPES = {"procedure", "function", "package"}
# Read from format 2 on only: PostgreSQL routines and default privileges.
_NEW_IN_FORMAT_2 = {"postgresql": {"procedure", "function", "package", "default"}}


def _legacy_grant(engine: str, grant: Mapping[str, Any], written: int) -> Grant | None:
    """A grant as format 1 wrote it (None: format 1 never read such a grant)."""
    scope, obj, privilege, option = (grant[k] for k in GRANT_KEYS)
    if privilege.startswith("PRIVILEGE BIT "):
        return None  # format 1 named bits it did not know; they are not privileges
    if written >= 2:
        if scope in _NEW_IN_FORMAT_2.get(engine, ()):
            return None
        parts = split_object_name(obj) if obj else []
        if privilege == "PROXY" and len(parts) == 2:
            obj = f"{parts[0]}@{parts[1]}"
        elif parts:
            obj = ".".join(parts)
        if scope in _ROUTINE_SCOPES:
            scope = "table"
    if scope == "column":
        option = ""  # format 1 put a column grant's grant option on its table
    elif scope == "table" and privilege == "USAGE":
        return None
    return scope, obj, privilege, option


def same_in_format_1(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether a set written in format 1 (``old``) and a current one describe the same
    privileges on the server, ignoring what format 1 could not express or did not read:
    the first sync after an upgrade must record real differences only."""
    engine = new["engine"]
    if old.get("engine") != engine or list(old["roles"]) != list(new["roles"]):
        return False
    common = old["attributes"].keys() & new["attributes"].keys()
    if any(old["attributes"][name] != new["attributes"][name] for name in common):
        return False
    before = {_legacy_grant(engine, g, 1) for g in old["grants"]} - {None}
    after = {_legacy_grant(engine, g, FORMAT) for g in new["grants"]} - {None}
    return before == after

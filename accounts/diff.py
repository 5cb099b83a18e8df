"""Differences between two canonical privilege sets, and their one-line summary.

Diffs are computed on whole sets (set difference of grant tuples), never on rows or
signals. ``before=None`` describes a new account, ``after=None`` a removed one. Pure.
"""

from collections.abc import Mapping
from typing import Any

from accounts.canonical import GRANT_KEYS, canonicalize, grant_tuple

EMPTY_DIFF_KEYS = ("grants_added", "grants_removed", "roles_added", "roles_removed", "attributes")


def _parts(privset: Mapping[str, Any] | None) -> tuple[set, set, dict]:
    if privset is None:
        return set(), set(), {}
    return (
        {grant_tuple(g) for g in privset["grants"]},
        set(privset["roles"]),
        dict(privset["attributes"]),
    )


def diff_privileges(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Grants and roles added/removed, and every attribute whose value changed."""
    return diff_canonical(
        canonicalize(before) if before is not None else None,
        canonicalize(after) if after is not None else None,
    )


def diff_canonical(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> dict[str, Any]:
    """:func:`diff_privileges` of sets that are already canonical (the sync's hot path)."""
    if before is None or after is None:
        # A new or vanished account: everything on the other side, already sorted.
        side = after if before is None else before
        attributes = {
            name: ([None, value] if before is None else [value, None])
            for name, value in sorted(side["attributes"].items())
        }
        listed = [dict(g) for g in side["grants"]]
        return {
            "grants_added": listed if before is None else [],
            "grants_removed": listed if after is None else [],
            "roles_added": list(side["roles"]) if before is None else [],
            "roles_removed": list(side["roles"]) if after is None else [],
            "attributes": attributes,
        }
    grants_before, roles_before, attrs_before = _parts(before)
    grants_after, roles_after, attrs_after = _parts(after)
    attributes = {
        name: [attrs_before.get(name), attrs_after.get(name)]
        for name in sorted(attrs_before.keys() | attrs_after.keys())
        if attrs_before.get(name) != attrs_after.get(name)
    }
    return {
        "grants_added": [
            dict(zip(GRANT_KEYS, g, strict=True)) for g in sorted(grants_after - grants_before)
        ],
        "grants_removed": [
            dict(zip(GRANT_KEYS, g, strict=True)) for g in sorted(grants_before - grants_after)
        ],
        "roles_added": sorted(roles_after - roles_before),
        "roles_removed": sorted(roles_before - roles_after),
        "attributes": attributes,
    }


def is_empty(diff: Mapping[str, Any]) -> bool:
    return not any(diff.get(key) for key in EMPTY_DIFF_KEYS)


def _count(n: int, singular: str, plural: str, sign: str) -> str:
    return f"{sign}{n} {singular if n == 1 else plural}"


def _value(value: Any) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if value is None or value == "":
        return "—"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "—"
    return str(value)


def summarize(diff: Mapping[str, Any]) -> str:
    """One line for people: "+3 grants, −1 grant; +1 role; locked: no → yes"."""
    parts = []
    grants = []
    if diff.get("grants_added"):
        grants.append(_count(len(diff["grants_added"]), "grant", "grants", "+"))
    if diff.get("grants_removed"):
        grants.append(_count(len(diff["grants_removed"]), "grant", "grants", "−"))
    if grants:
        parts.append(", ".join(grants))
    roles = []
    if diff.get("roles_added"):
        roles.append(_count(len(diff["roles_added"]), "role", "roles", "+"))
    if diff.get("roles_removed"):
        roles.append(_count(len(diff["roles_removed"]), "role", "roles", "−"))
    if roles:
        parts.append(", ".join(roles))
    for name, (old, new) in (diff.get("attributes") or {}).items():
        parts.append(f"{name}: {_value(old)} → {_value(new)}")
    return "; ".join(parts) if parts else "no change"

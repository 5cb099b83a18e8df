"""Effective privileges (SPEC §5.5): what every account of an instance can really do.

An account's effective set is its own grants, plus the grants of every role it reaches
through the role graph, each marked with its provenance: direct, or the path of roles it
came through ("via app_admin → app_read"), and whether taking it needs ``SET ROLE`` (some
edge on the path is not inherited). PUBLIC's grants apply to every account: they stay on
the one PUBLIC account instead of being copied onto each, but the capabilities of every
account are derived with them. Pure: no ORM, no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from accounts.canonical import GRANT_KEYS, grant_tuple
from accounts.facts import effective_capabilities

Key = tuple[str, str, str]  # (kind, name, host), as AccountRecord.key
Grant = tuple[str, str, str, str]

# Grants only PUBLIC's effective set needs for capabilities: scopes and privileges a rule
# of accounts.facts can look at (the rest of PUBLIC's grants cannot change a capability).
_CAPABILITY_SCOPES = {"global", "server", "database", "table"}


@dataclass(frozen=True)
class Edge:
    """Membership of a principal in a role: active without asking (``inherit``) and/or
    available through ``SET ROLE`` (``set``)."""

    role: Key
    inherit: bool = True
    set: bool = True


@dataclass
class Node:
    """One principal of the role graph: a listed account or a graph-only role."""

    key: Key
    display: str
    grants: list[Grant]
    attributes: Mapping[str, Any] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)


@dataclass(frozen=True)
class Reach:
    """A role reached from an account: the path of role names and whether it needs SET ROLE."""

    node: Node
    path: tuple[str, ...]
    set_role: bool


def display_name(key: Key) -> str:
    """How an account is named in provenance: ``name@host`` for MySQL users, else the name."""
    _kind, name, host = key
    return f"{name}@{host}" if host else name


def node_from_raw(
    key: Key, raw: Mapping[str, Any], canonical: Mapping[str, Any] | None = None
) -> Node:
    """A graph node from an engine's privilege set (``memberships`` are its edges);
    ``canonical`` is the set already canonicalised, when the caller has it."""
    edges = [
        Edge(tuple(m["role"]), bool(m.get("inherit", True)), bool(m.get("set", True)))
        for m in raw.get("memberships") or ()
        if m.get("inherit", True) or m.get("set", True)
    ]
    return Node(
        key=key,
        display=raw.get("display") or display_name(key),
        grants=(
            [(g["scope"], g["object"], g["privilege"], g["option"]) for g in canonical["grants"]]
            if canonical is not None
            else sorted({grant_tuple(g) for g in raw.get("grants") or ()})
        ),
        attributes=(canonical or raw).get("attributes") or {},
        edges=edges,
    )


def reach(nodes: Mapping[Key, Node], start: Key) -> list[Reach]:
    """Every role reachable from ``start``, by its best path: inherited before SET ROLE,
    then shortest, then by name (so the answer never depends on catalog order)."""
    best: dict[Key, Reach] = {}
    frontier = [(start, (), False)]
    while frontier:
        following = []
        for key, path, set_role in frontier:
            node = nodes.get(key)
            if node is None:
                continue
            for edge in node.edges:
                target = nodes.get(edge.role)
                if target is None or edge.role == start:
                    continue
                needs_set = set_role or not edge.inherit
                found = Reach(target, (*path, target.display), needs_set)
                known = best.get(edge.role)
                if known is None or (needs_set, len(found.path), found.path) < (
                    known.set_role,
                    len(known.path),
                    known.path,
                ):
                    best[edge.role] = found
                    following.append((edge.role, found.path, needs_set))
        frontier = following
    return sorted(best.values(), key=lambda r: (r.set_role, len(r.path), r.path))


def _grant_dict(grant: Grant, via: tuple[str, ...], set_role: bool) -> dict[str, Any]:
    entry = dict(zip(GRANT_KEYS, grant, strict=True))
    entry["via"] = list(via)
    entry["set_role"] = set_role
    return entry


def resolve(
    engine: str, nodes: Mapping[Key, Node], accounts: Iterable[Key], public: Key | None = None
) -> dict[Key, dict[str, Any]]:
    """The effective facts of each of ``accounts``: ``grants`` it holds through roles and
    not itself (with ``via`` and ``set_role``; its own grants are its direct set), ``roles``
    (reached role names), ``role_paths`` and ``capabilities`` (of everything together).

    ``public`` is the PUBLIC account's key: its grants and roles count for everyone's
    capabilities but are not copied into the others' grants.
    """
    public_reached: list[Reach] = []
    public_grants: list[Grant] = []
    if public is not None and public in nodes:
        public_reached = reach(nodes, public)
        for grant in nodes[public].grants:
            public_grants.append(grant)
        for step in public_reached:
            public_grants.extend(step.node.grants)
        public_grants = [g for g in public_grants if g[0] in _CAPABILITY_SCOPES]
    public_names = [(r.node.key, r.node.attributes) for r in public_reached]

    result = {}
    for key in accounts:
        node = nodes[key]
        reached = reach(nodes, key) if node.edges else []
        own = set(node.grants)
        # Only what comes through roles: the account's own grants are its direct set.
        through: dict[Grant, tuple[tuple[str, ...], bool]] = {}
        for step in reached:
            for grant in step.node.grants:
                if grant not in own and grant not in through:
                    through[grant] = (step.path, step.set_role)
        names = [(r.node.key, r.node.attributes) for r in reached]
        if key == public:
            everything, reached_names = [*own, *through], names
        else:
            everything, reached_names = [*own, *through, *public_grants], names + public_names
        capabilities = effective_capabilities(engine, node.attributes, everything, reached_names)
        result[key] = {
            "capabilities": sorted(capabilities),
            "roles": sorted({r.node.key[1] for r in reached}),
            "role_paths": [
                {"role": r.node.display, "via": list(r.path[:-1]), "set_role": r.set_role}
                for r in reached
            ],
            "grants": [
                _grant_dict(grant, via, set_role)
                for grant, (via, set_role) in sorted(through.items())
            ],
        }
    return result


def effective_fingerprint(effective: Mapping[str, Any]) -> str:
    """SHA-256 of what the account can do beyond its own set (which its own fingerprint
    covers): grants through roles, reached roles and capabilities, without provenance — a
    grant that arrives by another path is no change."""
    if not effective["grants"] and not effective["roles"]:
        text = ",".join(effective["capabilities"])  # most accounts: no roles at all
    else:
        # repr of strings and tuples is exact and stable, and far cheaper than JSON here.
        text = repr(
            (
                effective["capabilities"],
                effective["roles"],
                [
                    (g["scope"], g["object"], g["privilege"], g["option"])
                    for g in effective["grants"]
                ],
            )
        )
    return hashlib.sha256(text.encode()).hexdigest()


def held(own_grants: Iterable[Mapping[str, Any]], effective: Mapping[str, Any] | None):
    """Every grant the account holds, own ones first (as stored: no ``via``, they are
    direct), keyed by its tuple."""
    grants = {_key4(g): g for g in own_grants}
    for grant in (effective or {}).get("grants", ()):
        grants.setdefault(_key4(grant), grant)
    return grants


def everything_held(facts: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The grants (own ones, direct, then those through roles) and the roles an
    account holds, from its stored facts — the literal ones of a snapshot written before
    effective privileges were recorded."""
    effective = facts.get("effective")
    grants = held(facts.get("grants") or (), effective)
    roles = (effective or facts).get("roles") or ()
    return list(grants.values()), list(roles)


def diff_effective(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any],
    before_own: Iterable[Mapping[str, Any]] = (),
    after_own: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """What changed in what an account can do (its own grants and those through roles):
    grants with their provenance (after, or before for removed ones), reached roles,
    capabilities, and the roles the change came through."""
    old = held(before_own, before)
    new = held(after_own, after)
    added = [new[k] for k in sorted(new.keys() - old.keys())]
    removed = [old[k] for k in sorted(old.keys() - new.keys())]
    old_roles, new_roles = set((before or {}).get("roles", ())), set(after["roles"])
    old_caps = sorted((before or {}).get("capabilities", ()))
    new_caps = sorted(after["capabilities"])
    through = sorted({g["via"][0] for g in (*added, *removed) if g.get("via")})
    return {
        "effective_added": added,
        "effective_removed": removed,
        "roles_reached_added": sorted(new_roles - old_roles),
        "roles_reached_removed": sorted(old_roles - new_roles),
        "capabilities": [old_caps, new_caps] if old_caps != new_caps else [],
        "via": through,
    }


def _key4(grant: Mapping[str, Any]) -> Grant:
    return (grant["scope"], grant["object"], grant["privilege"], grant["option"])


def is_empty(diff: Mapping[str, Any]) -> bool:
    return not any(
        diff.get(k)
        for k in (
            "effective_added",
            "effective_removed",
            "roles_reached_added",
            "roles_reached_removed",
            "capabilities",
        )
    )


def summarize(diff: Mapping[str, Any]) -> str:
    """One line: "effective privileges changed via app_read: +3 grants; SUPERUSER gained"."""
    parts = []
    counts = []
    if diff["effective_added"]:
        n = len(diff["effective_added"])
        counts.append(f"+{n} grant{'s' if n != 1 else ''}")
    if diff["effective_removed"]:
        n = len(diff["effective_removed"])
        counts.append(f"−{n} grant{'s' if n != 1 else ''}")
    if counts:
        parts.append(", ".join(counts))
    if diff["roles_reached_added"]:
        parts.append("reaches " + ", ".join(diff["roles_reached_added"]))
    if diff["roles_reached_removed"]:
        parts.append("no longer reaches " + ", ".join(diff["roles_reached_removed"]))
    if diff["capabilities"]:
        old, new = (set(c) for c in diff["capabilities"])
        if new - old:
            parts.append(", ".join(sorted(new - old)) + " gained")
        if old - new:
            parts.append(", ".join(sorted(old - new)) + " lost")
    head = "effective privileges changed"
    if diff["via"]:
        head += " via " + ", ".join(diff["via"])
    return f"{head}: {'; '.join(parts)}" if parts else head

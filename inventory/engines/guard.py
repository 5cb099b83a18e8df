"""Outbound guard: WhaleFall connects only to hosts inside ``WHALEFALL_ALLOWED_TARGETS``.

Rules are CIDRs (``10.0.0.0/8``, ``2001:db8::/32``) or host patterns (``*.db.example.com``,
``db-??.corp``; case-insensitive, shell-style). An empty list allows every host. A host
name is allowed when it matches a pattern, or when every address it resolves to lies in an
allowed network — so a name cannot smuggle a connection to an address outside them.
"""

import fnmatch
import ipaddress
import socket
from collections.abc import Iterable

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class TargetNotAllowed(Exception):
    """The host lies outside the allowed targets."""


def _split(rules: Iterable[str]) -> tuple[list[IPNetwork], list[str]]:
    networks: list[IPNetwork] = []
    patterns: list[str] = []
    for rule in (r.strip() for r in rules):
        if not rule:
            continue
        try:
            networks.append(ipaddress.ip_network(rule, strict=False))
        except ValueError:
            patterns.append(rule.lower().rstrip("."))
    return networks, patterns


def _literal_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _in_networks(address, networks: list[IPNetwork]) -> bool:
    return any(address in network for network in networks if address.version == network.version)


def host_may_be_allowed(host: str, rules: Iterable[str]) -> bool:
    """Check without DNS: False only when the host is certainly outside (form validation)."""
    networks, patterns = _split(rules)
    if not networks and not patterns:
        return True
    address = _literal_ip(host)
    if address is not None:
        return _in_networks(address, networks)
    name = host.lower().rstrip(".")
    return any(fnmatch.fnmatchcase(name, p) for p in patterns) or bool(networks)


def ensure_allowed(host: str, port: int, rules: Iterable[str]) -> None:
    """Raise :class:`TargetNotAllowed` unless ``host`` is inside the rules (resolving names)."""
    networks, patterns = _split(rules)
    if not networks and not patterns:
        return
    address = _literal_ip(host)
    if address is not None:
        if _in_networks(address, networks):
            return
        raise TargetNotAllowed(f"{host} is outside the allowed targets")
    name = host.lower().rstrip(".")
    if any(fnmatch.fnmatchcase(name, p) for p in patterns):
        return
    if networks:
        try:
            infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            raise TargetNotAllowed(
                f"{host} cannot be resolved to check the allowed targets"
            ) from exc
        addresses = {ipaddress.ip_address(info[4][0]) for info in infos}
        if addresses and all(_in_networks(a, networks) for a in addresses):
            return
    raise TargetNotAllowed(f"{host} is outside the allowed targets")

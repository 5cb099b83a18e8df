"""Outbound guard: WhaleFall connects only to hosts inside ``WHALEFALL_ALLOWED_TARGETS``.

A host is exactly one DNS name or one IP literal, nothing else: a name is 1 to 253
characters of dot-separated RFC 1123 labels (letters, digits, inner hyphens, 1 to 63 each,
one optional root dot, the last label not all digits), and never a legacy numeric form
such as ``2130706433`` or ``0x7f.1`` that resolvers read as an address; an IPv4 literal is
a dotted quad without leading zeros; an IPv6 literal may be bracketed and carries no zone
(``%eth0``). Lists, ports, paths, user-info (``@``), spaces and anything else are refused,
so a driver can never read a host field as a host list, a socket path or a service.

Rules are CIDRs (``10.0.0.0/8``, ``2001:db8::/32``) or host patterns (``*.db.example.com``,
``db-??.corp``): case-insensitive, ``*`` any run of characters within one label, ``?`` one
character. An empty list allows every host that passes the address check below. A name is
allowed when it matches a pattern or when every address it resolves to lies in an allowed
network. Every address — of a literal, or each one a name resolves to — must moreover not
be a loopback (``127.0.0.0/8``, ``::1``, ``0.0.0.0/8``), link-local (``169.254.0.0/16``,
``fe80::/10``), cloud metadata, multicast or reserved address, unless a CIDR rule inside
that range lists it explicitly (``127.0.0.1/32``; ``0.0.0.0/0`` does not count), or, for
loopback only, ``WHALEFALL_ALLOW_LOOPBACK`` is on (development and test). IPv4-mapped IPv6
addresses count as their IPv4 address.

:func:`ensure_allowed` returns the addresses it checked: the engines connect to them, not
to the name again, so a DNS answer that changes between the check and the connection
cannot redirect it (``inventory.engines.base.ConnectionTarget.dial_host``).
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from django.utils.translation import gettext as _

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_NAME_LENGTH = 253
_MAX_HOST_LENGTH = MAX_NAME_LENGTH + 1  # a name with its root dot
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.ASCII)
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
# Labels inet_aton() reads as numbers: decimal, octal (leading 0) or hex (0x…).
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+", re.ASCII)
_IPV4 = re.compile(r"(?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3}", re.ASCII)
_IPV6 = re.compile(r"[0-9a-f:.]+", re.ASCII)
_PATTERN_LABEL = re.compile(r"[a-z0-9*?-]{1,63}", re.ASCII)


class TargetNotAllowed(Exception):
    """The host lies outside the allowed targets (the message says why, for people)."""


class InvalidHost(TargetNotAllowed):
    """The host is not exactly one DNS name or one IP literal."""


# --- Host grammar -----------------------------------------------------------------------


def _literal_ip(text: str) -> IPAddress | None:
    if _IPV4.fullmatch(text):
        try:
            return ipaddress.IPv4Address(text)
        except ValueError:
            return None
    if ":" in text and _IPV6.fullmatch(text):
        try:
            address = ipaddress.IPv6Address(text)
        except ValueError:
            return None
        return address.ipv4_mapped or address
    return None


def parse_host(host: str) -> IPAddress | str:
    """``host`` as one IP address, or as one lower-case DNS name without the root dot.

    Raises :class:`InvalidHost` for anything else (see the module docstring).
    """
    if not isinstance(host, str) or not host or len(host) > _MAX_HOST_LENGTH:
        raise _invalid(host)
    text = host.lower()
    if text.startswith("[") or text.endswith("]"):
        inner = text[1:-1] if text.startswith("[") and text.endswith("]") else ""
        address = _literal_ip(inner) if ":" in inner else None
        if address is None:
            raise _invalid(host)
        return address
    address = _literal_ip(text)
    if address is not None:
        return address
    name = text.removesuffix(".")
    labels = name.split(".")
    if (
        not name
        or len(name) > MAX_NAME_LENGTH
        or not all(_LABEL.fullmatch(label) for label in labels)
        # RFC 3696 §2: a top-level label is never all digits, so 10.0.0.300 or 127.1 is
        # no name; and no name may be a number inet_aton() would take for an address.
        or _DIGITS.fullmatch(labels[-1])
        or (len(labels) <= 4 and all(_NUMERIC_LABEL.fullmatch(label) for label in labels))
    ):
        raise _invalid(host)
    return name


def _invalid(host: object) -> InvalidHost:
    shown = repr(host[:60] + "…" if len(host) > 60 else host) if isinstance(host, str) else "?"
    return InvalidHost(
        _(
            "%(host)s is not one host name or IP address (no list, port, path, user, zone "
            "or space; brackets only around an IPv6 address)"
        )
        % {"host": shown}
    )


def canonical_host(host: str) -> str:
    """The form to store: IP literals in their canonical text (no brackets), names as typed."""
    parsed = parse_host(host)
    return str(parsed) if not isinstance(parsed, str) else host


# --- Rules ------------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    labels = pattern.lower().removesuffix(".").split(".")
    if not all(_PATTERN_LABEL.fullmatch(label) for label in labels):
        raise ValueError(
            f"{pattern!r} is neither a CIDR nor a host pattern (labels of letters, digits, "
            "hyphens, * and ?)"
        )
    parts = [
        "".join(
            "[a-z0-9-]*" if char == "*" else "[a-z0-9-]" if char == "?" else re.escape(char)
            for char in label
        )
        for label in labels
    ]
    return re.compile(r"\.".join(parts), re.ASCII)


@dataclass(frozen=True)
class Rules:
    """Parsed ``WHALEFALL_ALLOWED_TARGETS``: networks and host patterns."""

    networks: tuple[IPNetwork, ...]
    patterns: tuple[re.Pattern[str], ...]

    @property
    def empty(self) -> bool:
        return not self.networks and not self.patterns

    def matches_pattern(self, name: str) -> bool:
        return any(pattern.fullmatch(name) for pattern in self.patterns)

    def in_networks(self, address: IPAddress) -> bool:
        return any(
            address in network for network in self.networks if network.version == address.version
        )


@functools.lru_cache(maxsize=16)
def _parse_rules(rules: tuple[str, ...]) -> Rules:
    networks: list[IPNetwork] = []
    patterns: list[re.Pattern[str]] = []
    for rule in (r.strip() for r in rules):
        if not rule:
            continue
        try:
            networks.append(ipaddress.ip_network(rule, strict=False))
        except ValueError:
            patterns.append(_pattern_regex(rule))
    return Rules(networks=tuple(networks), patterns=tuple(patterns))


def parse_rules(rules: Iterable[str]) -> Rules:
    """Parse allow-list rules; ``ValueError`` names a rule that is neither CIDR nor pattern."""
    return _parse_rules(tuple(rules))


# --- Addresses that need an explicit rule -----------------------------------------------

_net = ipaddress.ip_network
# Most specific first: a metadata address is link-local too, and needs its own rule.
_SPECIAL_RANGES: tuple[tuple[str, IPNetwork], ...] = (
    # AWS/GCP/Azure/OpenStack/DigitalOcean/Oracle; AWS over IPv6; Alibaba; Azure
    # WireServer; Oracle Cloud (legacy); Tencent.
    ("metadata", _net("169.254.169.254/32")),
    ("metadata", _net("fd00:ec2::254/128")),
    ("metadata", _net("100.100.100.200/32")),
    ("metadata", _net("168.63.129.16/32")),
    ("metadata", _net("192.0.0.192/32")),
    ("metadata", _net("169.254.0.23/32")),
    ("loopback", _net("127.0.0.0/8")),
    ("loopback", _net("::1/128")),
    # Connecting to "this host" (0.0.0.0, ::) reaches the loopback interface.
    ("loopback", _net("0.0.0.0/8")),
    ("loopback", _net("::/128")),
    ("link-local", _net("169.254.0.0/16")),
    ("link-local", _net("fe80::/10")),
    ("multicast", _net("224.0.0.0/4")),
    ("multicast", _net("ff00::/8")),
    ("reserved", _net("240.0.0.0/4")),  # with the broadcast address 255.255.255.255
)
_NAT64 = _net("64:ff9b::/96")


def _special_range(address: IPAddress) -> tuple[str, IPNetwork] | None:
    if address.version == 6 and address in _NAT64:
        # Through a NAT64 gateway 64:ff9b::a9fe:a9fe is 169.254.169.254.
        address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    for kind, network in _SPECIAL_RANGES:
        if network.version == address.version and address in network:
            return kind, network
    return None


def _special_labels() -> dict[str, str]:
    return {
        "metadata": _("a cloud metadata address"),
        "loopback": _("a loopback address"),
        "link-local": _("a link-local address"),
        "multicast": _("a multicast address"),
        "reserved": _("a reserved address"),
    }


def _explicitly_listed(address: IPAddress, special: IPNetwork, rules: Rules) -> bool:
    plain = (
        ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.version == 6 and address in _NAT64
        else address
    )
    return any(
        network.version == plain.version and plain in network and network.subnet_of(special)
        for network in rules.networks
    )


# --- The decision -----------------------------------------------------------------------


def resolve(name: str, port: int) -> list[IPAddress]:
    """Every address ``name`` resolves to for TCP, in the resolver's order, without repeats."""
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise TargetNotAllowed(
            _("%(host)s cannot be resolved to check the allowed targets") % {"host": name}
        ) from exc
    addresses: list[IPAddress] = []
    for info in infos:
        try:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        except ValueError:
            continue
        if address.version == 6 and address.ipv4_mapped:
            address = address.ipv4_mapped
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise TargetNotAllowed(
            _("%(host)s cannot be resolved to check the allowed targets") % {"host": name}
        )
    return addresses


def _check_address(
    host: str, address: IPAddress, rules: Rules, *, allow_loopback: bool, by_pattern: bool
) -> None:
    literal = host == str(address)
    special = _special_range(address)
    if special is not None:
        kind, network = special
        if not (
            (kind == "loopback" and allow_loopback) or _explicitly_listed(address, network, rules)
        ):
            values = {"host": host, "address": address, "kind": _special_labels()[kind]}
            if literal:
                message = _("%(address)s is %(kind)s, which is not allowed") % values
            else:
                message = _("%(host)s resolves to %(address)s, %(kind)s, which is not allowed")
                message %= values
            raise TargetNotAllowed(message)
    if rules.empty or by_pattern or rules.in_networks(address):
        return
    if literal:
        raise TargetNotAllowed(_("%(host)s is outside the allowed targets") % {"host": host})
    raise TargetNotAllowed(
        _("%(host)s resolves to %(address)s, outside the allowed targets")
        % {"host": host, "address": address}
    )


def ensure_allowed(
    host: str,
    port: int,
    rules: Iterable[str] | None = None,
    *,
    allow_loopback: bool | None = None,
) -> tuple[str, ...]:
    """The addresses to connect to for ``host``, each one checked; raise
    :class:`TargetNotAllowed` (or :class:`InvalidHost`) otherwise.

    ``rules`` and ``allow_loopback`` default to ``WHALEFALL_ALLOWED_TARGETS`` and
    ``WHALEFALL_ALLOW_LOOPBACK``. A name outside every pattern when no network is listed is
    refused without resolving it.
    """
    if rules is None or allow_loopback is None:
        from django.conf import settings

        rules = settings.WHALEFALL_ALLOWED_TARGETS if rules is None else rules
        if allow_loopback is None:
            allow_loopback = settings.WHALEFALL_ALLOW_LOOPBACK
    parsed_rules = parse_rules(rules)
    parsed = parse_host(host)
    if not isinstance(parsed, str):
        _check_address(
            str(parsed), parsed, parsed_rules, allow_loopback=allow_loopback, by_pattern=False
        )
        return (str(parsed),)
    by_pattern = parsed_rules.matches_pattern(parsed)
    if not by_pattern and parsed_rules.patterns and not parsed_rules.networks:
        raise TargetNotAllowed(_("%(host)s is outside the allowed targets") % {"host": host})
    addresses = resolve(host, port)
    for address in addresses:
        _check_address(
            host, address, parsed_rules, allow_loopback=allow_loopback, by_pattern=by_pattern
        )
    return tuple(str(address) for address in addresses)

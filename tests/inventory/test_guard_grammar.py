"""Property tests of the outbound guard's host grammar and pattern matching (Hypothesis)."""

import ipaddress
import socket
import string

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from inventory.engines import guard

LABEL_CHARS = string.ascii_letters + string.digits
# Characters a host list, a port, a path, user-info, a zone or a connection-string option
# is made of: none may ever appear in an accepted host (":" only inside an IPv6 literal).
SEPARATORS = list(",;/@%?#\\ \t\r\n\x00=&'\"()[]{}<>|*+!$^`~")

labels = st.text(LABEL_CHARS, min_size=1, max_size=20) | st.builds(
    lambda a, b, c: f"{a}{b}{c}",
    st.sampled_from(LABEL_CHARS),
    st.text(LABEL_CHARS + "-", max_size=10),
    st.sampled_from(LABEL_CHARS),
)
top_labels = labels.filter(lambda label: not label.isdigit())
names = st.builds(
    lambda parts, top, dot: ".".join([*parts, top]) + dot,
    st.lists(labels, max_size=4),
    top_labels,
    st.sampled_from(["", "."]),
).filter(lambda name: len(name.removesuffix(".")) <= guard.MAX_NAME_LENGTH)
addresses = st.ip_addresses()


@pytest.fixture(autouse=True)
def _no_dns(monkeypatch):
    def unknown(*_args, **_kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", unknown)


def refused(host: str) -> bool:
    try:
        guard.parse_host(host)
    except guard.InvalidHost:
        return True
    return False


@given(st.text(max_size=300))
@example("127.0.0.1,x.db.example.com")
@example("[::1]:5432")
@example("fe80::1%eth0")
def test_any_text_is_one_host_or_refused_with_a_clear_error(text):
    try:
        parsed = guard.parse_host(text)
    except guard.InvalidHost as exc:
        message = str(exc)
        assert "is not one host name or IP address" in message
        return
    if isinstance(parsed, str):
        assert set(parsed) <= set(string.ascii_lowercase + string.digits + "-.")
        assert not parsed.endswith(".")
    else:
        # An accepted literal is exactly one address, and the text held nothing else.
        assert set(text.strip("[]").lower()) <= set(string.hexdigits.lower() + ":.")


@given(names)
def test_every_name_of_the_grammar_is_accepted_in_lower_case(name):
    assume(not all(guard._NUMERIC_LABEL.fullmatch(p) for p in name.lower().split(".") if p))
    assert guard.parse_host(name) == name.lower().removesuffix(".")


@given(addresses)
def test_every_address_is_accepted_as_itself(address):
    expected = address.ipv4_mapped or address if address.version == 6 else address
    assert guard.parse_host(str(address)) == expected
    if address.version == 6:
        assert guard.parse_host(f"[{address}]") == expected
        assert guard.canonical_host(f"[{str(address).upper()}]") == str(expected)


@given(st.lists(names | addresses.map(str), min_size=2, max_size=4), st.sampled_from([",", ", "]))
def test_a_list_of_hosts_is_never_one_host(hosts, separator):
    assert refused(separator.join(hosts))


@given(names | addresses.map(str), st.sampled_from(SEPARATORS), st.data())
def test_a_host_with_any_separator_anywhere_is_refused(host, separator, data):
    position = data.draw(st.integers(0, len(host)))
    assert refused(host[:position] + separator + host[position:])


@given(names | addresses.map(str), st.integers(1, 65535))
def test_a_host_with_a_port_is_refused(host, port):
    assume(":" not in host)
    assert refused(f"{host}:{port}")
    assert refused(f"[{host}]:{port}")


@given(st.integers(0, 2**32 - 1))
def test_an_ipv4_address_written_as_one_number_is_refused(number):
    assert refused(str(number))
    assert refused(hex(number))


@given(st.ip_addresses(v=6), st.text(LABEL_CHARS, min_size=1, max_size=8))
def test_an_ipv6_zone_is_refused(address, zone):
    assert refused(f"{address}%{zone}")
    assert refused(f"[{address}%25{zone}]")


@given(labels, st.lists(labels, min_size=1, max_size=3), top_labels)
def test_a_star_covers_exactly_one_label(first, more, top):
    rules = guard.parse_rules([f"*.zone.{top}"])
    assert rules.matches_pattern(f"{first}.zone.{top}".lower())
    assert not rules.matches_pattern(".".join([*more, first, "zone", top]).lower())
    assert not rules.matches_pattern(f"zone.{top}".lower())


@given(st.text(max_size=60))
def test_a_rule_is_a_cidr_a_pattern_or_refused(rule):
    try:
        parsed = guard.parse_rules([rule])
    except ValueError as exc:
        message = str(exc)
        assert "neither a CIDR nor a host pattern" in message
        return
    assert len(parsed.networks) + len(parsed.patterns) <= 1


@given(st.text(max_size=100), st.lists(st.sampled_from(["10.0.0.0/8", "*.corp", "::/0"])))
def test_the_guard_only_ever_refuses_with_its_own_error(host, rules):
    try:
        checked = guard.ensure_allowed(host, 5432, rules, allow_loopback=False)
    except guard.TargetNotAllowed:
        return
    # Only literals pass without a lookup here; each is one ordinary address.
    [address] = checked
    assert not ipaddress.ip_address(address).is_loopback

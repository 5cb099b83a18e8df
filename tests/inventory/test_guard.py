"""The outbound guard: which hosts WhaleFall may connect to, checked before any connection."""

import socket

import mssql_python
import MySQLdb
import oracledb
import psycopg
import pytest

from inventory.engines import guard
from inventory.engines.base import (
    CredentialUnavailable,
    TargetRefused,
    connect,
    target_for,
)
from tests.inventory.factories import CredentialFactory, InstanceFactory


def allowed(host: str, rules: list[str], port: int = 3306) -> bool:
    try:
        guard.ensure_allowed(host, port, rules)
    except guard.TargetNotAllowed:
        return False
    return True


@pytest.fixture
def resolver(monkeypatch):
    """Make ``socket.getaddrinfo`` answer from a table: ``resolver["db.corp"] = [...]``."""
    table: dict[str, list[str]] = {}

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (
                socket.AF_INET6 if ":" in address else socket.AF_INET,
                socket.SOCK_STREAM,
                socket.IPPROTO_TCP,
                "",
                (address, port),
            )
            for address in table[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


# --- ensure_allowed -----------------------------------------------------------------------


@pytest.mark.parametrize("host", ["10.1.2.3", "8.8.8.8", "::1", "db.example.com", "localhost"])
@pytest.mark.parametrize("rules", [[], [""], ["  "]])
def test_no_rules_allow_every_host(host, rules):
    assert allowed(host, rules)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("10.0.0.1", True),
        ("10.255.255.255", True),
        ("11.0.0.1", False),
        ("192.168.1.20", True),
        ("192.168.2.20", False),
        ("127.0.0.1", False),
    ],
)
def test_ipv4_addresses_are_checked_against_the_cidrs(host, expected):
    assert allowed(host, ["10.0.0.0/8", "192.168.1.0/24"]) is expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2001:db8::1", True),
        ("[2001:db8:ffff::10]", True),
        ("2001:db9::1", False),
        ("::1", False),
        # An IPv4 address never matches an IPv6 network, nor the reverse.
        ("10.0.0.1", False),
    ],
)
def test_ipv6_addresses_are_checked_against_the_cidrs(host, expected):
    assert allowed(host, ["2001:db8::/32"]) is expected


def test_a_cidr_with_host_bits_set_is_taken_as_its_network():
    assert allowed("10.9.8.7", ["10.1.2.3/8"])


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("pg01.db.example.com", True),
        ("PG01.DB.Example.COM", True),
        ("pg01.db.example.com.", True),  # fully qualified, with the root dot
        ("db.example.com", False),
        ("pg01.db.example.com.evil.test", False),
        ("db-07.corp", True),
        ("DB-07.CORP", True),
        ("db-107.corp", False),
    ],
)
def test_host_patterns_match_case_insensitively(host, expected):
    assert allowed(host, ["*.db.example.com", "DB-??.corp"]) is expected


def test_patterns_alone_never_resolve_a_name(monkeypatch):
    def no_dns(*_args, **_kwargs):
        pytest.fail("the guard resolved a name although only patterns are configured")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)

    assert not allowed("db.elsewhere.test", ["*.db.example.com"])


def test_a_name_resolving_outside_the_cidrs_is_refused():
    assert not allowed("localhost", ["10.0.0.0/8"])


def test_a_name_resolving_inside_the_cidrs_is_allowed():
    # localhost may also resolve to ::1, which must then be allowed too.
    assert allowed("localhost", ["127.0.0.0/8", "::1/128"])


def test_every_address_of_a_name_must_be_inside(resolver):
    resolver["db.corp.test"] = ["10.0.0.5", "203.0.113.9"]
    resolver["db2.corp.test"] = ["10.0.0.5", "10.0.0.6"]

    assert not allowed("db.corp.test", ["10.0.0.0/8"])
    assert allowed("db2.corp.test", ["10.0.0.0/8"])


def test_a_name_resolving_to_an_ipv6_address_inside_is_allowed(resolver):
    resolver["v6.corp.test"] = ["2001:db8::5"]

    assert allowed("v6.corp.test", ["10.0.0.0/8", "2001:db8::/32"])


def test_an_unresolvable_name_is_refused_with_a_reason(resolver):
    with pytest.raises(guard.TargetNotAllowed, match="cannot be resolved"):
        guard.ensure_allowed("nowhere.corp.test", 3306, ["10.0.0.0/8"])


def test_a_pattern_match_needs_no_address_inside(resolver):
    resolver["db.partner.test"] = ["203.0.113.9"]

    assert allowed("db.partner.test", ["10.0.0.0/8", "*.partner.test"])


# --- host_may_be_allowed (form validation, no DNS) ------------------------------------------


@pytest.mark.parametrize(
    ("host", "rules", "expected"),
    [
        ("8.8.8.8", [], True),
        ("10.1.1.1", ["10.0.0.0/8"], True),
        ("11.1.1.1", ["10.0.0.0/8"], False),
        ("[2001:db8::1]", ["2001:db8::/32"], True),
        ("10.1.1.1", ["*.corp"], False),  # an address never matches a pattern
        ("db.corp", ["*.corp"], True),
        ("DB.CORP.", ["*.corp"], True),
        ("db.other", ["*.corp"], False),
        # A name may resolve inside a network: only the connection can tell.
        ("db.other", ["10.0.0.0/8"], True),
        ("db.other", ["*.corp", "10.0.0.0/8"], True),
    ],
)
def test_host_may_be_allowed_refuses_only_what_is_certainly_outside(
    monkeypatch, host, rules, expected
):
    def no_dns(*_args, **_kwargs):
        pytest.fail("host_may_be_allowed must not resolve names")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)

    assert guard.host_may_be_allowed(host, rules) is expected


# --- The guard comes before any connection -------------------------------------------------


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test on any attempt to open a connection, by Python sockets or drivers."""

    def forbidden(*_args, **_kwargs):
        pytest.fail("a connection was attempted to a refused target")

    monkeypatch.setattr(socket.socket, "connect", forbidden)
    monkeypatch.setattr(socket.socket, "connect_ex", forbidden)
    monkeypatch.setattr(socket, "create_connection", forbidden)
    monkeypatch.setattr(MySQLdb, "connect", forbidden)
    monkeypatch.setattr(psycopg, "connect", forbidden)
    monkeypatch.setattr(mssql_python, "connect", forbidden)
    monkeypatch.setattr(oracledb, "connect_async", forbidden)


ENGINES = [
    ("mysql", 3306),
    ("postgresql", 5432),
    ("sqlserver", 1433),
    ("oracle", 1521),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("engine", "port"), ENGINES)
def test_a_refused_instance_never_opens_a_connection(settings, engine, port, request):
    instance = InstanceFactory(engine=engine, host="127.0.0.1", port=port)
    settings.WHALEFALL_ALLOWED_TARGETS = ["10.0.0.0/8"]
    request.getfixturevalue("no_network")  # the ORM rows exist: from now on, no sockets

    with pytest.raises(TargetRefused) as raised:
        target_for(instance)
    with pytest.raises(TargetRefused), connect(instance):
        pass

    assert str(raised.value) == "Target not allowed: 127.0.0.1 is outside the allowed targets"


@pytest.mark.django_db
def test_a_refused_name_is_not_even_resolved_when_patterns_exclude_it(settings, monkeypatch):
    instance = InstanceFactory(host="db.elsewhere.test")
    settings.WHALEFALL_ALLOWED_TARGETS = ["*.corp.example"]

    def no_dns(*_args, **_kwargs):
        pytest.fail("the guard resolved a name although only patterns are configured")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)

    with pytest.raises(TargetRefused, match=r"db\.elsewhere\.test is outside"):
        target_for(instance)


@pytest.mark.django_db
def test_the_guard_is_checked_before_the_credential(settings):
    instance = InstanceFactory(host="203.0.113.9", credential=None)
    settings.WHALEFALL_ALLOWED_TARGETS = ["10.0.0.0/8"]

    with pytest.raises(TargetRefused):
        target_for(instance)


@pytest.mark.django_db
def test_an_allowed_instance_gets_its_target_with_the_decrypted_secret(settings):
    instance = InstanceFactory(
        engine="postgresql",
        host="10.1.2.3",
        port=5432,
        database_name="inventory",
        tls_mode="verify",
        credential=CredentialFactory(username="monitor", secret="Sw0rdf1sh!"),
    )
    settings.WHALEFALL_ALLOWED_TARGETS = ["10.0.0.0/8"]
    settings.WHALEFALL_CONNECT_TIMEOUT = 4
    settings.WHALEFALL_QUERY_TIMEOUT = 60

    connection_target = target_for(instance)

    assert connection_target.secret == "Sw0rdf1sh!"
    assert (connection_target.engine, connection_target.host, connection_target.port) == (
        "postgresql",
        "10.1.2.3",
        5432,
    )
    assert (connection_target.database, connection_target.username) == ("inventory", "monitor")
    assert connection_target.tls_mode == "verify"
    assert (connection_target.connect_timeout, connection_target.query_timeout) == (4.0, 60.0)
    assert "Sw0rdf1sh!" not in repr(connection_target)


@pytest.mark.django_db
def test_an_allowed_instance_without_credential_is_refused_clearly(settings):
    settings.WHALEFALL_ALLOWED_TARGETS = ["10.0.0.0/8"]
    instance = InstanceFactory(host="10.1.2.3", credential=None)

    with pytest.raises(CredentialUnavailable, match="has no credential"):
        target_for(instance)


@pytest.mark.django_db
def test_a_credential_without_secret_is_never_an_empty_password(settings):
    settings.WHALEFALL_ALLOWED_TARGETS = ["10.0.0.0/8"]
    instance = InstanceFactory(host="10.1.2.3", credential=CredentialFactory(secret=""))

    with pytest.raises(CredentialUnavailable, match="has no secret"):
        target_for(instance)

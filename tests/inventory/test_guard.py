"""The outbound guard: which hosts WhaleFall may connect to, checked before any connection."""

import socket
from dataclasses import replace

import mssql_python
import MySQLdb
import oracledb
import psycopg
import pytest
from django.core.exceptions import ValidationError

from inventory.engines import guard
from inventory.engines.base import (
    ConnectionTarget,
    CredentialUnavailable,
    TargetRefused,
    connect,
    target_for,
)
from inventory.models import Instance
from tests.accounts.conftest import (  # noqa: F401  (fixtures: the local servers)
    mariadb,
    mariadb_instance,
    postgres,
    postgres_instance,
)
from tests.inventory.factories import CredentialFactory, InstanceFactory


def allowed(host: str, rules: list[str], port: int = 3306, *, loopback: bool = False) -> bool:
    try:
        guard.ensure_allowed(host, port, rules, allow_loopback=loopback)
    except guard.TargetNotAllowed:
        return False
    return True


class FakeDNS:
    """``socket.getaddrinfo`` answering from a table: ``dns["db.corp"] = ["10.0.0.5"]``, or
    a list of answers, one per lookup (the last repeats), to play DNS rebinding."""

    def __init__(self):
        self.table: dict[str, list] = {}
        self.lookups: list[str] = []

    def __setitem__(self, name: str, answers: list) -> None:
        self.table[name] = answers

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        self.lookups.append(host)
        answers = self.table.get(host.lower().removesuffix("."))
        if answers and isinstance(answers[0], list):
            answers = answers[min(self.lookups.count(host), len(answers)) - 1]
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (
                socket.AF_INET6 if ":" in address else socket.AF_INET,
                socket.SOCK_STREAM,
                socket.IPPROTO_TCP,
                "",
                (address, port),
            )
            for address in answers
        ]


@pytest.fixture
def resolver(monkeypatch) -> FakeDNS:
    dns = FakeDNS()
    monkeypatch.setattr(socket, "getaddrinfo", dns.getaddrinfo)
    return dns


# --- ensure_allowed -----------------------------------------------------------------------


@pytest.mark.parametrize("host", ["10.1.2.3", "8.8.8.8", "2001:db8::1", "[2001:db8::1]"])
@pytest.mark.parametrize("rules", [[], [""], ["  "]])
def test_no_rules_allow_every_ordinary_address(host, rules):
    assert allowed(host, rules)


def test_no_rules_allow_every_name_whose_addresses_are_ordinary(resolver):
    resolver["db.example.test"] = ["10.1.2.3", "2001:db8::7"]
    assert guard.ensure_allowed("db.example.test", 3306, [], allow_loopback=False) == (
        "10.1.2.3",
        "2001:db8::7",
    )


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
    assert allowed(host, ["10.0.0.0/8", "192.168.1.0/24"], loopback=True) is expected


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
    assert allowed(host, ["2001:db8::/32"], loopback=True) is expected


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
        # "*" stays within one label: another label in front is another zone.
        ("a.pg01.db.example.com", False),
        ("db-07.corp", True),
        ("DB-07.CORP", True),
        ("db-107.corp", False),
    ],
)
def test_host_patterns_match_case_insensitively_within_one_label(resolver, host, expected):
    for name in ("pg01.db.example.com", "a.pg01.db.example.com", "db-07.corp"):
        resolver[name] = ["203.0.113.10"]
    assert allowed(host, ["*.db.example.com", "DB-??.corp"]) is expected


def test_patterns_alone_never_resolve_a_name_they_refuse(monkeypatch):
    def no_dns(*_args, **_kwargs):
        pytest.fail("the guard resolved a name although only patterns are configured")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)

    assert not allowed("db.elsewhere.test", ["*.db.example.com"])


def test_a_name_resolving_outside_the_cidrs_is_refused():
    assert not allowed("localhost", ["10.0.0.0/8"], loopback=True)


def test_a_name_resolving_inside_the_cidrs_is_allowed():
    # localhost may also resolve to ::1, which must then be allowed too.
    assert allowed("localhost", ["127.0.0.0/8", "::1/128"])


def test_every_address_of_a_name_must_be_inside(resolver):
    resolver["db.corp.test"] = ["10.0.0.5", "203.0.113.9"]
    resolver["db2.corp.test"] = ["10.0.0.5", "10.0.0.6"]

    with pytest.raises(guard.TargetNotAllowed, match=r"resolves to 203\.0\.113\.9, outside"):
        guard.ensure_allowed("db.corp.test", 3306, ["10.0.0.0/8"])
    assert allowed("db2.corp.test", ["10.0.0.0/8"])


def test_a_name_resolving_to_an_ipv6_address_inside_is_allowed(resolver):
    resolver["v6.corp.test"] = ["2001:db8::5"]

    assert allowed("v6.corp.test", ["10.0.0.0/8", "2001:db8::/32"])


def test_an_unresolvable_name_is_refused_with_a_reason(resolver):
    with pytest.raises(guard.TargetNotAllowed, match="cannot be resolved"):
        guard.ensure_allowed("nowhere.corp.test", 3306, ["10.0.0.0/8"])
    with pytest.raises(guard.TargetNotAllowed, match="cannot be resolved"):
        guard.ensure_allowed("nowhere.corp.test", 3306, [])


def test_a_pattern_match_needs_no_address_inside_the_cidrs(resolver):
    resolver["db.partner.test"] = ["203.0.113.9"]

    assert allowed("db.partner.test", ["10.0.0.0/8", "*.partner.test"])


# --- One host, nothing else (issue 12, item 5) ---------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        # The attack: a host list whose second entry matches the pattern; both drivers
        # read it as two hosts and connected to the first.
        "127.0.0.1,x.db.example.com",
        "10.0.0.1,x.db.example.com",
        "x.db.example.com,127.0.0.1",
        "x.db.example.com x.db.example.com",
        "x.db.example.com:5432",
        "[2001:db8::1]:5432",
        "x.db.example.com/postgres",
        "/var/run/postgresql",
        "user@x.db.example.com",
        "fe80::1%eth0",
        "[fe80::1%25eth0]",
        "x.db.example.com\n",
        "x.db.example.com\x00",
        "x.db.example.com;host=127.0.0.1",
        "x.db.example.com.evil,",
        "x..db.example.com",
        "-x.db.example.com",
        "x_y.db.example.com",
        "x.db.example.com..",
        "",
        " ",
    ],
)
def test_anything_but_one_host_is_refused_before_any_lookup(monkeypatch, host):
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: pytest.fail("resolved"))
    with pytest.raises(guard.InvalidHost, match="is not one host name or IP address"):
        guard.ensure_allowed(host, 5432, ["*.db.example.com", "10.0.0.0/8"], allow_loopback=True)


@pytest.mark.parametrize(
    "host",
    # Numbers that inet_aton() — and so the resolvers behind both drivers — reads as
    # 127.0.0.1, and dotted quads that are not quite one.
    [
        "2130706433",
        "0x7f000001",
        "0x7f.1",
        "127.1",
        "0177.0.0.1",
        "127.000.000.001",
        "127.0.0.1.",
        "10.0.0.256",
        "1.2.3.4.5",
    ],
)
def test_numeric_forms_other_than_a_dotted_quad_are_refused(host):
    with pytest.raises(guard.InvalidHost):
        guard.parse_host(host)


def test_a_star_matches_within_one_label_only(resolver):
    resolver["x.db.example.com"] = ["203.0.113.7"]
    resolver["a.b.db.example.com"] = ["203.0.113.7"]
    rules = ["*.db.example.com"]
    assert allowed("x.db.example.com", rules)
    assert not allowed("a.b.db.example.com", rules)


@pytest.mark.parametrize(
    "rule", ["db.example.com:5432", "*.db.example.com,x", "db example", "[a-z].corp"]
)
def test_a_rule_that_is_neither_cidr_nor_pattern_is_refused(rule):
    with pytest.raises(ValueError, match="neither a CIDR nor a host pattern"):
        guard.parse_rules([rule])


# --- Loopback, link-local and metadata addresses --------------------------------------------


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.8.9.10", "a loopback address"),
        ("::1", "a loopback address"),
        ("[::1]", "a loopback address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("0.0.0.0", "a loopback address"),  # noqa: S104
        ("::", "a loopback address"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("100.100.100.200", "a cloud metadata address"),
        ("64:ff9b::a9fe:a9fe", "a cloud metadata address"),  # 169.254.169.254 via NAT64
        ("224.0.0.1", "a multicast address"),
        ("255.255.255.255", "a reserved address"),
    ],
)
@pytest.mark.parametrize("rules", [[], ["0.0.0.0/0", "::/0"]])
def test_special_addresses_are_refused_even_by_catch_all_rules(host, kind, rules):
    with pytest.raises(guard.TargetNotAllowed, match=f"is {kind}, which is not allowed"):
        guard.ensure_allowed(host, 5432, rules, allow_loopback=False)


def test_a_name_resolving_to_a_metadata_address_is_refused_naming_it(resolver):
    resolver["metadata.corp.test"] = ["10.0.0.1", "169.254.169.254"]
    with pytest.raises(
        guard.TargetNotAllowed,
        match=r"metadata\.corp\.test resolves to 169\.254\.169\.254, a cloud metadata address",
    ):
        guard.ensure_allowed("metadata.corp.test", 5432, ["*.corp.test"], allow_loopback=True)


def test_allow_loopback_lifts_only_the_loopback_refusal():
    assert allowed("127.0.0.1", [], loopback=True)
    assert allowed("::1", [], loopback=True)
    assert allowed("localhost", [], loopback=True)
    assert not allowed("localhost", [], loopback=False)
    assert not allowed("169.254.169.254", [], loopback=True)
    assert not allowed("169.254.1.1", [], loopback=True)


def test_special_addresses_are_allowed_when_a_rule_inside_them_lists_them():
    assert allowed("127.0.0.1", ["127.0.0.1/32"])
    assert allowed("169.254.1.1", ["169.254.0.0/16"])
    # Listing link-local is not listing the metadata address inside it.
    assert not allowed("169.254.169.254", ["169.254.0.0/16"])
    assert allowed("169.254.169.254", ["169.254.169.254/32"])


def test_the_development_and_test_settings_allow_loopback(settings):
    # make run and the test suite connect to the local MariaDB and PostgreSQL.
    assert settings.WHALEFALL_ALLOW_LOOPBACK is True
    assert guard.ensure_allowed("127.0.0.1", 3306) == ("127.0.0.1",)


# --- Checked on save ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("127.0.0.1,x.db.example.com", "is not one host name or IP address"),
        ("x.db.example.com:5432", "is not one host name or IP address"),
        ("meta.db.example.com", "resolves to 169.254.169.254, a cloud metadata address"),
        ("local.db.example.com", "resolves to 127.0.0.1, a loopback address"),
        ("nowhere.db.example.com", "cannot be resolved"),
        ("db.elsewhere.test", "outside the allowed targets"),
    ],
)
def test_saving_an_instance_checks_its_host_as_a_connection_would(
    settings, resolver, host, message
):
    resolver["meta.db.example.com"] = ["169.254.169.254"]
    resolver["local.db.example.com"] = ["127.0.0.1"]
    settings.WHALEFALL_ALLOWED_TARGETS = ["*.db.example.com"]
    settings.WHALEFALL_ALLOW_LOOPBACK = False
    instance = InstanceFactory.build(host=host, credential=CredentialFactory())

    with pytest.raises(ValidationError) as raised:
        instance.full_clean()

    assert message in " ".join(raised.value.message_dict["host"])


@pytest.mark.django_db
def test_saving_stores_an_ip_literal_in_its_canonical_form(resolver):
    instance = InstanceFactory.build(host="[2001:DB8:0:0::1]", credential=CredentialFactory())
    instance.full_clean()
    assert instance.host == "2001:db8::1"
    assert instance.address == "[2001:db8::1]:3306"


@pytest.mark.django_db
def test_the_admin_form_refuses_a_host_list(client, admin_user, settings):
    settings.WHALEFALL_ALLOWED_TARGETS = ["*.db.example.com"]
    client.force_login(admin_user)
    response = client.post(
        "/admin/inventory/instance/add/",
        {
            "name": "sneaky",
            "engine": "postgresql",
            "host": "127.0.0.1,x.db.example.com",
            "port": 5432,
            "tls_mode": "preferred",
        },
    )
    assert response.status_code == 200
    assert "is not one host name or IP address" in response.content.decode()
    assert not Instance.objects.filter(name="sneaky").exists()


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


# --- Checked again at every connection, and the drivers dial the checked address ------------


@pytest.mark.django_db
@pytest.mark.parametrize(("engine", "port"), ENGINES)
def test_a_host_list_saved_without_the_form_is_refused_at_connect(settings, engine, port, request):
    instance = InstanceFactory(engine=engine, host="127.0.0.1,x.db.example.com", port=port)
    settings.WHALEFALL_ALLOWED_TARGETS = ["*.db.example.com"]
    request.getfixturevalue("no_network")

    with pytest.raises(TargetRefused, match="is not one host name or IP address"):
        target_for(instance)


@pytest.mark.django_db
def test_a_loopback_instance_is_refused_at_connect_unless_allowed(settings, request):
    instance = InstanceFactory(host="127.0.0.1")
    settings.WHALEFALL_ALLOW_LOOPBACK = False
    request.getfixturevalue("no_network")

    with pytest.raises(TargetRefused, match=r"127\.0\.0\.1 is a loopback address"):
        target_for(instance)


@pytest.mark.django_db
def test_the_target_carries_the_addresses_the_guard_checked(settings, resolver):
    resolver["db.corp.test"] = ["10.0.0.5", "10.0.0.6"]
    settings.WHALEFALL_ALLOWED_TARGETS = ["10.0.0.0/8"]
    instance = InstanceFactory(host="db.corp.test")

    connection_target = target_for(instance)

    assert connection_target.addresses == ("10.0.0.5", "10.0.0.6")
    assert connection_target.dial_host == "10.0.0.5"
    assert replace(connection_target, tls_mode="verify").dial_host == "db.corp.test"


def test_postgresql_dials_every_checked_address_and_verifies_the_name(monkeypatch):
    from inventory.engines.postgresql import PostgreSQLEngine

    calls = []
    monkeypatch.setattr(psycopg, "connect", lambda **kwargs: calls.append(kwargs))
    engine = PostgreSQLEngine(
        ConnectionTarget(
            engine="postgresql",
            host="db.corp.test",
            port=5432,
            database="postgres",
            username="monitor",
            secret="x",
            tls_mode="verify",
            addresses=("10.0.0.5", "10.0.0.6"),
        )
    )
    engine.connect_to("postgres")

    [kwargs] = calls
    assert kwargs["hostaddr"] == "10.0.0.5,10.0.0.6"
    assert kwargs["host"] == "db.corp.test,db.corp.test"  # what verify-full checks


def rebinding(resolver, name: str) -> None:
    """``name`` answers the loopback address once, then an address nothing listens on."""
    resolver[name] = [["127.0.0.1"], ["203.0.113.66"]]


@pytest.mark.django_db
def test_a_rebinding_name_cannot_redirect_the_mariadb_connection(settings, resolver, request):
    instance = request.getfixturevalue("mariadb_instance")
    Instance.objects.filter(pk=instance.pk).update(host="mariadb.corp.test")
    instance.refresh_from_db()
    rebinding(resolver, "mariadb.corp.test")
    settings.WHALEFALL_CONNECT_TIMEOUT = 3

    with connect(instance) as engine:
        assert engine.server_version().major_minor

    assert resolver.lookups == ["mariadb.corp.test"]  # the guard's one lookup


@pytest.mark.django_db
def test_a_rebinding_name_cannot_redirect_the_postgresql_connection(settings, resolver, request):
    instance = request.getfixturevalue("postgres_instance")
    Instance.objects.filter(pk=instance.pk).update(host="pg.corp.test")
    instance.refresh_from_db()
    rebinding(resolver, "pg.corp.test")
    settings.WHALEFALL_CONNECT_TIMEOUT = 3

    with connect(instance) as engine:
        assert engine.server_version().major_minor

    assert resolver.lookups == ["pg.corp.test"]  # psycopg resolved nothing itself

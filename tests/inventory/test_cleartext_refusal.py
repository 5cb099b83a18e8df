"""The drivers never hand a secret to a server that asks for it in clear (issue 12 item 1).

Each test points a real driver at a hostile listener on 127.0.0.1 (tests/fake_servers.py)
that asks for the password the way an attacker would — PostgreSQL's cleartext or md5
request, MySQL's mysql_clear_password, dialog, or caching_sha2_password with an RSA key of
the server's choosing — and asserts that the secret never arrives. Then the whole attack
through the admin: a DBA scoped to instance A points A at such a listener and presses
"Test connection".
"""

import psycopg
import pytest
from guardian.shortcuts import assign_perm

from inventory.engines import mysql as mysql_engine
from inventory.engines.base import (
    AuthenticationFailed,
    ConnectionTarget,
    EngineError,
    EngineFailure,
    TlsError,
    engine_class,
)
from inventory.models import Instance
from tests import fake_servers
from tests.factories import UserFactory
from tests.inventory.factories import CredentialFactory, InstanceFactory

SECRET = "Wf-s3cret-never-sent"


def target(engine: str, port: int, **overrides) -> ConnectionTarget:
    values = {
        "engine": engine,
        "host": "127.0.0.1",
        "port": port,
        "database": "",
        "username": "monitor",
        "secret": SECRET,
        "tls_mode": "preferred",
        "connect_timeout": 3.0,
        "query_timeout": 5.0,
    }
    return ConnectionTarget(**(values | overrides))


def connect(connection_target: ConnectionTarget) -> EngineError:
    """Open a session that must fail; the error it failed with."""
    with (
        pytest.raises(EngineError) as raised,
        engine_class(connection_target.engine)(connection_target),
    ):
        pass
    return raised.value


# --- PostgreSQL: SCRAM-SHA-256 only, md5 when the instance allows it, never cleartext ------


@pytest.mark.parametrize("tls_mode", ["disabled", "preferred"])
@pytest.mark.parametrize("allow_md5_auth", [False, True])
def test_postgresql_never_answers_a_cleartext_password_request(tls_mode, allow_md5_auth):
    with fake_servers.postgresql(auth="cleartext") as server:
        error = connect(
            target("postgresql", server.port, tls_mode=tls_mode, allow_md5_auth=allow_md5_auth)
        )
    assert isinstance(error, AuthenticationFailed)
    assert "cleartext password" in str(error)
    assert "asked_cleartext" in server.events
    assert not server.received(SECRET)
    assert "answer_p" not in server.events  # no password message at all


def test_postgresql_refuses_md5_unless_the_instance_allows_it():
    with fake_servers.postgresql(auth="md5") as server:
        error = connect(target("postgresql", server.port))
    assert isinstance(error, AuthenticationFailed)
    assert "answer_p" not in server.events
    assert not server.received(SECRET)


def test_postgresql_answers_md5_when_allowed_without_the_password_in_clear():
    with fake_servers.postgresql(auth="md5") as server:
        connect(target("postgresql", server.port, allow_md5_auth=True))
    assert "answer_p" in server.events
    assert not server.received(SECRET)


def test_postgresql_answers_scram_without_the_password_in_clear():
    with fake_servers.postgresql(auth="scram") as server:
        connect(target("postgresql", server.port))
    assert "answer_p" in server.events
    assert not server.received(SECRET)


@pytest.mark.parametrize("tls_mode", ["required", "verify"])
def test_postgresql_with_tls_required_stops_before_the_startup_message(tls_mode):
    with fake_servers.postgresql(auth="cleartext", tls=False) as server:
        error = connect(target("postgresql", server.port, tls_mode=tls_mode))
    assert isinstance(error, TlsError)
    assert "ssl_request" in server.events
    assert "startup" not in server.events
    assert not server.received(SECRET)
    assert not server.received("monitor")  # not even the user name


def test_postgresql_refuses_cleartext_inside_tls_to_an_unverified_server():
    # TLS "required" does not check who answers: a listener with any certificate may ask.
    with fake_servers.postgresql(auth="cleartext", tls=True) as server:
        error = connect(target("postgresql", server.port, tls_mode="required"))
    assert "tls" in server.events
    assert isinstance(error, AuthenticationFailed)
    assert not server.received(SECRET)


def test_postgresql_refuses_to_connect_through_a_libpq_without_require_auth(monkeypatch):
    monkeypatch.setattr(psycopg.pq, "version", lambda: 150010)
    with fake_servers.postgresql(auth="cleartext") as server:
        error = connect(target("postgresql", server.port))
    assert isinstance(error, EngineFailure)
    assert "require_auth" in str(error)
    assert server.connections == 0


def test_the_linked_libpq_supports_require_auth():
    assert psycopg.pq.version() >= 160000


# --- MySQL / MariaDB: never the cleartext plugin ------------------------------------------

NATIVE = "mysql_native_password"
# The account's plugin, and the plugin the handshake names.
HOSTILE_MYSQL = {
    "mysql_clear_password named in the handshake": ("mysql_clear_password", None),
    "switch to mysql_clear_password": ("mysql_clear_password", NATIVE),
    "switch to dialog (PAM)": ("dialog", NATIVE),
    "caching_sha2_password named in the handshake (RSA key of the server's)": (
        "caching_sha2_password",
        None,
    ),
    "switch to caching_sha2_password": ("caching_sha2_password", NATIVE),
    "switch to sha256_password": ("sha256_password", NATIVE),
    "switch to mysql_old_password": ("mysql_old_password", NATIVE),
}


@pytest.mark.parametrize("tls_mode", ["disabled", "preferred", "required"])
@pytest.mark.parametrize("scenario", sorted(HOSTILE_MYSQL))
def test_mysql_never_sends_the_password_to_a_server_asking_for_it(scenario, tls_mode):
    plugin, announce = HOSTILE_MYSQL[scenario]
    with fake_servers.mysql(plugin=plugin, announce=announce) as server:
        error = connect(target("mysql", server.port, tls_mode=tls_mode))
    assert isinstance(error, AuthenticationFailed), error
    assert "would hand it the password" in str(error)
    assert not server.received(SECRET)
    assert "public_key_requested" not in server.events
    assert "switch_answer" not in server.events


@pytest.mark.parametrize("plugin", ["mysql_clear_password", "caching_sha2_password"])
def test_mysql_with_tls_required_sends_no_password_inside_an_unverified_tls_session(plugin):
    # Both send the password as is inside TLS: to an unverified listener with a self-signed
    # certificate, that is the password in clear. (Named in the handshake, a plugin outside
    # the allowed list is refused before TLS starts; a switch comes after it.)
    with fake_servers.mysql(plugin=plugin, announce=NATIVE, tls=True) as server:
        error = connect(target("mysql", server.port, tls_mode="required"))
    assert server.events[:4] == [
        "tls",
        "handshake_response",
        f"answered_with_{NATIVE}",
        f"switch_{plugin}",
    ]
    assert isinstance(error, AuthenticationFailed)
    assert not server.received(SECRET)


def test_mysql_answers_a_mysql_8_handshake_with_a_challenge_response():
    # MySQL 8 names caching_sha2_password in its handshake whatever the account uses: an
    # account on mysql_native_password must still log in, without a plugin switch.
    with fake_servers.mysql(plugin=NATIVE, announce="caching_sha2_password") as server:
        error = connect(target("mysql", server.port))
    assert server.events[:2] == ["handshake_response", f"answered_with_{NATIVE}"]
    assert not any(event.startswith("switch") for event in server.events)
    assert "Access denied" in str(error)  # the listener's answer, not a refusal of ours
    assert not server.received(SECRET)


def test_mysql_with_tls_verify_stops_before_the_handshake_response_without_tls():
    with fake_servers.mysql(plugin="mysql_native_password") as server:
        error = connect(target("mysql", server.port, tls_mode="verify"))
    assert isinstance(error, TlsError)
    assert "handshake_response" not in server.events
    assert not server.received("monitor")
    assert not server.received(SECRET)


def test_mysql_with_tls_verify_refuses_an_unverified_certificate_before_the_password():
    with fake_servers.mysql(plugin="caching_sha2_password", tls=True) as server:
        error = connect(target("mysql", server.port, tls_mode="verify"))
    assert isinstance(error, TlsError)
    assert "handshake_response" not in server.events
    assert not server.received(SECRET)


def test_mysql_with_tls_required_never_sends_the_password_to_a_server_without_tls():
    # MariaDB Connector/C does not refuse a server without TLS before the handshake
    # response; that response carries a challenge-response answer, never the password.
    with fake_servers.mysql(plugin="mysql_native_password") as server:
        connect(target("mysql", server.port, tls_mode="required"))
    assert "handshake_response" in server.events
    assert not server.received(SECRET)


@pytest.mark.parametrize("client", ["8.0.36", "3.3.9", "", "unknown"])
def test_mysql_refuses_a_client_library_that_cannot_restrict_plugins(monkeypatch, client):
    monkeypatch.setattr(mysql_engine.MySQLdb, "get_client_info", lambda: client)
    with fake_servers.mysql(plugin="mysql_clear_password") as server:
        error = connect(target("mysql", server.port))
    assert isinstance(error, EngineFailure)
    assert "cannot restrict authentication plugins" in str(error)
    assert server.connections == 0


def test_the_linked_mysql_client_restricts_plugins():
    mysql_engine._require_restricted_auth()  # raises when it cannot


def test_only_tls_verify_allows_the_plugins_that_hand_over_the_password():
    text = mysql_engine.AUTH_OPTIONS_FILE.read_text()
    groups = {}
    for block in text.split("[")[1:]:
        name, _, body = block.partition("]")
        line = next(ln for ln in body.splitlines() if ln.startswith("restricted-auth="))
        groups[name] = set(line.split("=", 1)[1].split(","))
    default = groups[mysql_engine.AUTH_GROUP_DEFAULT]
    verified = groups[mysql_engine.AUTH_GROUPS["verify"]]
    assert default == {"mysql_native_password", "client_ed25519", "parsec"}
    assert verified == default | {"caching_sha2_password", "sha256_password"}
    for mode in ("disabled", "preferred", "required"):
        assert mysql_engine.AUTH_GROUPS.get(mode, mysql_engine.AUTH_GROUP_DEFAULT) == (
            mysql_engine.AUTH_GROUP_DEFAULT
        )


# --- SQL Server: the login message never goes out without TLS -----------------------------


@pytest.mark.parametrize("tls_mode", ["disabled", "preferred", "required", "verify"])
def test_sqlserver_never_sends_the_login_to_a_server_that_will_not_encrypt(tls_mode):
    # TDS's LOGIN7 carries the password merely obfuscated; with Encrypt=no the driver sends
    # it in clear to a server that answers the pre-login with "encryption not supported".
    with fake_servers.sqlserver() as server:
        error = connect(target("sqlserver", server.port, tls_mode=tls_mode))
    assert "prelogin" in server.events
    assert "login7" not in server.events
    assert not server.received(SECRET)
    assert isinstance(error, TlsError)


# --- The whole attack through the admin ---------------------------------------------------

SECRET_A = "secret-of-A-c0ffee"
SECRET_B = "secret-of-B-deadbeef"


@pytest.fixture
def scoped_dba(roles, settings):
    settings.WHALEFALL_ALLOWED_TARGETS = ["127.0.0.0/8", "10.0.0.0/8"]
    settings.WHALEFALL_ALLOW_LOOPBACK = True
    cred_a = CredentialFactory(name="cred-a", secret=SECRET_A)
    cred_b = CredentialFactory(name="cred-b", secret=SECRET_B)
    a = InstanceFactory(name="instance-a", credential=cred_a, host="10.0.0.1")
    InstanceFactory(name="instance-b", credential=cred_b, host="10.0.0.2")
    dba = UserFactory(username="scoped-dba", roles=["DBAs (scoped)"])
    for perm in ("view_instance", "change_instance", "test_connection"):
        assign_perm(f"inventory.{perm}", dba, a)
    return dba, a, cred_a, cred_b


def point(client, instance: Instance, engine: str, port: int, credential) -> int:
    response = client.post(
        f"/admin/inventory/instance/{instance.pk}/change/",
        {
            "name": instance.name,
            "engine": engine,
            "host": "127.0.0.1",
            "port": port,
            "database_name": "",
            "credential": credential.pk,
            "tls_mode": "preferred",
            "is_active": "on",
        },
    )
    return response.status_code


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("engine", "listener"),
    [
        ("postgresql", lambda: fake_servers.postgresql(auth="cleartext")),
        ("postgresql", lambda: fake_servers.postgresql(auth="md5")),
        ("mysql", lambda: fake_servers.mysql(plugin="mysql_clear_password")),
        ("mysql", lambda: fake_servers.mysql(plugin="caching_sha2_password")),
    ],
)
def test_a_scoped_dba_cannot_exfiltrate_a_secret_through_a_listener_of_their_own(
    client, scoped_dba, engine, listener
):
    dba, a, cred_a, cred_b = scoped_dba
    client.force_login(dba)
    with listener() as server:
        # Instance B's credential on A: refused, so B's secret never leaves.
        assert point(client, a, engine, server.port, cred_b) == 200
        a.refresh_from_db()
        assert a.credential == cred_a
        # A's own credential, pointed at the listener: allowed, and tested.
        assert point(client, a, engine, server.port, cred_a) == 302
        a.refresh_from_db()
        assert (a.host, a.port, a.credential) == ("127.0.0.1", server.port, cred_a)
        response = client.post(f"/admin/inventory/instance/{a.pk}/test-connection/", follow=True)
    assert server.connections >= 1  # the test did reach the listener
    assert "Authentication failed" in response.content.decode()
    assert not server.received(SECRET_B)
    assert not server.received(SECRET_A)

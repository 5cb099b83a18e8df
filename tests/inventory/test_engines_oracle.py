"""The Oracle engine: through the fake server, and with the real driver on local sockets."""

import asyncio
import datetime
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import oracledb
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from oracledb import errors as oracle_errors

from inventory.engines.base import (
    AuthenticationFailed,
    ConnectionTarget,
    EngineError,
    EngineFailure,
    Timeout,
    TlsError,
    Unreachable,
    engine_class,
)
from tests import fakedb

SECRET = "Wf;t3st}pa55=w0rd"


def target(**overrides) -> ConnectionTarget:
    values = {
        "engine": "oracle",
        "host": "oracle.example.test",
        "port": 1521,
        "database": "",
        "username": "mon",
        "secret": SECRET,
        "tls_mode": "preferred",
        "connect_timeout": 7.0,
        "query_timeout": 120.0,
    }
    return ConnectionTarget(**(values | overrides))


def open_engine(connection_target: ConnectionTarget | None = None):
    return engine_class("oracle")(connection_target or target())


# --- Connecting ---------------------------------------------------------------------------


def test_connects_and_prefers_the_session_version_to_the_banner(fake_oracle):
    with open_engine() as engine:
        version = engine.server_version()

    # BANNER says "Release 19.0.0.0.0"; the session knows the release update.
    assert version.raw == "Oracle Database 19c Enterprise Edition Release 19.0.0.0.0 - Production"
    assert (version.major_minor, version.full) == ("19.3", "19.3.0.0.0")
    assert fake_oracle.statements == ["SELECT banner FROM v$version WHERE banner LIKE 'Oracle%'"]


@pytest.mark.parametrize(
    ("v_version", "session_version", "major_minor", "full"),
    [
        pytest.param(fakedb.ORACLE_11G_V_VERSION, "11.2.0.1.0", "11.2", "11.2.0.1.0", id="11g"),
        pytest.param(fakedb.ORACLE_23AI_V_VERSION, "23.5.0.24.7", "23.5", "23.5.0.24.7", id="23ai"),
        # A session that does not report a five-part version: the banner decides.
        pytest.param(fakedb.ORACLE_19C_V_VERSION, "", "19.0", "19.0.0.0.0", id="no-session"),
    ],
)
def test_version_across_releases(fake_oracle, v_version, session_version, major_minor, full):
    fake_oracle.v_version = v_version
    fake_oracle.version = session_version

    with open_engine() as engine:
        version = engine.server_version()

    assert version.raw.startswith("Oracle Database ")
    assert (version.major_minor, version.full) == (major_minor, full)


def test_the_connect_arguments_carry_the_target(fake_oracle):
    with open_engine(target(database="INVENTORY", connect_timeout=7.0)):
        pass

    (attempt,) = fake_oracle.attempts
    assert attempt.kwargs == {
        "dsn": None,
        "user": "mon",
        "password": SECRET,
        "host": "oracle.example.test",
        "port": 1521,
        "service_name": "INVENTORY",
        "protocol": "tcp",
        "ssl_server_dn_match": False,
        "ssl_context": None,
        "tcp_connect_timeout": 7.0,
        "program": "whalefall",
    }


def test_orcl_is_the_default_service(fake_oracle):
    with open_engine(target(database="")):
        pass

    assert fake_oracle.attempts[0].kwargs["service_name"] == "ORCL"


@pytest.mark.parametrize(
    ("tls_mode", "protocol", "dn_match", "verifies_certificate"),
    [
        ("disabled", "tcp", False, None),
        ("preferred", "tcp", False, None),  # Oracle has no opportunistic TLS
        ("required", "tcps", False, False),
        ("verify", "tcps", True, True),  # thin mode's default context verifies
    ],
)
def test_tls_mode_picks_the_protocol_and_certificate_checks(
    fake_oracle, tls_mode, protocol, dn_match, verifies_certificate
):
    with open_engine(target(tls_mode=tls_mode)):
        pass

    kwargs = fake_oracle.attempts[0].kwargs
    assert kwargs["protocol"] == protocol
    assert kwargs["ssl_server_dn_match"] is dn_match
    context = kwargs["ssl_context"]
    if verifies_certificate is False:
        assert context.verify_mode == ssl.CERT_NONE
        assert not context.check_hostname
    else:
        assert context is None


def test_the_call_timeout_is_set_in_milliseconds_before_the_first_statement(fake_oracle):
    with open_engine(target(query_timeout=120.0)) as engine:
        engine.server_version()

    (connection,) = fake_oracle.connections
    assert connection.call_timeout == 120_000
    assert [s.timeout for s in fake_oracle.executed] == [120_000]


def test_the_connection_is_closed_on_exit(fake_oracle):
    with open_engine() as engine:
        pass

    assert fake_oracle.connections[0].closed
    assert engine.connection is None


def test_the_fake_rejects_what_the_driver_rejects(fake_oracle):
    async def connect(**kwargs):
        return await oracledb.connect_async(**kwargs)

    with pytest.raises(TypeError, match="ssl_verify"):
        asyncio.run(connect(user="mon", ssl_verify=False))
    # Like the driver, connect_async starts at once and needs a running event loop.
    with pytest.raises(RuntimeError, match="no running event loop"):
        oracledb.connect_async(user="mon")


def test_the_fake_answers_v_version_like_the_view(fake_oracle):
    fake_oracle.v_version = fakedb.ORACLE_11G_V_VERSION

    with open_engine() as engine:
        banners = engine.query("SELECT banner FROM v$version")
        with pytest.raises(EngineFailure, match="ORA-00904"):
            engine.run(engine.query, "SELECT banner_full FROM v$version")

    assert len(banners) == 5


def test_an_unknown_statement_fails_loudly(fake_oracle):
    with open_engine() as engine, pytest.raises(EngineFailure) as raised:
        engine.run(engine.query, "SELECT username FROM dba_users")

    assert "no catalog entry" in str(raised.value)
    assert fake_oracle.unmatched == ["SELECT username FROM dba_users"]
    fake_oracle.unmatched.clear()  # expected here; any other test would fail at teardown


# --- Errors -------------------------------------------------------------------------------

CONNECT_ERRORS = [
    pytest.param(fakedb.oracle_invalid_credentials(), AuthenticationFailed, id="ORA-01017"),
    pytest.param(fakedb.oracle_account_locked(), AuthenticationFailed, id="ORA-28000"),
    pytest.param(fakedb.oracle_connection_refused(), Unreachable, id="DPY-6005-refused"),
    pytest.param(fakedb.oracle_certificate_untrusted(), TlsError, id="DPY-6005-certificate"),
    pytest.param(
        fakedb.oracle_certificate_name_mismatch("oracle.example.test"),
        TlsError,
        id="DPY-6006-name",
    ),
    pytest.param(
        fakedb.oracle_server_error(12170, "TNS:Connect timeout occurred"), Timeout, id="ORA-12170"
    ),
    pytest.param(
        socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
        Unreachable,
        id="gaierror",
    ),
]


@pytest.mark.parametrize(("driver_error", "expected"), CONNECT_ERRORS)
def test_connect_errors_are_classified(fake_oracle, driver_error, expected):
    fake_oracle.fail_connect(driver_error)

    with pytest.raises(expected) as raised, open_engine():
        pass

    assert str(raised.value).startswith(f"{expected.label}: ")
    assert SECRET not in str(raised.value)
    assert raised.value.__cause__ is None


@pytest.mark.parametrize("connection_id", ["aSSLb+TLSc/tcpsdQRSTUv==", "x0ssl1tls2TCPS3abcdefg=="])
def test_a_connection_id_that_spells_tls_does_not_make_a_refusal_a_tls_error(
    fake_oracle, connection_id
):
    fake_oracle.fail_connect(fakedb.oracle_connection_refused(connection_id=connection_id))

    with pytest.raises(Unreachable), open_engine():
        pass


def test_a_server_that_never_answers_times_out_within_the_connect_timeout(fake_oracle):
    fake_oracle.connect_hangs = True

    started = time.monotonic()
    with pytest.raises(Timeout) as raised, open_engine(target(connect_timeout=0.3)):
        pass

    assert time.monotonic() - started < 0.3 + 1
    assert str(raised.value) == "Timed out: the server did not answer in time"


@pytest.mark.parametrize(
    ("driver_error", "expected"),
    [
        pytest.param(fakedb.oracle_call_timeout(120_000), Timeout, id="DPY-4024"),
        pytest.param(
            fakedb.oracle_server_error(1013, "user requested cancel of current operation"),
            Timeout,
            id="ORA-01013",
        ),
        pytest.param(fakedb.oracle_table_missing(), EngineFailure, id="ORA-00942"),
    ],
)
def test_statement_errors_are_classified(fake_oracle, driver_error, expected):
    fake_oracle.on(r"^SELECT 1 FROM dual$", driver_error)

    with open_engine() as engine, pytest.raises(expected):
        engine.run(engine.query, "SELECT 1 FROM dual")


def test_the_secret_is_scrubbed_when_the_driver_echoes_it(fake_oracle):
    fake_oracle.fail_connect(
        fakedb.oracle_driver_error(
            oracle_errors.ERR_CONNECTION_FAILED,
            cause=ValueError(f"bad descriptor (PASSWORD={SECRET})"),
            connection_id=fakedb.ORACLE_CONNECTION_ID,
        )
    )

    with pytest.raises(Unreachable) as raised, open_engine():
        pass

    assert SECRET not in str(raised.value)
    assert "DPY-6005" in str(raised.value)


# --- The real driver against local sockets ------------------------------------------------


def real_target(port: int, **overrides) -> ConnectionTarget:
    return target(host="127.0.0.1", port=port, **overrides)


def test_the_real_driver_finds_a_closed_port(closed_port):
    started = time.monotonic()
    with pytest.raises(Unreachable) as raised, open_engine(real_target(closed_port)):
        pass

    assert time.monotonic() - started < 1
    assert "Connect call failed" in str(raised.value)


def test_the_real_driver_is_bounded_on_a_server_that_never_answers(silent_listener):
    # Thin mode alone would wait forever here: tcp_connect_timeout covers the TCP connect only.
    started = time.monotonic()
    with pytest.raises(Timeout), open_engine(real_target(silent_listener.port, connect_timeout=2)):
        pass

    assert silent_listener.accepted, "the driver never reached the listener"
    assert time.monotonic() - started < 2 + 1


def test_the_real_driver_finds_an_unknown_host():
    # Thin mode lets the resolver's socket.gaierror through without wrapping it.
    unknown_host = target(host="no-such-host.invalid", connect_timeout=5)
    with pytest.raises(Unreachable, match="Name or service not known"), open_engine(unknown_host):
        pass


@dataclass
class TlsListener:
    """A local TLS server with a self-signed certificate; records completed handshakes."""

    port: int
    handshakes: list[str] = field(default_factory=list)


@pytest.fixture
def tls_listener(tmp_path: Path) -> Iterator[TlsListener]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "oracle.example.test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")

    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    listener = TlsListener(port=server.getsockname()[1])
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _address = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection.settimeout(2)
            try:
                with context.wrap_socket(connection, server_side=True) as tls:
                    listener.handshakes.append(tls.version() or "")
                    tls.recv(1024)  # the client's first packet, then hang up
            except (OSError, ssl.SSLError):
                connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener
    stop.set()
    thread.join(timeout=2)
    server.close()


def test_the_real_driver_refuses_an_untrusted_certificate_in_verify_mode(tls_listener):
    verify = real_target(tls_listener.port, tls_mode="verify", connect_timeout=3)
    with pytest.raises(TlsError) as raised, open_engine(verify):
        pass

    assert "certificate verify failed" in str(raised.value)
    assert not tls_listener.handshakes


def test_the_real_driver_encrypts_without_verifying_in_required_mode(tls_listener):
    # The listener hangs up after the handshake, so the session fails, but not on TLS.
    required = real_target(tls_listener.port, tls_mode="required", connect_timeout=3)
    with pytest.raises(EngineError) as raised, open_engine(required):
        pass

    assert tls_listener.handshakes, "no TLS handshake completed"
    assert not isinstance(raised.value, TlsError), raised.value

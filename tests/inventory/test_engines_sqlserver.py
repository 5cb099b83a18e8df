"""The SQL Server engine: through the fake server, and with the real driver on local sockets."""

import time

import mssql_python
import pytest
from mssql_python.exceptions import ConnectionStringParseError

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
        "engine": "sqlserver",
        "host": "mssql.example.test",
        "port": 1433,
        "database": "",
        "username": "mon",
        "secret": SECRET,
        "tls_mode": "preferred",
        "connect_timeout": 7.0,
        "query_timeout": 120.0,
    }
    return ConnectionTarget(**(values | overrides))


def open_engine(connection_target: ConnectionTarget | None = None):
    return engine_class("sqlserver")(connection_target or target())


# --- Connecting ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recorded", "major_minor", "full"),
    [
        (fakedb.SQLSERVER_2016_VERSION, "13.0", "13.0.6300.2"),
        (fakedb.SQLSERVER_2019_VERSION, "15.0", "15.0.4198.2"),
        (fakedb.SQLSERVER_2022_VERSION, "16.0", "16.0.4115.5"),
    ],
)
def test_connects_and_reads_the_version(fake_sqlserver, recorded, major_minor, full):
    fake_sqlserver.version = recorded

    with open_engine() as engine:
        version = engine.server_version()

    assert version.raw == recorded.strip()
    assert (version.major_minor, version.full) == (major_minor, full)
    assert fake_sqlserver.statements == ["SELECT @@VERSION"]


def test_the_connection_string_carries_the_target(fake_sqlserver):
    with open_engine(target(database="inventory")):
        pass

    (attempt,) = fake_sqlserver.attempts
    # The secret went through the driver's own parser intact, braces and all.
    assert attempt.params == {
        "server": "tcp:mssql.example.test,1433",
        "database": "inventory",
        "uid": "mon",
        "pwd": SECRET,
        "applicationintent": "ReadOnly",
        "encrypt": "yes",
        "trustservercertificate": "yes",
    }
    assert attempt.kwargs["autocommit"] is True


def test_master_is_the_default_database(fake_sqlserver):
    with open_engine(target(database="")):
        pass

    assert fake_sqlserver.attempts[0].params["database"] == "master"


@pytest.mark.parametrize(
    ("tls_mode", "encrypt", "trust_server_certificate"),
    [
        ("disabled", "yes", "yes"),  # never a login in clear (test_cleartext_refusal)
        ("preferred", "yes", "yes"),
        ("required", "yes", "yes"),
        ("verify", "yes", "no"),
    ],
)
def test_tls_mode_sets_encrypt_and_certificate_trust(
    fake_sqlserver, tls_mode, encrypt, trust_server_certificate
):
    with open_engine(target(tls_mode=tls_mode)):
        pass

    params = fake_sqlserver.attempts[0].params
    assert params["encrypt"] == encrypt
    assert params.get("trustservercertificate") == trust_server_certificate


def test_both_timeouts_are_applied_before_the_first_statement(fake_sqlserver):
    with open_engine(target(connect_timeout=7.0, query_timeout=120.0)) as engine:
        engine.server_version()

    assert fake_sqlserver.attempts[0].kwargs["timeout"] == 7  # login timeout, seconds
    (connection,) = fake_sqlserver.connections
    assert connection.timeout == 120  # statement timeout, seconds
    assert [s.timeout for s in fake_sqlserver.executed] == [120]


def test_fractional_timeouts_are_rounded_to_whole_seconds_of_at_least_one(fake_sqlserver):
    with open_engine(target(connect_timeout=0.2, query_timeout=2.6)):
        pass

    assert fake_sqlserver.attempts[0].kwargs["timeout"] == 1
    assert fake_sqlserver.connections[0].timeout == 3


def test_the_connection_is_closed_on_exit_and_after_a_failure(fake_sqlserver):
    fake_sqlserver.on(r"^SELECT @@VERSION$", fakedb.mssql_query_timeout())

    with pytest.raises(Timeout), open_engine() as engine:
        engine.server_version()

    assert fake_sqlserver.connections[0].closed


def test_the_fake_rejects_what_the_driver_rejects(fake_sqlserver):
    # mssql-python sets APP itself and refuses a connection string that names it.
    with pytest.raises(ConnectionStringParseError, match="Reserved keyword 'app'"):
        mssql_python.connect("Server=tcp:db,1433;APP=whalefall")


def test_an_unknown_statement_fails_loudly(fake_sqlserver):
    with open_engine() as engine, pytest.raises(EngineFailure) as raised:
        engine.run(engine.query, "SELECT name FROM sys.no_such_view")

    assert "no catalog entry" in str(raised.value)
    assert fake_sqlserver.unmatched == ["SELECT name FROM sys.no_such_view"]
    fake_sqlserver.unmatched.clear()  # expected here; any other test would fail at teardown


# --- Errors -------------------------------------------------------------------------------

CONNECT_ERRORS = [
    pytest.param(fakedb.mssql_login_failed(), AuthenticationFailed, id="login-failed"),
    pytest.param(fakedb.mssql_port_refused(), Unreachable, id="port-refused"),
    pytest.param(fakedb.mssql_host_unknown(), Unreachable, id="host-unknown"),
    pytest.param(fakedb.mssql_network_timeout(), Timeout, id="network-timeout"),
    pytest.param(fakedb.mssql_login_timeout(), Timeout, id="login-timeout"),
    pytest.param(fakedb.mssql_certificate_untrusted(), TlsError, id="certificate-untrusted"),
]


@pytest.mark.parametrize(("driver_error", "expected"), CONNECT_ERRORS)
def test_connect_errors_are_classified(fake_sqlserver, driver_error, expected):
    fake_sqlserver.fail_connect(driver_error)

    with pytest.raises(expected) as raised, open_engine():
        pass

    assert str(raised.value).startswith(f"{expected.label}: ")
    assert SECRET not in str(raised.value)
    assert raised.value.__cause__ is None


@pytest.mark.parametrize(
    ("driver_error", "expected"),
    [
        pytest.param(fakedb.mssql_query_timeout(), Timeout, id="query-timeout"),
        pytest.param(fakedb.mssql_invalid_object("sys.dm_os_sys_info"), EngineFailure, id="208"),
    ],
)
def test_statement_errors_are_classified(fake_sqlserver, driver_error, expected):
    fake_sqlserver.on(r"^SELECT 1$", driver_error)

    with open_engine() as engine, pytest.raises(expected):
        engine.run(engine.query, "SELECT 1")


def test_a_login_failure_names_the_login(fake_sqlserver):
    fake_sqlserver.fail_connect(fakedb.mssql_login_failed("mon"))

    with pytest.raises(AuthenticationFailed) as raised, open_engine():
        pass

    assert "Login failed for user 'mon'." in str(raised.value)


def test_the_secret_is_scrubbed_when_the_driver_echoes_it(fake_sqlserver):
    fake_sqlserver.fail_connect(
        fakedb.mssql_error(
            "28000",
            f"Login failed for user 'mon'. Reason: password '{SECRET}' did not match.",
            from_server=True,
        )
    )

    with pytest.raises(AuthenticationFailed) as raised, open_engine():
        pass

    assert SECRET not in str(raised.value)
    assert "password '***' did not match" in str(raised.value)


def test_a_connection_string_echoed_by_the_driver_loses_its_password(fake_sqlserver):
    fake_sqlserver.fail_connect(
        fakedb.mssql_error("08001", "Cannot open Server=tcp:db,1433;UID=mon;PWD=other-secret")
    )

    with pytest.raises(EngineError) as raised, open_engine():
        pass

    assert "other-secret" not in str(raised.value)


# --- The real driver against local sockets ------------------------------------------------


def real_target(port: int, connect_timeout: float) -> ConnectionTarget:
    return target(host="127.0.0.1", port=port, connect_timeout=connect_timeout)


def test_the_real_driver_accepts_the_connection_string_and_finds_a_closed_port(closed_port):
    started = time.monotonic()
    with pytest.raises(Unreachable) as raised, open_engine(real_target(closed_port, 1)):
        pass

    # ODBC Driver 18 retries a refused port until the login timeout expires.
    assert time.monotonic() - started < 1 + 1
    assert "TCP Provider" in str(raised.value)
    assert SECRET not in str(raised.value)


def test_the_real_driver_times_out_on_a_server_that_never_answers(silent_listener):
    started = time.monotonic()
    with pytest.raises(Timeout), open_engine(real_target(silent_listener.port, 2)):
        pass

    assert silent_listener.accepted, "the driver never reached the listener"
    assert time.monotonic() - started < 2 + 1

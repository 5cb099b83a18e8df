"""The MySQL/MariaDB engine against the local MariaDB and local sockets."""

import time
import uuid
from dataclasses import dataclass

import MySQLdb
import pytest

from inventory.engines.base import (
    AuthenticationFailed,
    ConnectionTarget,
    EngineFailure,
    Timeout,
    TlsError,
    Unreachable,
    connect,
    engine_class,
)
from tests.inventory.factories import CredentialFactory, InstanceFactory

HOST = "127.0.0.1"
PORT = 3306


@dataclass(frozen=True)
class Account:
    username: str
    password: str


def _root():
    return MySQLdb.connect(host=HOST, port=PORT, user="root", password="", autocommit=True)


@pytest.fixture(scope="module")
def server_version() -> str:
    connection = _root()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT VERSION()")
            return cursor.fetchone()[0]
    finally:
        connection.close()


@pytest.fixture(scope="module")
def monitor() -> Account:
    """A monitoring account as the engine documents it, with a password full of quoting."""
    account = Account(f"wf_test_mon_{uuid.uuid4().hex[:8]}", "Wf;t3st'pa55}w=rd")
    connection = _root()
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE USER %s@'%%' IDENTIFIED BY %s", (account.username, account.password)
            )
            cursor.execute("GRANT SELECT ON mysql.* TO %s@'%%'", (account.username,))
        yield account
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP USER IF EXISTS %s@'%%'", (account.username,))
        connection.close()


def target(account: Account, **overrides) -> ConnectionTarget:
    values = {
        "engine": "mysql",
        "host": HOST,
        "port": PORT,
        "database": "",
        "username": account.username,
        "secret": account.password,
        "tls_mode": "preferred",
        "connect_timeout": 2.0,
        "query_timeout": 10.0,
    }
    return ConnectionTarget(**(values | overrides))


def open_engine(connection_target: ConnectionTarget):
    return engine_class("mysql")(connection_target)


def failure(connection_target: ConnectionTarget, expected: type) -> tuple[Exception, float]:
    """Open a session that must fail with ``expected``; the error and how long it took."""
    started = time.monotonic()
    with pytest.raises(expected) as raised, open_engine(connection_target):
        pass
    return raised.value, time.monotonic() - started


# --- Connecting ---------------------------------------------------------------------------


@pytest.mark.parametrize("tls_mode", ["disabled", "preferred"])
def test_the_monitoring_account_connects_and_reads_the_version(monitor, server_version, tls_mode):
    with open_engine(target(monitor, tls_mode=tls_mode)) as engine:
        version = engine.server_version()
        current_user = engine.query("SELECT CURRENT_USER()")[0][0]

    assert version.raw == server_version
    assert "MariaDB" in version.raw
    assert version.major_minor == ".".join(server_version.split(".")[:2])
    assert version.full == server_version.split("-")[0]
    assert current_user == f"{monitor.username}@%"


def test_the_session_stops_statements_after_the_query_timeout(monitor):
    with open_engine(target(monitor, query_timeout=42)) as engine:
        (limit,) = engine.query("SELECT @@SESSION.max_statement_time")[0]

    assert float(limit) == 42


def test_the_session_is_closed_on_exit(monitor):
    with open_engine(target(monitor)) as engine:
        pass

    assert engine.connection is None


# --- Errors -------------------------------------------------------------------------------


def test_a_wrong_password_is_an_authentication_failure_without_the_password(monitor):
    wrong = "Wr0ng-pa55word-7731"

    error, _elapsed = failure(target(monitor, secret=wrong), AuthenticationFailed)

    assert wrong not in str(error)
    assert "Access denied" in str(error)
    # The driver exception (which saw the password) is not chained to the engine error.
    assert error.__cause__ is None
    assert error.__suppress_context__


def test_a_closed_port_is_unreachable_at_once(closed_port, monitor):
    error, elapsed = failure(target(monitor, port=closed_port), Unreachable)

    assert elapsed < 1
    assert monitor.password not in str(error)


def test_an_unknown_host_is_unreachable():
    account = Account("whalefall", "unused-secret")

    failure(target(account, host="no-such-host.invalid"), Unreachable)


def test_a_host_named_like_tls_is_still_unreachable():
    # "Unknown server host 'tls-db.invalid'" must not read as a TLS error.
    account = Account("whalefall", "unused-secret")

    failure(target(account, host="tls-db.invalid"), Unreachable)


def test_a_server_that_never_answers_times_out_within_the_connect_timeout(silent_listener):
    account = Account("whalefall", "unused-secret")

    _error, elapsed = failure(
        target(account, port=silent_listener.port, connect_timeout=2), Timeout
    )

    assert silent_listener.accepted, "the driver never reached the listener"
    assert elapsed < 2 + 1


def test_a_long_statement_times_out_on_the_server(monitor):
    with open_engine(target(monitor, query_timeout=1)) as engine:
        started = time.monotonic()
        with pytest.raises(Timeout) as raised:
            engine.run(engine.query, "SELECT SLEEP(5)")
        elapsed = time.monotonic() - started
        # The session survives its statement timeout.
        still_there = engine.query("SELECT 1")

    assert 0.9 < elapsed < 2.5
    assert "max_statement_time" in str(raised.value)
    assert still_there == [(1,)]


def test_a_failing_statement_is_an_engine_failure(monitor):
    with open_engine(target(monitor)) as engine, pytest.raises(EngineFailure) as raised:
        engine.run(engine.query, "SELECT * FROM mysql.no_such_table")

    assert "doesn't exist" in str(raised.value)


# --- TLS: the local MariaDB has no TLS ------------------------------------------------------


def test_required_tls_is_refused_by_a_server_without_tls(monitor):
    # MariaDB Connector/C connects in clear text despite ssl_mode=REQUIRED: the engine checks
    # the session cipher itself.
    error, _elapsed = failure(target(monitor, tls_mode="required"), TlsError)

    assert "did not encrypt" in str(error)


def test_verified_tls_is_refused_by_a_server_without_tls(monitor):
    error, _elapsed = failure(target(monitor, tls_mode="verify"), TlsError)

    assert "SSL is required, but the server does not support it" in str(error)
    assert monitor.password not in str(error)


# --- Through the model ----------------------------------------------------------------------


@pytest.mark.django_db
def test_an_instance_connects_with_its_stored_credential(monitor, server_version, settings):
    settings.WHALEFALL_ALLOWED_TARGETS = ["127.0.0.0/8"]
    instance = InstanceFactory(
        engine="mysql",
        host=HOST,
        port=PORT,
        credential=CredentialFactory(username=monitor.username, secret=monitor.password),
    )

    with connect(instance) as engine:
        version = engine.server_version()

    assert version.raw == server_version
    assert engine.target.query_timeout == settings.WHALEFALL_QUERY_TIMEOUT
    assert engine.target.connect_timeout == settings.WHALEFALL_CONNECT_TIMEOUT

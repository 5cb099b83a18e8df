"""The PostgreSQL engine against the local PostgreSQL server and local sockets.

The local server trusts every role on 127.0.0.1 except members of the NOLOGIN role
``whalefall_password_auth``, which must authenticate with a SCRAM password: the monitoring
role of these tests is one, so a wrong password is really refused.
"""

import time
import uuid
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql

from inventory.engines.base import (
    AuthenticationFailed,
    ConnectionTarget,
    EngineFailure,
    Timeout,
    TlsError,
    Unreachable,
    engine_class,
)

HOST = "127.0.0.1"
PORT = 5432


@dataclass(frozen=True)
class Account:
    username: str
    password: str


def _admin() -> psycopg.Connection:
    return psycopg.connect(
        host=HOST, port=PORT, user="postgres", dbname="postgres", autocommit=True
    )


@pytest.fixture(scope="module")
def server() -> dict[str, str]:
    with _admin() as connection:
        version, number, ssl = connection.execute(
            "SELECT version(), current_setting('server_version'), current_setting('ssl')"
        ).fetchone()
    return {"version": version, "server_version": number, "ssl": ssl}


@pytest.fixture(scope="module")
def monitor() -> Account:
    """A login role that must authenticate with its password."""
    account = Account(f"wf_test_mon_{uuid.uuid4().hex[:8]}", "Wf;t3st'pa55}w=rd")
    with _admin() as connection:
        connection.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE whalefall_password_auth").format(
                sql.Identifier(account.username), sql.Literal(account.password)
            )
        )
    try:
        yield account
    finally:
        with _admin() as connection:
            connection.execute(
                sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(account.username))
            )


def target(account: Account, **overrides) -> ConnectionTarget:
    values = {
        "engine": "postgresql",
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
    return engine_class("postgresql")(connection_target)


def failure(connection_target: ConnectionTarget, expected: type) -> tuple[Exception, float]:
    """Open a session that must fail with ``expected``; the error and how long it took."""
    started = time.monotonic()
    with pytest.raises(expected) as raised, open_engine(connection_target):
        pass
    return raised.value, time.monotonic() - started


# --- Connecting ---------------------------------------------------------------------------


@pytest.mark.parametrize("tls_mode", ["disabled", "preferred"])
def test_the_monitoring_role_connects_and_reads_the_version(monitor, server, tls_mode):
    with open_engine(target(monitor, tls_mode=tls_mode)) as engine:
        version = engine.server_version()
        role, database = engine.query("SELECT current_user, current_database()")[0]

    assert version.raw == server["version"]
    assert version.raw.startswith("PostgreSQL ")
    assert version.major_minor == server["server_version"].split(" ")[0]
    assert version.full == server["server_version"].split(" ")[0]
    assert (role, database) == (monitor.username, "postgres")


def test_the_session_is_read_only_with_the_statement_timeout(monitor):
    with open_engine(target(monitor, query_timeout=42)) as engine:
        settings = dict(
            engine.query(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('statement_timeout', 'default_transaction_read_only', 'application_name')"
            )
        )
        with pytest.raises(EngineFailure) as raised:
            engine.run(engine.query, "CREATE TEMPORARY TABLE wf_probe (id int)")

    assert settings == {
        "statement_timeout": "42000",
        "default_transaction_read_only": "on",
        "application_name": "whalefall",
    }
    assert "read-only transaction" in str(raised.value)


def test_the_session_is_closed_on_exit(monitor):
    with open_engine(target(monitor)) as engine:
        connection = engine.connection

    assert engine.connection is None
    assert connection.closed


# --- Errors -------------------------------------------------------------------------------


def test_a_wrong_password_is_an_authentication_failure_without_the_password(
    monitor, postgres_password_auth
):
    wrong = "Wr0ng-pa55word-7731"

    error, _elapsed = failure(target(monitor, secret=wrong), AuthenticationFailed)

    assert wrong not in str(error)
    assert "password authentication failed" in str(error)
    assert error.__cause__ is None
    assert error.__suppress_context__


def test_a_closed_port_is_unreachable_at_once(closed_port, monitor):
    error, elapsed = failure(target(monitor, port=closed_port), Unreachable)

    assert elapsed < 1
    assert "Connection refused" in str(error)
    assert monitor.password not in str(error)


def test_an_unknown_host_is_unreachable():
    failure(target(Account("whalefall", "unused"), host="no-such-host.invalid"), Unreachable)


def test_a_host_named_like_tls_is_still_unreachable():
    # "failed to resolve host 'tls-db.invalid'" must not read as a TLS error.
    failure(target(Account("whalefall", "unused"), host="tls-db.invalid"), Unreachable)


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
            engine.run(engine.query, "SELECT pg_sleep(5)")
        elapsed = time.monotonic() - started
        still_there = engine.query("SELECT 1")

    assert 0.9 < elapsed < 2.5
    assert "statement timeout" in str(raised.value)
    assert still_there == [(1,)]


def test_a_missing_database_is_an_engine_failure(monitor):
    error, _elapsed = failure(target(monitor, database="wf_no_such_database"), EngineFailure)

    assert 'database "wf_no_such_database" does not exist' in str(error)


# --- TLS ------------------------------------------------------------------------------------


def test_verified_tls_fails_against_this_server(monitor, server):
    # Without SSL: "server does not support SSL, but SSL was required"; with SSL, verify-full
    # has no root certificate to check the server's against.
    error, _elapsed = failure(target(monitor, tls_mode="verify"), TlsError)

    assert monitor.password not in str(error)


def test_required_tls_fails_against_a_server_without_ssl(monitor, server):
    if server["ssl"] != "off":
        pytest.skip("the local server has SSL enabled")

    error, _elapsed = failure(target(monitor, tls_mode="required"), TlsError)

    assert "server does not support SSL" in str(error)

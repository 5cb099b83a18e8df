"""An engine that stops answering after the login is reported as timed out, not as
unreachable; a session the server ends is still unreachable.

Against the real local MariaDB, reached through a proxy on a free port that goes silent
after the login (tests/faults/servers.py), with a prefixed account dropped afterwards.
"""

import secrets
import time

import MySQLdb
import pytest

from inventory.engines.base import ConnectionTarget, Timeout, Unreachable, engine_class
from tests.accounts.conftest import PASSWORD, MariaDB
from tests.faults import servers

QUERY_TIMEOUT = 1.0  # the client's read timeout is this plus the driver's 5 s margin


@pytest.fixture(scope="module")
def account():
    server = MariaDB(prefix=f"wfst{secrets.token_hex(2)}_")
    user = server.user("monitor")
    server.run(
        f"CREATE USER {user} IDENTIFIED BY '{PASSWORD}'", f"GRANT SELECT ON mysql.* TO {user}"
    )
    yield f"{server.prefix}monitor"
    server.close()


def engine_for(username: str, port: int):
    target = ConnectionTarget(
        engine="mysql",
        host="127.0.0.1",
        port=port,
        database="",
        username=username,
        secret=PASSWORD,
        connect_timeout=2.0,
        query_timeout=QUERY_TIMEOUT,
    )
    return engine_class("mysql")(target)


def test_a_query_that_stalls_after_login_times_out(account):
    with servers.stalling_proxy(3306) as proxy, engine_for(account, proxy.port) as engine:
        proxy.stall()
        started = time.monotonic()
        with pytest.raises(Timeout) as raised:
            engine.run(engine.list_accounts)
        elapsed = time.monotonic() - started

    assert str(raised.value).startswith(f"{Timeout.label}: ")
    assert PASSWORD not in str(raised.value)
    assert elapsed < QUERY_TIMEOUT + 10


def test_a_session_the_server_ends_mid_query_is_unreachable(account):
    root = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    try:
        with engine_for(account, 3306) as engine:
            session = engine.query("SELECT CONNECTION_ID()")[0][0]
            with root.cursor() as cursor:
                cursor.execute(f"KILL CONNECTION {int(session)}")
            with pytest.raises(Unreachable):
                engine.run(engine.query, "SELECT 1")
    finally:
        root.close()

"""A monitoring account denied one grant table: the error names the grant it lacks.

Against the real local MariaDB: a prefixed account with table-level SELECT on every grant
table the engine reads but one, dropped afterwards.
"""

import secrets

import pytest

from inventory.engines.base import InsufficientPrivileges
from tests.accounts.conftest import PASSWORD, MariaDB
from tests.inventory.test_engines_mysql_grants import read

# The grant tables MariaDB 10.4+ is read from (MySQL 8 adds its role tables).
GRANT_TABLES = (
    "global_priv",
    "db",
    "tables_priv",
    "columns_priv",
    "procs_priv",
    "proxies_priv",
    "roles_mapping",
)


@pytest.fixture(scope="module")
def server():
    server = MariaDB(prefix=f"wfd{secrets.token_hex(2)}_")
    yield server
    server.close()


@pytest.mark.parametrize("denied", GRANT_TABLES)
def test_a_grant_table_the_account_cannot_read_is_named_as_a_missing_privilege(server, denied):
    account = server.user(f"m_{denied}")
    server.run(f"CREATE USER {account} IDENTIFIED BY '{PASSWORD}'")
    server.run(*(f"GRANT SELECT ON mysql.{t} TO {account}" for t in GRANT_TABLES if t != denied))

    with pytest.raises(InsufficientPrivileges) as raised:
        read(f"{server.prefix}m_{denied}")

    message = str(raised.value)
    assert message.startswith(f"{InsufficientPrivileges.label}: ")
    assert f"mysql.{denied}" in message
    assert "GRANT SELECT ON mysql.*" in message
    assert PASSWORD not in message

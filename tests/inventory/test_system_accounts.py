"""System accounts are matched exactly, with each engine's rules for the case of names."""

import pytest

from inventory.engines.base import is_system_account


@pytest.mark.parametrize(
    ("engine", "name", "system"),
    [
        ("mysql", "mariadb.sys@localhost", True),
        ("mysql", "mariadb.sys@LOCALHOST", True),  # hosts compare without case
        ("mysql", "MARIADB.SYS@localhost", False),  # user names do not: another account
        ("mysql", "mariadb.sys@%", False),
        ("mysql", "mysql.backup@%", False),
        ("mysql", "@localhost", False),  # anonymous accounts are listed
        ("postgresql", "pg_monitor", True),
        ("postgresql", "PG_ADMIN", False),  # a quoted, upper-case name is an ordinary role
        ("oracle", "SYS", True),
        ("oracle", "sys", False),  # a quoted lower-case user is not SYS
        ("sqlserver", "NT AUTHORITY\\SYSTEM", True),
        ("sqlserver", "nt authority\\system", True),  # SQL Server names follow the collation
    ],
)
def test_system_accounts_are_matched_exactly(engine, name, system):
    assert is_system_account(engine, name) is system

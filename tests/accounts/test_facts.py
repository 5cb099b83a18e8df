"""accounts.facts: capabilities per engine (SPEC §5.1, predecessor §2.4 corrected)."""

import pytest

from accounts.facts import derive_facts


def facts(engine, attributes=None, roles=(), grants=()):
    return derive_facts(
        {
            "engine": engine,
            "attributes": attributes or {},
            "roles": list(roles),
            "grants": list(grants),
        }
    )


def test_output_shape():
    result = facts(
        "mysql", {"locked": False, "can_login": True}, ["r2", "r1"], [("global", "", "SELECT", "")]
    )
    assert set(result) == {"engine", "capabilities", "roles", "grants"}
    assert result["roles"] == ["r1", "r2"]
    assert result["grants"] == [
        {"scope": "global", "object": "", "privilege": "SELECT", "option": ""}
    ]
    assert result["capabilities"] == ["can_login"]


@pytest.mark.parametrize(
    ("engine", "attributes", "roles", "grants", "expected"),
    [
        # MySQL / MariaDB
        ("mysql", {"superuser": True}, [], [], {"SUPERUSER", "superuser"}),
        ("mysql", {}, [], [("global", "", "SELECT", "GRANT")], {"GRANT_ADMIN"}),
        ("mysql", {}, [], [("database", "shop", "SELECT", "GRANT")], set()),
        ("mysql", {"locked": True}, [], [], {"LOCKED", "locked"}),
        # PostgreSQL
        (
            "postgresql",
            {"superuser": True, "can_login": True},
            [],
            [],
            {"SUPERUSER", "GRANT_ADMIN", "superuser", "can_login"},
        ),
        ("postgresql", {"create_role": True}, [], [], {"GRANT_ADMIN", "create_role"}),
        ("postgresql", {"locked": True, "can_login": False}, [], [], {"LOCKED", "locked"}),
        (
            "postgresql",
            {"create_db": True, "replication": True},
            [],
            [],
            {"create_db", "replication"},
        ),
        # SQL Server
        ("sqlserver", {}, ["sysadmin"], [], {"SUPERUSER", "GRANT_ADMIN"}),
        ("sqlserver", {}, ["securityadmin"], [], {"GRANT_ADMIN"}),
        ("sqlserver", {}, [], [("server", "", "CONTROL SERVER", "")], {"GRANT_ADMIN"}),
        ("sqlserver", {}, [], [("server", "", "CONTROL SERVER", "DENY")], set()),
        ("sqlserver", {"locked": True, "disabled": True}, [], [], {"LOCKED", "locked", "disabled"}),
        # Oracle
        ("oracle", {}, ["DBA"], [], {"SUPERUSER", "GRANT_ADMIN"}),
        ("oracle", {}, [], [("server", "", "GRANT ANY PRIVILEGE", "")], {"GRANT_ADMIN"}),
        ("oracle", {}, [], [("server", "", "GRANT ANY ROLE", "GRANT")], {"GRANT_ADMIN"}),
        (
            "oracle",
            {"locked": True, "account_status": "EXPIRED & LOCKED"},
            [],
            [],
            {"LOCKED", "locked"},
        ),
        (
            "oracle",
            {"account_status": "OPEN"},
            ["CONNECT"],
            [("server", "", "CREATE SESSION", "")],
            set(),
        ),
    ],
)
def test_capabilities(engine, attributes, roles, grants, expected):
    assert set(facts(engine, attributes, roles, grants)["capabilities"]) == expected


def test_role_names_are_exact():
    assert "SUPERUSER" not in facts("oracle", roles=["dba"])["capabilities"]
    assert "SUPERUSER" not in facts("sqlserver", roles=["SysAdmin"])["capabilities"]


def test_only_true_attributes_become_capabilities():
    result = facts(
        "postgresql",
        {"inherit": True, "bypass_rls": False, "connection_limit": 5, "valid_until": None},
    )
    assert result["capabilities"] == ["inherit"]

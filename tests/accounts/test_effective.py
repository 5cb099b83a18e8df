"""The pure resolver of effective privileges: role chains, SET ROLE, PUBLIC, capabilities."""

import pytest

from accounts.canonical import same_in_format_1
from accounts.effective import (
    diff_effective,
    effective_fingerprint,
    is_empty,
    node_from_raw,
    resolve,
    summarize,
)

PUBLIC = ("public", "PUBLIC", "")


def graph(engine, principals):
    """Nodes from engine-shaped privilege sets, keyed as the engines key them."""
    return {key: node_from_raw(key, {"engine": engine, **raw}) for key, raw in principals.items()}


def member(role, inherit=True, set_=True):
    return {"role": role, "inherit": inherit, "set": set_, "admin": False}


def grants_of(effective):
    return {
        (g["scope"], g["object"], g["privilege"], g["option"]): (tuple(g["via"]), g["set_role"])
        for g in effective["grants"]
    }


ALICE = ("user", "alice", "%")
R1, R2, R3 = ("role", "r1", ""), ("role", "r2", ""), ("role", "r3", "")


def test_a_role_chain_of_depth_three_gives_the_member_every_grant_with_its_path():
    nodes = graph(
        "mysql",
        {
            ALICE: {"grants": [("global", "", "PROCESS", "")], "memberships": [member(R1)]},
            R1: {"grants": [("database", "shop", "SELECT", "")], "memberships": [member(R2)]},
            R2: {"grants": [], "memberships": [member(R3)]},
            R3: {"grants": [("global", "", "ALL PRIVILEGES", "GRANT")]},
        },
    )
    result = resolve("mysql", nodes, [ALICE, R1, R2, R3])

    alice = grants_of(result[ALICE])
    assert ("global", "", "PROCESS", "") not in alice  # its own: the direct set holds it
    assert alice[("database", "shop", "SELECT", "")] == (("r1",), False)
    assert alice[("global", "", "ALL PRIVILEGES", "GRANT")] == (("r1", "r2", "r3"), False)
    assert result[ALICE]["roles"] == ["r1", "r2", "r3"]
    assert {"SUPERUSER", "GRANT_ADMIN", "ESCALATION"} <= set(result[ALICE]["capabilities"])
    # The role in the middle can do what r3 can; r3's own set is unchanged.
    assert "SUPERUSER" in result[R2]["capabilities"]
    assert result[R3]["roles"] == []


def test_roles_not_active_at_login_are_reached_through_set_role():
    nodes = graph(
        "mysql",
        {
            ALICE: {"grants": [], "memberships": [member(R1, inherit=False)]},
            R1: {"grants": [("global", "", "SUPER", "")], "memberships": [member(R2)]},
            R2: {"grants": [("database", "hr", "SELECT", "")]},
        },
    )
    alice = resolve("mysql", nodes, [ALICE])[ALICE]
    assert grants_of(alice)[("global", "", "SUPER", "")] == (("r1",), True)
    # Once SET ROLE is needed on a path, everything behind it needs it too.
    assert grants_of(alice)[("database", "hr", "SELECT", "")] == (("r1", "r2"), True)
    assert "SUPERUSER" in alice["capabilities"]


def test_an_edge_neither_inherited_nor_settable_gives_nothing():
    nodes = graph(
        "postgresql",
        {
            ("user", "bob", ""): {
                "grants": [],
                "memberships": [member(("role", "admins", ""), inherit=False, set_=False)],
            },
            ("role", "admins", ""): {"grants": [], "attributes": {"superuser": True}},
        },
    )
    bob = resolve("postgresql", nodes, [("user", "bob", "")])[("user", "bob", "")]
    assert bob["roles"] == []
    assert "SUPERUSER" not in bob["capabilities"]


def test_the_inherited_path_wins_over_a_shorter_set_role_path():
    nodes = graph(
        "mysql",
        {
            ALICE: {"grants": [], "memberships": [member(R3, inherit=False), member(R1)]},
            R1: {"grants": [], "memberships": [member(R3)]},
            R3: {"grants": [("database", "x", "SELECT", "")]},
        },
    )
    alice = resolve("mysql", nodes, [ALICE])[ALICE]
    assert grants_of(alice)[("database", "x", "SELECT", "")] == (("r1", "r3"), False)


def test_cycles_end():
    nodes = graph(
        "mysql",
        {
            R1: {"grants": [("database", "a", "SELECT", "")], "memberships": [member(R2)]},
            R2: {"grants": [("database", "b", "SELECT", "")], "memberships": [member(R1)]},
        },
    )
    result = resolve("mysql", nodes, [R1, R2])
    assert set(grants_of(result[R1])) == {("database", "b", "SELECT", "")}
    assert set(grants_of(result[R2])) == {("database", "a", "SELECT", "")}


@pytest.mark.parametrize(
    ("postgres_role", "capability"),
    [
        ({"superuser": True}, "SUPERUSER"),
        ({"create_role": True}, "ESCALATION"),
    ],
)
def test_postgresql_membership_of_a_powerful_role_counts_even_through_set_role(
    postgres_role, capability
):
    nodes = graph(
        "postgresql",
        {
            ("user", "app", ""): {
                "grants": [],
                "attributes": {"superuser": False, "inherit": False},
                "memberships": [member(("role", "ops", ""), inherit=False)],
            },
            ("role", "ops", ""): {"grants": [], "attributes": postgres_role},
        },
    )
    app = resolve("postgresql", nodes, [("user", "app", "")])[("user", "app", "")]
    assert capability in app["capabilities"]
    assert app["role_paths"] == [{"role": "ops", "via": [], "set_role": True}]


def test_postgresql_execute_server_program_is_escalation():
    nodes = graph(
        "postgresql",
        {
            ("user", "etl", ""): {
                "grants": [],
                "memberships": [member(("role", "pg_execute_server_program", ""))],
            },
            ("role", "pg_execute_server_program", ""): {"grants": [], "listed": False},
        },
    )
    etl = resolve("postgresql", nodes, [("user", "etl", "")])[("user", "etl", "")]
    assert etl["capabilities"] == ["ESCALATION"]


def test_public_counts_for_capabilities_but_its_grants_stay_on_public():
    nodes = graph(
        "mysql",
        {
            ALICE: {"grants": []},
            PUBLIC: {
                "grants": [("database", "mysql", "UPDATE", ""), ("database", "w", "SELECT", "")]
            },
        },
    )
    result = resolve("mysql", nodes, [ALICE, PUBLIC], public=PUBLIC)
    assert result[ALICE]["grants"] == []
    assert result[ALICE]["capabilities"] == ["ESCALATION"]
    assert result[PUBLIC]["capabilities"] == ["ESCALATION"]


@pytest.mark.parametrize(
    ("grant", "escalates"),
    [
        (("database", "mysql", "INSERT", ""), True),
        (("database", "my%", "UPDATE", ""), True),  # a LIKE pattern covering mysql
        (("database", "mysql", "SELECT", ""), False),
        (("table", "mysql.global_priv", "UPDATE", ""), True),
        (("table", "mysql.help_topic", "UPDATE", ""), False),
        (("table", '"mysql.user".x', "UPDATE", ""), False),  # a database named "mysql.user"
        (("global", "", "INSERT", ""), True),
        (("global", "", "CREATE USER", ""), True),
        (("global", "", "PROCESS", ""), False),
    ],
)
def test_mysql_write_access_to_the_grant_tables_is_escalation(grant, escalates):
    nodes = graph("mysql", {ALICE: {"grants": [grant]}})
    alice = resolve("mysql", nodes, [ALICE])[ALICE]
    assert ("ESCALATION" in alice["capabilities"]) is escalates


def test_mysql_anonymous_and_password_less_accounts():
    anonymous = ("user", "", "localhost")
    nodes = graph(
        "mysql",
        {
            anonymous: {
                "grants": [],
                "attributes": {"anonymous": True, "password_set": False, "plugin": ""},
            },
            ALICE: {
                "grants": [],
                "attributes": {"password_set": False, "plugin": "unix_socket"},
            },
        },
    )
    result = resolve("mysql", nodes, [anonymous, ALICE])
    assert result[anonymous]["capabilities"] == ["ANONYMOUS", "NO_PASSWORD"]
    assert result[ALICE]["capabilities"] == []  # the socket authenticates it


def test_sqlserver_deny_beats_grant_except_for_sysadmin():
    login = ("login", "app", "")
    sysadmin = ("role", "sysadmin", "")
    nodes = graph(
        "sqlserver",
        {
            login: {
                "grants": [("server", "", "CONTROL SERVER", "DENY")],
                "memberships": [member(("role", "ops", ""))],
            },
            ("role", "ops", ""): {"grants": [("server", "", "CONTROL SERVER", "")]},
            sysadmin: {"grants": [("server", "", "CONTROL SERVER", "")], "listed": False},
        },
    )
    assert resolve("sqlserver", nodes, [login])[login]["capabilities"] == []
    nodes[login].edges.append(node_from_raw(login, {"memberships": [member(sysadmin)]}).edges[0])
    assert "SUPERUSER" in resolve("sqlserver", nodes, [login])[login]["capabilities"]


def test_oracle_dba_through_a_chain_of_custom_roles():
    user = ("user", "SCOTT2", "")
    nodes = graph(
        "oracle",
        {
            user: {"grants": [], "memberships": [member(("role", "APP_ADMIN", ""))]},
            ("role", "APP_ADMIN", ""): {"grants": [], "memberships": [member(("role", "OPS", ""))]},
            ("role", "OPS", ""): {"grants": [], "memberships": [member(("role", "DBA", ""))]},
            ("role", "DBA", ""): {
                "grants": [("server", "", "GRANT ANY PRIVILEGE", "GRANT")],
                "listed": False,
            },
        },
    )
    scott = resolve("oracle", nodes, [user])[user]
    assert {"SUPERUSER", "GRANT_ADMIN", "ESCALATION"} <= set(scott["capabilities"])
    assert scott["grants"][0]["via"] == ["APP_ADMIN", "OPS", "DBA"]


def test_fingerprint_ignores_provenance_and_diff_names_the_role():
    before = {
        "capabilities": [],
        "roles": ["r1"],
        "grants": [
            {"scope": "database", "object": "a", "privilege": "SELECT", "option": "",
             "via": ["r1"], "set_role": False},
        ],
    }  # fmt: skip
    moved = {**before, "grants": [{**before["grants"][0], "via": ["r2"]}]}
    assert effective_fingerprint(before) == effective_fingerprint(moved)

    after = {
        "capabilities": ["SUPERUSER"],
        "roles": ["r1"],
        "grants": [
            *before["grants"],
            {"scope": "global", "object": "", "privilege": "SUPER", "option": "",
             "via": ["r1"], "set_role": False},
        ],
    }  # fmt: skip
    diff = diff_effective(before, after)
    assert not is_empty(diff)
    assert diff["via"] == ["r1"]
    assert summarize(diff) == "effective privileges changed via r1: +1 grant; SUPERUSER gained"
    assert is_empty(diff_effective(before, moved))

    # Granted to the account itself instead of through r1: it can still do it.
    own = [{"scope": "database", "object": "a", "privilege": "SELECT", "option": ""}]
    direct = {**before, "grants": []}
    assert is_empty(diff_effective(before, direct, [], own))


def test_a_set_in_format_1_equals_the_same_privileges_in_format_2():
    old = {
        "engine": "mysql",
        "attributes": {"plugin": "mysql_native_password", "locked": False},
        "roles": [],
        "grants": [
            {"scope": "table", "object": "shop.refund", "privilege": "EXECUTE", "option": ""},
            {"scope": "table", "object": "shop.orders", "privilege": "USAGE", "option": "GRANT"},
            {"scope": "column", "object": "shop.orders.c", "privilege": "SELECT", "option": ""},
            {"scope": "global", "object": "", "privilege": "PRIVILEGE BIT 40", "option": ""},
            {"scope": "global", "object": "@%", "privilege": "PROXY", "option": "GRANT"},
        ],
    }
    new = {
        "engine": "mysql",
        "attributes": {"plugin": "mysql_native_password", "locked": False, "password_set": True},
        "roles": [],
        "grants": [
            {"scope": "procedure", "object": "shop.refund", "privilege": "EXECUTE", "option": ""},
            {
                "scope": "column",
                "object": "shop.orders.c",
                "privilege": "SELECT",
                "option": "GRANT",
            },
            {"scope": "global", "object": '"".%', "privilege": "PROXY", "option": "GRANT"},
        ],
    }
    assert same_in_format_1(old, new)
    changed = {**new, "grants": [*new["grants"], {"scope": "global", "object": "",
                                                  "privilege": "SUPER", "option": ""}]}  # fmt: skip
    assert not same_in_format_1(old, changed)
    relocked = {**new, "attributes": {**new["attributes"], "locked": True}}
    assert not same_in_format_1(old, relocked)


def test_a_database_role_named_like_a_server_role_is_not_that_role():
    login = ("login", "app", "")
    impostor = ("role", "sysadmin", "Shop")  # CREATE ROLE sysadmin in one database
    nodes = graph(
        "sqlserver",
        {
            login: {"grants": [], "memberships": [member(impostor)]},
            impostor: {"grants": [("database", "Shop", "SELECT", "")], "listed": False},
        },
    )
    app = resolve("sqlserver", nodes, [login])[login]
    assert "SUPERUSER" not in app["capabilities"]
    assert app["grants"][0]["via"] == ["sysadmin@Shop"]

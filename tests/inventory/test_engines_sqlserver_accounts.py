"""SQL Server logins and privileges through the fake server's security catalog."""

import math

import pytest

from inventory.engines.base import (
    AccountRecord,
    ConnectionTarget,
    InsufficientPrivileges,
    engine_class,
)
from inventory.engines.sqlserver import DATABASE_BATCH
from tests import fakedb


def target(username: str = "mon") -> ConnectionTarget:
    return ConnectionTarget(
        engine="sqlserver",
        host="mssql.example.test",
        port=1433,
        database="",
        username=username,
        secret="Wf-t3st-pa55",
    )


def read(*, deep: bool = False):
    """(accounts by name, privilege sets, statements sent) of one session."""
    with engine_class("sqlserver")(target()) as engine:
        accounts = engine.run(engine.list_accounts)
        privileges = engine.run(engine.collect_privileges, accounts, deep=deep)
        return {a.name: a for a in accounts}, privileges, engine.queries


def login(name: str) -> tuple[str, str, str]:
    """The account key of a login (SQL or Windows user)."""
    return ("login", name, "")


def grants_of(privileges: dict, key: tuple | str, scope: str | None = None) -> set[tuple]:
    key = login(key) if isinstance(key, str) else key
    return {g for g in privileges[key]["grants"] if scope is None or g[0] == scope}


@pytest.fixture
def catalog(fake_sqlserver):
    """A server whose monitoring login ``mon`` holds the documented grants."""
    catalog = fake_sqlserver.use_catalog()
    catalog.create_login("mon")
    catalog.grant("VIEW ANY DEFINITION", to="mon")
    catalog.grant("CONNECT ANY DATABASE", to="mon")
    return catalog


@pytest.fixture
def shop(catalog):
    shop = catalog.create_database("Shop")
    shop.create_schema("sales")
    shop.create_object("sales.orders", columns=("id", "price"))
    return shop


# --- Listing ------------------------------------------------------------------------------


def test_lists_logins_groups_and_user_defined_server_roles(catalog):
    catalog.create_login("app")
    catalog.create_login("CORP\\alice", type="U")
    catalog.create_login("CORP\\dba-team", type="G")
    catalog.create_server_role("auditors")

    accounts, _privileges, _queries = read()

    assert {name: a.kind for name, a in accounts.items()} == {
        "sa": "login",
        "mon": "login",
        "app": "login",
        "CORP\\alice": "login",
        "CORP\\dba-team": "group",
        "auditors": "role",
        "PUBLIC": "public",
    }
    # Left out: ##MS_…## certificate logins, NT SERVICE\…, NT AUTHORITY\…, BUILTIN\… and
    # the fixed server roles; the server role public is the PUBLIC pseudo-account.


def test_a_monitoring_login_that_cannot_see_every_login_is_refused(catalog, fake_sqlserver):
    catalog.revoke("VIEW ANY DEFINITION", from_="mon")
    catalog.create_login("app")

    refusal = r"GRANT VIEW ANY DEFINITION TO \[mon\]"
    with (
        engine_class("sqlserver")(target()) as engine,
        pytest.raises(InsufficientPrivileges, match=refusal),
    ):
        engine.list_accounts()
    with engine_class("sqlserver")(target()) as engine, pytest.raises(InsufficientPrivileges):
        engine.collect_privileges([AccountRecord("app", kind="login")])

    # What the server would have answered without the check: only part of the logins.
    assert not catalog.sees_every_principal("mon", fake_sqlserver.version)
    visible = catalog.visible_principal_ids("mon", fake_sqlserver.version)
    assert catalog.principal("app")["principal_id"] not in visible


def test_view_any_security_definition_is_enough_on_sql_server_2022(catalog, fake_sqlserver):
    fake_sqlserver.version = fakedb.SQLSERVER_2022_VERSION
    catalog.revoke("VIEW ANY DEFINITION", from_="mon")
    catalog.grant("VIEW ANY SECURITY DEFINITION", to="mon")

    accounts, _privileges, _queries = read()

    assert "mon" in accounts


def test_a_sysadmin_monitoring_login_needs_no_other_grant(catalog):
    catalog.revoke("VIEW ANY DEFINITION", from_="mon")
    catalog.revoke("CONNECT ANY DATABASE", from_="mon")
    catalog.add_server_role_member("sysadmin", "mon")
    catalog.create_database("Shop")

    _accounts, privileges, _queries = read()

    assert privileges[login("mon")]["roles"] == ["sysadmin"]


def test_an_online_database_the_monitoring_login_cannot_enter_is_refused(catalog):
    catalog.revoke("CONNECT ANY DATABASE", from_="mon")
    catalog.create_database("Shop")
    catalog.create_database("Archive").create_user("mon", login="mon")

    with pytest.raises(InsufficientPrivileges) as raised:
        read()

    # model, like Shop, has no user for the login and no guest access.
    assert "2 online database(s) ('Shop', 'model')" in str(raised.value)
    assert "GRANT CONNECT ANY DATABASE TO [mon]" in str(raised.value)


def test_offline_and_restricted_databases_are_skipped(catalog, fake_sqlserver):
    catalog.create_login("app")
    for name, state, user_access in [("Offline", 6, 0), ("Restoring", 1, 0), ("Single", 0, 1)]:
        database = catalog.create_database(name, state=state, user_access=user_access)
        database.create_user("app", login="app")

    _accounts, privileges, _queries = read()

    assert grants_of(privileges, "app", "database") == set()
    assert not any("[Offline]" in sql for sql in fake_sqlserver.statements)


# --- Privileges ---------------------------------------------------------------------------


def test_database_users_are_matched_to_logins_by_sid_never_by_name(catalog, shop):
    catalog.create_login("app")
    catalog.create_login("other")
    # A user called "app" that belongs to another login, and one WITHOUT LOGIN called
    # "app" in a second database: neither gives its rights to the login "app".
    shop.create_user("app", login="other")
    shop.add_role_member("db_owner", "app")
    shop.grant("DELETE", to="app", on="sales.orders")
    reports = catalog.create_database("Reports")
    reports.create_user("app")
    reports.grant("SELECT", to="app")
    # The user mapped to the login "app" has another name.
    shop.create_user("app_reader", login="app")
    shop.add_role_member("db_datareader", "app_reader")

    _accounts, privileges, _queries = read()

    assert privileges[login("app")]["roles"] == ["db_datareader"]
    assert grants_of(privileges, "app", "database") == {
        ("database", "Shop", "CONNECT", ""),
        ("database", "Shop", "ROLE db_datareader", ""),
    }
    assert grants_of(privileges, "app", "table") == set()
    assert privileges[login("other")]["roles"] == ["db_owner"]
    assert ("table", "Shop.sales.orders", "DELETE", "") in grants_of(privileges, "other")


def test_an_orphaned_user_of_a_dropped_login_does_not_follow_a_new_login_of_that_name(
    catalog, shop
):
    catalog.create_login("app")
    shop.create_user("app", login="app")
    shop.grant("SELECT", to="app")
    catalog.drop_login("app")
    catalog.create_login("app")  # a new SID: the old user stays orphaned

    _accounts, privileges, _queries = read()

    assert grants_of(privileges, "app", "database") == set()


def test_every_level_keeps_its_scope_option_and_denial(catalog, shop):
    catalog.create_login("app")
    catalog.grant("VIEW SERVER STATE", to="app", with_grant_option=True)
    catalog.grant("IMPERSONATE", to="app", on="LOGIN::sa")
    catalog.deny("CONNECT", to="app", on="ENDPOINT::TSQL Default TCP")
    shop.create_object("sales.refund", type="P")
    shop.create_user("app", login="app")
    shop.create_user("bob")
    shop.grant("CREATE TABLE", to="app")
    shop.deny("BACKUP DATABASE", to="app")
    shop.grant("SELECT", to="app", on="SCHEMA::sales", with_grant_option=True)
    shop.deny("DELETE", to="app", on="sales.orders")
    shop.grant("EXECUTE", to="app", on="sales.refund")
    shop.grant("UPDATE", to="app", on="sales.orders(price)")
    shop.deny("SELECT", to="app", on="sales.orders(id)")
    shop.grant("IMPERSONATE", to="app", on="USER::bob")
    shop.grant("ALTER", to="app", on="ROLE::db_datareader")

    _accounts, privileges, _queries = read()

    assert privileges[login("app")]["grants"] == sorted(
        [
            ("column", "Shop.sales.orders.id", "SELECT", "DENY"),
            ("column", "Shop.sales.orders.price", "UPDATE", ""),
            ("database", "Shop", "ALTER ON ROLE::db_datareader", ""),
            ("database", "Shop", "BACKUP DATABASE", "DENY"),
            ("database", "Shop", "CONNECT", ""),
            ("database", "Shop", "CREATE TABLE", ""),
            ("database", "Shop", "IMPERSONATE ON USER::bob", ""),
            ("procedure", "Shop.sales.refund", "EXECUTE", ""),
            ("schema", "Shop.sales", "SELECT", "GRANT"),
            ("server", "", "CONNECT SQL", ""),
            ("server", "", "VIEW SERVER STATE", "GRANT"),
            ("server", "ENDPOINT::TSQL Default TCP", "CONNECT", "DENY"),
            ("server", "LOGIN::sa", "IMPERSONATE", ""),
            ("table", "Shop.sales.orders", "DELETE", "DENY"),
        ]
    )


def test_the_database_owner_and_its_roles(catalog):
    catalog.create_login("owner")
    catalog.create_database("Shop", owner="owner")

    _accounts, privileges, _queries = read()

    # The owner is the database's dbo, a member of db_owner.
    assert privileges[login("owner")]["roles"] == ["db_owner"]
    assert grants_of(privileges, "owner", "database") == {
        ("database", "Shop", "OWNER", ""),
        ("database", "Shop", "ROLE db_owner", ""),
    }


def test_nested_roles_count_and_a_database_role_never_passes_for_a_server_role(catalog, shop):
    catalog.create_login("ops_login")
    catalog.create_server_role("ops")
    catalog.add_server_role_member("sysadmin", "ops")
    catalog.add_server_role_member("ops", "ops_login")
    catalog.create_login("app")
    shop.create_user("app", login="app")
    shop.create_role("sysadmin")  # a database role, whatever its name
    shop.create_role("readers")
    shop.add_role_member("db_datareader", "readers")
    shop.add_role_member("readers", "app")
    shop.add_role_member("sysadmin", "app")

    accounts, privileges, _queries = read()

    assert privileges[login("ops_login")]["roles"] == ["ops", "sysadmin"]
    assert accounts["ops"].kind == "role"
    assert privileges[("role", "ops", "")]["roles"] == ["sysadmin"]
    assert privileges[login("app")]["roles"] == ["db_datareader", "readers"]
    assert grants_of(privileges, "app", "database") >= {
        ("database", "Shop", "ROLE db_datareader", ""),
        ("database", "Shop", "ROLE readers", ""),
        ("database", "Shop", "ROLE sysadmin", ""),
    }


def test_login_states_become_attributes(catalog):
    catalog.create_login("disabled", disabled=True)
    catalog.create_login("locked_out", check_expiration=True)
    catalog.alter_login("locked_out", locked_out=True)
    catalog.create_login("expired")
    catalog.alter_login("expired", expired=True, must_change=True)
    catalog.create_login("denied")
    catalog.deny("CONNECT SQL", to="denied")
    catalog.create_login("CORP\\alice", type="U", default_database="Shop")

    _accounts, privileges, _queries = read()
    attributes = {key[1]: privileges[key]["attributes"] for key in privileges}

    assert attributes["disabled"] == {
        "login_type": "SQL_LOGIN",
        "default_database": "master",
        "disabled": True,
        "locked_out": False,
        "password_expired": False,
        "must_change_password": False,
        "policy_checked": True,
        "expiration_checked": False,
        "can_login": False,
        "locked": True,
    }
    assert attributes["locked_out"]["locked_out"]
    assert attributes["locked_out"]["locked"]
    assert attributes["locked_out"]["expiration_checked"] is True
    assert attributes["locked_out"]["can_login"] is True  # until the lockout ends
    assert attributes["expired"]["password_expired"]
    assert attributes["expired"]["locked"]
    assert attributes["expired"]["must_change_password"]
    assert attributes["denied"]["locked"]
    assert not attributes["denied"]["can_login"]
    assert ("server", "", "CONNECT SQL", "DENY") in grants_of(privileges, "denied")
    assert attributes["CORP\\alice"] == {
        "login_type": "WINDOWS_LOGIN",
        "default_database": "Shop",
        "disabled": False,
        "locked_out": False,
        "password_expired": False,
        "must_change_password": False,
        "policy_checked": None,
        "expiration_checked": None,
        "can_login": True,
        "locked": False,
    }
    assert attributes["mon"]["locked"] is False


def test_database_names_are_quoted_in_three_part_names(catalog, fake_sqlserver):
    catalog.create_login("app")
    odd = catalog.create_database("Q]1 o'brien")
    odd.create_user("app", login="app")

    _accounts, privileges, _queries = read()

    assert ("database", "Q]1 o'brien", "CONNECT", "") in grants_of(privileges, "app")
    assert any("FROM [Q]]1 o'brien].sys." in sql for sql in fake_sqlserver.statements)
    assert any("N'Q]1 o''brien' AS database_name" in sql for sql in fake_sqlserver.statements)


def test_privileges_can_be_collected_without_listing_first(catalog, shop):
    catalog.create_login("app")
    shop.create_user("app", login="app")

    with engine_class("sqlserver")(target()) as engine:
        privileges = engine.collect_privileges([AccountRecord("app", kind="login")])

    # The login, and the role of public of the database its user belongs to.
    assert list(privileges) == [login("app"), ("role", "public", "Shop")]
    assert privileges[("role", "public", "Shop")]["listed"] is False
    assert ("database", "Shop", "CONNECT", "") in grants_of(privileges, "app")


# --- Statements ---------------------------------------------------------------------------


def _server_with(logins: int, databases: int, fake) -> None:
    catalog = fake.use_catalog()
    catalog.create_login("mon")
    catalog.grant("VIEW ANY DEFINITION", to="mon")
    catalog.grant("CONNECT ANY DATABASE", to="mon")
    names = [f"db{index:02}" for index in range(databases)]
    for name in names:
        catalog.create_database(name)
    for index in range(logins):
        login = f"login{index:02}"
        catalog.create_login(login)
        catalog.grant("VIEW SERVER STATE", to=login)
        for name in names:
            database = catalog.databases[name]
            database.create_user(login, login=login)
            database.add_role_member("db_datareader", login)


@pytest.mark.parametrize("logins", [3, 50])
def test_the_number_of_statements_does_not_depend_on_the_logins(fake_sqlserver, logins):
    _server_with(logins, 3, fake_sqlserver)

    accounts, privileges, queries = read()

    assert len(accounts) == logins + 3  # sa, mon and PUBLIC
    # Visibility, logins, server roles, server permissions, databases, then one batch
    # (3 databases and the 4 system ones) of role members and of permissions.
    assert queries == 7
    assert privileges[login("login00")]["roles"] == ["db_datareader"]


@pytest.mark.parametrize("databases", [3, 45])
def test_per_database_statements_grow_by_batch_only(fake_sqlserver, databases):
    _server_with(3, databases, fake_sqlserver)

    _accounts, privileges, queries = read()

    batches = math.ceil((databases + 4) / DATABASE_BATCH)
    assert queries == 5 + 2 * batches
    assert len(grants_of(privileges, "login02", "database")) == 2 * databases


# --- PUBLIC, groups and the role graph ----------------------------------------------------

EDGE = {"inherit": True, "set": False, "admin": False}  # SQL Server roles are always active


def edges(privileges: dict, key: tuple) -> list[tuple]:
    """The direct memberships of ``key`` as role keys, after checking their flags."""
    memberships = privileges[key]["memberships"]
    assert all({k: v for k, v in m.items() if k != "role"} == EDGE for m in memberships)
    return [m["role"] for m in memberships]


def test_the_server_role_public_is_the_public_pseudo_account(catalog, shop):
    catalog.grant("VIEW SERVER STATE", to="public")
    catalog.create_login("app")
    shop.create_user("app", login="app")

    accounts, privileges, _queries = read()

    assert accounts["PUBLIC"] == AccountRecord("PUBLIC", kind="public")
    public = privileges[("public", "PUBLIC", "")]
    assert public["grants"] == [
        ("server", "", "VIEW ANY DATABASE", ""),
        ("server", "", "VIEW SERVER STATE", ""),
        ("server", "ENDPOINT::TSQL Default TCP", "CONNECT", ""),
        ("server", "ENDPOINT::TSQL Default VIA", "CONNECT", ""),
        ("server", "ENDPOINT::TSQL Local Machine", "CONNECT", ""),
        ("server", "ENDPOINT::TSQL Named Pipes", "CONNECT", ""),
    ]
    assert public["attributes"] == {
        "login_type": "SERVER_ROLE",
        "can_login": False,
        "locked": False,
    }
    # Never copied onto the logins: the grants to public apply to everyone.
    assert grants_of(privileges, "app", "server") == {("server", "", "CONNECT SQL", "")}
    # guest may CONNECT to master, tempdb and msdb (not to model or Shop): every login
    # without a user of its own enters them as guest, a member of the database's public.
    assert edges(privileges, ("public", "PUBLIC", "")) == [
        ("user", "guest", "master"),
        ("user", "guest", "msdb"),
        ("user", "guest", "tempdb"),
    ]
    guest = privileges[("user", "guest", "tempdb")]
    assert guest["listed"] is False
    assert guest["display"] == "guest in tempdb"
    assert guest["grants"] == [("database", "tempdb", "CONNECT", "")]
    assert edges(privileges, ("user", "guest", "tempdb")) == [("role", "public", "tempdb")]


def test_disabling_guest_removes_the_way_in(catalog):
    catalog.databases["tempdb"].revoke("CONNECT", from_="guest")
    catalog.databases["msdb"].deny("CONNECT", to="guest")

    _accounts, privileges, _queries = read()

    assert edges(privileges, ("public", "PUBLIC", "")) == [("user", "guest", "master")]
    assert ("user", "guest", "tempdb") not in privileges


def test_a_fixed_server_role_is_a_graph_only_principal_with_its_built_in_permission(catalog):
    catalog.create_login("dba")
    catalog.add_server_role_member("sysadmin", "dba")
    catalog.create_login("ops_login")
    catalog.create_server_role("ops")
    catalog.add_server_role_member("ops", "ops_login")
    catalog.add_server_role_member("securityadmin", "ops")
    catalog.add_server_role_member("bulkadmin", "ops")

    accounts, privileges, _queries = read()

    assert "sysadmin" not in accounts
    assert edges(privileges, login("dba")) == [("role", "sysadmin", "")]
    assert privileges[("role", "sysadmin", "")] == {
        "engine": "sqlserver",
        "listed": False,
        "display": "sysadmin",
        "attributes": {"can_login": False, "locked": False},
        "roles": [],
        "grants": [("server", "", "CONTROL SERVER", "GRANT")],
        "memberships": [],
    }
    # A chain through a user-defined (listed) server role.
    assert edges(privileges, login("ops_login")) == [("role", "ops", "")]
    assert edges(privileges, ("role", "ops", "")) == [
        ("role", "bulkadmin", ""),
        ("role", "securityadmin", ""),
    ]
    assert "listed" not in privileges[("role", "ops", "")]
    assert privileges[("role", "securityadmin", "")]["grants"] == [
        ("server", "", "ALTER ANY LOGIN", "GRANT")
    ]
    assert privileges[("role", "bulkadmin", "")]["grants"] == [
        ("server", "", "ADMINISTER BULK OPERATIONS", "")
    ]
    # The literal view is unchanged: role names, held directly or nested.
    assert privileges[login("ops_login")]["roles"] == ["bulkadmin", "ops", "securityadmin"]
    # Fixed roles nobody reaches are left out.
    assert ("role", "diskadmin", "") not in privileges


def test_database_roles_are_graph_only_principals_of_their_database(catalog, shop):
    catalog.create_login("app")
    shop.create_object("sales.refund", type="P")
    shop.create_user("app_user", login="app")
    shop.add_role_member("db_owner", "app_user")
    shop.create_role("readers")
    shop.add_role_member("db_datareader", "readers")
    shop.add_role_member("db_denydatawriter", "readers")
    shop.add_role_member("readers", "app_user")
    shop.grant("EXECUTE", to="readers", on="sales.refund")
    shop.grant("SELECT", to="public", on="sales.orders")
    reports = catalog.create_database("Reports")
    reports.create_user("app", login="app")

    _accounts, privileges, _queries = read()

    assert edges(privileges, login("app")) == [
        ("role", "db_owner", "Shop"),
        ("role", "public", "Reports"),
        ("role", "public", "Shop"),
        ("role", "readers", "Shop"),
    ]
    db_owner = privileges[("role", "db_owner", "Shop")]
    assert db_owner["listed"] is False
    assert db_owner["display"] == "db_owner in Shop"
    assert db_owner["grants"] == [("database", "Shop", "CONTROL", "GRANT")]
    readers = privileges[("role", "readers", "Shop")]
    assert readers["display"] == "readers in Shop"
    assert readers["grants"] == [("procedure", "Shop.sales.refund", "EXECUTE", "")]
    assert edges(privileges, ("role", "readers", "Shop")) == [
        ("role", "db_datareader", "Shop"),
        ("role", "db_denydatawriter", "Shop"),
    ]
    assert privileges[("role", "db_datareader", "Shop")]["grants"] == [
        ("database", "Shop", "SELECT", "")
    ]
    assert privileges[("role", "db_denydatawriter", "Shop")]["grants"] == [
        ("database", "Shop", "DELETE", "DENY"),
        ("database", "Shop", "INSERT", "DENY"),
        ("database", "Shop", "UPDATE", "DENY"),
    ]
    assert privileges[("role", "public", "Shop")]["grants"] == [
        ("table", "Shop.sales.orders", "SELECT", "")
    ]
    assert privileges[("role", "public", "Reports")]["grants"] == []
    # The login's own grants stay its own, the literal view as before.
    assert privileges[login("app")]["roles"] == [
        "db_datareader",
        "db_denydatawriter",
        "db_owner",
        "readers",
    ]
    assert ("database", "Shop", "ROLE db_owner", "") in grants_of(privileges, "app")
    assert ("role", "db_ddladmin", "Shop") not in privileges


def test_the_database_owner_reaches_db_owner_through_dbo(catalog):
    catalog.create_login("owner")
    catalog.create_database("Shop", owner="owner")

    _accounts, privileges, _queries = read()

    assert edges(privileges, login("owner")) == [
        ("role", "db_owner", "Shop"),
        ("role", "public", "Shop"),
    ]


def test_windows_and_entra_groups_are_flagged_as_groups_with_unseen_members(catalog, shop):
    catalog.create_login("CORP\\dba-team", type="G")
    catalog.create_login("cloud-admins", type="X")
    shop.create_user("CORP\\dba-team", login="CORP\\dba-team")
    shop.add_role_member("db_owner", "CORP\\dba-team")

    _accounts, privileges, _queries = read()

    group = privileges[("group", "CORP\\dba-team", "")]
    assert group["attributes"]["login_type"] == "WINDOWS_GROUP"
    assert group["attributes"]["windows_group"] is True
    assert group["attributes"]["members_visible"] is False
    assert ("role", "db_owner", "Shop") in edges(privileges, ("group", "CORP\\dba-team", ""))
    entra = privileges[("group", "cloud-admins", "")]["attributes"]
    assert entra["windows_group"] is False
    assert entra["members_visible"] is False
    assert "windows_group" not in privileges[login("mon")]["attributes"]


@pytest.mark.parametrize(
    ("object_type", "scope"),
    [
        ("P", "procedure"),
        ("PC", "procedure"),
        ("X", "procedure"),
        ("FN", "function"),
        ("IF", "function"),
        ("TF", "function"),
        ("FS", "function"),
        ("FT", "function"),
        ("AF", "function"),
        ("V", "table"),
        ("U", "table"),
    ],
)
def test_routines_get_their_own_scope(catalog, shop, object_type, scope):
    catalog.create_login("app")
    shop.create_user("app", login="app")
    shop.create_object("sales.thing", type=object_type)
    shop.grant("EXECUTE" if scope != "table" else "SELECT", to="app", on="sales.thing")

    _accounts, privileges, _queries = read()

    assert {g[:2] for g in grants_of(privileges, "app") if g[1].endswith("thing")} == {
        (scope, "Shop.sales.thing")
    }


def test_object_names_are_unambiguous_whatever_their_characters(catalog):
    catalog.create_login("app")
    odd = catalog.create_database("a.b")
    odd.create_user("app", login="app")
    odd.create_schema("c.d")
    odd.create_object('c.d.e"f', columns=("g.h",))
    odd.grant("SELECT", to="app", on="SCHEMA::c.d")
    odd.grant("UPDATE", to="app", on='c.d.e"f(g.h)')
    odd.grant("DELETE", to="app", on='c.d.e"f')

    _accounts, privileges, _queries = read()

    assert grants_of(privileges, "app") >= {
        ("database", '"a.b"', "CONNECT", ""),
        ("schema", '"a.b"."c.d"', "SELECT", ""),
        ("table", '"a.b"."c.d"."e""f"', "DELETE", ""),
        ("column", '"a.b"."c.d"."e""f"."g.h"', "UPDATE", ""),
    }
    assert privileges[("role", "public", "a.b")]["display"] == "public in a.b"

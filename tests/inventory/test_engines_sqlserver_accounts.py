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


def grants_of(privileges: dict, name: str, scope: str | None = None) -> set[tuple]:
    return {g for g in privileges[name]["grants"] if scope is None or g[0] == scope}


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
    }
    # Left out: ##MS_…## certificate logins, NT SERVICE\…, NT AUTHORITY\…, BUILTIN\…, the
    # fixed server roles and public.


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

    assert privileges["mon"]["roles"] == ["sysadmin"]


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

    assert privileges["app"]["roles"] == ["db_datareader"]
    assert grants_of(privileges, "app", "database") == {
        ("database", "Shop", "CONNECT", ""),
        ("database", "Shop", "ROLE db_datareader", ""),
    }
    assert grants_of(privileges, "app", "table") == set()
    assert privileges["other"]["roles"] == ["db_owner"]
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

    assert privileges["app"]["grants"] == sorted(
        [
            ("column", "Shop.sales.orders.id", "SELECT", "DENY"),
            ("column", "Shop.sales.orders.price", "UPDATE", ""),
            ("database", "Shop", "ALTER ON ROLE::db_datareader", ""),
            ("database", "Shop", "BACKUP DATABASE", "DENY"),
            ("database", "Shop", "CONNECT", ""),
            ("database", "Shop", "CREATE TABLE", ""),
            ("database", "Shop", "IMPERSONATE ON USER::bob", ""),
            ("schema", "Shop.sales", "SELECT", "GRANT"),
            ("server", "", "CONNECT SQL", ""),
            ("server", "", "VIEW SERVER STATE", "GRANT"),
            ("server", "ENDPOINT::TSQL Default TCP", "CONNECT", "DENY"),
            ("server", "LOGIN::sa", "IMPERSONATE", ""),
            ("table", "Shop.sales.orders", "DELETE", "DENY"),
            ("table", "Shop.sales.refund", "EXECUTE", ""),
        ]
    )


def test_the_database_owner_and_its_roles(catalog):
    catalog.create_login("owner")
    catalog.create_database("Shop", owner="owner")

    _accounts, privileges, _queries = read()

    # The owner is the database's dbo, a member of db_owner.
    assert privileges["owner"]["roles"] == ["db_owner"]
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

    assert privileges["ops_login"]["roles"] == ["ops", "sysadmin"]
    assert accounts["ops"].kind == "role"
    assert privileges["ops"]["roles"] == ["sysadmin"]
    assert privileges["app"]["roles"] == ["db_datareader", "readers"]
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
    attributes = {name: privileges[name]["attributes"] for name in privileges}

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

    assert list(privileges) == ["app"]
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

    assert len(accounts) == logins + 2  # sa and mon
    # Visibility, logins, server roles, server permissions, databases, then one batch
    # (3 databases and the 4 system ones) of role members and of permissions.
    assert queries == 7
    assert privileges["login00"]["roles"] == ["db_datareader"]


@pytest.mark.parametrize("databases", [3, 45])
def test_per_database_statements_grow_by_batch_only(fake_sqlserver, databases):
    _server_with(3, databases, fake_sqlserver)

    _accounts, privileges, queries = read()

    batches = math.ceil((databases + 4) / DATABASE_BATCH)
    assert queries == 5 + 2 * batches
    assert len(grants_of(privileges, "login02", "database")) == 2 * databases

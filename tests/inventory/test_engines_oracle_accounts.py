"""Oracle users, roles and privileges through the fake server's data dictionary."""

import pytest

from inventory.engines.base import (
    AccountRecord,
    ConnectionTarget,
    InsufficientPrivileges,
    Timeout,
    engine_class,
)
from tests import fakedb


def target() -> ConnectionTarget:
    return ConnectionTarget(
        engine="oracle",
        host="oracle.example.test",
        port=1521,
        database="",
        username="whalefall",
        secret="Wf-t3st-pa55",
    )


def read(*, deep: bool = False):
    """(accounts by name, privilege sets, statements sent) of one session."""
    with engine_class("oracle")(target()) as engine:
        accounts = engine.run(engine.list_accounts)
        privileges = engine.run(engine.collect_privileges, accounts, deep=deep)
        return {a.name: a for a in accounts}, privileges, engine.queries


def user(name: str) -> tuple[str, str, str]:
    return ("user", name, "")


def role(name: str) -> tuple[str, str, str]:
    return ("role", name, "")


PUBLIC = ("public", "PUBLIC", "")


def monitored(catalog: fakedb.OracleCatalog) -> fakedb.OracleCatalog:
    catalog.create_user("WHALEFALL")
    catalog.grant("CREATE SESSION", to="WHALEFALL")
    catalog.grant("SELECT_CATALOG_ROLE", to="WHALEFALL")
    return catalog


@pytest.fixture
def catalog(fake_oracle):
    """A 19c database whose monitoring user holds the documented grants."""
    return monitored(fake_oracle.use_catalog())


# --- Listing ------------------------------------------------------------------------------


def test_lists_users_and_user_defined_roles_without_oracle_accounts(catalog):
    catalog.create_user("APP")
    catalog.create_user("SYSMAN", oracle_maintained=True)  # no pattern names it
    catalog.create_user("APEX_PUBLIC_USER")  # a pattern names it
    catalog.create_role("APP_READ")
    catalog.create_role("XDB_WEBSERVICES")

    accounts, _privileges, _queries = read()

    assert {name: a.kind for name, a in accounts.items()} == {
        "WHALEFALL": "user",
        "APP": "user",
        "APP_READ": "role",
        "PUBLIC": "public",
    }
    # SYS, SYSTEM, XDB, DBSNMP, OUTLN, APEX_200200, GSMADMIN_INTERNAL, XS$NULL and the
    # Oracle-maintained roles (DBA, CONNECT, RESOURCE, …) are all left out.


def test_without_select_catalog_role_the_listing_is_refused(catalog, fake_oracle):
    catalog.revoke("SELECT_CATALOG_ROLE", from_="WHALEFALL")

    with pytest.raises(InsufficientPrivileges, match="GRANT SELECT_CATALOG_ROLE TO whalefall"):
        read()

    assert fake_oracle.statements[-1].startswith("SELECT username, account_status")
    assert not any("all_users" in sql.lower() for sql in fake_oracle.statements)


def test_select_any_dictionary_is_enough(catalog):
    catalog.revoke("SELECT_CATALOG_ROLE", from_="WHALEFALL")
    catalog.grant("SELECT ANY DICTIONARY", to="WHALEFALL")

    accounts, _privileges, _queries = read()

    assert "WHALEFALL" in accounts


def test_a_view_refused_later_fails_the_whole_collection(catalog, fake_oracle):
    fake_oracle.on(
        r"^SELECT .* FROM dba_ts_quotas$",
        fakedb.oracle_server_error(1031, "insufficient privileges"),
    )

    with pytest.raises(InsufficientPrivileges, match="cannot read DBA_TS_QUOTAS"):
        read()


def test_before_12c_the_listing_does_without_oracle_maintained(fake_oracle):
    catalog = monitored(fake_oracle.use_catalog(fakedb.OracleCatalog(release="11g")))
    catalog.create_user("APP")
    catalog.password_file("APP", sysdba=True)

    accounts, privileges, queries = read()

    assert set(accounts) >= {"WHALEFALL", "APP"}
    assert not {"SYS", "SYSTEM", "XDB", "APEX_200200"} & set(accounts)
    # 11g cannot tell Oracle's own roles from the others: they are listed.
    assert accounts["DBA"].kind == "role"
    assert ("server", "", "SYSDBA", "") in privileges[user("APP")]["grants"]
    assert fake_oracle.statements[:2] == [
        fakedb.normalise(
            "SELECT username, account_status, profile, default_tablespace, "
            "authentication_type, created, expiry_date, oracle_maintained FROM dba_users"
        ),
        fakedb.normalise(
            "SELECT username, account_status, profile, default_tablespace, "
            "authentication_type, created, expiry_date FROM dba_users"
        ),
    ]
    assert queries == 7  # the refused column costs one statement


def test_other_dictionary_errors_are_not_swallowed(catalog, fake_oracle):
    fake_oracle.on(r"^SELECT .* FROM dba_users$", fakedb.oracle_call_timeout(300_000))

    with pytest.raises(Timeout):
        read()


# --- Privileges ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "locked", "expired"),
    [
        ("OPEN", False, False),
        ("LOCKED", True, False),
        ("LOCKED(TIMED)", True, False),
        ("EXPIRED", True, True),
        ("EXPIRED(GRACE)", True, True),
        ("EXPIRED & LOCKED", True, True),
    ],
)
def test_account_status_survives_into_attributes(catalog, status, locked, expired):
    catalog.create_user("APP", status=status, profile="APP_PROFILE", default_tablespace="DATA")
    catalog.grant("CONNECT", to="APP")

    _accounts, privileges, _queries = read()

    assert privileges[user("APP")]["attributes"] == {
        "account_status": status,
        "locked": locked,
        "expired": expired,
        "profile": "APP_PROFILE",
        "default_tablespace": "DATA",
        "authentication_type": "PASSWORD",
        "created": "2019-04-17T00:56:02",
        "password_expiry_date": None,
        "can_login": not locked,
    }


def test_can_login_needs_create_session_and_a_way_to_authenticate(catalog):
    catalog.create_user("NO_SESSION")
    catalog.create_user("SCHEMA_ONLY", authentication="NONE")
    catalog.grant("CREATE SESSION", to="SCHEMA_ONLY")

    _accounts, privileges, _queries = read()

    assert privileges[user("NO_SESSION")]["attributes"]["can_login"] is False
    assert privileges[user("SCHEMA_ONLY")]["attributes"]["can_login"] is False

    catalog.create_role("LOGIN_ROLE")
    catalog.grant("CREATE SESSION", to="LOGIN_ROLE")
    catalog.grant("LOGIN_ROLE", to="PUBLIC")

    _accounts, privileges, _queries = read()

    assert privileges[user("NO_SESSION")]["attributes"]["can_login"] is True
    assert privileges[user("NO_SESSION")]["roles"] == []  # PUBLIC's roles are not copied
    assert privileges[user("SCHEMA_ONLY")]["attributes"]["can_login"] is False


def test_roles_system_privileges_and_the_password_file(catalog):
    catalog.create_user("APP")
    catalog.create_role("APP_ADMIN")
    catalog.grant("DBA", to="APP_ADMIN")
    catalog.grant("APP_ADMIN", to="APP", admin=True)
    catalog.grant("CONNECT", to="APP")
    catalog.grant("CREATE TABLE", to="APP", admin=True)
    catalog.grant("UNLIMITED TABLESPACE", to="APP")
    catalog.password_file("APP", sysdba=True, sysbackup=True)

    accounts, privileges, _queries = read()

    app = privileges[user("APP")]
    assert app["roles"] == ["APP_ADMIN", "CONNECT", "DBA", "SELECT_CATALOG_ROLE"]
    assert app["attributes"]["admin_roles"] == ["APP_ADMIN"]
    assert app["grants"] == [
        ("server", "", "CREATE TABLE", "GRANT"),
        ("server", "", "SYSBACKUP", ""),
        ("server", "", "SYSDBA", ""),
        ("server", "", "UNLIMITED TABLESPACE", ""),
    ]
    assert accounts["APP_ADMIN"].kind == "role"
    assert privileges[role("APP_ADMIN")] == {
        "engine": "oracle",
        "attributes": {"can_login": False, "locked": False},
        "roles": ["DBA", "SELECT_CATALOG_ROLE"],
        "grants": [],
        "memberships": [{"role": role("DBA"), "inherit": True, "set": True, "admin": False}],
    }


def test_tablespace_quotas(catalog):
    catalog.create_user("APP")
    catalog.quota("APP", "USERS")
    catalog.quota("APP", "DATA", 10 * 1024 * 1024)
    catalog.quota("APP", "OLD_DATA", 1024)
    row = catalog.view("DBA_TS_QUOTAS").get(username="APP", tablespace_name="OLD_DATA")
    catalog.view("DBA_TS_QUOTAS").update(row, dropped="YES")

    _accounts, privileges, _queries = read()

    assert privileges[user("APP")]["grants"] == [
        ("tablespace", "DATA", "QUOTA 10485760", ""),
        ("tablespace", "USERS", "QUOTA UNLIMITED", ""),
    ]


def test_object_privileges_only_with_deep_privileges(catalog, fake_oracle):
    catalog.create_user("APP")
    catalog.create_role("APP_READ")
    catalog.grant_object("SELECT", on="HR.EMPLOYEES", to="APP", grantable=True)
    catalog.grant_object("EXECUTE", on="HR.PAYROLL", to="APP", object_type="PACKAGE")
    catalog.grant_object("UPDATE", on="HR.EMPLOYEES(SALARY)", to="APP")
    catalog.grant_object("SELECT", on="HR.DEPARTMENTS", to="APP_READ")

    _accounts, shallow, shallow_queries = read()
    _accounts, deep, deep_queries = read(deep=True)

    assert shallow[user("APP")]["grants"] == []
    assert deep[user("APP")]["grants"] == [
        ("column", "HR.EMPLOYEES.SALARY", "UPDATE", ""),
        ("package", "HR.PAYROLL", "EXECUTE", ""),
        ("table", "HR.EMPLOYEES", "SELECT", "GRANT"),
    ]
    assert deep[role("APP_READ")]["grants"] == [("table", "HR.DEPARTMENTS", "SELECT", "")]
    assert (shallow_queries, deep_queries) == (6, 8)


def test_privileges_can_be_collected_without_listing_first(catalog):
    catalog.create_user("APP", status="LOCKED")

    with engine_class("oracle")(target()) as engine:
        privileges = engine.collect_privileges([AccountRecord("APP")])

    assert list(privileges) == [user("APP")]
    assert privileges[user("APP")]["attributes"]["locked"] is True


@pytest.mark.parametrize("users", [3, 50])
def test_the_number_of_statements_does_not_depend_on_the_accounts(catalog, users):
    for index in range(users):
        name = f"APP{index:02}"
        catalog.create_user(name)
        catalog.grant("CONNECT", to=name)
        catalog.quota(name, "USERS")
        catalog.grant_object("SELECT", on="HR.EMPLOYEES", to=name)

    accounts, _privileges, queries = read(deep=True)

    assert len(accounts) == users + 2  # WHALEFALL and PUBLIC
    assert queries == 8


# --- PUBLIC and the role hierarchy ---------------------------------------------------------


def edge(name: str, *, inherit: bool = True, admin: bool = False) -> dict:
    return {"role": role(name), "inherit": inherit, "set": True, "admin": admin}


# What the fake catalog grants DBA (a few of its real 200-odd system privileges).
DBA_PRIVILEGES = sorted(
    [
        "CREATE USER", "ALTER USER", "DROP USER", "CREATE SESSION", "GRANT ANY PRIVILEGE",
        "GRANT ANY ROLE", "GRANT ANY OBJECT PRIVILEGE", "SELECT ANY TABLE",
    ]
)  # fmt: skip


def test_dba_reached_through_a_chain_of_custom_roles(catalog):
    catalog.create_user("APP")
    catalog.create_role("APP_SUPPORT")
    catalog.create_role("APP_OPS")
    catalog.grant("APP_SUPPORT", to="APP")
    catalog.grant("APP_OPS", to="APP_SUPPORT", admin=True)
    catalog.grant("DBA", to="APP_OPS")

    accounts, privileges, _queries = read()

    assert "DBA" not in accounts  # Oracle's own role: not an account, but a node
    assert privileges[user("APP")]["memberships"] == [edge("APP_SUPPORT")]
    assert privileges[role("APP_SUPPORT")]["memberships"] == [edge("APP_OPS", admin=True)]
    assert privileges[role("APP_OPS")]["memberships"] == [edge("DBA")]
    assert privileges[role("DBA")] == {
        "engine": "oracle",
        "listed": False,
        "display": "DBA",
        "attributes": {"can_login": False, "locked": False},
        "roles": [],
        "grants": [("server", "", privilege, "GRANT") for privilege in DBA_PRIVILEGES],
        "memberships": [edge("SELECT_CATALOG_ROLE", admin=True)],
    }
    assert privileges[role("SELECT_CATALOG_ROLE")]["listed"] is False
    # The literal view keeps the closure, as before.
    assert privileges[user("APP")]["roles"] == [
        "APP_OPS",
        "APP_SUPPORT",
        "DBA",
        "SELECT_CATALOG_ROLE",
    ]
    # Roles nobody asked for reaches are left out.
    assert role("IMP_FULL_DATABASE") not in privileges


def test_a_role_that_is_not_a_default_role_is_only_obtainable_by_set_role(catalog):
    catalog.create_user("APP")
    catalog.create_role("APP_ADMIN")
    catalog.grant("APP_ADMIN", to="APP", default=False)
    catalog.grant("DBA", to="APP_ADMIN")

    _accounts, privileges, _queries = read()

    assert privileges[user("APP")]["memberships"] == [edge("APP_ADMIN", inherit=False)]
    # A role granted to a role is enabled together with it.
    assert privileges[role("APP_ADMIN")]["memberships"] == [edge("DBA")]


def test_public_holds_what_is_granted_to_public(catalog):
    catalog.create_user("APP")
    catalog.create_role("EVERYONE")
    catalog.grant("CREATE SESSION", to="PUBLIC")
    catalog.grant("EVERYONE", to="PUBLIC")
    catalog.grant("SELECT ANY DICTIONARY", to="EVERYONE")
    catalog.grant_object("EXECUTE", on="SYS.UTL_FILE", to="PUBLIC", object_type="PACKAGE")
    catalog.grant_object("SELECT", on="HR.EMPLOYEES(SALARY)", to="PUBLIC")

    accounts, privileges, _queries = read(deep=True)

    assert accounts["PUBLIC"].kind == "public"
    assert privileges[PUBLIC] == {
        "engine": "oracle",
        "attributes": {"can_login": False, "locked": False},
        "roles": ["EVERYONE"],
        "grants": [
            ("column", "HR.EMPLOYEES.SALARY", "SELECT", ""),
            ("package", "SYS.UTL_FILE", "EXECUTE", ""),
            ("server", "", "CREATE SESSION", ""),
        ],
        "memberships": [edge("EVERYONE")],
    }
    # Never copied onto the accounts: PUBLIC applies to everyone.
    assert privileges[user("APP")]["grants"] == []
    assert privileges[user("APP")]["memberships"] == []
    assert privileges[user("APP")]["attributes"]["can_login"] is True
    assert privileges[role("EVERYONE")]["grants"] == [("server", "", "SELECT ANY DICTIONARY", "")]


@pytest.mark.parametrize(
    ("object_type", "scope"),
    [
        ("PROCEDURE", "procedure"),
        ("FUNCTION", "function"),
        ("PACKAGE", "package"),
        ("TABLE", "table"),
        ("VIEW", "table"),
        ("SEQUENCE", "table"),
        ("DIRECTORY", "table"),
    ],
)
def test_routines_get_their_own_scope_from_12c(catalog, object_type, scope):
    catalog.create_user("APP")
    catalog.grant_object("EXECUTE", on="HR.THING", to="APP", object_type=object_type)

    _accounts, privileges, _queries = read(deep=True)

    assert privileges[user("APP")]["grants"] == [(scope, "HR.THING", "EXECUTE", "")]


def test_object_names_are_unambiguous_whatever_their_characters(catalog):
    catalog.create_user("APP")
    catalog.grant_object("SELECT", on='HR.a.b"c', to="APP")  # a quoted name
    catalog.grant_object("UPDATE", on="HR.EMPLOYEES(FIRST.NAME)", to="APP")

    _accounts, privileges, _queries = read(deep=True)

    assert privileges[user("APP")]["grants"] == [
        ("column", 'HR.EMPLOYEES."FIRST.NAME"', "UPDATE", ""),
        ("table", 'HR."a.b""c"', "SELECT", ""),
    ]


def test_before_12c_the_hierarchy_and_the_object_privileges_come_from_the_older_views(
    fake_oracle,
):
    catalog = monitored(fake_oracle.use_catalog(fakedb.OracleCatalog(release="11g")))
    catalog.create_user("APP")
    catalog.create_role("APP_SUPPORT")
    catalog.create_role("APP_OPS")
    catalog.grant("APP_SUPPORT", to="APP")
    catalog.grant("APP_OPS", to="APP_SUPPORT")
    catalog.grant("DBA", to="APP_OPS")
    catalog.grant("XDBADMIN", to="APP_OPS")  # a role WHALEFALL_SYSTEM_ACCOUNTS leaves out
    catalog.grant_object("EXECUTE", on="HR.PAYROLL", to="APP")
    catalog.grant("CONNECT", to="PUBLIC")

    accounts, privileges, queries = read(deep=True)

    assert privileges[user("APP")]["memberships"] == [edge("APP_SUPPORT")]
    assert privileges[role("APP_SUPPORT")]["memberships"] == [edge("APP_OPS")]
    assert privileges[role("APP_OPS")]["memberships"] == [edge("DBA"), edge("XDBADMIN")]
    # 11g cannot tell Oracle's roles from the others: DBA is an account there.
    assert accounts["DBA"].kind == "role"
    assert "listed" not in privileges[role("DBA")]
    assert ("server", "", "GRANT ANY ROLE", "GRANT") in privileges[role("DBA")]["grants"]
    assert privileges[role("XDBADMIN")]["listed"] is False
    assert privileges[PUBLIC]["memberships"] == [edge("CONNECT")]
    # No TYPE column before 12.1: every object privilege stays in the scope "table".
    assert privileges[user("APP")]["grants"] == [("table", "HR.PAYROLL", "EXECUTE", "")]
    assert (
        fakedb.normalise(
            "SELECT grantee, owner, table_name, privilege, grantable FROM dba_tab_privs"
        )
        in fake_oracle.statements
    )
    assert queries == 9  # the refused column costs one statement

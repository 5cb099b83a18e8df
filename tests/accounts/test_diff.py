"""accounts.diff: whole-set differences and their one-line summary (SPEC §5.3)."""

from accounts.diff import diff_privileges, is_empty, summarize

BASE = {
    "engine": "mysql",
    "attributes": {"locked": False, "plugin": "mysql_native_password"},
    "roles": ["reader"],
    "grants": [("global", "", "PROCESS", ""), ("database", "shop", "SELECT", "")],
}


def with_(**changes):
    return {**BASE, **changes}


def test_no_change_is_empty():
    diff = diff_privileges(BASE, dict(BASE))
    assert is_empty(diff)
    assert summarize(diff) == "no change"


def test_created_lists_everything_as_added():
    diff = diff_privileges(None, BASE)
    assert [g["privilege"] for g in diff["grants_added"]] == ["SELECT", "PROCESS"]
    assert diff["roles_added"] == ["reader"]
    assert diff["attributes"] == {
        "locked": [None, False],
        "plugin": [None, "mysql_native_password"],
    }
    assert summarize(diff).startswith("+2 grants; +1 role; locked: — → no")


def test_removed_lists_everything_as_removed():
    diff = diff_privileges(BASE, None)
    assert len(diff["grants_removed"]) == 2
    assert diff["roles_removed"] == ["reader"]
    assert diff["grants_added"] == []


def test_grants_added_and_removed():
    diff = diff_privileges(
        BASE,
        with_(
            grants=[
                ("global", "", "PROCESS", ""),
                ("table", "shop.orders", "UPDATE", ""),
                ("table", "shop.items", "INSERT", ""),
                ("column", "shop.orders.price", "SELECT", ""),
            ]
        ),
    )
    assert diff["grants_removed"] == [
        {"scope": "database", "object": "shop", "privilege": "SELECT", "option": ""}
    ]
    assert len(diff["grants_added"]) == 3
    assert summarize(diff) == "+3 grants, −1 grant"


def test_grant_option_change_is_a_grant_change():
    diff = diff_privileges(
        BASE, with_(grants=[("global", "", "PROCESS", ""), ("database", "shop", "SELECT", "GRANT")])
    )
    assert diff["grants_added"][0]["option"] == "GRANT"
    assert diff["grants_removed"][0]["option"] == ""


def test_roles_added_and_removed():
    diff = diff_privileges(BASE, with_(roles=["writer", "admin"]))
    assert diff["roles_added"] == ["admin", "writer"]
    assert diff["roles_removed"] == ["reader"]
    assert summarize(diff) == "+2 roles, −1 role"


def test_an_attribute_flip_is_an_attribute_change_never_a_grant():
    diff = diff_privileges(
        BASE, with_(attributes={"locked": True, "plugin": "mysql_native_password"})
    )
    assert diff["attributes"] == {"locked": [False, True]}
    assert diff["grants_added"] == diff["grants_removed"] == []
    assert summarize(diff) == "locked: no → yes"


def test_summary_combines_everything():
    after = with_(
        attributes={"locked": True, "plugin": "ed25519"},
        roles=["reader", "writer"],
        grants=[("global", "", "PROCESS", ""), ("global", "", "SUPER", "")],
    )
    assert summarize(diff_privileges(BASE, after)) == (
        "+1 grant, −1 grant; +1 role; locked: no → yes; plugin: mysql_native_password → ed25519"
    )


def test_case_differences_in_names_are_changes():
    diff = diff_privileges(
        BASE, with_(grants=[("global", "", "PROCESS", ""), ("database", "Shop", "SELECT", "")])
    )
    assert diff["grants_added"][0]["object"] == "Shop"

"""classification.dsl: DSL v4 validation, fail-closed evaluation and readable form (SPEC §6)."""

import dataclasses
import json
import time

import pytest

from accounts.facts import derive_facts
from classification import dsl
from classification.dsl import (
    DSL_V4_REQUIRED,
    INVALID_DSL_ARGS,
    INVALID_DSL_EXPRESSION,
    MISSING_DSL_ARGS,
    UNKNOWN_DSL_FUNCTION,
    DslError,
    InvalidExpression,
    Outcome,
    evaluate,
    render,
    validate,
)
from inventory.models import Engine


def doc(expr):
    return {"version": 4, "expr": expr}


def fn(function, /, **args):
    node = {"fn": function}
    if args:
        node["args"] = args
    return node


def op(name, *args):
    return {"op": name, "args": list(args)}


TRUE = op("AND")
FALSE = op("OR")
UNKNOWN = fn("no_such_function")


def found(errors):
    return [(error.code, error.path) for error in errors]


def facts(engine, attributes=None, roles=(), grants=()):
    return derive_facts(
        {
            "engine": engine,
            "attributes": attributes or {},
            "roles": list(roles),
            "grants": list(grants),
        }
    )


def matches(expression, account_facts):
    outcome = evaluate(expression, account_facts)
    assert outcome.errors == []
    return outcome.matched


# One small canonical set per engine and kind of account.
MYSQL_ROOT = facts(
    "mysql",
    {"superuser": True, "locked": False},
    grants=[("global", "", "SELECT", "GRANT"), ("global", "", "SUPER", "GRANT")],
)
MYSQL_READER = facts(
    "mysql",
    grants=[("global", "", "SELECT", ""), ("database", "shop", "INSERT", "")],
)
MYSQL_APP = facts(
    "mysql",
    grants=[
        ("database", "shop", "SELECT", ""),
        ("database", "Shop", "DELETE", ""),
        ("table", "shop.orders", "UPDATE", ""),
    ],
)
MYSQL_LOCKED = facts("mysql", {"locked": True}, grants=[("global", "", "USAGE", "")])
PG_SUPER = facts("postgresql", {"superuser": True, "can_login": True})
PG_APP = facts(
    "postgresql",
    {"can_login": True, "create_db": True, "superuser": False},
    roles=["pg_read_all_data"],
    grants=[("database", "app", "CONNECT", ""), ("database", "app", "CREATE", "")],
)
SQLSERVER_SA = facts("sqlserver", roles=["sysadmin"])
SQLSERVER_OWNER = facts(
    "sqlserver",
    roles=["db_owner", "public"],
    grants=[
        ("database", "sales", "CONNECT", ""),
        ("schema", "sales.dbo", "SELECT", ""),
        ("server", "", "VIEW SERVER STATE", "DENY"),
        ("database", "sales", "DELETE", "DENY"),
    ],
)
ORACLE_DBA = facts(
    "oracle", roles=["CONNECT", "DBA"], grants=[("server", "", "CREATE SESSION", "")]
)
ORACLE_LOCKED = facts(
    "oracle",
    {"locked": True, "account_status": "LOCKED"},
    grants=[("server", "", "CREATE SESSION", ""), ("tablespace", "USERS", "UNLIMITED", "")],
)

ALL_ACCOUNTS = {
    "mysql_root": MYSQL_ROOT,
    "mysql_reader": MYSQL_READER,
    "mysql_app": MYSQL_APP,
    "mysql_locked": MYSQL_LOCKED,
    "pg_super": PG_SUPER,
    "pg_app": PG_APP,
    "sqlserver_sa": SQLSERVER_SA,
    "sqlserver_owner": SQLSERVER_OWNER,
    "oracle_dba": ORACLE_DBA,
    "oracle_locked": ORACLE_LOCKED,
}


def matched_accounts(expression):
    return {name for name, account in ALL_ACCOUNTS.items() if matches(expression, account)}


# --- the predecessor's example rules, against facts of every engine ----------------------


SUPER_ACCOUNTS = (
    '{"version":4,"expr":{"op":"OR","args":[{"fn":"is_superuser"},'
    '{"fn":"has_capability","args":{"name":"GRANT_ADMIN"}}]}}'
)
MYSQL_GLOBAL_SELECT = (
    '{"version":4,"expr":{"fn":"has_privilege","args":{"name":"SELECT","scope":"global"}}}'
)
SQLSERVER_DB_OWNER = '{"version":4,"expr":{"fn":"has_role","args":{"name":"db_owner"}}}'


def test_example_rule_super_accounts():
    assert validate(SUPER_ACCOUNTS) == []
    assert matched_accounts(SUPER_ACCOUNTS) == {
        "mysql_root",
        "pg_super",
        "sqlserver_sa",
        "oracle_dba",
    }


def test_example_rule_mysql_global_select():
    # A database-level SELECT is not a global one: scopes do not imply one another.
    assert matched_accounts(MYSQL_GLOBAL_SELECT) == {"mysql_root", "mysql_reader"}


def test_example_rule_sqlserver_db_owner():
    assert matched_accounts(SQLSERVER_DB_OWNER) == {"sqlserver_owner"}


# --- functions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("types", "expected"),
    [
        (["mysql"], {"mysql_root", "mysql_reader", "mysql_app", "mysql_locked"}),
        ([" PostgreSQL ", "ORACLE"], {"pg_super", "pg_app", "oracle_dba", "oracle_locked"}),
        (["sqlserver"], {"sqlserver_sa", "sqlserver_owner"}),
        (["sqlserver", "SQLServer"], {"sqlserver_sa", "sqlserver_owner"}),
    ],
)
def test_db_type_in(types, expected):
    assert matched_accounts(doc(fn("db_type_in", types=types))) == expected


def test_db_type_in_knows_the_engines_of_instances():
    assert set(dsl.ENGINES) == set(Engine.values)
    assert set(dsl.ENGINE_SPELLINGS.values()) <= set(Engine.values)


@pytest.mark.parametrize(
    ("types", "path", "says"),
    [
        (["mysqll"], "expr.args.types[0]", "use mysql, postgresql, sqlserver, oracle"),
        (["mysql", "db2"], "expr.args.types[1]", "use mysql, postgresql, sqlserver, oracle"),
        (["mysql", "mariadb"], "expr.args.types[1]", 'write "mysql" for it'),
        ([" MSSQL "], "expr.args.types[0]", 'write "sqlserver" for it'),
        (["postgres"], "expr.args.types[0]", 'write "postgresql" for it'),
        (["my sql"], "expr.args.types[0]", "unknown engine"),
    ],
)
def test_db_type_in_rejects_unknown_engines(types, path, says):
    expression = doc(fn("db_type_in", types=types))
    errors = validate(expression)
    assert found(errors) == [(INVALID_DSL_ARGS, path)]
    assert says in errors[0].message
    assert evaluate(expression, MYSQL_ROOT) == Outcome(matched=False, errors=errors)


def test_db_type_in_trims_and_lowers_the_engine_of_the_facts():
    assert matches(doc(fn("db_type_in", types=["mysql"])), {"engine": " MySQL "})
    assert not matches(doc(fn("db_type_in", types=["mysql"])), {})


def test_is_superuser():
    assert matched_accounts(doc(fn("is_superuser"))) == {
        "mysql_root",
        "pg_super",
        "sqlserver_sa",
        "oracle_dba",
    }


def test_is_locked():
    assert matched_accounts(doc(fn("is_locked"))) == {"mysql_locked", "oracle_locked"}


@pytest.mark.parametrize("args", [None, {}])
def test_functions_without_arguments_accept_omitted_null_or_empty_args(args):
    assert matches(doc({"fn": "is_superuser", "args": args}), PG_SUPER)
    assert validate(doc({"fn": "is_locked", "args": args})) == []


def test_has_capability_is_exact():
    assert matched_accounts(doc(fn("has_capability", name="create_db"))) == {"pg_app"}
    assert matched_accounts(doc(fn("has_capability", name="CREATE_DB"))) == set()
    assert matched_accounts(doc(fn("has_capability", name="grant_admin"))) == set()
    assert "oracle_dba" in matched_accounts(doc(fn("has_capability", name="GRANT_ADMIN")))


def test_has_role_is_exact():
    assert matched_accounts(doc(fn("has_role", name="DBA"))) == {"oracle_dba"}
    assert matched_accounts(doc(fn("has_role", name="dba"))) == set()
    assert matched_accounts(doc(fn("has_role", name="pg_read_all_data"))) == {"pg_app"}
    assert matched_accounts(doc(fn("has_role", name="DB_OWNER"))) == set()


def test_names_are_not_trimmed():
    assert matched_accounts(doc(fn("has_role", name=" db_owner"))) == set()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"name": "SELECT", "scope": "global"}, {"mysql_root", "mysql_reader"}),
        ({"name": "SELECT", "scope": " GLOBAL "}, {"mysql_root", "mysql_reader"}),
        ({"name": "select", "scope": "global"}, set()),
        ({"name": "SELECT", "scope": "database"}, {"mysql_app"}),
        ({"name": "SELECT", "scope": "Database", "object": "shop"}, {"mysql_app"}),
        ({"name": "SELECT", "scope": "database", "database": "shop"}, {"mysql_app"}),
        ({"name": "DELETE", "scope": "database", "object": "shop"}, set()),
        ({"name": "DELETE", "scope": "database", "object": "Shop"}, {"mysql_app"}),
        ({"name": "SELECT", "scope": "database", "object": "other"}, set()),
        ({"name": "SELECT", "scope": "schema", "object": "sales.dbo"}, {"sqlserver_owner"}),
        ({"name": "UPDATE", "scope": "table", "object": "shop.orders"}, {"mysql_app"}),
        ({"name": "UPDATE", "scope": "database", "object": "shop"}, set()),
        ({"name": "CREATE SESSION", "scope": "server"}, {"oracle_dba", "oracle_locked"}),
        ({"name": "CREATE SESSION", "scope": "global"}, set()),
        ({"name": "UNLIMITED", "scope": "tablespace", "object": "USERS"}, {"oracle_locked"}),
        ({"name": "UNLIMITED", "scope": "tablespace", "database": "USERS"}, {"oracle_locked"}),
        ({"name": "UNLIMITED", "scope": "tablespace", "database": "SYSTEM"}, set()),
        ({"name": "CONNECT", "scope": "database", "database": "app"}, {"pg_app"}),
        (
            {"name": "CONNECT", "scope": "database", "object": "sales", "database": "sales"},
            {"sqlserver_owner"},
        ),
    ],
)
def test_has_privilege(args, expected):
    expression = doc(fn("has_privilege", **args))
    assert validate(expression) == []
    assert matched_accounts(expression) == expected


def test_denied_grants_never_count_as_held():
    assert not matches(
        doc(fn("has_privilege", name="VIEW SERVER STATE", scope="server")), SQLSERVER_OWNER
    )
    assert not matches(
        doc(fn("has_privilege", name="DELETE", scope="database", object="sales")),
        SQLSERVER_OWNER,
    )
    only_denied = {
        "grants": [{"scope": "global", "object": "", "privilege": "X", "option": "DENY"}]
    }
    assert not matches(doc(fn("has_privilege", name="X", scope="global")), only_denied)
    with_grant_option = {
        "grants": [{"scope": "global", "object": "", "privilege": "X", "option": "GRANT"}]
    }
    assert matches(doc(fn("has_privilege", name="X", scope="global")), with_grant_option)


def test_missing_facts_keys_match_nothing():
    for expression in (
        doc(fn("is_superuser")),
        doc(fn("has_role", name="r")),
        doc(fn("has_capability", name="c")),
        doc(fn("has_privilege", name="p", scope="global")),
    ):
        assert evaluate(expression, {}) == Outcome(matched=False, errors=[])


# --- operators -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (op("AND", TRUE, TRUE), True),
        (op("AND", TRUE, FALSE), False),
        (op("AND", FALSE, TRUE), False),
        (op("AND", TRUE, TRUE, TRUE), True),
        (op("AND", TRUE, TRUE, FALSE), False),
        (op("OR", FALSE, FALSE), False),
        (op("OR", FALSE, TRUE), True),
        (op("OR", FALSE, FALSE, TRUE), True),
        (op("OR", FALSE, FALSE, FALSE), False),
        (op("NOT", TRUE), False),
        (op("NOT", FALSE), True),
        (op("AND"), True),
        (op("OR"), False),
        (op("AND", FALSE), False),
        (op("OR", TRUE), True),
        (op(" and ", TRUE, TRUE), True),
        (op("Or", FALSE, TRUE), True),
        (op("not", FALSE), True),
        (op("NOT", op("NOT", TRUE)), True),
        (op("OR", op("AND", TRUE, FALSE), op("NOT", FALSE)), True),
    ],
)
def test_operators(expr, expected):
    assert evaluate(doc(expr), {}) == Outcome(matched=expected, errors=[])


def test_operators_combine_functions():
    rule = doc(
        op(
            "AND",
            fn("db_type_in", types=["mysql"]),
            op("OR", fn("is_superuser"), fn("has_privilege", name="SELECT", scope="global")),
            op("NOT", fn("is_locked")),
        )
    )
    assert matched_accounts(rule) == {"mysql_root", "mysql_reader"}


def test_function_names_are_trimmed_but_exact():
    assert matches(doc(fn(" is_superuser ")), PG_SUPER)
    errors = validate(doc(fn("IS_SUPERUSER")))
    assert found(errors) == [(UNKNOWN_DSL_FUNCTION, "expr.fn")]


# --- errors and their paths -----------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # Document level.
        ("{not json", [(INVALID_DSL_EXPRESSION, "")]),
        ("", [(INVALID_DSL_EXPRESSION, "")]),
        ([], [(INVALID_DSL_EXPRESSION, "")]),
        (None, [(INVALID_DSL_EXPRESSION, "")]),
        ("[1, 2]", [(INVALID_DSL_EXPRESSION, "")]),
        ({"expr": TRUE}, [(DSL_V4_REQUIRED, "version")]),
        ({"version": 3, "expr": TRUE}, [(DSL_V4_REQUIRED, "version")]),
        ({"version": "4", "expr": TRUE}, [(DSL_V4_REQUIRED, "version")]),
        ({"version": 4.0, "expr": TRUE}, [(DSL_V4_REQUIRED, "version")]),
        ({"version": True, "expr": TRUE}, [(DSL_V4_REQUIRED, "version")]),
        ({"version": 4}, [(INVALID_DSL_EXPRESSION, "expr")]),
        ({"version": 4, "expr": TRUE, "note": "x"}, [(INVALID_DSL_EXPRESSION, "note")]),
        # Nodes.
        (doc(None), [(INVALID_DSL_EXPRESSION, "expr")]),
        (doc("is_superuser"), [(INVALID_DSL_EXPRESSION, "expr")]),
        (doc([fn("is_superuser")]), [(INVALID_DSL_EXPRESSION, "expr")]),
        (doc({}), [(INVALID_DSL_EXPRESSION, "expr")]),
        (doc({"args": []}), [(INVALID_DSL_EXPRESSION, "expr")]),
        (doc({"op": "AND", "fn": "is_locked", "args": []}), [(INVALID_DSL_EXPRESSION, "expr")]),
        (doc({"op": "XOR", "args": []}), [(INVALID_DSL_EXPRESSION, "expr.op")]),
        (doc({"op": None, "args": []}), [(INVALID_DSL_EXPRESSION, "expr.op")]),
        (doc({"op": "AND"}), [(INVALID_DSL_EXPRESSION, "expr.args")]),
        (doc({"op": "AND", "args": None}), [(INVALID_DSL_EXPRESSION, "expr.args")]),
        (doc({"op": "AND", "args": {"a": TRUE}}), [(INVALID_DSL_EXPRESSION, "expr.args")]),
        (doc(op("NOT")), [(INVALID_DSL_EXPRESSION, "expr.args")]),
        (doc(op("NOT", TRUE, TRUE)), [(INVALID_DSL_EXPRESSION, "expr.args")]),
        (doc({**op("AND"), "negate": True}), [(INVALID_DSL_EXPRESSION, "expr.negate")]),
        (doc(op("OR", TRUE, 7)), [(INVALID_DSL_EXPRESSION, "expr.args[1]")]),
        (doc({"fn": 5}), [(INVALID_DSL_EXPRESSION, "expr.fn")]),
        (doc({"fn": "  "}), [(INVALID_DSL_EXPRESSION, "expr.fn")]),
        (doc({"fn": "is_locked", "ags": {}}), [(INVALID_DSL_EXPRESSION, "expr.ags")]),
        # Functions.
        (doc(UNKNOWN), [(UNKNOWN_DSL_FUNCTION, "expr.fn")]),
        (doc(op("AND", TRUE, UNKNOWN)), [(UNKNOWN_DSL_FUNCTION, "expr.args[1].fn")]),
        (doc({"fn": "is_locked", "args": []}), [(INVALID_DSL_ARGS, "expr.args")]),
        (doc({"fn": "has_role", "args": "dba"}), [(INVALID_DSL_ARGS, "expr.args")]),
        (doc(fn("is_superuser", name="x")), [(INVALID_DSL_ARGS, "expr.args.name")]),
        (doc(fn("has_role", name="r", scope="global")), [(INVALID_DSL_ARGS, "expr.args.scope")]),
        (doc(fn("db_type_in")), [(MISSING_DSL_ARGS, "expr.args.types")]),
        (doc(fn("db_type_in", types=None)), [(MISSING_DSL_ARGS, "expr.args.types")]),
        (doc(fn("db_type_in", types=[])), [(INVALID_DSL_ARGS, "expr.args.types")]),
        (doc(fn("db_type_in", types="mysql")), [(INVALID_DSL_ARGS, "expr.args.types")]),
        (doc(fn("db_type_in", types=["mysql", " "])), [(INVALID_DSL_ARGS, "expr.args.types[1]")]),
        (doc(fn("db_type_in", types=[3])), [(INVALID_DSL_ARGS, "expr.args.types[0]")]),
        (
            doc(fn("db_type_in", types=["oracle", 3, "mysqll"])),
            [(INVALID_DSL_ARGS, "expr.args.types[1]"), (INVALID_DSL_ARGS, "expr.args.types[2]")],
        ),
        (doc(fn("has_capability")), [(MISSING_DSL_ARGS, "expr.args.name")]),
        (doc(fn("has_capability", name="")), [(INVALID_DSL_ARGS, "expr.args.name")]),
        (doc(fn("has_role")), [(MISSING_DSL_ARGS, "expr.args.name")]),
        (doc(fn("has_role", name=" ")), [(INVALID_DSL_ARGS, "expr.args.name")]),
        (doc(fn("has_role", name=["dba"])), [(INVALID_DSL_ARGS, "expr.args.name")]),
        (doc(fn("has_privilege", scope="global")), [(MISSING_DSL_ARGS, "expr.args.name")]),
        (doc(fn("has_privilege", name="SELECT")), [(MISSING_DSL_ARGS, "expr.args.scope")]),
        (
            doc(fn("has_privilege", name="SELECT", scope="instance")),
            [(INVALID_DSL_ARGS, "expr.args.scope")],
        ),
        (doc(fn("has_privilege", name="SELECT", scope=1)), [(INVALID_DSL_ARGS, "expr.args.scope")]),
        (
            doc(fn("has_privilege", name="SELECT", scope="database", object="")),
            [(INVALID_DSL_ARGS, "expr.args.object")],
        ),
        (
            doc(fn("has_privilege", name="SELECT", scope="database", database=" ")),
            [(INVALID_DSL_ARGS, "expr.args.database")],
        ),
        (
            doc(fn("has_privilege", name="SELECT", scope="database", object="a", database="b")),
            [(INVALID_DSL_ARGS, "expr.args.database")],
        ),
        (
            doc(fn("has_privilege", name="SELECT", scope="table", database="shop")),
            [(INVALID_DSL_ARGS, "expr.args.database")],
        ),
        (
            doc(fn("has_privilege", name="SELECT", scope="global", schema="x")),
            [(INVALID_DSL_ARGS, "expr.args.schema")],
        ),
    ],
)
def test_error_codes_and_paths(expression, expected):
    errors = validate(expression)
    assert found(errors) == expected
    assert all(isinstance(error, DslError) and error.message for error in errors)
    # Evaluation reports exactly what validation reports, and never matches.
    assert evaluate(expression, PG_SUPER) == Outcome(matched=False, errors=errors)


def test_validate_collects_every_error_in_the_tree():
    expression = doc(
        op(
            "AND",
            fn("has_privilege", name="SELECT", scope="everywhere"),
            op("or", UNKNOWN, fn("db_type_in", types=[]), 42),
            op("NOT", fn("has_role"), fn("is_locked")),
            {"op": "AND", "args": [], "comment": "x"},
            fn("has_privilege", scope="database", object="", database="b"),
        )
    )
    assert found(validate(expression)) == [
        (INVALID_DSL_ARGS, "expr.args[0].args.scope"),
        (UNKNOWN_DSL_FUNCTION, "expr.args[1].args[0].fn"),
        (INVALID_DSL_ARGS, "expr.args[1].args[1].args.types"),
        (INVALID_DSL_EXPRESSION, "expr.args[1].args[2]"),
        (INVALID_DSL_EXPRESSION, "expr.args[2].args"),
        (MISSING_DSL_ARGS, "expr.args[2].args[0].args.name"),
        (INVALID_DSL_EXPRESSION, "expr.args[3].comment"),
        (MISSING_DSL_ARGS, "expr.args[4].args.name"),
        (INVALID_DSL_ARGS, "expr.args[4].args.object"),
    ]


def test_unknown_argument_is_reported_with_the_other_argument_errors():
    errors = validate(doc(fn("has_privilege", name="", scope="global", objet="shop")))
    assert found(errors) == [
        (INVALID_DSL_ARGS, "expr.args.objet"),
        (INVALID_DSL_ARGS, "expr.args.name"),
    ]


def test_unknown_top_level_key_and_node_errors_are_reported_together():
    errors = validate({"version": 4, "expr": UNKNOWN, "comment": "x"})
    assert found(errors) == [
        (INVALID_DSL_EXPRESSION, "comment"),
        (UNKNOWN_DSL_FUNCTION, "expr.fn"),
    ]


def test_deep_nesting_is_an_error_not_a_crash():
    node = TRUE
    for _ in range(dsl.MAX_DEPTH + 5):
        node = op("NOT", node)
    errors = validate(doc(node))
    assert [error.code for error in errors] == [INVALID_DSL_EXPRESSION]
    assert errors[0].path.startswith("expr.args[0].args[0]")
    text = "[" * 100_000 + "]" * 100_000
    assert found(validate(text)) == [(INVALID_DSL_EXPRESSION, "")]
    assert render(doc(node)).count("<invalid>") == 1


def test_an_error_is_a_frozen_value():
    error = validate(doc(UNKNOWN))[0]
    assert error == DslError(UNKNOWN_DSL_FUNCTION, "expr.fn", error.message)
    assert "no_such_function" in error.message
    with pytest.raises(dataclasses.FrozenInstanceError):
        error.code = "OTHER"  # type: ignore[misc]


# --- JSON text input ---------------------------------------------------------------------


def test_json_text_and_bytes_are_accepted():
    text = json.dumps(doc(fn("has_role", name="db_owner")))
    assert validate(text) == []
    assert evaluate(text, SQLSERVER_OWNER) == Outcome(matched=True, errors=[])
    assert evaluate(text.encode(), SQLSERVER_OWNER).matched is True


def test_json_text_version_must_be_an_integer():
    text = '{"version": 4.0, "expr": {"fn": "is_superuser"}}'
    assert found(validate(text)) == [(DSL_V4_REQUIRED, "version")]


# --- fail closed -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr",
    [
        op("NOT", UNKNOWN),
        op("NOT", fn("has_role")),
        op("NOT", op("NOT", op("NOT", UNKNOWN))),
        op("OR", TRUE, UNKNOWN),
        op("OR", UNKNOWN, TRUE),
        op("AND", FALSE, UNKNOWN),
        op("NOT", op("AND", FALSE, UNKNOWN)),
        op("OR", fn("is_superuser"), fn("db_type_in", types=[])),
    ],
)
def test_any_error_means_not_matched(expr):
    outcome = evaluate(doc(expr), PG_SUPER)
    assert outcome.matched is False
    assert outcome.errors
    assert outcome.errors == validate(doc(expr))


def test_not_of_unknown_function_is_not_a_match():
    outcome = evaluate(doc(op("NOT", UNKNOWN)), MYSQL_READER)
    assert outcome.matched is False
    assert found(outcome.errors) == [(UNKNOWN_DSL_FUNCTION, "expr.args[0].fn")]


def test_evaluate_rejects_facts_that_are_not_a_mapping():
    with pytest.raises(TypeError):
        evaluate(doc(TRUE), ["SUPERUSER"])


# --- compile ---------------------------------------------------------------------------


def test_compile_returns_a_reusable_predicate():
    predicate = dsl.compile(SUPER_ACCOUNTS)
    assert [name for name, account in ALL_ACCOUNTS.items() if predicate(account)] == [
        "mysql_root",
        "pg_super",
        "sqlserver_sa",
        "oracle_dba",
    ]
    assert predicate(PG_SUPER) is True
    assert predicate(PG_APP) is False


def test_compile_raises_with_every_error():
    with pytest.raises(InvalidExpression) as raised:
        dsl.compile(doc(op("AND", UNKNOWN, fn("has_role"))))
    assert found(raised.value.errors) == [
        (UNKNOWN_DSL_FUNCTION, "expr.args[0].fn"),
        (MISSING_DSL_ARGS, "expr.args[1].args.name"),
    ]
    assert "expr.args[1].args.name" in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_compiled_predicate_agrees_with_evaluate():
    rules = [
        SUPER_ACCOUNTS,
        MYSQL_GLOBAL_SELECT,
        SQLSERVER_DB_OWNER,
        doc(op("NOT", op("OR", fn("is_locked"), fn("db_type_in", types=["oracle"])))),
        doc(
            op("AND", fn("has_role", name="CONNECT"), fn("has_privilege", name="X", scope="global"))
        ),
        doc(op("OR", FALSE, FALSE, fn("has_capability", name="can_login"))),
    ]
    for rule in rules:
        predicate = dsl.compile(rule)
        for account in ALL_ACCOUNTS.values():
            assert predicate(account) is evaluate(rule, account).matched


def test_evaluating_100_000_accounts_is_fast():
    rule = doc(
        op(
            "AND",
            fn("db_type_in", types=["mysql", "MySQL"]),
            op("OR", fn("is_superuser"), fn("has_privilege", name="SELECT", scope="global")),
            op("NOT", fn("is_locked")),
        )
    )
    samples = list(ALL_ACCOUNTS.values())
    accounts = [dict(samples[i % len(samples)]) for i in range(100_000)]
    start = time.perf_counter()
    predicate = dsl.compile(rule)
    matched = sum(1 for account in accounts if predicate(account))
    elapsed = time.perf_counter() - start
    assert matched == 20_000  # mysql_root and mysql_reader, 2 of every 10 accounts
    assert elapsed < 3.0, f"100 000 evaluations took {elapsed:.2f} s"


# --- readable form ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (SUPER_ACCOUNTS, 'is_superuser() OR has_capability("GRANT_ADMIN")'),
        (MYSQL_GLOBAL_SELECT, 'has_privilege(name="SELECT", scope="global")'),
        (SQLSERVER_DB_OWNER, 'has_role("db_owner")'),
        (doc(op("NOT", fn("is_locked"))), "NOT (is_locked())"),
        (doc(fn("db_type_in", types=["mysql", "oracle"])), 'db_type_in(["mysql", "oracle"])'),
        (
            doc(fn("has_privilege", database="shop", scope="database", name="SELECT")),
            'has_privilege(name="SELECT", scope="database", database="shop")',
        ),
        (
            doc(fn("has_privilege", name="SELECT", scope="table", object='a."b"')),
            'has_privilege(name="SELECT", scope="table", object="a.\\"b\\"")',
        ),
        (
            doc(op("and", fn("is_superuser"), op("OR", fn("is_locked"), fn("has_role", name="r")))),
            'is_superuser() AND (is_locked() OR has_role("r"))',
        ),
        (
            doc(op("OR", op("AND", fn("is_superuser"), fn("is_locked")), fn("has_role", name="r"))),
            '(is_superuser() AND is_locked()) OR has_role("r")',
        ),
        (
            doc(op("OR", op("OR", fn("is_superuser"), fn("is_locked")), fn("has_role", name="r"))),
            'is_superuser() OR is_locked() OR has_role("r")',
        ),
        (
            doc(op("AND", op("NOT", op("OR", fn("is_locked"), fn("is_superuser"))), TRUE)),
            "NOT (is_locked() OR is_superuser()) AND AND()",
        ),
        (doc(op("AND", op("OR", fn("is_locked")))), "is_locked()"),
        (doc(op("OR")), "OR()"),
        (doc({"fn": "is_superuser", "args": None}), "is_superuser()"),
        (doc(fn("has_role", name="rôle")), 'has_role("rôle")'),
    ],
)
def test_render(expression, expected):
    assert render(expression) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("{not json", "<invalid>"),
        (None, "<invalid>"),
        ({"version": 4}, "<invalid>"),
        (doc(None), "<invalid>"),
        (doc(op("XOR", fn("is_locked"))), "<invalid>"),
        (doc(op("AND", fn("is_locked"), 5)), "is_locked() AND <invalid>"),
        (doc(op("NOT", TRUE, FALSE)), "NOT (<invalid>)"),
        (doc(op("NOT")), "NOT (<invalid>)"),
        (doc({"fn": "has_role", "args": "x"}), "has_role(<invalid>)"),
        (doc({"fn": 3}), "<invalid>"),
        (doc(fn("whatever", b=1, a=[2])), "whatever(a=[2], b=1)"),
        (doc(fn("has_role", name="r", extra=True)), 'has_role(name="r", extra=true)'),
        (doc(fn("has_role", name=object())), "has_role(<invalid>)"),
        ({"version": 3, "expr": fn("is_locked")}, "is_locked()"),
    ],
)
def test_render_never_raises_on_invalid_expressions(expression, expected):
    assert render(expression) == expected

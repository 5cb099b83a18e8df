"""classification.dsl: the ``effective`` argument (issue 11) and PUBLIC at evaluation time."""

import itertools
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.canonical import SCOPES
from accounts.facts import EFFECTIVE_CAPABILITIES
from accounts.models import Account, PrivilegeSnapshot
from classification import dsl
from classification.dsl import (
    FACTS_MISSING,
    INVALID_DSL_ARGS,
    MISSING_DSL_ARGS,
    Outcome,
    evaluate,
    render,
    validate,
)
from classification.models import Assignment
from classification.services import (
    _active_facts,
    classification_classify_instance,
    rule_create,
    rule_preview,
)
from tests.accounts.factories import make_account
from tests.inventory.factories import InstanceFactory


def doc(expr):
    return {"version": 4, "expr": expr}


def fn(function, /, **args):
    return {"fn": function, "args": args} if args else {"fn": function}


def op(name, *args):
    return {"op": name, "args": list(args)}


def found(errors):
    return [(error.code, error.path) for error in errors]


def grant(scope, obj, privilege, option="", via=()):
    """A grant as the sync stores it in facts["effective"] (with provenance)."""
    return {
        "scope": scope,
        "object": obj,
        "privilege": privilege,
        "option": option,
        "via": list(via),
        "set_role": False,
    }


def literal(scope, obj, privilege, option=""):
    return {"scope": scope, "object": obj, "privilege": privilege, "option": option}


def account(
    *,
    grants=(),
    roles=(),
    capabilities=(),
    effective_grants=(),
    effective_roles=(),
    effective_capabilities=(),
    public_grants=(),
    public_roles=(),
    engine="postgresql",
):
    """Facts as the classification service hands them to the DSL."""
    return {
        "engine": engine,
        "capabilities": list(capabilities),
        "roles": list(roles),
        "grants": list(grants),
        "effective": {
            "capabilities": list(effective_capabilities),
            "roles": list(effective_roles),
            "grants": list(effective_grants),
        },
        "public": {"grants": list(public_grants), "roles": list(public_roles)},
    }


def matches(expression, facts):
    outcome = evaluate(expression, facts)
    assert outcome.errors == []
    assert dsl.compile(expression)(facts) is outcome.matched
    return outcome.matched


def reads(effective=None, **args):
    """has_privilege(SELECT, database, shop) literal or effective."""
    if effective is not None:
        args["effective"] = effective
    return doc(fn("has_privilege", name="SELECT", scope="database", object="shop", **args))


# An account that may SELECT on shop only through a role: app_user -> app_read.
THROUGH_ROLE = account(
    grants=[literal("database", "shop", "CONNECT")],
    roles=["app_read"],
    effective_grants=[
        grant("database", "shop", "CONNECT"),
        grant("database", "shop", "SELECT", via=["app_read"]),
    ],
    effective_roles=["app_read", "readers"],
)
# PostgreSQL's default: CONNECT on every database to PUBLIC.
PUBLIC_CONNECT = account(public_grants=[literal("database", "shop", "CONNECT")])
# A member of a superuser role: the superuser capability is effective, not its own.
SUPER_BY_ROLE = account(
    roles=["admins"], effective_roles=["admins"], effective_capabilities=["SUPERUSER"]
)


# --- validation ------------------------------------------------------------------------


EFFECTIVE_FUNCTIONS = {
    "is_superuser": {},
    "is_locked": {},
    "has_capability": {"name": "SUPERUSER"},
    "has_role": {"name": "app_read"},
    "has_privilege": {"name": "SELECT", "scope": "database"},
}


@pytest.mark.parametrize("function", EFFECTIVE_FUNCTIONS)
@pytest.mark.parametrize("value", [True, False, None])
def test_every_function_reading_privileges_takes_effective(function, value):
    assert validate(doc(fn(function, **EFFECTIVE_FUNCTIONS[function], effective=value))) == []


@pytest.mark.parametrize("function", EFFECTIVE_FUNCTIONS)
@pytest.mark.parametrize("value", ["true", "yes", 1, 0, 1.0, [], {}, [True]])
def test_effective_must_be_a_boolean(function, value):
    expression = doc(fn(function, **EFFECTIVE_FUNCTIONS[function], effective=value))
    errors = validate(expression)
    assert found(errors) == [(INVALID_DSL_ARGS, "expr.args.effective")]
    assert "true or false" in errors[0].message
    assert evaluate(expression, THROUGH_ROLE) == Outcome(matched=False, errors=errors)


def test_db_type_in_takes_no_effective():
    errors = validate(doc(fn("db_type_in", types=["mysql"], effective=True)))
    assert found(errors) == [(INVALID_DSL_ARGS, "expr.args.effective")]


def test_effective_errors_are_reported_with_the_others_at_their_paths():
    expression = doc(
        op(
            "AND",
            fn("has_privilege", name="", scope="procedure", effective="yes"),
            op("NOT", fn("has_role", effective=1)),
            fn("is_superuser", effective=True),
        )
    )
    assert found(validate(expression)) == [
        (INVALID_DSL_ARGS, "expr.args[0].args.name"),
        (INVALID_DSL_ARGS, "expr.args[0].args.effective"),
        (MISSING_DSL_ARGS, "expr.args[1].args[0].args.name"),
        (INVALID_DSL_ARGS, "expr.args[1].args[0].args.effective"),
    ]


def test_effective_capability_names_are_checked():
    assert set(EFFECTIVE_CAPABILITIES) == {
        "SUPERUSER",
        "GRANT_ADMIN",
        "ESCALATION",
        "ANONYMOUS",
        "NO_PASSWORD",
        "LOCKED",
    }
    for name in EFFECTIVE_CAPABILITIES:
        assert validate(doc(fn("has_capability", name=name, effective=True))) == []
    for name in ("SUPERUSR", "superuser", "create_db", " SUPERUSER"):
        errors = validate(doc(fn("has_capability", name=name, effective=True)))
        assert found(errors) == [(INVALID_DSL_ARGS, "expr.args.name")]
        assert "ESCALATION" in errors[0].message
    # The literal capabilities also hold every true attribute: their names stay open.
    assert validate(doc(fn("has_capability", name="create_db"))) == []
    assert validate(doc(fn("has_capability", name="create_db", effective=False))) == []


@pytest.mark.parametrize("scope", ["procedure", "function", "package", "default", " Procedure "])
def test_routine_and_default_privilege_scopes_validate(scope):
    assert validate(doc(fn("has_privilege", name="EXECUTE", scope=scope))) == []


def test_the_validator_accepts_exactly_the_canonical_scopes():
    for scope in SCOPES:
        assert validate(doc(fn("has_privilege", name="X", scope=scope))) == []
    assert {"procedure", "function", "package", "default"} <= set(SCOPES)
    errors = validate(doc(fn("has_privilege", name="EXECUTE", scope="routine")))
    assert found(errors) == [(INVALID_DSL_ARGS, "expr.args.scope")]
    assert "procedure, function, package, default" in errors[0].message


# --- literal and effective matching ----------------------------------------------------


def test_a_grant_through_a_role_matches_effective_only():
    assert not matches(reads(), THROUGH_ROLE)
    assert not matches(reads(effective=False), THROUGH_ROLE)
    assert matches(reads(effective=True), THROUGH_ROLE)


def test_a_role_reached_through_a_chain_matches_effective_only():
    assert matches(doc(fn("has_role", name="app_read")), THROUGH_ROLE)
    assert not matches(doc(fn("has_role", name="readers")), THROUGH_ROLE)
    assert matches(doc(fn("has_role", name="readers", effective=True)), THROUGH_ROLE)
    assert not matches(doc(fn("has_role", name="writers", effective=True)), THROUGH_ROLE)


def test_superuser_through_a_role_matches_effective_only():
    assert not matches(doc(fn("is_superuser")), SUPER_BY_ROLE)
    assert not matches(doc(fn("has_capability", name="SUPERUSER")), SUPER_BY_ROLE)
    assert matches(doc(fn("is_superuser", effective=True)), SUPER_BY_ROLE)
    assert matches(doc(fn("has_capability", name="SUPERUSER", effective=True)), SUPER_BY_ROLE)


def test_is_locked_effective_reads_the_effective_capabilities():
    locked = account(capabilities=["LOCKED"], effective_capabilities=["LOCKED"])
    assert matches(doc(fn("is_locked", effective=True)), locked)
    assert not matches(doc(fn("is_locked", effective=True)), THROUGH_ROLE)


def test_effective_capabilities_do_not_read_public():
    facts = account(public_roles=["SUPERUSER"], public_grants=[literal("global", "", "SUPER")])
    assert not matches(doc(fn("is_superuser", effective=True)), facts)


def test_effective_grants_are_the_own_grants_and_those_through_roles():
    # The sync stores only what comes through roles; the own grants complete the effective
    # set. Roles are read from the reached roles only (the sync lists direct ones there too).
    own_only = account(grants=[literal("database", "shop", "SELECT")], roles=["r"])
    assert matches(reads(), own_only)
    assert matches(reads(effective=True), own_only)
    assert not matches(doc(fn("has_role", name="r", effective=True)), own_only)


def test_grants_to_public_match_effective_only():
    connect = doc(fn("has_privilege", name="CONNECT", scope="database", object="shop"))
    connect_effective = doc(
        fn("has_privilege", name="CONNECT", scope="database", object="shop", effective=True)
    )
    assert not matches(connect, PUBLIC_CONNECT)
    assert matches(connect_effective, PUBLIC_CONNECT)
    assert not matches(
        doc(fn("has_privilege", name="CONNECT", scope="database", object="other", effective=True)),
        PUBLIC_CONNECT,
    )


def test_roles_granted_to_public_match_effective_only():
    facts = account(public_roles=["CONNECT"], engine="oracle")
    assert not matches(doc(fn("has_role", name="CONNECT")), facts)
    assert matches(doc(fn("has_role", name="CONNECT", effective=True)), facts)


def test_effective_matching_is_as_literal_as_ever():
    facts = account(
        effective_grants=[grant("global", "", "SELECT"), grant("table", "shop.orders", "UPDATE")],
        public_grants=[literal("function", "public.f()", "EXECUTE")],
    )
    # Scopes do not imply one another, names are exact, scope case is not.
    assert not matches(reads(effective=True), facts)
    assert matches(doc(fn("has_privilege", name="SELECT", scope="GLOBAL", effective=True)), facts)
    assert not matches(
        doc(fn("has_privilege", name="select", scope="global", effective=True)), facts
    )
    assert matches(
        doc(
            fn("has_privilege", name="UPDATE", scope="table", object="shop.orders", effective=True)
        ),
        facts,
    )
    assert matches(
        doc(fn("has_privilege", name="EXECUTE", scope="function", effective=True)), facts
    )
    assert not matches(
        doc(fn("has_privilege", name="EXECUTE", scope="procedure", effective=True)), facts
    )


def test_a_deny_reached_anywhere_beats_a_grant_on_the_same_object():
    own_grant_role_deny = account(
        effective_grants=[
            grant("database", "shop", "SELECT"),
            grant("database", "shop", "SELECT", "DENY", via=["db_denydatareader"]),
        ]
    )
    assert not matches(reads(effective=True), own_grant_role_deny)
    assert not matches(
        doc(fn("has_privilege", name="SELECT", scope="database", effective=True)),
        own_grant_role_deny,
    )
    public_deny = account(
        effective_grants=[grant("database", "shop", "SELECT")],
        public_grants=[literal("database", "shop", "SELECT", "DENY")],
    )
    assert not matches(reads(effective=True), public_deny)
    elsewhere = account(
        effective_grants=[
            grant("database", "shop", "SELECT", "GRANT"),
            grant("database", "other", "SELECT", "DENY"),
        ]
    )
    assert matches(reads(effective=True), elsewhere)
    assert matches(
        doc(fn("has_privilege", name="SELECT", scope="database", effective=True)), elsewhere
    )
    only_denied = account(effective_grants=[grant("database", "shop", "SELECT", "DENY")])
    assert not matches(reads(effective=True), only_denied)


def test_effective_matching_agrees_with_a_model_for_every_combination():
    """Wherever SELECT on shop (or elsewhere) is granted or denied, effective matching is:
    granted somewhere on that object and denied nowhere on it; literal matching only sees
    the account's own GRANT."""
    places = ("own", "role", "public")
    states = ("none", "grant", "deny")
    for combo in itertools.product(states, repeat=len(places)):
        for obj in ("shop", "other"):
            own, effective_grants, public_grants = [], [], []
            for place, state in zip(places, combo, strict=True):
                if state == "none":
                    continue
                option = "DENY" if state == "deny" else ""
                if place == "own":
                    own.append(literal("database", obj, "SELECT", option))
                    effective_grants.append(grant("database", obj, "SELECT", option))
                elif place == "role":
                    effective_grants.append(grant("database", obj, "SELECT", option, via=["r"]))
                else:
                    public_grants.append(literal("database", obj, "SELECT", option))
            facts = account(
                grants=own, effective_grants=effective_grants, public_grants=public_grants
            )
            on_shop = obj == "shop"
            expected = on_shop and "grant" in combo and "deny" not in combo
            assert matches(reads(effective=True), facts) is expected, (combo, obj)
            assert matches(reads(), facts) is (on_shop and combo[0] == "grant"), (combo, obj)
            anywhere = doc(fn("has_privilege", name="SELECT", scope="database", effective=True))
            assert matches(anywhere, facts) is ("grant" in combo and "deny" not in combo)


def test_literal_functions_ignore_effective_and_public_facts():
    facts = account(
        effective_grants=[grant("global", "", "SUPER")],
        effective_roles=["dba"],
        effective_capabilities=["SUPERUSER", "GRANT_ADMIN"],
        public_grants=[literal("global", "", "SUPER")],
        public_roles=["dba"],
    )
    for expr in (
        fn("is_superuser"),
        fn("has_capability", name="GRANT_ADMIN"),
        fn("has_role", name="dba"),
        fn("has_privilege", name="SUPER", scope="global"),
    ):
        assert not matches(doc(expr), facts)
        assert matches(doc({**expr, "args": {**expr.get("args", {}), "effective": True}}), facts)


# --- fail closed -----------------------------------------------------------------------


BEFORE_THE_UPGRADE = {
    "engine": "postgresql",
    "capabilities": ["SUPERUSER"],
    "roles": ["app_read"],
    "grants": [literal("database", "shop", "SELECT")],
}


@pytest.mark.parametrize(
    ("expr", "paths"),
    [
        (fn("is_superuser", effective=True), ["expr.args.effective"]),
        (fn("has_role", name="app_read", effective=True), ["expr.args.effective"] * 2),
        (op("NOT", fn("is_superuser", effective=True)), ["expr.args[0].args.effective"]),
        (op("NOT", fn("has_capability", name="ESCALATION", effective=True)),
         ["expr.args[0].args.effective"]),
        # The literal check would match on its own: the effective one still decides.
        (op("OR", fn("is_superuser"), fn("is_locked", effective=True)),
         ["expr.args[1].args.effective"]),
        (op("AND", op("OR"), fn("is_superuser", effective=True)),
         ["expr.args[1].args.effective"]),
        (op("OR", reads(effective=True)["expr"], fn("is_superuser", effective=True)),
         ["expr.args[0].args.effective"] * 2 + ["expr.args[1].args.effective"]),
    ],
)  # fmt: skip
def test_an_effective_check_without_effective_facts_does_not_match(expr, paths):
    outcome = evaluate(doc(expr), BEFORE_THE_UPGRADE)
    assert outcome.matched is False
    assert [e.code for e in outcome.errors] == [FACTS_MISSING] * len(paths)
    assert [e.path for e in outcome.errors] == paths
    assert "effective" in outcome.errors[0].message
    assert validate(doc(expr)) == []
    assert dsl.compile(doc(expr))(BEFORE_THE_UPGRADE) is False


def test_literal_checks_still_answer_old_snapshots():
    assert matches(doc(op("NOT", fn("is_locked"))), BEFORE_THE_UPGRADE)
    assert matches(doc(fn("is_superuser", effective=False)), BEFORE_THE_UPGRADE)
    assert matches(reads(), BEFORE_THE_UPGRADE)


@pytest.mark.parametrize("bad", [None, [], "effective", 1])
def test_effective_facts_that_are_not_an_object_count_as_missing(bad):
    facts = {**THROUGH_ROLE, "effective": bad}
    outcome = evaluate(reads(effective=True), facts)
    assert outcome.matched is False
    assert found(outcome.errors) == [(FACTS_MISSING, "expr.args.effective")]


def test_public_must_be_given_to_the_checks_that_read_it():
    without_public = {k: v for k, v in THROUGH_ROLE.items() if k != "public"}
    for expression in (reads(effective=True), doc(fn("has_role", name="r", effective=True))):
        outcome = evaluate(expression, without_public)
        assert outcome.matched is False
        assert found(outcome.errors) == [(FACTS_MISSING, "expr.args.effective")]
        assert "PUBLIC" in outcome.errors[0].message
        assert dsl.compile(expression)(without_public) is False
    # Capabilities already include PUBLIC: they do not need it.
    assert matches(doc(fn("is_superuser", effective=True)), {**SUPER_BY_ROLE, "public": None})


def test_an_empty_public_is_no_public():
    assert not matches(reads(effective=True), account())
    assert matches(reads(effective=True), THROUGH_ROLE)


# --- readable form ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (reads(effective=True),
         'has_privilege(name="SELECT", scope="database", object="shop", effective)'),
        (reads(effective=False),
         'has_privilege(name="SELECT", scope="database", object="shop", effective=false)'),
        (reads(effective=None), 'has_privilege(name="SELECT", scope="database", object="shop")'),
        (doc(fn("has_role", name="app_read", effective=True)), 'has_role("app_read", effective)'),
        (doc(fn("has_role", effective=True, name="r")), 'has_role("r", effective)'),
        (doc(fn("has_capability", name="ESCALATION", effective=True)),
         'has_capability("ESCALATION", effective)'),
        (doc(fn("is_superuser", effective=True)), "is_superuser(effective)"),
        (doc(fn("is_locked", effective=False)), "is_locked(effective=false)"),
        (doc(fn("is_superuser", effective="yes")), 'is_superuser(effective="yes")'),
        (doc(op("OR", fn("is_superuser"), fn("is_superuser", effective=True))),
         "is_superuser() OR is_superuser(effective)"),
        (doc(op("NOT", fn("has_role", name="dba", effective=True))),
         'NOT (has_role("dba", effective))'),
        (doc(fn("has_role", name="r", effective=True, extra=1)),
         'has_role(name="r", extra=1, effective)'),
        (doc(fn("db_type_in", types=["mysql"], effective=True)),
         'db_type_in(types=["mysql"], effective=true)'),
    ],
)  # fmt: skip
def test_render(expression, expected):
    assert render(expression) == expected


# --- speed -----------------------------------------------------------------------------


def test_evaluating_100_000_accounts_effectively_is_fast():
    rule = doc(
        op(
            "AND",
            fn("db_type_in", types=["postgresql"]),
            op(
                "OR",
                fn("is_superuser", effective=True),
                fn("has_privilege", name="SELECT", scope="database", effective=True),
            ),
        )
    )
    samples = [THROUGH_ROLE, PUBLIC_CONNECT, SUPER_BY_ROLE, BEFORE_THE_UPGRADE]
    accounts = [samples[i % len(samples)] for i in range(100_000)]
    start = time.perf_counter()
    predicate = dsl.compile(rule)
    matched = sum(1 for facts in accounts if predicate(facts))
    elapsed = time.perf_counter() - start
    assert matched == 50_000  # THROUGH_ROLE and SUPER_BY_ROLE
    assert elapsed < 3.0, f"100 000 evaluations took {elapsed:.2f} s"


# --- the classification service gives PUBLIC's privileges ------------------------------


def set_facts(account_row, **extra):
    snapshot = PrivilegeSnapshot.objects.get(account=account_row)
    snapshot.facts = {**snapshot.facts, **extra}
    snapshot.save(update_fields=["facts"])


def effective_of(*grants, roles=(), capabilities=()):
    return {"capabilities": list(capabilities), "roles": list(roles), "grants": list(grants)}


@pytest.fixture
def pg_estate(db, classifications):
    pg = InstanceFactory(name="pg", engine="postgresql", port=5432)
    other = InstanceFactory(name="pg-other", engine="postgresql", port=5433)
    public = make_account(pg, "PUBLIC", kind="public", grants=[("database", "shop", "CONNECT", "")])
    set_facts(
        public,
        # As the sync stores it: only what comes through roles (CONNECT is PUBLIC's own).
        effective=effective_of(
            grant("function", "shop.public.f()", "EXECUTE", via=["pg_fn_users"]),
            roles=["pg_fn_users"],
        ),
    )
    app = make_account(pg, "app")
    set_facts(app, effective=effective_of())
    member = make_account(pg, "member", roles=["app_read"])
    set_facts(
        member,
        effective=effective_of(
            grant("database", "shop", "SELECT", via=["app_read"]), roles=["app_read"]
        ),
    )
    legacy = make_account(pg, "legacy")  # snapshot written before effective privileges
    elsewhere = make_account(other, "app")
    set_facts(elsewhere, effective=effective_of())
    return {
        "pg": pg,
        "other": other,
        "public": public,
        "app": app,
        "member": member,
        "legacy": legacy,
        "elsewhere": elsewhere,
    }


CONNECTS = doc(fn("has_privilege", name="CONNECT", scope="database", object="shop", effective=True))


def test_active_facts_carry_the_instance_public_privileges(pg_estate):
    with CaptureQueriesContext(connection) as queries:
        rows = dict(_active_facts([pg_estate["pg"].pk, pg_estate["other"].pk]))
    assert len(queries) == 2  # the accounts, and PUBLIC of every instance at once
    public = rows[pg_estate["app"].pk]["public"]
    # PUBLIC's effective set: its own grants and those of the roles granted to it.
    assert {(g["scope"], g["privilege"]) for g in public["grants"]} == {
        ("database", "CONNECT"),
        ("function", "EXECUTE"),
    }
    assert public["roles"] == ["pg_fn_users"]
    assert rows[pg_estate["member"].pk]["public"] is public
    assert rows[pg_estate["elsewhere"].pk]["public"] == {"grants": [], "roles": []}


def test_public_without_an_effective_set_gives_its_own_grants(pg_estate):
    snapshot = PrivilegeSnapshot.objects.get(account=pg_estate["public"])
    del snapshot.facts["effective"]
    snapshot.save(update_fields=["facts"])
    public = dict(_active_facts([pg_estate["pg"].pk]))[pg_estate["app"].pk]["public"]
    assert public == {"grants": [literal("database", "shop", "CONNECT")], "roles": []}


def test_classification_uses_public_and_effective_privileges(pg_estate, classifications):
    rule_create(classification=classifications["low"], name="Connects", expression=CONNECTS)
    rule_create(
        classification=classifications["medium"],
        name="Reads shop",
        expression=reads(effective=True),
    )
    rule_create(
        classification=classifications["sensitive"],
        name="Runs PUBLIC functions",
        expression=doc(fn("has_role", name="pg_fn_users", effective=True)),
    )
    for instance in ("pg", "other"):
        classification_classify_instance(instance=pg_estate[instance])
    assigned = set(
        Assignment.objects.values_list("account__instance__name", "account__name",
                                       "classification__code")
    )  # fmt: skip
    assert assigned == {
        ("pg", "PUBLIC", "low"),
        ("pg", "PUBLIC", "sensitive"),
        ("pg", "app", "low"),
        ("pg", "app", "sensitive"),
        ("pg", "member", "low"),
        ("pg", "member", "medium"),
        ("pg", "member", "sensitive"),
        # legacy: no effective facts, fail closed; pg-other: no PUBLIC account.
    }


def test_a_removed_public_account_grants_nothing(pg_estate):
    Account.objects.filter(pk=pg_estate["public"].pk).update(removed_at=timezone.now())
    rows = dict(_active_facts([pg_estate["pg"].pk]))
    assert rows[pg_estate["app"].pk]["public"] == {"grants": [], "roles": []}


def test_preview_gives_each_instance_its_own_public(pg_estate):
    with CaptureQueriesContext(connection) as queries:
        result = rule_preview(expression=CONNECTS, engine="", accounts=Account.objects.all())
        names = {(a.instance.name, a.name) for a in result["accounts"]}
    assert result["errors"] == []
    assert result["evaluated"] == 5
    assert names == {("pg", "PUBLIC"), ("pg", "app"), ("pg", "member")}
    assert len(queries) == 3  # the accounts, PUBLIC of their instances, the matches shown

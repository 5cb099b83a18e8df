"""The DSL's limits on hostile expressions: depth, size, names that cannot be stored (SPEC §6).

Each test plays the attacker through the pure functions and through the rule editor and its
preview; the refusal must be a clear error, quickly, never a RecursionError or a 500.
"""

import json
import time

import pytest

from classification import dsl
from classification.dsl import INVALID_DSL_ARGS, INVALID_DSL_EXPRESSION, Outcome, render, validate
from classification.models import Rule

SUPERUSER = {"fn": "is_superuser"}


def doc(expr):
    return {"version": 4, "expr": expr}


def nested_text(levels: int) -> str:
    """``levels`` NOTs around is_superuser, as JSON text (too deep for json.dumps)."""
    return (
        '{"version": 4, "expr": '
        + '{"op": "NOT", "args": [' * levels
        + '{"fn": "is_superuser"}'
        + "]}" * levels
        + "}"
    )


def nested(levels: int) -> dict:
    node = SUPERUSER
    for _ in range(levels):
        node = {"op": "NOT", "args": [node]}
    return doc(node)


def wide(count: int) -> dict:
    return doc({"op": "OR", "args": [SUPERUSER] * count})


def only_error(errors, code=INVALID_DSL_EXPRESSION):
    assert [(e.code, e.path) for e in errors] == [(code, "")], errors[:3]
    return errors[0].message


def elapsed(func, *args):
    start = time.perf_counter()
    result = func(*args)
    return result, time.perf_counter() - start


FACTS = {"engine": "mysql", "capabilities": ["SUPERUSER"], "roles": [], "grants": []}


# --- depth ---------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [200, 900, 5_000, 50_000])
def test_deep_text_is_refused_quickly_by_every_entry_point(levels):
    text = nested_text(levels)
    (errors, seconds) = elapsed(validate, text)
    message = only_error(errors)
    assert "levels deep" in message or "too large" in message
    assert seconds < 0.5
    assert dsl.evaluate(text, FACTS).matched is False
    assert render(text) == dsl.INVALID_MARK
    with pytest.raises(dsl.InvalidExpression):
        dsl.compile(text)


@pytest.mark.parametrize("levels", [900, 5_000, 100_000])
def test_deep_python_data_is_refused_without_recursion(levels):
    expression = nested(levels)
    (errors, seconds) = elapsed(validate, expression)
    assert errors
    assert errors[0].code == INVALID_DSL_EXPRESSION
    assert seconds < 0.5
    assert dsl.evaluate(expression, FACTS).matched is False
    assert render(expression).count(dsl.INVALID_MARK) <= 1


def test_nesting_a_little_too_deep_still_points_at_the_place():
    errors = validate(nested(dsl.MAX_DEPTH + 3))
    assert [e.code for e in errors] == [INVALID_DSL_EXPRESSION]
    assert errors[0].path.startswith("expr.args[0].args[0]")


def test_the_deepest_allowed_rule_validates_evaluates_and_renders():
    expression = nested(dsl.MAX_DEPTH)
    assert validate(expression) == []
    assert validate(json.dumps(expression)) == []
    assert dsl.evaluate(expression, FACTS) == Outcome(matched=True, errors=[])
    assert render(expression).startswith("NOT (NOT (")


def test_a_cycle_of_python_objects_is_refused():
    node = {"op": "AND", "args": []}
    node["args"].append(node)
    assert validate(doc(node))[0].code == INVALID_DSL_EXPRESSION
    assert render(doc(node)).count(dsl.INVALID_MARK) == 1


# --- size ----------------------------------------------------------------------------------


def test_a_million_arguments_are_refused_quickly():
    expression = wide(10**6)
    (errors, seconds) = elapsed(validate, expression)
    assert "too large" in only_error(errors)
    assert seconds < 0.5
    (outcome, seconds) = elapsed(dsl.evaluate, expression, FACTS)
    assert outcome.matched is False
    assert seconds < 0.5
    (text, seconds) = elapsed(render, expression)
    assert text == dsl.INVALID_MARK
    assert seconds < 0.5


def test_a_21_megabyte_text_is_refused_before_it_is_parsed():
    text = json.dumps(wide(10**6))
    assert len(text) > 20_000_000
    (errors, seconds) = elapsed(validate, text)
    message = only_error(errors)
    assert "too large" in message
    assert str(dsl.MAX_LENGTH) in message
    assert seconds < 0.1
    assert render(text) == dsl.INVALID_MARK
    assert only_error(validate(text.encode())) == message


def test_one_huge_name_is_too_large():
    errors = validate(doc({"fn": "has_role", "args": {"name": "r" * (dsl.MAX_LENGTH + 1)}}))
    assert "too large" in only_error(errors)


def test_just_under_the_limits_is_fine():
    count = dsl.MAX_VALUES // 4  # each argument is an object and its string: two values
    expression = wide(count)
    assert validate(expression) == []
    assert dsl.evaluate(expression, FACTS).matched is True
    assert validate(wide(dsl.MAX_VALUES))[0].code == INVALID_DSL_EXPRESSION


def test_json_constants_that_are_not_json_are_refused():
    for constant in ("NaN", "Infinity", "-Infinity"):
        text = '{"version": 4, "expr": {"fn": "is_superuser", "args": {"effective": %s}}}'
        assert "not valid JSON" in only_error(validate(text % constant))


# --- names that cannot be stored -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"), [("db\x00owner", "NUL"), ("db\ud800owner", "surrogate")]
)
def test_a_name_that_cannot_be_stored_is_an_error_at_its_path(name, reason):
    errors = validate(doc({"fn": "has_role", "args": {"name": name}}))
    assert [(e.code, e.path) for e in errors] == [(INVALID_DSL_ARGS, "expr.args.name")]
    assert reason in errors[0].message
    text = json.dumps(doc({"fn": "has_privilege", "args": {"name": "SELECT", "scope": "database",
                                                            "object": name}}))  # fmt: skip
    assert [e.path for e in validate(text)] == ["expr.args.object"]


def test_errors_and_the_readable_form_can_always_be_shown():
    hostile = "\ud800\x00<b>"
    expression = doc({"fn": "is_superuser", hostile: 1, "args": {hostile: hostile}})
    for error in validate(expression):
        error.path.encode("utf-8")
        error.message.encode("utf-8")
        assert "\x00" not in error.path + error.message
    render(expression).encode("utf-8")
    render(doc({"fn": hostile})).encode("utf-8")


def test_malformed_stored_facts_do_not_match_and_do_not_crash():
    expression = doc({"fn": "has_privilege", "args": {"name": "SELECT", "scope": "global"}})
    for facts in ({"grants": 5}, {"grants": [1, 2]}, {"capabilities": 3}, {"roles": None}):
        outcome = dsl.evaluate(expression, facts)
        assert outcome.matched is False
    assert dsl.evaluate(doc({"fn": "is_superuser"}), {"capabilities": 3}).matched is False


# --- the rule editor and its preview -------------------------------------------------------


@pytest.fixture
def editor(client, admin_user, classifications):
    client.force_login(admin_user)
    client.raise_request_exception = False
    return client


def add_rule(client, classifications, expression_text: str):
    return client.post(
        "/admin/classification/rule/add/",
        {
            "classification": classifications["super"].pk,
            "name": "hostile",
            "engine": "",
            "expression": expression_text,
            "is_active": "on",
        },
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "text",
    [
        nested_text(900),
        "[" * 900 + "]" * 900,
        "[" * 100_000 + "]" * 100_000,
        json.dumps(wide(50_000)),
        '{"version": 4, "expr": {"fn": "has_role", "args": {"name": "a\\u0000b"}}}',
        '{"version": 4, "expr": {"fn": "has_role", "args": {"name": "a\\ud800b"}}}',
        '{"version": 4, "expr": {"fn": "is_superuser", "\\ud800": 1}}',
    ],
    ids=["depth900", "lists900", "lists1e5", "wide", "nul", "surrogate", "surrogate-key"],
)
def test_the_editor_shows_a_form_error_and_saves_nothing(editor, classifications, text):
    response = add_rule(editor, classifications, text)
    assert response.status_code == 200
    content = response.content.decode()
    assert "errorlist" in content
    assert "Traceback" not in content
    assert not Rule.objects.exists()
    assert len(content) < 2 * len(text) + 200_000  # the page is not a multiple of the input


@pytest.mark.django_db
@pytest.mark.parametrize("text", [nested_text(900), json.dumps(wide(50_000))])
def test_the_preview_reports_the_limit(editor, text):
    response = editor.post("/admin/classification/rule/preview/", {"expression": text})
    assert response.status_code == 200
    content = response.content.decode()
    assert "levels deep" in content or "too large" in content

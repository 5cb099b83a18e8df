"""Rule import against hostile files: the check (dry run) runs every constraint the real
save runs, and nothing ends in a 500, a hang or a partial write (SPEC §6, §9)."""

import io
import json
import time

import pytest
from django.test import override_settings

from classification.models import Rule
from classification.transfer import RulesImportError, rules_import, rules_load
from tests.classification.conftest import SUPERUSER

pytestmark = pytest.mark.django_db

IMPORT_URL = "/admin/classification/rule/import/"


def rule(name="super accounts", **changes):
    return {"name": name, "classification": "super", "expression": SUPERUSER, **changes}


DEEP_900 = (
    '{"version": 4, "expr": '
    + '{"op": "NOT", "args": [' * 900
    + '{"fn": "is_superuser"}'
    + "]}" * 900
    + "}"
)
HOSTILE_RULES = {
    "5000-character name": (rule("n" * 5000), "at most 200 characters"),
    "NUL in the name": (rule("super\x00accounts"), "NUL"),
    "lone surrogate in the name": (rule("super\ud800accounts"), "surrogate"),
    "NUL in the expression": (
        rule(expression={"version": 4, "expr": {"fn": "has_role", "args": {"name": "a\x00b"}}}),
        "NUL",
    ),
    "lone surrogate in the expression": (
        rule(expression={"version": 4, "expr": {"fn": "has_role", "args": {"name": "a\udc00"}}}),
        "surrogate",
    ),
    "predecessor text with a surrogate": (
        {
            "rule_name": "x",
            "classification": "super",
            "rule_expression": '{"version":4,"expr":{"fn":"has_role","args":{"name":"\\ud800"}}}',
        },
        "surrogate",
    ),
    "expression nested 900 deep": (
        rule(expression=DEEP_900),
        "levels deep",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE_RULES))
def test_the_dry_run_reports_what_the_real_import_would_refuse(classifications, case):
    hostile, expected = HOSTILE_RULES[case]
    document = [rule("fine"), hostile]
    for dry_run in (True, False):
        with pytest.raises(RulesImportError) as caught:
            rules_import(document, dry_run=dry_run)
        problems = caught.value.problems
        assert any(p.startswith("rules[1]") and expected in p for p in problems), problems
        for problem in problems:
            problem.encode("utf-8")  # showable on a page
            assert "\x00" not in problem
    assert not Rule.objects.exists()


def test_a_failing_save_is_reported_and_writes_nothing(classifications, monkeypatch):
    from django.core.exceptions import ValidationError

    from classification import transfer

    calls = []

    def flaky_create(**kwargs):
        calls.append(kwargs["name"])
        if len(calls) == 2:
            raise ValidationError({"name": ["taken meanwhile"]})
        return real_create(**kwargs)

    real_create = transfer.rule_create
    monkeypatch.setattr(transfer, "rule_create", flaky_create)
    with pytest.raises(RulesImportError, match="taken meanwhile"):
        rules_import([rule("one"), rule("two")])
    assert not Rule.objects.exists()


# --- the file: size, JSON, number of rules -------------------------------------------------


def test_a_21_megabyte_file_is_refused_by_size_before_it_is_parsed():
    expression = {"version": 4, "expr": {"op": "OR", "args": [{"fn": "is_superuser"}] * 10**6}}
    data = json.dumps([rule(expression=expression)]).encode()
    assert len(data) > 20_000_000
    start = time.perf_counter()
    with pytest.raises(RulesImportError, match="at most"):
        rules_load(io.BytesIO(data))
    assert time.perf_counter() - start < 0.5


@override_settings(WHALEFALL_IMPORT_MAX_BYTES=50_000_000)
def test_a_million_arguments_within_the_size_limit_are_refused_quickly(classifications):
    expression = {"version": 4, "expr": {"op": "OR", "args": [{"fn": "is_superuser"}] * 10**6}}
    document = rules_load(io.BytesIO(json.dumps([rule(expression=expression)]).encode()))
    start = time.perf_counter()
    with pytest.raises(RulesImportError, match="too large"):
        rules_import(document, dry_run=True)
    assert time.perf_counter() - start < 1


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (b"[{", "not valid JSON"),
        (b"\xff\xfe[]", "not valid JSON"),
        (b'[{"name": NaN}]', "not valid JSON"),
        (b"", "not valid JSON"),
    ],
)
def test_a_file_that_is_not_json_is_one_clear_problem(data, expected):
    with pytest.raises(RulesImportError) as caught:
        rules_load(io.BytesIO(data))
    assert len(caught.value.problems) == 1
    assert expected in caught.value.problems[0]


@override_settings(WHALEFALL_IMPORT_MAX_ROWS=10)
def test_more_rules_than_the_limit_are_refused_before_any_is_checked(classifications):
    with pytest.raises(RulesImportError, match="more than 10 rules"):
        rules_import([rule(f"r{i}") for i in range(11)], dry_run=True)
    assert rules_import([rule(f"r{i}") for i in range(10)], dry_run=True)["created"] == 10


def test_thousands_of_problems_are_summed_up(classifications):
    with pytest.raises(RulesImportError) as caught:
        rules_import([rule(5) for _ in range(5_000)])
    problems = caught.value.problems
    assert len(problems) <= 101
    assert "more problems" in problems[-1]


# --- the admin page ------------------------------------------------------------------------


def upload(data: bytes):
    file = io.BytesIO(data)
    file.name = "rules.json"
    return file


@pytest.fixture
def importer(client, admin_user, classifications):
    client.force_login(admin_user)
    client.raise_request_exception = False
    return client


@pytest.mark.parametrize("case", list(HOSTILE_RULES))
@pytest.mark.parametrize("dry_run", [True, False])
def test_the_import_page_shows_problems_and_never_fails(importer, case, dry_run):
    hostile, expected = HOSTILE_RULES[case]
    data = json.dumps([rule("fine"), hostile]).encode()
    form = {"file": upload(data), **({"dry_run": "on"} if dry_run else {})}
    response = importer.post(IMPORT_URL, form)
    assert response.status_code == 200
    assert expected in response.content.decode()
    assert not Rule.objects.exists()


@override_settings(WHALEFALL_IMPORT_MAX_BYTES=1000)
def test_the_import_page_refuses_a_large_file(importer):
    response = importer.post(IMPORT_URL, {"file": upload(b" " * 1001 + b"[]"), "dry_run": "on"})
    assert response.status_code == 200
    assert "at most" in response.content.decode()


def test_the_import_page_refuses_deep_json(importer):
    response = importer.post(IMPORT_URL, {"file": upload(b"[" * 5_000 + b"]" * 5_000)})
    assert response.status_code == 200
    assert "not valid JSON" in response.content.decode()

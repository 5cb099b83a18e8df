"""Property tests (Hypothesis) of the parsers that take hostile input (STYLE rule 15).

* ``dsl.validate``, ``dsl.evaluate``, ``dsl.compile`` and ``dsl.render`` get arbitrary JSON
  (deep, wide, with NUL characters and lone surrogates, as data and as text) and DSL-shaped
  documents with random mistakes: only a list of ``DslError``, an ``Outcome``, an
  ``InvalidExpression`` or a string comes out, within the deadline.
* Both importers get arbitrary bytes, arbitrary cells and mutated valid files: only
  validation errors come out, within the deadline; a check (dry run) writes nothing and a
  real import writes all of the file or none of it.
"""

import csv
import importlib
import io
import json
from datetime import timedelta

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from classification import dsl
from classification.models import Rule
from classification.transfer import RulesImportError, rules_import, rules_load
from inventory.models import Instance
from inventory.services import instance_import
from tests.inventory import test_import_limits as sheets
from whalefall.text import unstorable_character

PURE = settings(deadline=timedelta(seconds=1), max_examples=200, database=None)
WITH_DB = settings(
    deadline=timedelta(seconds=5),
    max_examples=60,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- strategies ----------------------------------------------------------------------------

# Any code point, lone surrogates included, and the DSL's own words now and then.
odd_text = st.text(st.characters(exclude_categories=()), max_size=20) | st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "\ud800",
        "a\udfffb",
        "AND",
        " not ",
        "OR",
        "XOR",
        "is_superuser",
        "has_privilege",
        "has_role",
        "db_type_in",
        "global",
        "database",
        "SUPER",
        "mysql",
        "effective",
        "=1+1",
        "\uff1d1",
    ]
)
keys = odd_text | st.sampled_from(
    [
        "op",
        "fn",
        "args",
        "version",
        "expr",
        "name",
        "scope",
        "object",
        "database",
        "types",
        "effective",
        "objet",
    ]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | odd_text
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=8) | st.dictionaries(keys, children, max_size=6),
    max_leaves=80,
)

function_names = st.sampled_from([*dsl.FUNCTIONS, "nope", "", " has_role "]) | odd_text
function_nodes = st.fixed_dictionaries(
    {"fn": function_names},
    optional={"args": st.dictionaries(keys, json_values, max_size=5) | json_values},
)
operators = st.sampled_from(["AND", "OR", "NOT", " and ", "xor", ""]) | scalars
dsl_nodes = st.recursive(
    function_nodes | json_values,
    lambda children: st.fixed_dictionaries(
        {"op": operators, "args": st.lists(children, max_size=6) | json_values},
        optional={"fn": function_names, "extra": json_values},
    ),
    max_leaves=60,
)
documents = (
    st.fixed_dictionaries(
        {"version": st.sampled_from([4, 4, 4, "4", 4.0, True, None, 5]), "expr": dsl_nodes},
        optional={"comment": json_values},
    )
    | json_values
)


@st.composite
def deep_or_wide(draw):
    """Nesting and width around the limits and far beyond them."""
    node = draw(function_nodes | json_values)
    operator = draw(st.sampled_from(["NOT", "AND", "OR"]))
    for _ in range(draw(st.integers(min_value=0, max_value=3_000))):
        node = {"op": operator, "args": [node]}
    width = draw(st.integers(min_value=0, max_value=30_000))
    if width:
        node = {"op": "OR", "args": [node] * width}
    return {"version": 4, "expr": node}


grants = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "privilege": odd_text,
            "scope": st.sampled_from(["global", "database", "table"]) | odd_text,
            "object": odd_text | st.none(),
            "option": st.sampled_from(["", "GRANT", "DENY"]) | scalars,
        },
    )
    | json_values,
    max_size=5,
)
facts = st.fixed_dictionaries(
    {},
    optional={
        "engine": st.sampled_from(["mysql", "postgresql", "sqlserver", "oracle"]) | scalars,
        "capabilities": st.lists(odd_text, max_size=4) | json_values,
        "roles": st.lists(odd_text, max_size=4) | json_values,
        "grants": grants | json_values,
        "effective": st.fixed_dictionaries(
            {}, optional={"capabilities": json_values, "roles": json_values, "grants": grants}
        )
        | json_values,
        "public": st.fixed_dictionaries({}, optional={"grants": grants, "roles": json_values})
        | json_values,
    },
)


def strings(value):
    """Every string (and key) in a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(key)
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def as_text(value) -> str | None:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (ValueError, RecursionError):
        return None


# --- the rule language ---------------------------------------------------------------------


def check_errors(errors):
    assert isinstance(errors, list)
    for error in errors:
        assert isinstance(error, dsl.DslError)
        assert error.code in {
            dsl.DSL_V4_REQUIRED,
            dsl.INVALID_DSL_EXPRESSION,
            dsl.UNKNOWN_DSL_FUNCTION,
            dsl.MISSING_DSL_ARGS,
            dsl.INVALID_DSL_ARGS,
        }
        (error.path + error.message).encode("utf-8")  # can be shown on a page


def check_expression(expression, account_facts):
    errors = dsl.validate(expression)
    check_errors(errors)
    outcome = dsl.evaluate(expression, account_facts)
    assert isinstance(outcome, dsl.Outcome)
    assert isinstance(outcome.matched, bool)
    if errors:
        assert outcome.matched is False  # fail closed
        with pytest.raises(dsl.InvalidExpression):
            dsl.compile(expression)
    else:
        assert callable(dsl.compile(expression))
        data = json.loads(expression) if isinstance(expression, str | bytes) else expression
        assert all(unstorable_character(text) is None for text in strings(data))  # storable
    assert isinstance(dsl.render(expression), str)
    dsl.render(expression).encode("utf-8")


@PURE
@given(expression=documents, account_facts=facts)
@example(expression={"version": 4, "expr": {"fn": "has_role", "args": {"name": "\x00"}}},
         account_facts={})  # fmt: skip
@example(expression={"version": 4, "expr": {"fn": "is_superuser", "\ud800": 1}}, account_facts={})
def test_any_json_gives_errors_or_an_outcome(expression, account_facts):
    check_expression(expression, account_facts)
    text = as_text(expression)
    if text is not None:
        check_expression(text, account_facts)
        check_expression(text.encode("utf-8", "surrogatepass"), account_facts)


@PURE
@given(expression=deep_or_wide(), account_facts=facts)
def test_deep_and_wide_expressions_are_refused_or_evaluated_quickly(expression, account_facts):
    check_expression(expression, account_facts)


@PURE
@given(text=st.text(st.characters(exclude_categories=()), max_size=300) | st.binary(max_size=300))
@example(text="[" * 50_000)
@example(text='{"version": 4, "expr": ' * 5_000)
def test_any_text_gives_errors_or_an_outcome(text):
    check_expression(text, {})


# --- the instance import -----------------------------------------------------------------


def run_instance_import(data, file_format: str, dry_run: bool):
    """Import inside a transaction rolled back afterwards; return what it said and wrote."""
    with transaction.atomic():
        before = Instance.objects.count()
        try:
            result = instance_import(data=data, file_format=file_format, user=None, dry_run=dry_run)
        except ValidationError as exc:
            result, messages = None, exc.messages
        written = Instance.objects.count() - before
        transaction.set_rollback(True)
    if result is None:
        assert messages  # a file-level problem, said in words
        assert written == 0
        return
    assert not result.base_errors
    assert not list(result.row_errors()), [  # only validation errors, never a crash
        (n, [str(e.error) for e in errs]) for n, errs in result.row_errors()
    ]
    if dry_run or result.has_validation_errors():
        assert written == 0
    else:
        assert written == result.totals["new"]  # all of the file


VALID_CSV = (
    b"name,engine,host,port,database_name,tags,environment,owner,description,is_active\n"
    b"db-1,mysql,10.0.0.1,3306,shop,,production,team,main,true\n"
    b"db-2,postgresql,db.example.com,,,,,,,\n"
)
VALID_XLSX_ROWS = [
    ["name", "engine", "host", "port", "description"],
    ["db-1", "mysql", "10.0.0.1", 3306, None],
    ["db-2", "oracle", "10.0.0.2", None, "x"],
]


@st.composite
def mutated(draw, data: bytes):
    """``data`` with a few bytes flipped, inserted or deleted."""
    data = bytearray(data)
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        position = draw(st.integers(min_value=0, max_value=max(len(data) - 1, 0)))
        kind = draw(st.sampled_from(["flip", "insert", "delete"]))
        byte = draw(st.integers(min_value=0, max_value=255))
        if kind == "flip" and data:
            data[position] ^= byte or 1
        elif kind == "insert":
            data.insert(position, byte)
        elif data:
            del data[position]
    return bytes(data)


@st.composite
def odd_sheets(draw):
    """A CSV with the right header and cells of any text."""
    header = draw(
        st.lists(
            st.sampled_from(["name", "engine", "host", "port", "tags", "description",
                             "is_active", "credential", "owner", "bogus", ""]),
            min_size=1, max_size=8,
        )
    )  # fmt: skip
    rows = draw(st.lists(st.lists(odd_text | scalars.map(str), max_size=9), max_size=5))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8", "surrogatepass")


@pytest.mark.django_db
@WITH_DB
@given(data=st.binary(max_size=3_000), file_format=st.sampled_from(["csv", "xlsx"]))
@example(data=b"\x00" * 100, file_format="csv")
@example(data=b"PK\x03\x04" + b"\x00" * 100, file_format="xlsx")
def test_the_instance_import_takes_any_bytes(data, file_format):
    run_instance_import(data, file_format, dry_run=True)


@pytest.mark.django_db
@WITH_DB
@given(data=odd_sheets(), dry_run=st.booleans())
def test_the_instance_import_takes_any_cells(data, dry_run):
    run_instance_import(data, "csv", dry_run=dry_run)


@pytest.mark.django_db
@WITH_DB
@given(data=mutated(VALID_CSV), dry_run=st.booleans())
def test_the_instance_import_takes_a_mutated_csv(data, dry_run):
    run_instance_import(data, "csv", dry_run=dry_run)


@pytest.mark.django_db
@WITH_DB
@given(
    rows=st.lists(
        st.lists(st.none() | st.integers(-5, 70_000) | odd_text.filter(
            lambda s: all(c >= " " and not 0xD800 <= ord(c) <= 0xDFFF for c in s)
        ), max_size=6),
        max_size=4,
    ),
    dry_run=st.booleans(),
)  # fmt: skip
def test_the_instance_import_takes_an_xlsx_of_any_cells(rows, dry_run):
    run_instance_import(sheets.xlsx([VALID_XLSX_ROWS[0], *rows]), "xlsx", dry_run=dry_run)


@pytest.mark.django_db
@WITH_DB
@given(data=mutated(sheets.xlsx(VALID_XLSX_ROWS)))
def test_the_instance_import_takes_a_mutated_xlsx(data):
    run_instance_import(data, "xlsx", dry_run=False)


# --- the rule import -----------------------------------------------------------------------


def run_rules_import(data: bytes, dry_run: bool):
    with transaction.atomic():
        before = Rule.objects.count()
        try:
            document = rules_load(io.BytesIO(data))
            report, problems = rules_import(document, dry_run=dry_run), []
        except RulesImportError as exc:
            report, problems = None, exc.problems
        written = Rule.objects.count() - before
        transaction.set_rollback(True)
    if report is None:
        assert problems
        for problem in problems:
            problem.encode("utf-8")  # can be shown on the page
    if report is None or dry_run:
        assert written == 0
    else:
        assert written == report["created"] + report["versioned"]


def valid_rules() -> bytes:
    return json.dumps(
        {
            "format": "whalefall.rules",
            "version": 1,
            "rules": [
                {"classification": "super", "name": "superusers", "engine": "",
                 "expression": {"version": 4, "expr": {"fn": "is_superuser"}}},
                {"rule_name": "owners", "classification": "Highly privileged",
                 "db_type": "sqlserver",
                 "rule_expression": '{"version":4,"expr":{"fn":"has_role","args":'
                                    '{"name":"db_owner"}}}'},
            ],
        }
    ).encode()  # fmt: skip


@pytest.fixture
def seeded(db):
    """The system classifications (a transactional test elsewhere may have flushed them)."""
    importlib.import_module("classification.migrations.0002_seed_system_classifications").seed(
        apps, None
    )


@pytest.mark.django_db
@WITH_DB
@given(data=st.binary(max_size=2_000) | mutated(valid_rules()), dry_run=st.booleans())
def test_the_rule_import_takes_any_bytes(seeded, data, dry_run):
    run_rules_import(data, dry_run)


@st.composite
def rule_documents(draw):
    rule = st.dictionaries(
        st.sampled_from(["name", "rule_name", "classification", "engine", "db_type",
                         "expression", "rule_expression", "active", "is_active"]) | keys,
        json_values | documents | documents.map(as_text),
        max_size=6,
    )  # fmt: skip
    rules = draw(st.lists(rule | json_values, max_size=4))
    return draw(st.sampled_from([rules, {"rules": rules}, {"format": "x", "rules": rules}]))


@pytest.mark.django_db
@WITH_DB
@given(document=rule_documents() | json_values, dry_run=st.booleans())
def test_the_rule_import_takes_any_document(seeded, document, dry_run):
    text = as_text(document)
    if text is not None:
        run_rules_import(text.encode("utf-8", "surrogatepass"), dry_run)

"""Rules as JSON: export, import (ours and the predecessor's shape), all or nothing."""

import json

import pytest

from classification.models import Rule
from classification.transfer import RulesImportError, rules_export, rules_import
from tests.classification.conftest import READS_SHOP, SUPERUSER

pytestmark = pytest.mark.django_db

PREDECESSOR = [
    {
        "rule_name": "super accounts",
        "classification": "super",
        "db_type": "mysql",
        "rule_expression": '{"expr":{"args":[{"fn":"is_superuser"},{"args":{"name":"GRANT_ADMIN"},'
        '"fn":"has_capability"}],"op":"OR"},"version":4}',
        "is_active": True,
    },
    {
        "rule_name": "SQL Server db_owner",
        "classification": "Highly privileged",
        "db_type": "sqlserver",
        "rule_expression": '{"expr":{"args":{"name":"db_owner"},"fn":"has_role"},"version":4}',
        "is_active": False,
    },
    {
        "rule_name": "Oracle users quota",
        "classification": "low",
        "db_type": "oracle",
        "rule_expression": '{"expr":{"args":{"name":"UNLIMITED","scope":"tablespace",'
        '"database":"USERS"},"fn":"has_privilege"},"version":4}',
    },
]


def test_predecessor_rules_load_unchanged(classifications):
    report = rules_import(PREDECESSOR)
    assert report == {"created": 3, "versioned": 0, "updated": 0, "unchanged": 0}
    rule = Rule.objects.get(name="super accounts")
    assert rule.engine == "mysql"
    assert rule.classification.code == "super"
    assert rule.expression == json.loads(PREDECESSOR[0]["rule_expression"])
    assert Rule.objects.get(name="SQL Server db_owner").is_active is False


def test_export_then_import_round_trips(rules):
    document = rules_export(Rule.objects.current().select_related("classification"))
    assert document["format"] == "whalefall.rules"
    assert len(document["rules"]) == 3
    assert rules_import(json.loads(json.dumps(document)))["unchanged"] == 3


def test_import_versions_changed_expressions_and_updates_flags(rules):
    document = rules_export(Rule.objects.current().select_related("classification"))
    by_name = {r["name"]: r for r in document["rules"]}
    by_name["Superusers"]["expression"] = READS_SHOP
    by_name["Reads shop"]["active"] = False
    report = rules_import(document)
    assert report == {"created": 0, "versioned": 1, "updated": 1, "unchanged": 1}
    assert Rule.objects.current().get(name="Superusers").version == 2
    assert Rule.objects.current().get(name="Reads shop").is_active is False


def test_dry_run_writes_nothing(classifications):
    assert rules_import(PREDECESSOR, dry_run=True)["created"] == 3
    assert not Rule.objects.exists()


def test_one_bad_rule_refuses_the_whole_file(classifications):
    document = [
        *PREDECESSOR,
        {"name": "bad", "classification": "nope", "engine": "db2", "expression": {"version": 3}},
        {
            "name": "bad2",
            "classification": "low",
            "expression": {"version": 4, "expr": {"fn": "x"}},
        },
        "not a rule",
    ]
    with pytest.raises(RulesImportError) as caught:
        rules_import(document)
    assert caught.value.problems == [
        "rules[3].classification: no classification 'nope'",
        "rules[3].engine: unknown engine 'db2'",
        "rules[3].expression.version: version must be the integer 4, not 3 (DSL_V4_REQUIRED)",
        'rules[4].expression.expr.fn: unknown function "x"; known: db_type_in, is_superuser, '
        "is_locked, has_capability, has_role, has_privilege (UNKNOWN_DSL_FUNCTION)",
        "rules[5]: a rule must be an object",
    ]
    assert not Rule.objects.exists()


def test_duplicates_and_wrong_shapes_are_refused(classifications):
    rule = {"name": "x", "classification": "low", "expression": SUPERUSER}
    with pytest.raises(RulesImportError, match="twice"):
        rules_import([rule, rule])
    with pytest.raises(RulesImportError, match="expected a list"):
        rules_import({"rule": []})
    with pytest.raises(RulesImportError, match="unknown format"):
        rules_import({"format": "other", "rules": []})

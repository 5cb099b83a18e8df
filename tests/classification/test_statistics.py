"""Daily statistics: matches per rule and per classification, per instance and engine."""

import datetime

import pytest

from classification.models import ClassificationDailyStat, RuleDailyStat
from classification.services import (
    assignment_add_manual,
    classification_classify_instance,
    rule_update,
    statistics_compute,
)

pytestmark = pytest.mark.django_db

DAY = datetime.date(2026, 12, 1)


def rule_rows():
    return {
        (s.rule.name, s.instance.name, s.engine): (s.matched, s.evaluated)
        for s in RuleDailyStat.objects.filter(day=DAY).select_related("rule", "instance")
    }


def classification_rows():
    return {
        (s.classification.code, s.instance.name, s.engine): (s.matched, s.assigned, s.evaluated)
        for s in ClassificationDailyStat.objects.filter(day=DAY).select_related(
            "classification", "instance"
        )
    }


def test_counts_for_a_known_estate(estate, rules, classifications, admin_user):
    classification_classify_instance(instance=estate["mysql_a"])
    assignment_add_manual(
        account=estate["pg_app"], classification=classifications["sensitive"], user=admin_user
    )
    totals = statistics_compute(day=DAY)
    mysql_rule = rules["super_or_all"].name
    assert rule_rows() == {
        (mysql_rule, "mysql-a", "mysql"): (2, 3),
        (mysql_rule, "mysql-b", "mysql"): (1, 2),
        ("Superusers", "mysql-a", "mysql"): (0, 3),
        ("Superusers", "mysql-b", "mysql"): (0, 2),
        ("Superusers", "pg", "postgresql"): (1, 2),
        ("Reads shop", "mysql-a", "mysql"): (1, 3),
        ("Reads shop", "mysql-b", "mysql"): (1, 2),
        ("Reads shop", "pg", "postgresql"): (1, 2),
    }
    # matched: distinct accounts matched by the rules; assigned: assignments held (mysql-b
    # was never classified, pg's only assignment is manual).
    assert classification_rows() == {
        ("super", "mysql-a", "mysql"): (2, 2, 3),
        ("super", "mysql-b", "mysql"): (1, 0, 2),
        ("super", "pg", "postgresql"): (1, 0, 2),
        ("low", "mysql-a", "mysql"): (1, 1, 3),
        ("low", "mysql-b", "mysql"): (1, 0, 2),
        ("low", "pg", "postgresql"): (1, 0, 2),
        ("sensitive", "pg", "postgresql"): (0, 1, 2),
    }
    assert totals == {"instances": 3, "rule_rows": 8, "classification_rows": 7}


def test_rerunning_a_day_overwrites_it(estate, rules):
    statistics_compute(day=DAY)
    first = rule_rows()
    statistics_compute(day=DAY)
    assert rule_rows() == first
    assert RuleDailyStat.objects.filter(day=DAY).count() == 8
    # A rule switched off since is no longer counted for that day.
    rule = rules["reads_shop"]
    rule_update(rule=rule, name=rule.name, expression=rule.expression, engine="", is_active=False)
    statistics_compute(day=DAY)
    assert not any(name == "Reads shop" for name, _, _ in rule_rows())
    assert not ClassificationDailyStat.objects.filter(day=DAY, classification__code="low").exists()


def test_other_days_are_kept(estate, rules):
    statistics_compute(day=DAY)
    statistics_compute(day=DAY + datetime.timedelta(days=1))
    assert RuleDailyStat.objects.count() == 16

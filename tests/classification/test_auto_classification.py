"""Auto-classification: the complete new set is computed, then swapped in one transaction."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Account
from classification.models import Assignment, AssignmentSource, Rule
from classification.services import (
    account_sync_and_classify,
    assignment_add_manual,
    classification_classify_instance,
    rule_update,
)
from syncjobs.models import RunKind, RunStatus, RunTrigger
from syncjobs.services import RUN_HANDLERS, run_create, run_item_execute
from tests.accounts.factories import make_account
from tests.classification.conftest import READS_SHOP

pytestmark = pytest.mark.django_db


def classify_all(estate, run_id=None):
    return [
        classification_classify_instance(instance=estate[key], run_id=run_id)
        for key in ("mysql_a", "mysql_b", "pg")
    ]


def assigned(source=None):
    rows = Assignment.objects.select_related("account", "classification", "rule")
    if source:
        rows = rows.filter(source=source)
    return {
        (a.account.instance.name, a.account.name, a.classification.code): (
            a.rule.name if a.rule else None
        )
        for a in rows
    }


def test_rules_classify_the_accounts_they_match(estate, rules):
    outcomes = classify_all(estate, run_id=7)
    mysql_rule = rules["super_or_all"].name
    assert assigned() == {
        ("mysql-a", "root", "super"): mysql_rule,
        ("mysql-a", "dba", "super"): mysql_rule,
        ("mysql-b", "admin", "super"): mysql_rule,
        ("pg", "postgres", "super"): "Superusers",
        ("mysql-a", "reader", "low"): "Reads shop",
        ("mysql-b", "reader", "low"): "Reads shop",
        ("pg", "app", "low"): "Reads shop",
    }
    assert [o.created for o in outcomes] == [3, 2, 2]
    assert set(Assignment.objects.values_list("run_id", flat=True)) == {7}
    assert outcomes[0].detail == {"rules": 3, "accounts": 3}


def test_engine_specific_rules_skip_other_engines(estate, rules):
    # The PostgreSQL superuser matches "Superusers" only, never the MySQL-only rule.
    classification_classify_instance(instance=estate["pg"])
    rule_ids = set(Assignment.objects.values_list("rule_id", flat=True))
    assert rules["super_or_all"].pk not in rule_ids


def test_rerun_without_change_writes_nothing(estate, rules):
    classify_all(estate)
    before = list(Assignment.objects.order_by("pk").values_list("pk", "rule_id", "assigned_at"))
    with CaptureQueriesContext(connection) as queries:
        outcomes = classify_all(estate)
    writes = [q["sql"] for q in queries if q["sql"].startswith(("INSERT", "UPDATE", "DELETE"))]
    assert writes == []
    assert sum(o.unchanged for o in outcomes) == 7
    assert not any(o.created or o.changed or o.removed for o in outcomes)
    assert list(Assignment.objects.order_by("pk").values_list("pk", "rule_id", "assigned_at")) == (
        before
    )


def test_assignments_point_to_the_version_that_matched(estate, rules):
    classify_all(estate)
    v1 = rules["reads_shop"]
    mysql_only = {"fn": "db_type_in", "args": {"types": ["mysql"]}}
    narrower = {"version": 4, "expr": {"op": "AND", "args": [READS_SHOP["expr"], mysql_only]}}
    v2 = rule_update(rule=v1, name=v1.name, expression=narrower, engine="", is_active=True)
    outcomes = classify_all(estate, run_id=9)
    low = Assignment.objects.filter(classification__code="low")
    assert set(low.values_list("account__name", "rule_id", "run_id")) == {
        ("reader", v2.pk, 9),
        ("reader", v2.pk, 9),
    }
    assert low.count() == 2
    assert sum(o.changed for o in outcomes) == 2
    assert sum(o.removed for o in outcomes) == 1
    # The old version stays, with nothing pointing to it any more.
    assert Rule.objects.get(pk=v1.pk).superseded_at is not None


def test_swap_keeps_manual_assignments(estate, rules, classifications, admin_user):
    manual = assignment_add_manual(
        account=estate["pg_app"], classification=classifications["sensitive"], user=admin_user
    )
    # A manual assignment of a pair the rules also match stays manual.
    pinned = assignment_add_manual(
        account=estate["reader"], classification=classifications["low"], user=admin_user
    )
    classify_all(estate)
    classification_classify_instance(instance=estate["mysql_a"])
    assert Assignment.objects.get(pk=manual.pk).source == AssignmentSource.MANUAL
    pinned.refresh_from_db()
    assert (pinned.source, pinned.rule_id) == (AssignmentSource.MANUAL, None)
    assert (
        Assignment.objects.filter(account=estate["reader"], classification__code="low").count() == 1
    )


def test_adding_a_manual_assignment_over_an_automatic_one_pins_it(
    estate, rules, classifications, admin_user
):
    classify_all(estate)
    auto = Assignment.objects.get(account=estate["root"], classification__code="super")
    pinned = assignment_add_manual(
        account=estate["root"], classification=classifications["super"], user=admin_user, note="x"
    )
    assert pinned.pk == auto.pk
    assert (pinned.source, pinned.rule_id, pinned.assigned_by) == ("manual", None, admin_user)


def test_removed_accounts_lose_automatic_assignments(estate, rules):
    classify_all(estate)
    Account.objects.filter(pk=estate["dba"].pk).update(removed_at=timezone.now())
    outcome = classification_classify_instance(instance=estate["mysql_a"])
    assert outcome.removed == 1
    assert not Assignment.objects.filter(account=estate["dba"]).exists()


def test_deactivated_rules_stop_assigning(estate, rules):
    classify_all(estate)
    rule = rules["reads_shop"]
    rule_update(rule=rule, name=rule.name, expression=rule.expression, engine="", is_active=False)
    classify_all(estate)
    assert not Assignment.objects.filter(classification__code="low").exists()


def corrupt(rule):
    """A stored rule that no longer validates (written around the services)."""
    Rule.objects.filter(pk=rule.pk).update(expression={"version": 4, "expr": {"fn": "gone"}})


def test_invalid_stored_rule_leaves_assignments_in_place(estate, rules):
    classify_all(estate)
    before = assigned()
    corrupt(rules["superuser"])
    # Something that would otherwise remove an assignment of the affected classification.
    Account.objects.filter(pk=estate["root"].pk).update(removed_at=timezone.now())
    outcome = classification_classify_instance(instance=estate["mysql_a"])
    assert assigned() == before
    assert outcome.removed == 0
    assert "gone" in outcome.detail["problems"][0]
    assert "skipped" in outcome.detail["problems"][0]


def test_invalid_stored_rule_marks_the_run_partially_failed(estate, rules):
    classify_all(estate)
    before = assigned()
    corrupt(rules["reads_shop"])
    run = run_create(
        kind=RunKind.CLASSIFICATION,
        trigger=RunTrigger.MANUAL,
        instance_ids=[estate["mysql_a"].pk, estate["pg"].pk],
    )
    for item in run.items.all():
        run_item_execute(item_id=item.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.PARTIALLY_FAILED
    assert run.items_failed == 0
    assert run.items_succeeded == 2
    assert "reported problems" in run.error
    assert all("skipped" in i.detail["problems"][0] for i in run.items.all())
    assert assigned() == before


def test_a_valid_run_succeeds(estate, rules):
    run = run_create(
        kind=RunKind.CLASSIFICATION, trigger=RunTrigger.MANUAL, instance_ids=[estate["mysql_b"].pk]
    )
    run_item_execute(item_id=run.items.get().pk)
    run.refresh_from_db()
    assert (run.status, run.created_count) == (RunStatus.SUCCEEDED, 2)


def test_every_account_sync_is_followed_by_classification(estate, rules, monkeypatch):
    assert RUN_HANDLERS[RunKind.ACCOUNTS] == "classification.services.account_sync_and_classify"

    def fake_sync(*, instance, run_id=None):
        make_account(instance, "new_super", host="%", grants=[("global", "", "SUPER", "")])
        from accounts.services import SyncOutcome

        return SyncOutcome(created=1)

    monkeypatch.setattr("classification.services.account_sync_instance", fake_sync)
    outcome = account_sync_and_classify(instance=estate["mysql_b"], run_id=3)
    assert outcome.created == 1
    assert outcome.detail["classification"]["created"] == 3
    assert Assignment.objects.filter(
        account__name="new_super", classification__code="super", run_id=3
    ).exists()


def test_classification_failure_after_sync_is_a_problem_not_a_lost_sync(estate, rules, monkeypatch):
    from accounts.services import SyncOutcome

    monkeypatch.setattr(
        "classification.services.account_sync_instance",
        lambda *, instance, run_id=None: SyncOutcome(unchanged=5),
    )

    def boom(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr("classification.services.classification_classify_instance", boom)
    outcome = account_sync_and_classify(instance=estate["mysql_b"])
    assert outcome.unchanged == 5
    assert outcome.detail["problems"] == ["classification failed: RuntimeError: database went away"]


def test_a_manual_assignment_made_during_the_swap_wins(estate, rules, classifications, admin_user):
    from classification.services import _assignments_insert

    manual = assignment_add_manual(
        account=estate["root"], classification=classifications["super"], user=admin_user
    )
    pairs = [
        (estate["root"].pk, classifications["super"].pk, rules["super_or_all"].pk),
        (estate["dba"].pk, classifications["super"].pk, rules["super_or_all"].pk),
    ]
    _assignments_insert(pairs, run_id=5, now=timezone.now())
    manual.refresh_from_db()
    assert manual.source == AssignmentSource.MANUAL
    assert Assignment.objects.get(account=estate["dba"]).run_id == 5

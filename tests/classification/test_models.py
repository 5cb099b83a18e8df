"""Classifications and rules: seeded system rows, database invariants, versioning."""

import pytest
from django.db import IntegrityError, transaction

from classification.models import (
    SYSTEM_CLASSIFICATIONS,
    Classification,
    Rule,
    SystemClassificationProtected,
)
from classification.services import RuleInvalid, RuleSuperseded, rule_create, rule_update
from tests.classification.conftest import READS_SHOP, SUPERUSER

pytestmark = pytest.mark.django_db


def test_six_system_classifications_are_seeded(classifications):
    assert {code: c.risk_level for code, c in classifications.items() if c.is_system} == (
        SYSTEM_CLASSIFICATIONS
    )


def test_system_classifications_cannot_be_deleted(classifications):
    with pytest.raises(SystemClassificationProtected), transaction.atomic():
        classifications["super"].delete()
    with pytest.raises(SystemClassificationProtected), transaction.atomic():
        Classification.objects.filter(code="public").delete()
    assert Classification.objects.filter(is_system=True).count() == 6


def test_system_risk_level_is_fixed_in_the_database(classifications):
    with pytest.raises(IntegrityError), transaction.atomic():
        Classification.objects.filter(code="super").update(risk_level=3)


def test_custom_classifications_are_free(classifications):
    custom = Classification.objects.create(code="pii", name="PII readers", risk_level=2)
    custom.risk_level = 5
    custom.save()
    custom.delete()


def test_code_is_immutable(classifications):
    custom = Classification.objects.create(code="pii", name="PII readers")
    custom.code = "other"
    with pytest.raises(ValueError, match="cannot be changed"):
        custom.save()


def test_colour_must_be_hex(classifications):
    with pytest.raises(IntegrityError), transaction.atomic():
        Classification.objects.create(code="x", name="X", colour="red")


def test_expression_change_creates_a_version_and_keeps_the_old(classifications):
    v1 = rule_create(classification=classifications["super"], name="Supers", expression=SUPERUSER)
    v2 = rule_update(rule=v1, name="Supers", expression=READS_SHOP, engine="", is_active=True)
    v1.refresh_from_db()
    assert (v2.version, v2.lineage, v2.is_current) == (2, v1.lineage, True)
    assert v1.superseded_at is not None
    assert v1.expression == SUPERUSER
    assert list(Rule.objects.current().filter(lineage=v1.lineage)) == [v2]


def test_engine_change_creates_a_version(classifications):
    v1 = rule_create(classification=classifications["super"], name="Supers", expression=SUPERUSER)
    v2 = rule_update(rule=v1, name="Supers", expression=SUPERUSER, engine="mysql", is_active=True)
    assert v2.version == 2
    assert v2.engine == "mysql"


def test_name_and_active_change_in_place(classifications):
    v1 = rule_create(classification=classifications["super"], name="Supers", expression=SUPERUSER)
    same = rule_update(
        rule=v1, name="All superusers", expression=dict(SUPERUSER), engine="", is_active=False
    )
    assert same.pk == v1.pk
    assert same.version == 1
    assert (same.name, same.is_active, same.superseded_at) == ("All superusers", False, None)
    # JSON text with other key order and spacing is the same expression.
    text = '{"expr": {"fn": "is_superuser"},   "version": 4}'
    assert (
        rule_update(rule=same, name=same.name, expression=text, engine="", is_active=False).pk
        == v1.pk
    )


def test_superseded_versions_are_read_only(classifications):
    v1 = rule_create(classification=classifications["super"], name="Supers", expression=SUPERUSER)
    rule_update(rule=v1, name="Supers", expression=READS_SHOP, engine="", is_active=True)
    with pytest.raises(RuleSuperseded):
        rule_update(rule=v1, name="Renamed", expression=SUPERUSER, engine="", is_active=True)


def test_duplicate_name_per_classification_and_engine_is_rejected(classifications):
    rule_create(classification=classifications["super"], name="Supers", expression=SUPERUSER)
    with pytest.raises(Exception, match="already exists"):
        rule_create(classification=classifications["super"], name="Supers", expression=READS_SHOP)
    # Another engine or classification may reuse the name.
    rule_create(
        classification=classifications["super"], name="Supers", engine="mysql", expression=SUPERUSER
    )
    rule_create(classification=classifications["low"], name="Supers", expression=SUPERUSER)
    with pytest.raises(IntegrityError), transaction.atomic():
        Rule.objects.create(
            classification=classifications["super"], name="Supers", expression=SUPERUSER
        )


def test_superseded_names_do_not_block_a_new_version(classifications):
    v1 = rule_create(classification=classifications["super"], name="Supers", expression=SUPERUSER)
    v2 = rule_update(rule=v1, name="Supers", expression=READS_SHOP, engine="", is_active=True)
    v3 = rule_update(rule=v2, name="Supers", expression=SUPERUSER, engine="", is_active=True)
    assert v3.version == 3


def test_invalid_expressions_are_refused_with_every_error(classifications):
    bad = {
        "version": 4,
        "expr": {"op": "AND", "args": [{"fn": "nope"}, {"fn": "has_role", "args": {}}]},
    }
    with pytest.raises(RuleInvalid) as caught:
        rule_create(classification=classifications["super"], name="Bad", expression=bad)
    assert [(e.code, e.path) for e in caught.value.errors] == [
        ("UNKNOWN_DSL_FUNCTION", "expr.args[0].fn"),
        ("MISSING_DSL_ARGS", "expr.args[1].args.name"),
    ]
    assert not Rule.objects.filter(name="Bad").exists()

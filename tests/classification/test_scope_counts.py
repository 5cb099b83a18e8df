"""Classification counts follow the scope (issue 12, item 3)."""

import pytest
from guardian.shortcuts import assign_perm

from classification.models import Classification
from classification.services import assignment_add_manual, rule_create
from tests.accounts.factories import make_account
from tests.inventory.factories import InstanceFactory

pytestmark = pytest.mark.django_db

SUPERUSER = {"version": 4, "expr": {"fn": "is_superuser"}}


@pytest.fixture
def assigned(user_with_role):
    reviewed = Classification.objects.create(code="reviewed", name="Reviewed")
    rule = rule_create(
        classification=reviewed, name="Superusers", engine="", expression=SUPERUSER, user=None
    )
    own, hidden = InstanceFactory(name="own-db"), InstanceFactory(name="hidden-db")
    assignment_add_manual(
        account=make_account(own, "app_own"), classification=reviewed, user=None, note=""
    )
    for n in range(3):
        assignment_add_manual(
            account=make_account(hidden, f"app_{n}"), classification=reviewed, user=None, note=""
        )
    from classification.models import Assignment

    Assignment.objects.update(rule=rule, source="auto")
    auditor = user_with_role("Auditors (scoped)")
    assign_perm("inventory.view_instance", auditor, own)
    return {"classification": reviewed, "rule": rule, "auditor": auditor}


def assignment_count(client, classification) -> int:
    response = client.get("/admin/classification/classification/")
    assert response.status_code == 200
    row = next(c for c in response.context["cl"].result_list if c.pk == classification.pk)
    return row.n_assignments


def test_a_scoped_user_counts_only_assignments_of_their_instances(client, assigned):
    client.force_login(assigned["auditor"])
    assert assignment_count(client, assigned["classification"]) == 1


def test_rule_versions_count_only_assignments_of_visible_instances(client, assigned):
    client.force_login(assigned["auditor"])
    response = client.get(f"/admin/classification/rule/{assigned['rule'].pk}/change/")
    assert [v.n_assignments for v in response.context["versions"]] == [1]


def test_whoever_sees_every_instance_counts_them_all(client, assigned, user_with_role):
    client.force_login(user_with_role("Auditors"))
    assert assignment_count(client, assigned["classification"]) == 4
    response = client.get(f"/admin/classification/rule/{assigned['rule'].pk}/change/")
    assert [v.n_assignments for v in response.context["versions"]] == [4]

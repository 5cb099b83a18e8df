"""Account sync against the local PostgreSQL: attributes, memberships, ACLs, deep grants."""

import pytest

from accounts.models import Account, AccountChange
from accounts.services import account_sync_instance

pytestmark = pytest.mark.django_db


def snapshot(instance, name):
    return Account.objects.select_related("snapshot").get(instance=instance, name=name).snapshot


@pytest.fixture
def scenario(postgres, postgres_instance):
    group, app = postgres.role("readers"), postgres.role("app")
    expired, shop = postgres.role("expired"), postgres.database("Shop_Mixed")
    postgres.run(
        f"CREATE ROLE {group} NOLOGIN",
        f"CREATE ROLE {app} LOGIN CREATEDB CONNECTION LIMIT 5 IN ROLE {group}",
        f"CREATE ROLE {expired} LOGIN VALID UNTIL '2001-01-01'",
        f'CREATE DATABASE "{shop}" OWNER {group}',
        f'GRANT CONNECT, TEMPORARY ON DATABASE "{shop}" TO {app}',
        f"GRANT {group} TO {expired} WITH ADMIN OPTION",
    )
    postgres.run(
        "CREATE SCHEMA sales",
        "CREATE TABLE sales.orders (id int, price int)",
        f"GRANT USAGE ON SCHEMA sales TO {app}",
        f"GRANT SELECT ON sales.orders TO {app} WITH GRANT OPTION",
        f"GRANT UPDATE (price) ON sales.orders TO {app}",
        database=shop,
    )
    return {"group": group, "app": app, "expired": expired, "shop": shop}


def test_roles_attributes_memberships_and_database_acls(postgres_instance, scenario):
    account_sync_instance(instance=postgres_instance)
    app = snapshot(postgres_instance, scenario["app"])
    assert app.privileges["attributes"] == {
        "bypass_rls": False,
        "can_login": True,
        "connection_limit": 5,
        "create_db": True,
        "create_role": False,
        "inherit": True,
        "locked": False,
        "replication": False,
        "superuser": False,
        "valid_until": None,
    }
    assert app.privileges["roles"] == [scenario["group"]]
    assert app.privileges["grants"] == [
        {"scope": "database", "object": scenario["shop"], "privilege": "CONNECT", "option": ""},
        {"scope": "database", "object": scenario["shop"], "privilege": "TEMPORARY", "option": ""},
    ]
    assert "create_db" in app.facts["capabilities"]

    group = snapshot(postgres_instance, scenario["group"])
    assert Account.objects.get(instance=postgres_instance, name=scenario["group"]).kind == "role"
    assert {
        "scope": "database",
        "object": scenario["shop"],
        "privilege": "OWNER",
        "option": "",
    } in group.privileges["grants"]

    expired = snapshot(postgres_instance, scenario["expired"])
    assert expired.is_locked
    assert expired.privileges["attributes"]["valid_until"] == "2001-01-01T00:00:00+00:00"
    assert expired.privileges["attributes"]["admin_roles"] == [scenario["group"]]


def test_deep_privileges_add_schema_table_and_column_grants(postgres_instance, scenario):
    postgres_instance.deep_privileges = True
    postgres_instance.save()
    account_sync_instance(instance=postgres_instance)
    grants = snapshot(postgres_instance, scenario["app"]).privileges["grants"]
    shop = scenario["shop"]
    assert {
        "scope": "schema",
        "object": f"{shop}.sales",
        "privilege": "USAGE",
        "option": "",
    } in grants
    assert {
        "scope": "table",
        "object": f"{shop}.sales.orders",
        "privilege": "SELECT",
        "option": "GRANT",
    } in grants
    assert {
        "scope": "column",
        "object": f"{shop}.sales.orders.price",
        "privilege": "UPDATE",
        "option": "",
    } in grants


def test_an_attribute_flip_is_an_attribute_change_and_marks_it_privileged(
    postgres, postgres_instance, scenario
):
    account_sync_instance(instance=postgres_instance)
    postgres.run(f"ALTER ROLE {scenario['app']} CREATEROLE")
    outcome = account_sync_instance(instance=postgres_instance, run_id=7)
    assert outcome.changed == 1
    change = AccountChange.objects.filter(account__name=scenario["app"]).latest("id")
    assert change.change_type == "attributes_changed"
    assert change.diff["attributes"] == {"create_role": [False, True]}
    assert change.diff["grants_added"] == []
    assert change.privileged
    assert snapshot(postgres_instance, scenario["app"]).can_grant


def test_membership_and_acl_revocations(postgres, postgres_instance, scenario):
    account_sync_instance(instance=postgres_instance)
    postgres.run(
        f"REVOKE {scenario['group']} FROM {scenario['app']}",
        f'REVOKE TEMPORARY ON DATABASE "{scenario["shop"]}" FROM {scenario["app"]}',
    )
    account_sync_instance(instance=postgres_instance)
    changes = AccountChange.objects.filter(account__name=scenario["app"]).order_by("-id")
    change = changes.filter(change_type="privileges_changed").first()
    assert change.diff["roles_removed"] == [scenario["group"]]
    assert change.diff["grants_removed"][0]["privilege"] == "TEMPORARY"
    assert change.summary == "−1 grant; −1 role"
    # What it could do through the role is gone too, on the same account's timeline.
    reach = changes.get(change_type="effective_changed")
    assert reach.diff["roles_reached_removed"] == [scenario["group"]]


def test_dropped_role_is_removed(postgres, postgres_instance, scenario):
    account_sync_instance(instance=postgres_instance)
    postgres.run(f"DROP ROLE {scenario['expired']}")
    assert account_sync_instance(instance=postgres_instance).removed == 1
    assert Account.objects.get(instance=postgres_instance, name=scenario["expired"]).removed_at

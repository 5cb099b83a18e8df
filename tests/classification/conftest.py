"""A small estate of accounts with known privileges, and rules to classify them with."""

import importlib

import pytest
from django.apps import apps

from classification.models import Classification
from classification.services import rule_create
from tests.accounts.factories import make_account
from tests.inventory.factories import InstanceFactory

SUPER_OR_ALL = {
    "version": 4,
    "expr": {
        "op": "AND",
        "args": [
            {"fn": "db_type_in", "args": {"types": ["mysql"]}},
            {
                "op": "OR",
                "args": [
                    {"fn": "has_privilege", "args": {"name": "SUPER", "scope": "global"}},
                    {"fn": "has_privilege", "args": {"name": "ALL PRIVILEGES", "scope": "global"}},
                ],
            },
        ],
    },
}
SUPERUSER = {"version": 4, "expr": {"fn": "is_superuser"}}
READS_SHOP = {
    "version": 4,
    "expr": {
        "fn": "has_privilege",
        "args": {"name": "SELECT", "scope": "database", "object": "shop"},
    },
}


@pytest.fixture
def classifications(db):
    """The seeded system classifications (seeded again: transactional tests flush tables)."""
    importlib.import_module("classification.migrations.0002_seed_system_classifications").seed(
        apps, None
    )
    return {c.code: c for c in Classification.objects.all()}


@pytest.fixture
def estate(db):
    """Two MySQL instances and one PostgreSQL instance with accounts of known privileges."""
    mysql_a = InstanceFactory(name="mysql-a", engine="mysql")
    mysql_b = InstanceFactory(name="mysql-b", engine="mysql")
    pg = InstanceFactory(name="pg", engine="postgresql", port=5432)
    accounts = {
        "root": make_account(
            mysql_a, "root", host="%",
            grants=[("global", "", "SUPER", "GRANT"), ("global", "", "SELECT", "")],
        ),
        "dba": make_account(
            mysql_a, "dba", host="%", grants=[("global", "", "ALL PRIVILEGES", "")]
        ),
        "reader": make_account(
            mysql_a, "reader", host="10.%", grants=[("database", "shop", "SELECT", "")]
        ),
        "b_admin": make_account(mysql_b, "admin", host="%", grants=[("global", "", "SUPER", "")]),
        "b_reader": make_account(
            mysql_b, "reader", host="%", grants=[("database", "shop", "SELECT", "")]
        ),
        "postgres": make_account(pg, "postgres", attributes={"superuser": True}),
        "pg_app": make_account(pg, "app", grants=[("database", "shop", "SELECT", "")]),
    }  # fmt: skip
    return {"mysql_a": mysql_a, "mysql_b": mysql_b, "pg": pg, **accounts}


@pytest.fixture
def rules(classifications):
    return {
        "super_or_all": rule_create(
            classification=classifications["super"],
            name="MySQL accounts with global SUPER or ALL",
            engine="mysql",
            expression=SUPER_OR_ALL,
        ),
        "superuser": rule_create(
            classification=classifications["super"], name="Superusers", expression=SUPERUSER
        ),
        "reads_shop": rule_create(
            classification=classifications["low"], name="Reads shop", expression=READS_SHOP
        ),
    }

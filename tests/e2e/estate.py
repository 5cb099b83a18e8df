"""The estate every journey walks through: two instances (one a scoped DBA may see), their
accounts with a privileged one and its changes, databases with a week of sizes, runs, a
classification rule, the default schedule, and a user per role."""

from datetime import timedelta

from django.contrib.auth.models import Group
from django.utils import timezone
from guardian.shortcuts import assign_perm

from capacity.models import AggregatePeriod, Trend
from capacity.periods import window
from classification.models import Classification
from classification.services import assignment_add_manual, rule_create
from syncjobs.models import ItemStatus, RunStatus
from syncjobs.services import roles_install, schedule_install_defaults
from tests.accounts.factories import make_account
from tests.capacity.factories import (
    GIB,
    DatabaseFactory,
    DatabaseSizeAggregateFactory,
    DatabaseSizeSampleFactory,
    InstanceCapacityFactory,
    InstanceSizeSampleFactory,
)
from tests.factories import UserFactory
from tests.inventory.factories import CredentialFactory, InstanceFactory, TagFactory
from tests.syncjobs.factories import RunFactory, RunItemFactory

SUPER = {"grants": [("global", "", "SUPER", "GRANT")], "attributes": {"superuser": True}}


def build_estate() -> dict:
    roles_install()
    schedule_install_defaults()
    today = timezone.localdate()
    prod = TagFactory(slug="prod", name="Production", colour="#1f77b4")
    orders = InstanceFactory(
        name="orders-mysql", credential=CredentialFactory(name="monitor"), tags=[prod]
    )
    billing = InstanceFactory(
        name="billing-pg", engine="postgresql", port=5432, last_connection_ok=False
    )
    make_account(orders, "app", host="%", grants=[("global", "", "SELECT", "")])
    root = make_account(orders, "root_orders", host="%", **SUPER)
    make_account(billing, "billing_owner", **SUPER)
    # bob holds nothing himself: through the role ops, then admin, he is a superuser.
    bob = make_account(
        orders,
        "bob",
        host="%",
        roles=["ops"],
        effective={
            "grants": [
                {
                    "scope": "global",
                    "object": "",
                    "privilege": "ALL PRIVILEGES",
                    "option": "GRANT",
                    "via": ["ops", "admin"],
                    "set_role": True,
                }
            ],
            "roles": ["admin", "ops"],
            "role_paths": [
                {"role": "ops", "via": [], "set_role": True},
                {"role": "admin", "via": ["ops"], "set_role": True},
            ],
            "capabilities": ["GRANT_ADMIN", "SUPERUSER"],
        },
    )
    InstanceCapacityFactory(instance=orders, total_bytes=12 * GIB, capacity_limit_bytes=20 * GIB)
    InstanceCapacityFactory(instance=billing, total_bytes=4 * GIB)
    shop = DatabaseFactory(
        instance=orders,
        name="shop",
        total_bytes=9 * GIB,
        capacity_limit_bytes=10 * GIB,
        collected_at=timezone.now(),
    )
    for back in range(7, -1, -1):
        day = today - timedelta(days=back)
        DatabaseSizeSampleFactory(database=shop, day=day, total_bytes=(8 * GIB) + back * -GIB // 8)
        InstanceSizeSampleFactory(
            instance=orders, day=day, total_bytes=(11 * GIB) + GIB * (7 - back) // 7
        )
    last_month = window(AggregatePeriod.MONTH, today.replace(day=1) - timedelta(days=1))[0]
    DatabaseSizeAggregateFactory(
        database=shop,
        period_start=last_month,
        avg_bytes=8 * GIB,
        min_bytes=7 * GIB,
        max_bytes=9 * GIB,
        change_bytes=2 * GIB,
        change_percent="28.57",
        trend=Trend.GROWING,
    )
    failed = RunFactory(
        status=RunStatus.FAILED, finished_at=timezone.now(), items_total=1, items_failed=1
    )
    RunItemFactory(
        run=failed,
        instance=billing,
        status=ItemStatus.FAILED,
        finished_at=timezone.now(),
        error="connection refused",
    )
    privileged = Classification.objects.create(
        code="privileged", name="Privileged", colour="#dc2626"
    )
    rule = rule_create(
        classification=privileged,
        name="Superusers",
        expression={"version": 4, "expr": {"fn": "is_superuser"}},
    )
    users = {
        "admin": UserFactory(username="ada", is_superuser=True, roles=["Administrators"]),
        "dba": UserFactory(username="dan", roles=["DBAs"]),
        "auditor": UserFactory(username="aud", roles=["Auditors"]),
        "scheduler": UserFactory(username="sam", roles=["Schedulers"]),
        "viewer": UserFactory(username="vic", roles=["Viewers"]),
        "scoped": UserFactory(username="sid", roles=["DBAs (scoped)"]),
    }
    for account in (root, bob):
        assignment_add_manual(account=account, classification=privileged, user=users["admin"])
    for perm in ("view_instance", "change_instance", "test_connection", "sync"):
        assign_perm(f"inventory.{perm}", users["scoped"], orders)
    assert Group.objects.filter(name="DBAs (scoped)").exists()
    return {
        "orders": orders,
        "billing": billing,
        "root": root,
        "bob": bob,
        "shop": shop,
        "rule": rule,
        "failed_run": failed,
        **users,
    }

"""Every trigger, from the app that emits it to a delivered message: account sync on the
local MariaDB, classification, runs, capacity, partitions and the beat heartbeat."""

from datetime import date, timedelta
from unittest import mock

import pytest
from django.core import mail
from django.utils import timezone

from accounts.services import account_sync_instance
from capacity.partitions import partitions_alert_missing
from capacity.services import capacity_alerts_emit
from classification.models import Classification
from classification.services import assignments_swap, rule_create
from inventory.engines.base import InsufficientPrivileges, Unreachable
from syncjobs import services as sync_services
from syncjobs import tasks as sync_tasks
from syncjobs.models import RunKind
from tests.accounts.factories import make_account
from tests.alerts.conftest import deliver_all, make_rule
from tests.capacity.factories import (
    GIB,
    DatabaseFactory,
    InstanceCapacityFactory,
    InstanceSizeSampleFactory,
)
from tests.inventory.factories import InstanceFactory, TagFactory
from tests.syncjobs import handlers
from whalefall.alerts import services
from whalefall.alerts.models import Delivery, DeliveryKind, Event, Scope, Trigger
from whalefall.models import Heartbeat
from whalefall.tasks import BEAT_HEARTBEAT

pytestmark = pytest.mark.django_db


def bodies() -> list[str]:
    return [message.body for message in mail.outbox]


# --- Accounts ---------------------------------------------------------------------------


@pytest.fixture
def baseline(mariadb, mariadb_instance, enqueued):
    """The instance synced once, its first-sync events routed before any rule exists."""
    account_sync_instance(instance=mariadb_instance)
    services.events_dispatch()
    return mariadb_instance


def test_account_became_privileged_and_privileged_changed(mariadb, baseline, email_channel):
    user = mariadb.user("dba")
    mariadb.run(f"CREATE USER {user} IDENTIFIED BY 'Xx-12345678'")
    make_rule(Trigger.ACCOUNT_PRIVILEGED, [email_channel], name="became")
    make_rule(Trigger.PRIVILEGED_CHANGED, [email_channel], name="changed")
    account_sync_instance(instance=baseline)
    deliver_all()
    assert bodies() == []  # a plain new account is neither

    mariadb.run(f"GRANT SUPER ON *.* TO {user}")
    account_sync_instance(instance=baseline)
    deliver_all()
    name = f"{mariadb.prefix}dba@%"
    [became] = bodies()
    assert became.startswith(f"{baseline.name}: account {name} became privileged (")
    assert "SUPERUSER" in became.split(")")[0]
    assert "/admin/accounts/account/" in became

    mariadb.run(f"GRANT SELECT ON mysql.* TO {user}")
    account_sync_instance(instance=baseline)
    deliver_all()
    changed = bodies()[1]
    assert changed.startswith(f"{baseline.name}: privileged account {name} changed: ")
    assert changed.split(" changed: ")[1].startswith("+1 grant")


def test_password_less_account_appeared(mariadb, baseline, email_channel):
    make_rule(Trigger.ACCOUNT_INSECURE, [email_channel])
    user = mariadb.user("nopw")
    mariadb.run(f"CREATE USER {user}")
    account_sync_instance(instance=baseline)
    deliver_all()
    [body] = bodies()
    assert body.startswith(
        f"{baseline.name}: account {mariadb.prefix}nopw@% appeared without a password"
    )


def test_a_sync_with_1000_privileged_changes_sends_one_message_per_rule_and_channel(
    mariadb, baseline, email_channel, webhook_channel, receiver
):
    users = [mariadb.user(f"bulk{n}") for n in range(1000)]
    mariadb.run(f"CREATE USER {', '.join(users)}")
    account_sync_instance(instance=baseline)
    services.events_dispatch()  # the new (password-less) accounts, before any rule
    make_rule(Trigger.ACCOUNT_PRIVILEGED, [email_channel, webhook_channel], name="a")
    make_rule(Trigger.PRIVILEGED_CHANGED, [email_channel, webhook_channel], name="b")
    make_rule(Trigger.ACCOUNT_PRIVILEGED, [email_channel], name="c")

    mariadb.run(f"GRANT SUPER ON *.* TO {', '.join(users)}")
    account_sync_instance(instance=baseline)
    deliver_all()

    assert (
        Event.objects.filter(kind=Trigger.ACCOUNT_PRIVILEGED, dispatched_at__isnull=False).count()
        >= 1000
    )
    per_rule_channel = {(d.rule.name, d.channel_id) for d in Delivery.objects.all()}
    assert Delivery.objects.count() == len(per_rule_channel) == 3  # (a, mail), (a, hook), (c, mail)
    assert all(d.kind == DeliveryKind.SUMMARY for d in Delivery.objects.all())
    assert len(mail.outbox) == 2
    assert len(receiver.requests) == 1
    assert receiver.requests[0].json()["event_count"] == 1000


# --- Classification -------------------------------------------------------------------


def test_account_newly_matched_a_classification_of_risk_at_most_n(enqueued, email_channel):
    instance = InstanceFactory(name="hr-db")
    account = make_account(instance, "app", host="%")
    risky = Classification.objects.create(code="risky", name="Risky", risk_level=2)
    mild = Classification.objects.create(code="mild", name="Mild", risk_level=5)
    expression = {"version": 4, "expr": {"fn": "is_superuser"}}
    rule_a = rule_create(classification=risky, name="a", expression=expression)
    rule_b = rule_create(classification=mild, name="b", expression=expression)
    make_rule(Trigger.CLASSIFICATION_MATCHED, [email_channel], threshold=3)
    matched = {(account.pk, risky.pk): rule_a.pk, (account.pk, mild.pk): rule_b.pk}
    assignments_swap(instance=instance, matched=matched, frozen_classifications=set(), run_id=None)
    # Matching again is not "newly".
    assignments_swap(instance=instance, matched=matched, frozen_classifications=set(), run_id=None)
    deliver_all()
    [body] = bodies()
    assert body.startswith("hr-db: account app@% newly matched Risky (risk level 2)")


# --- Runs -----------------------------------------------------------------------------


@pytest.fixture
def fake_handlers(monkeypatch):
    for kind in RunKind.values:
        monkeypatch.setitem(sync_services.RUN_HANDLERS, kind, "tests.syncjobs.handlers.dispatch")
    monkeypatch.setattr(handlers, "BEHAVIOURS", {})
    monkeypatch.setattr(handlers, "CALLS", [])
    with mock.patch.object(sync_tasks.run_item, "apply_async"):
        yield handlers.BEHAVIOURS


def run_sync(*instances, kind=RunKind.ACCOUNTS):
    run = sync_services.run_create(
        kind=kind, trigger="manual", instance_ids=[i.pk for i in instances]
    )
    for item in run.items.order_by("pk"):
        sync_services.run_item_execute(item_id=item.pk)
    run.refresh_from_db()
    return run


def test_run_failed_or_partly_failed(fake_handlers, enqueued, email_channel):
    make_rule(Trigger.RUN_FAILED, [email_channel])
    ok, down = InstanceFactory(name="ok"), InstanceFactory(name="down")
    fake_handlers["down"] = handlers.raising(Unreachable("Unreachable: no route"))
    run = run_sync(ok, down)
    deliver_all()
    [body] = bodies()
    assert body.startswith(f"Run #{run.pk} (accounts) partially_failed: 1 of 2 items failed")
    assert f"/admin/syncjobs/run/{run.pk}/change/" in body


def test_instance_failed_n_syncs_in_a_row_then_reachable_again(
    fake_handlers, enqueued, email_channel
):
    make_rule(Trigger.SYNC_FAILURES, [email_channel], threshold=3, name="three")
    make_rule(Trigger.INSTANCE_RECOVERED, [email_channel], name="back")
    flaky = InstanceFactory(name="flaky")
    fake_handlers["flaky"] = handlers.raising(Unreachable("Unreachable: no route"))
    for _ in range(4):
        run_sync(flaky)
    deliver_all()
    streaks = [b for b in bodies() if "in a row" in b]
    assert streaks == [b for b in streaks if b.startswith("flaky: accounts sync failed 3 times")]
    assert len(streaks) == 1  # the third failure, not the fourth

    del fake_handlers["flaky"]
    run_sync(flaky)
    run_sync(flaky)  # still fine: no second "reachable again"
    deliver_all()
    back = [b for b in bodies() if "reachable again" in b]
    assert back == [b for b in back if b.startswith("flaky is reachable again")]
    assert len(back) == 1


def test_monitoring_account_lacks_a_privilege(fake_handlers, enqueued, email_channel):
    make_rule(Trigger.MONITORING_PRIVILEGES, [email_channel])
    instance = InstanceFactory(name="locked-down")
    fake_handlers["locked-down"] = handlers.raising(
        InsufficientPrivileges("Insufficient privileges: cannot read mysql.global_priv")
    )
    run_sync(instance)
    deliver_all()
    [body] = bodies()
    assert body.startswith(
        "locked-down: the monitoring account lacks a privilege it needs: Insufficient privileges"
    )


def test_a_rule_limited_to_some_instances_ignores_the_others_runs(
    fake_handlers, enqueued, email_channel
):
    prod = TagFactory(slug="prod")
    watched = InstanceFactory(name="watched", tags=[prod])
    other = InstanceFactory(name="other")
    rule = make_rule(Trigger.SYNC_FAILURES, [email_channel], threshold=1, scope=Scope.TAGS)
    rule.tags.set([prod])
    make_rule(Trigger.RUN_FAILED, [email_channel], scope=Scope.TAGS, name="runs").tags.set([prod])
    for name in ("watched", "other"):
        fake_handlers[name] = handlers.raising(Unreachable("Unreachable: no route"))
    run_sync(watched, other)
    deliver_all()
    # The run concerns no single instance: a limited rule does not send it.
    assert [b.split(":")[0] for b in bodies()] == ["watched"]


# --- Capacity, partitions, heartbeat --------------------------------------------------


def test_capacity_limit_forecast_within_n_days(enqueued, email_channel):
    make_rule(Trigger.CAPACITY_FORECAST, [email_channel], threshold=30)
    instance = InstanceFactory(name="warehouse")
    today = timezone.localdate()
    DatabaseFactory(
        instance=instance,
        name="orders",
        total_bytes=90 * GIB,
        capacity_limit_bytes=100 * GIB,
        growth_bytes_per_day=1 * GIB,
    )
    DatabaseFactory(  # 100 days away
        instance=instance,
        name="archive",
        total_bytes=0,
        capacity_limit_bytes=100 * GIB,
        growth_bytes_per_day=1 * GIB,
    )
    capacity_alerts_emit(instance=instance, today=today)
    capacity_alerts_emit(instance=instance, today=today)  # once a day
    deliver_all()
    [body] = bodies()
    assert body.startswith("warehouse: orders is forecast to reach its limit in 10 days")


def test_growth_over_x_percent(enqueued, email_channel):
    make_rule(Trigger.CAPACITY_GROWTH, [email_channel], threshold=20)
    fast, slow = InstanceFactory(name="fast"), InstanceFactory(name="slow")
    today = timezone.localdate()
    for instance, before, after in ((fast, 10, 13), (slow, 10, 11)):
        InstanceSizeSampleFactory(
            instance=instance, day=today - timedelta(days=20), total_bytes=before * GIB
        )
        InstanceSizeSampleFactory(instance=instance, day=today, total_bytes=after * GIB)
        InstanceCapacityFactory(instance=instance)
        capacity_alerts_emit(instance=instance, today=today)
    deliver_all()
    [body] = bodies()
    assert body.startswith("fast: fast grew 30.0 % in 20 days")


def test_partitions_missing_for_next_month(enqueued, email_channel):
    make_rule(Trigger.PARTITIONS_MISSING, [email_channel])
    far = date(2090, 6, 15)  # no partition exists that far ahead
    names = partitions_alert_missing(far)
    assert names
    deliver_all()
    [body] = bodies()
    assert body.startswith("Partitions missing for 2090-07: ")
    assert names[0] in body


def test_beat_heartbeat_stale(client, enqueued, email_channel, settings):
    make_rule(Trigger.HEARTBEAT_STALE, [email_channel])
    Heartbeat.objects.update_or_create(
        name=BEAT_HEARTBEAT, defaults={"beat_at": timezone.now() - timedelta(seconds=900)}
    )
    assert client.get("/health/ready").status_code == 503
    assert client.get("/health/ready").status_code == 503  # one event per window
    deliver_all()
    [body] = bodies()
    assert body.startswith("Beat heartbeat stale: last beat 9")

"""Emitting, routing, dedup, flood control, digest, scope and the channels' deliveries."""

import hashlib
import hmac
import json
from datetime import datetime, time, timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from tests.alerts.conftest import WEBHOOK_SECRET, deliver_all, make_channel, make_rule
from tests.inventory.factories import InstanceFactory, TagFactory
from whalefall import alerts
from whalefall.alerts import services
from whalefall.alerts.models import (
    ChannelKind,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Event,
    Mode,
    Scope,
    Trigger,
)

pytestmark = pytest.mark.django_db(transaction=False)


def _privileged(instance, account="app@%", **extra):
    return {
        "instance": instance,
        "payload": {"instance": instance.name, "account": account, "capabilities": ["SUPERUSER"]}
        | extra,
        "dedup_key": f"{instance.pk}:{account}",
    }


def test_emit_writes_in_the_callers_transaction_and_dispatches_after_commit(
    django_capture_on_commit_callbacks, enqueued
):
    instance = InstanceFactory()
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        alerts.emit(Trigger.ACCOUNT_PRIVILEGED, **_privileged(instance, "a@%"))
        alerts.emit(Trigger.ACCOUNT_PRIVILEGED, **_privileged(instance, "b@%"))
        assert Event.objects.pending().count() == 2
        assert enqueued == []  # nothing leaves before the commit
    assert len(callbacks) == 1  # one dispatch however many events the transaction emitted
    assert enqueued == [("dispatch_events",)]


def test_rolled_back_events_are_never_sent(django_capture_on_commit_callbacks, enqueued):
    instance = InstanceFactory()

    def sync_that_fails():
        with transaction.atomic():
            alerts.emit(Trigger.ACCOUNT_PRIVILEGED, **_privileged(instance))
            raise RuntimeError("the sync failed")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        sync_that_fails()
    assert not Event.objects.exists()
    assert enqueued == []


def test_webhook_body_signature_and_retry_after_500(
    django_capture_on_commit_callbacks, enqueued, receiver, webhook_channel
):
    instance = InstanceFactory(name="billing-db")
    rule = make_rule(Trigger.ACCOUNT_PRIVILEGED, [webhook_channel])
    receiver.statuses = [500]  # the first attempt fails
    with django_capture_on_commit_callbacks(execute=True):
        alerts.emit(Trigger.ACCOUNT_PRIVILEGED, **_privileged(instance, "root@%"))
    with django_capture_on_commit_callbacks(execute=True):
        services.events_dispatch()
    delivery = Delivery.objects.get()
    first = services.delivery_send(delivery_id=delivery.pk)
    assert first.status == DeliveryStatus.RETRYING
    assert first.retry_in == 30
    delivery.refresh_from_db()
    assert delivery.attempts == 1
    assert "HTTP 500" in delivery.last_error
    assert "abc123" not in delivery.last_error  # the URL's token never shows
    second = services.delivery_send(delivery_id=delivery.pk)
    assert second.status == DeliveryStatus.SENT
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    assert delivery.attempts == 2
    assert len(receiver.requests) == 2
    request = receiver.requests[-1]
    assert request.path == "/hook?token=abc123"
    expected = hmac.new(WEBHOOK_SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-WhaleFall-Signature"] == f"sha256={expected}"
    body = request.json()
    assert body["schema"] == "whalefall.alert/1"
    assert body["rule"] == {"id": rule.pk, "name": rule.name, "trigger": "account_privileged"}
    assert body["event_count"] == 1
    [event] = body["events"]
    assert event["instance"] == {"id": instance.pk, "name": "billing-db"}
    assert event["data"]["account"] == "root@%"
    assert "billing-db" in event["message"]
    assert "root@%" in event["message"]
    assert event["url"].endswith(f"/admin/inventory/instance/{instance.pk}/change/")
    assert WEBHOOK_SECRET not in request.body.decode()
    # A redelivered task does not send a settled delivery again.
    services.delivery_send(delivery_id=delivery.pk)
    assert len(receiver.requests) == 2


@override_settings(WHALEFALL_ALERT_MAX_ATTEMPTS=3, WHALEFALL_ALERT_RETRY_DELAY=10)
def test_retries_back_off_exponentially_then_fail(enqueued, receiver, webhook_channel):
    instance = InstanceFactory()
    make_rule(Trigger.ACCOUNT_PRIVILEGED, [webhook_channel])
    receiver.statuses = [500, 502, 503]
    alerts.emit(Trigger.ACCOUNT_PRIVILEGED, **_privileged(instance))
    services.events_dispatch()
    delivery = Delivery.objects.get()
    waits = [services.delivery_send(delivery_id=delivery.pk).retry_in for _ in range(3)]
    assert waits == [10, 20, None]
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 3
    assert "HTTP 503" in delivery.last_error


def test_email_through_djangos_mail_backend(enqueued, email_channel, settings):
    settings.WHALEFALL_BASE_URL = "https://whalefall.example.com"
    instance = InstanceFactory(name="crm-db")
    make_rule(Trigger.ACCOUNT_PRIVILEGED, [email_channel])
    alerts.emit(Trigger.ACCOUNT_PRIVILEGED, **_privileged(instance, "dba@%"))
    deliver_all(enqueued)
    [message] = mail.outbox
    assert message.to == ["dba@example.com", "sec@example.com"]
    assert message.subject == "[WhaleFall] Account became privileged"
    line = message.body
    assert "\n" not in line
    assert line.startswith("crm-db: account dba@% became privileged (SUPERUSER)")
    assert line.endswith(
        f"https://whalefall.example.com/admin/inventory/instance/{instance.pk}/change/"
    )
    assert Delivery.objects.get().status == DeliveryStatus.SENT


def test_messages_are_translated(enqueued, email_channel, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    instance = InstanceFactory(name="crm-db")
    make_rule(Trigger.INSTANCE_RECOVERED, [email_channel])
    alerts.emit(Trigger.INSTANCE_RECOVERED, instance=instance, payload={"run_kind": "accounts"})
    deliver_all(enqueued)
    # Rendered under the site's language: without a catalogue entry the English text stays,
    # so this checks that rendering did not fail and named the instance.
    assert "crm-db" in mail.outbox[0].body


def test_duplicates_within_the_window_are_suppressed(enqueued, settings):
    settings.WHALEFALL_ALERT_DEDUP_SECONDS = 600
    instance = InstanceFactory()
    assert alerts.emit(Trigger.ACCOUNT_PRIVILEGED, **_privileged(instance)) is not None
    assert alerts.emit(Trigger.ACCOUNT_PRIVILEGED, **_privileged(instance)) is None
    # Same key, another instance: a different event.
    other = InstanceFactory()
    assert alerts.emit(Trigger.ACCOUNT_PRIVILEGED, **_privileged(other)) is not None
    # Without a key, identical payloads are duplicates, different ones are not.
    assert alerts.emit(Trigger.HEARTBEAT_STALE, payload={"age": 300}) is not None
    assert alerts.emit(Trigger.HEARTBEAT_STALE, payload={"age": 300}) is None
    assert alerts.emit(Trigger.HEARTBEAT_STALE, payload={"age": 301}) is not None
    # Past the window the same event is new again.
    Event.objects.update(created_at=timezone.now() - timedelta(seconds=601))
    assert alerts.emit(Trigger.ACCOUNT_PRIVILEGED, **_privileged(instance)) is not None
    assert Event.objects.count() == 5


def test_flood_of_1000_events_is_one_message_per_rule_and_channel(
    enqueued, receiver, webhook_channel, email_channel
):
    instance = InstanceFactory(name="big-db")
    make_rule(Trigger.ACCOUNT_PRIVILEGED, [webhook_channel, email_channel], name="one")
    make_rule(Trigger.ACCOUNT_PRIVILEGED, [webhook_channel], name="two")
    with transaction.atomic():
        alerts.emit_many(
            Trigger.ACCOUNT_PRIVILEGED,
            [_privileged(instance, f"user{n}@%") for n in range(1000)],
        )
    services.events_dispatch()
    deliveries = list(Delivery.objects.all())
    assert len(deliveries) == 3  # (one, webhook), (one, e-mail), (two, webhook)
    assert {d.kind for d in deliveries} == {DeliveryKind.SUMMARY}
    assert all(d.event_count == 1000 for d in deliveries)
    for delivery in deliveries:
        services.delivery_send(delivery_id=delivery.pk)
    assert len(receiver.requests) == 2
    assert len(mail.outbox) == 1
    body = receiver.requests[0].json()
    assert body["kind"] == "summary"
    assert body["event_count"] == 1000
    assert len(body["events"]) == services.MAX_WEBHOOK_EVENTS
    assert mail.outbox[0].body.startswith("1000 events on 1 instance.")
    assert "… and 980 more." in mail.outbox[0].body


def test_few_events_are_sent_one_by_one(enqueued, email_channel, settings):
    settings.WHALEFALL_ALERT_FLOOD_THRESHOLD = 3
    instance = InstanceFactory()
    make_rule(Trigger.ACCOUNT_PRIVILEGED, [email_channel])
    alerts.emit_many(
        Trigger.ACCOUNT_PRIVILEGED, [_privileged(instance, f"u{n}@%") for n in range(3)]
    )
    services.events_dispatch()
    assert Delivery.objects.filter(kind=DeliveryKind.SINGLE).count() == 3


def test_a_rule_limited_by_tag_never_sends_about_other_instances(enqueued, email_channel):
    prod = TagFactory(slug="prod")
    watched = InstanceFactory(name="watched", tags=[prod])
    other = InstanceFactory(name="other")
    make_rule(Trigger.ACCOUNT_PRIVILEGED, [email_channel], scope=Scope.TAGS).tags.set([prod])
    alerts.emit(Trigger.ACCOUNT_PRIVILEGED, **_privileged(other))
    alerts.emit(Trigger.ACCOUNT_PRIVILEGED, **_privileged(watched))
    # An event about no instance is not about the tagged instances either.
    alerts.emit(Trigger.ACCOUNT_PRIVILEGED, payload={"account": "x"})
    deliver_all(enqueued)
    assert [m.body.split(":")[0] for m in mail.outbox] == ["watched"]


def test_a_rule_limited_by_environment(enqueued, email_channel):
    staging = TagFactory(slug="stg", name="Staging", category="environment")
    by_field = InstanceFactory(name="by-field", environment="Production")
    by_tag = InstanceFactory(name="by-tag", tags=[staging])
    InstanceFactory(name="elsewhere", environment="dev")
    make_rule(
        Trigger.INSTANCE_RECOVERED,
        [email_channel],
        scope=Scope.ENVIRONMENT,
        environments="production, staging",
    )
    for instance in type(by_field).objects.all():
        alerts.emit(Trigger.INSTANCE_RECOVERED, instance=instance, payload={"run_kind": "x"})
    deliver_all(enqueued)
    assert sorted(m.body.split(" ")[0] for m in mail.outbox) == sorted([by_field.name, by_tag.name])


def test_daily_digest_at_the_chosen_local_time(enqueued, email_channel, settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    instance = InstanceFactory(name="orders")
    rule = make_rule(
        Trigger.ACCOUNT_PRIVILEGED, [email_channel], mode=Mode.DIGEST, digest_time=time(9, 0)
    )
    tz = timezone.get_default_timezone()
    alerts.emit(Trigger.ACCOUNT_PRIVILEGED, **_privileged(instance, "a@%"))
    alerts.emit(Trigger.ACCOUNT_PRIVILEGED, **_privileged(instance, "b@%"))
    Event.objects.update(created_at=datetime(2026, 3, 1, 20, 0, tzinfo=tz))
    deliver_all(enqueued)  # the immediate dispatch: nothing for a digest rule
    assert not Delivery.objects.exists()

    before = datetime(2026, 3, 2, 8, 59, tzinfo=tz)
    assert services.digests_send(now=before) == []
    at = datetime(2026, 3, 2, 9, 0, 30, tzinfo=tz)
    [delivery_id] = services.digests_send(now=at)
    assert services.digests_send(now=at + timedelta(minutes=5)) == []  # once a day
    deliver_all(enqueued)
    delivery = Delivery.objects.get(pk=delivery_id)
    assert delivery.kind == DeliveryKind.DIGEST
    assert delivery.event_count == 2
    [message] = mail.outbox
    assert message.subject == "[WhaleFall] Daily digest: Account became privileged (2)"
    assert "a@%" in message.body
    assert "b@%" in message.body
    rule.refresh_from_db()
    assert rule.last_digest_at == at
    # The next day's digest covers only what came after.
    alerts.emit(Trigger.ACCOUNT_PRIVILEGED, **_privileged(instance, "c@%"))
    Event.objects.filter(payload__account="c@%").update(
        created_at=datetime(2026, 3, 2, 12, 0, tzinfo=tz)
    )
    [next_id] = services.digests_send(now=datetime(2026, 3, 3, 9, 1, tzinfo=tz))
    assert Delivery.objects.get(pk=next_id).event_count == 1


def test_thresholds(enqueued, email_channel):
    instance = InstanceFactory()
    make_rule(Trigger.CLASSIFICATION_MATCHED, [email_channel], threshold=2)
    for level in (1, 2, 3):
        alerts.emit(
            Trigger.CLASSIFICATION_MATCHED,
            instance=instance,
            payload={"account": "a", "classification": f"c{level}", "risk_level": level},
        )
    deliver_all(enqueued)
    assert sorted(m.body.split("matched ")[1][:2] for m in mail.outbox) == ["c1", "c2"]


def test_disabled_rules_and_channels_send_nothing(enqueued, email_channel):
    instance = InstanceFactory()
    make_rule(Trigger.ACCOUNT_PRIVILEGED, [email_channel], enabled=False)
    off = make_channel(ChannelKind.EMAIL, name="off", recipients="x@example.com", enabled=False)
    make_rule(Trigger.ACCOUNT_PRIVILEGED, [off], name="to-off")
    alerts.emit(Trigger.ACCOUNT_PRIVILEGED, **_privileged(instance))
    deliver_all(enqueued)
    assert not Delivery.objects.exists()
    assert not mail.outbox


def test_payload_secrets_are_masked(enqueued):
    event = alerts.emit(
        Trigger.MONITORING_PRIVILEGES,
        payload={"error": "denied", "password": "hunter2", "dsn": "mysql://u:pw@h/db"},
    )
    stored = json.dumps(event.payload)
    assert "hunter2" not in stored
    assert "pw@" not in stored


def test_purge_deletes_what_is_older_than_the_retention(enqueued, email_channel):
    instance = InstanceFactory()
    make_rule(Trigger.ACCOUNT_PRIVILEGED, [email_channel])
    alerts.emit(Trigger.ACCOUNT_PRIVILEGED, **_privileged(instance, "old@%"))
    services.events_dispatch()
    old = timezone.now() - timedelta(days=91)
    Event.objects.update(created_at=old)
    Delivery.objects.update(created_at=old)
    alerts.emit(Trigger.ACCOUNT_PRIVILEGED, **_privileged(instance, "new@%"))
    services.events_dispatch()
    assert services.alerts_purge(older_than_days=90) == 3  # event, delivery, its link
    assert list(Event.objects.values_list("payload__account", flat=True)) == ["new@%"]
    assert Delivery.objects.count() == 1


def test_an_unreachable_webhook_is_recorded_without_its_token(enqueued):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    channel = make_channel(
        ChannelKind.WEBHOOK, url=f"http://127.0.0.1:{port}/h?token=s3cr3t-tok", secret="k"
    )
    make_rule(Trigger.HEARTBEAT_STALE, [channel])
    alerts.emit(Trigger.HEARTBEAT_STALE, payload={"age": 999})
    services.events_dispatch()
    delivery = Delivery.objects.get()
    assert services.delivery_send(delivery_id=delivery.pk).retry_in == 30
    delivery.refresh_from_db()
    assert delivery.last_error == "ConnectionError posting to http://127.0.0.1"
    assert "s3cr3t-tok" not in delivery.last_error


def test_a_webhook_redirect_is_not_followed(enqueued, receiver, webhook_channel):
    receiver.statuses = [302]
    make_rule(Trigger.HEARTBEAT_STALE, [webhook_channel])
    alerts.emit(Trigger.HEARTBEAT_STALE, payload={"age": 999})
    services.events_dispatch()
    delivery = Delivery.objects.get()
    services.delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.RETRYING
    assert "HTTP 302" in delivery.last_error
    assert len(receiver.requests) == 1


def test_a_webhook_connects_to_the_address_the_guard_checked(enqueued, receiver, monkeypatch):
    import socket

    checked = []
    real = socket.getaddrinfo

    def resolver(host, port, *args, **kwargs):
        if host == "hooks.internal.test":
            checked.append(host)
            return real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    channel = make_channel(
        ChannelKind.WEBHOOK, url=f"http://hooks.internal.test:{receiver.port}/h", secret="k"
    )
    make_rule(Trigger.HEARTBEAT_STALE, [channel])
    alerts.emit(Trigger.HEARTBEAT_STALE, payload={"age": 999})
    deliver_all()
    assert checked == ["hooks.internal.test"]  # resolved once, by the guard
    [request] = receiver.requests
    assert request.headers["Host"] == f"hooks.internal.test:{receiver.port}"


def test_a_webhook_to_a_refused_address_is_never_sent(enqueued, receiver, settings):
    settings.WHALEFALL_ALLOW_LOOPBACK = False
    channel = make_channel(ChannelKind.WEBHOOK, url=f"{receiver.url}/h", secret="k")
    make_rule(Trigger.HEARTBEAT_STALE, [channel])
    alerts.emit(Trigger.HEARTBEAT_STALE, payload={"age": 999})
    services.events_dispatch()
    delivery = Delivery.objects.get()
    services.delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert "allowed" in delivery.last_error or "loopback" in delivery.last_error
    assert receiver.requests == []

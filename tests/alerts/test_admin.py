"""Admin of alerts: secrets write-only and encrypted, "Send test", who sees what."""

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Group

from tests.alerts.conftest import WEBHOOK_SECRET, make_channel, make_rule
from tests.inventory.factories import InstanceFactory
from whalefall.alerts.models import Channel, ChannelKind, Delivery, DeliveryKind, Event, Trigger

pytestmark = pytest.mark.django_db

HOOK_URL = "https://hooks.example.com/whalefall?token=t0ps3cret"


@pytest.fixture
def public_dns(monkeypatch):
    """hooks.example.com resolves to a public documentation-free address."""
    import socket

    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):
        if host == "hooks.example.com":
            return real("93.184.215.14", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


def _post_channel(client, **data):
    form = {
        "name": "hook",
        "kind": "webhook",
        "enabled": "on",
        "recipients": "",
        "url": "",
        "secret": "",
    }
    return client.post("/admin/alerts/channel/add/", {**form, **data})


def test_webhook_url_and_secret_are_encrypted_and_never_shown(client, admin_user, public_dns):
    client.force_login(admin_user)
    response = _post_channel(client, url=HOOK_URL, secret=WEBHOOK_SECRET)
    assert response.status_code == 302, response.content.decode()[:2000]
    channel = Channel.objects.get()
    assert "t0ps3cret" not in channel.url_ciphertext
    assert WEBHOOK_SECRET not in channel.secret_ciphertext
    assert channel.decrypt("url") == HOOK_URL
    assert channel.decrypt("secret") == WEBHOOK_SECRET
    assert channel.url_hint == "https://hooks.example.com"
    for page in ("/admin/alerts/channel/", f"/admin/alerts/channel/{channel.pk}/change/"):
        content = client.get(page).content.decode()
        assert "t0ps3cret" not in content
        assert WEBHOOK_SECRET not in content
    # Saving without typing them again keeps both.
    response = client.post(
        f"/admin/alerts/channel/{channel.pk}/change/",
        {
            "name": "hook2",
            "kind": "webhook",
            "enabled": "on",
            "recipients": "",
            "url": "",
            "secret": "",
        },
    )
    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.decrypt("secret") == WEBHOOK_SECRET
    # The audit trail records the change, never the encrypted values.
    entries = LogEntry.objects.get_for_object(channel)
    assert entries.exists()
    for entry in entries:
        assert "ciphertext" not in str(entry.changes)
        assert "t0ps3cret" not in str(entry.changes)


def test_webhook_needs_a_secret_and_an_allowed_host(client, admin_user):
    client.force_login(admin_user)
    response = _post_channel(client, url="http://169.254.169.254/latest/meta-data")
    content = response.content.decode()
    assert response.status_code == 200
    assert "A webhook needs a signing secret." in content
    assert "outside the allowed targets" in content or "not allowed" in content
    assert not Channel.objects.exists()


def test_apprise_url_must_be_a_chat_service(client, admin_user):
    client.force_login(admin_user)
    response = _post_channel(client, kind="apprise", url="json://169.254.169.254/x")
    assert "Use one of the chat services" in response.content.decode()
    response = _post_channel(client, kind="apprise", url="dingtalk://abcdef0123/")
    assert response.status_code == 302
    assert Channel.objects.get().url_hint == "dingtalk://…"


def test_send_test_button_queues_a_test_delivery(
    client, admin_user, django_capture_on_commit_callbacks, enqueued
):
    channel = make_channel(ChannelKind.EMAIL, recipients="dba@example.com")
    client.force_login(admin_user)
    assert "Send test" in client.get(f"/admin/alerts/channel/{channel.pk}/change/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/admin/alerts/channel/{channel.pk}/send-test/")
    assert response.status_code == 302
    delivery = Delivery.objects.get()
    assert delivery.kind == DeliveryKind.TEST
    assert enqueued == [("send_delivery", delivery.pk)]
    assert client.get(f"/admin/alerts/channel/{channel.pk}/send-test/").status_code == 405


def test_send_test_action(client, admin_user, django_capture_on_commit_callbacks, enqueued):
    from django.core import mail

    from whalefall.alerts import services

    channel = make_channel(ChannelKind.EMAIL, recipients="dba@example.com")
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/alerts/channel/",
            {"action": "send_test", "_selected_action": [channel.pk]},
        )
    [(_name, delivery_id)] = enqueued
    services.delivery_send(delivery_id=delivery_id)
    assert mail.outbox[0].subject == "[WhaleFall] Test message"


@pytest.fixture
def alert_records(db):
    channel = make_channel(ChannelKind.EMAIL, recipients="dba@example.com")
    rule = make_rule(Trigger.RUN_FAILED, [channel])
    event = Event.objects.create(kind=Trigger.RUN_FAILED, payload={"run_id": 1})
    delivery = Delivery.objects.create(channel=channel, rule=rule, preview="Run #1 failed")
    delivery.events.add(event)
    return {"channel": channel, "rule": rule, "event": event, "delivery": delivery}


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("Administrators", {"channel": 200, "rule": 200, "delivery": 200, "event": 200}),
        ("Auditors", {"channel": 403, "rule": 403, "delivery": 200, "event": 403}),
        ("Auditors (scoped)", {"channel": 403, "rule": 403, "delivery": 403, "event": 403}),
        ("DBAs", {"channel": 403, "rule": 403, "delivery": 403, "event": 403}),
        ("Schedulers", {"channel": 403, "rule": 403, "delivery": 403, "event": 403}),
        ("Viewers", {"channel": 403, "rule": 403, "delivery": 403, "event": 403}),
    ],
)
def test_role_matrix(client, roles, user_with_role, alert_records, role, expected):
    user = user_with_role(None)
    user.groups.add(Group.objects.get(name=role))
    client.force_login(user)
    for model, status in expected.items():
        changelist = client.get(f"/admin/alerts/{model}/")
        assert changelist.status_code == status, (role, model, changelist.status_code)
        detail = client.get(f"/admin/alerts/{model}/{alert_records[model].pk}/change/")
        assert detail.status_code in ((200, 302) if status == 200 else (403, 302)), (role, model)
    if role != "Administrators":
        channel = alert_records["channel"].pk
        assert client.post(f"/admin/alerts/channel/{channel}/send-test/").status_code == 403


def test_a_scoped_auditor_never_reads_deliveries_about_other_instances(
    client, roles, user_with_role, alert_records
):
    from guardian.shortcuts import assign_perm

    InstanceFactory()
    user = user_with_role("Auditors")
    user.groups.set([Group.objects.get(name="Auditors (scoped)")])
    mine = InstanceFactory()
    assign_perm("inventory.view_instance", user, mine)
    client.force_login(user)
    assert client.get("/admin/alerts/delivery/").status_code == 403


def test_key_rotation_reencrypts_channel_url_and_secret(settings):
    import io

    from cryptography.fernet import Fernet
    from django.core.management import call_command

    channel = make_channel(
        ChannelKind.WEBHOOK, url="https://hooks.example.com/x", secret=WEBHOOK_SECRET
    )
    old_key = settings.WHALEFALL_CREDENTIAL_KEYS[0]
    new_key = Fernet.generate_key().decode()
    settings.WHALEFALL_CREDENTIAL_KEYS = [new_key, old_key]
    out = io.StringIO()
    call_command("rotate_credential_keys", stdout=out, stderr=out)
    assert "Alert channels: re-encrypted 2 value(s); 0 already" in out.getvalue()
    settings.WHALEFALL_CREDENTIAL_KEYS = [new_key]
    channel = Channel.objects.get(pk=channel.pk)
    assert channel.decrypt("url") == "https://hooks.example.com/x"
    assert channel.decrypt("secret") == WEBHOOK_SECRET
    # The audit trail records no re-encryption.
    assert not LogEntry.objects.filter(action=LogEntry.Action.UPDATE).exists()


@pytest.mark.parametrize("model", ["channel", "rule", "delivery", "event"])
def test_changelist_queries_do_not_grow_with_rows(client, admin_user, model):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def populate(start: int, count: int) -> None:
        instance = InstanceFactory()
        for n in range(start, start + count):
            channel = make_channel(ChannelKind.EMAIL, name=f"c{n}", recipients="a@example.com")
            rule = make_rule(Trigger.RUN_FAILED, [channel], name=f"r{n}")
            event = Event.objects.create(kind=Trigger.RUN_FAILED, instance=instance, payload={})
            Delivery.objects.create(channel=channel, rule=rule, preview="x").events.add(event)

    client.force_login(admin_user)
    counts = []
    for start, count in ((0, 2), (2, 20)):
        populate(start, count)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/admin/alerts/{model}/").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts

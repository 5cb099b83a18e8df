"""Chat services through Apprise: the request a DingTalk or Feishu URL produces, received by
a local HTTP server (the plugins' fixed vendor address is pointed at it)."""

import json

import pytest
from apprise.plugins.dingtalk import NotifyDingTalk
from apprise.plugins.feishu import NotifyFeishu

from tests.alerts.conftest import deliver_all, make_channel, make_rule
from tests.inventory.factories import InstanceFactory
from whalefall import alerts
from whalefall.alerts import services
from whalefall.alerts.models import ChannelKind, Delivery, DeliveryStatus, Trigger

pytestmark = pytest.mark.django_db


@pytest.fixture
def chat_services_at(monkeypatch, receiver):
    monkeypatch.setattr(
        NotifyDingTalk, "notify_url", f"{receiver.url}/robot/send?access_token={{token}}"
    )
    monkeypatch.setattr(
        NotifyFeishu, "notify_url", f"{receiver.url}/open-apis/bot/v2/hook/{{token}}/"
    )
    return receiver


def _emit(instance):
    alerts.emit(
        Trigger.ACCOUNT_PRIVILEGED,
        instance=instance,
        payload={"instance": instance.name, "account": "ops@%", "capabilities": ["GRANT_ADMIN"]},
    )


def test_dingtalk_robot_receives_a_text_message(enqueued, chat_services_at):
    channel = make_channel(ChannelKind.APPRISE, url="dingtalk://abcdef0123456789/")
    make_rule(Trigger.ACCOUNT_PRIVILEGED, [channel])
    _emit(InstanceFactory(name="pay-db"))
    deliver_all()
    [request] = chat_services_at.requests
    assert request.path == "/robot/send?access_token=abcdef0123456789"
    body = json.loads(request.body)
    assert body["msgtype"] == "text"
    content = body["text"]["content"]
    assert content.startswith("[WhaleFall] Account became privileged\r\n")
    assert "pay-db: account ops@% became privileged (GRANT_ADMIN)" in content
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.SENT


def test_dingtalk_signed_robot(enqueued, chat_services_at):
    channel = make_channel(ChannelKind.APPRISE, url="dingtalk://SECabc123@abcdef0123456789/")
    make_rule(Trigger.ACCOUNT_PRIVILEGED, [channel])
    _emit(InstanceFactory())
    deliver_all()
    [request] = chat_services_at.requests
    assert "timestamp=" in request.path
    assert "sign=" in request.path


def test_feishu_bot_receives_a_text_message(enqueued, chat_services_at):
    channel = make_channel(ChannelKind.APPRISE, url="feishu://hook-token-0123")
    make_rule(Trigger.ACCOUNT_PRIVILEGED, [channel])
    _emit(InstanceFactory(name="crm"))
    deliver_all()
    [request] = chat_services_at.requests
    assert request.path == "/open-apis/bot/v2/hook/hook-token-0123/"
    body = json.loads(request.body)
    assert body["msg_type"] == "text"
    assert "crm: account ops@% became privileged" in body["content"]["text"]


def test_a_chat_service_error_is_retried_and_recorded_without_the_token(
    enqueued, chat_services_at, settings
):
    settings.WHALEFALL_ALERT_MAX_ATTEMPTS = 2
    chat_services_at.statuses = [500, 500]
    channel = make_channel(ChannelKind.APPRISE, url="dingtalk://abcdef0123456789/")
    make_rule(Trigger.ACCOUNT_PRIVILEGED, [channel])
    _emit(InstanceFactory())
    services.events_dispatch()
    delivery = Delivery.objects.get()
    assert services.delivery_send(delivery_id=delivery.pk).retry_in == 30
    assert services.delivery_send(delivery_id=delivery.pk).retry_in is None
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 2
    assert "refused" in delivery.last_error
    assert "abcdef0123456789" not in delivery.last_error
    assert len(chat_services_at.requests) == 2


def test_only_chat_service_urls_are_accepted():
    assert services.apprise_plugin("dingtalk://abcdef0123456789/") is not None
    assert services.apprise_plugin("feishu://token") is not None
    # Generic Apprise targets would post anywhere, around the outbound guard.
    assert services.apprise_plugin("json://169.254.169.254/latest") is None
    assert services.apprise_plugin("mailto://user:pw@example.com") is None

"""Fixtures of the alert tests: a local HTTP receiver, channels, and a record of the tasks
the alert services enqueue (nothing reaches a broker)."""

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.accounts.conftest import mariadb, mariadb_instance  # noqa: F401  (fixtures)
from whalefall.alerts import services
from whalefall.alerts.models import Channel, ChannelKind, Rule

WEBHOOK_SECRET = "hook-signing-secret-0123"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Receiver:
    """A local HTTP server: records every POST and answers with the queued statuses
    (then 200)."""

    port: int
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            state.requests.append(Received(self.path, dict(self.headers.items()), body))
            status = state.statuses.pop(0) if state.statuses else 200
            payload = b'{"errcode":0,"code":0,"StatusCode":0}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def enqueued(monkeypatch) -> list[tuple]:
    """Every task the alert services send, as (task name, args), instead of a broker."""
    sent: list[tuple] = []
    monkeypatch.setattr(services, "enqueue", lambda name, *args: sent.append((name, *args)))
    return sent


def make_channel(kind: str, *, name: str | None = None, url: str = "", secret: str = "", **kw):
    channel = Channel(name=name or f"{kind}-channel", kind=kind, **kw)
    if url:
        channel.set_url(url)
    if secret:
        channel.set_secret(secret)
    channel.save()
    return channel


@pytest.fixture
def webhook_channel(db, receiver) -> Channel:
    return make_channel(
        ChannelKind.WEBHOOK, url=f"{receiver.url}/hook?token=abc123", secret=WEBHOOK_SECRET
    )


@pytest.fixture
def email_channel(db) -> Channel:
    return make_channel(ChannelKind.EMAIL, recipients="dba@example.com, sec@example.com")


def make_rule(trigger: str, channels, **kw) -> Rule:
    rule = Rule.objects.create(name=kw.pop("name", f"rule-{trigger}"), trigger=trigger, **kw)
    rule.channels.set(channels)
    return rule


def deliver_all(_enqueued: list[tuple] | None = None) -> None:
    """Do what the worker would after the test's (never committed) transaction: route the
    pending events, then send every unsettled delivery, retrying at once while it asks."""
    from whalefall.alerts.models import Delivery, DeliveryStatus

    services.events_dispatch()
    unsettled = Delivery.objects.filter(
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING]
    ).order_by("pk")
    for pk in unsettled.values_list("pk", flat=True):
        while services.delivery_send(delivery_id=pk).retry_in is not None:
            pass

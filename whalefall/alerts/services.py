"""Alert services: emitting events (the outbox), routing them to rules, digests, and
sending deliveries to e-mail, webhooks and chat services.

Events are written in the caller's transaction; one dispatch is enqueued after it commits.
The dispatch routes every pending event to the enabled rules whose trigger, instance
selection and threshold it meets, and creates the deliveries: one per event, or one summary
per rule and channel when a burst holds more than ``WHALEFALL_ALERT_FLOOD_THRESHOLD``
events. Each delivery is sent by its own task, retried with exponential backoff.
"""

import functools
import hashlib
import hmac
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import structlog
from django.apps import apps
from django.conf import settings
from django.core.mail import EmailMessage
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone, translation

from whalefall.alerts import messages
from whalefall.alerts.models import (
    APPRISE_SCHEMES,
    Channel,
    ChannelKind,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Event,
    Mode,
    Rule,
    Scope,
    SecretUnavailable,
    Trigger,
)
from whalefall.db import insert_rows
from whalefall.logging import REDACTED, is_sensitive_key, redact_text

log = structlog.get_logger(__name__)

# The stored payload of one event; a larger one keeps only its short scalar values.
MAX_PAYLOAD_BYTES = 16 * 1024
# Events routed by one dispatch; more wait for the next (which is enqueued at once).
DISPATCH_BATCH = 10_000
# Events listed in a webhook body; the count gives the rest.
MAX_WEBHOOK_EVENTS = 100
MAX_ERROR_LENGTH = 1000
WEBHOOK_SCHEMA = "whalefall.alert/1"
SIGNATURE_HEADER = "X-WhaleFall-Signature"


# --- Enqueueing -------------------------------------------------------------------------


def enqueue(task_name: str, *args: Any) -> None:
    """Send a task of this app; a broker that is down only delays it (the beat sweep)."""
    from whalefall.alerts import tasks

    try:
        getattr(tasks, task_name).delay(*args)
    except Exception as exc:  # noqa: BLE001  the periodic sweep picks the work up
        log.warning("alert_enqueue_failed", task=task_name, error_type=type(exc).__name__)


def _dispatch_after_commit() -> None:
    enqueue("dispatch_events")


def _schedule_dispatch() -> None:
    """One dispatch per transaction, however many events it emits."""
    if connection.in_atomic_block and any(
        func is _dispatch_after_commit for _sids, func, _robust in connection.run_on_commit
    ):
        return
    transaction.on_commit(_dispatch_after_commit)


# --- Emitting ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _sensitive(key: str) -> bool:
    return is_sensitive_key(key)


_ENCODER = DjangoJSONEncoder()


def _plain(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON types, with the log redaction's rules: sensitive keys masked at
    every depth, credentials in URLs and DSNs masked (a sync emits thousands: kept cheap)."""
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth > 20:
        return None
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED if _sensitive(str(k)) and v not in (None, "") else _plain(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v, depth + 1) for v in value]
    try:
        return _ENCODER.default(value)
    except TypeError:
        return redact_text(str(value))


def _clean_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-safe, secrets masked, bounded in size."""
    data = _plain(dict(payload))
    if len(json.dumps(data)) > MAX_PAYLOAD_BYTES:
        data = {
            k: v
            for k, v in data.items()
            if isinstance(v, bool | int | float) or (isinstance(v, str) and len(v) <= 500)
        }
        data["truncated"] = True
    return data


def _dedup_key(payload: dict[str, Any], dedup_key: str | None) -> str:
    if dedup_key:
        return str(dedup_key)[:255]
    # Without a key, identical payloads are the same event.
    return "payload:" + hashlib.sha256(messages.canonical_json(payload).encode()).hexdigest()[:40]


def _instance_id(instance: Any) -> int | None:
    if instance is None:
        return None
    return instance if isinstance(instance, int) else instance.pk


def _fresh(kind: str, events: Iterable[Mapping[str, Any]]) -> list[tuple]:
    """Rows (EVENT_FIELDS) of events of ``kind``, without those identical to one another or
    to one recorded within ``WHALEFALL_ALERT_DEDUP_SECONDS`` (one query)."""
    if kind not in Trigger.values:
        raise ValueError(f"not an alert event kind: {kind!r}")
    now = timezone.now()
    rows: dict[tuple[int | None, str], tuple] = {}
    for item in events:
        payload = _clean_payload(item.get("payload") or {})
        key = _dedup_key(payload, item.get("dedup_key"))
        instance_id = _instance_id(item.get("instance"))
        rows.setdefault((instance_id, key), (kind, instance_id, key, payload, now))
    if not rows:
        return []
    window = now - timedelta(seconds=settings.WHALEFALL_ALERT_DEDUP_SECONDS)
    recent = set(
        Event.objects.filter(
            kind=kind, dedup_key__in={key for _i, key in rows}, created_at__gte=window
        ).values_list("instance_id", "dedup_key")
    )
    fresh = [event for ident, event in rows.items() if ident not in recent]
    if len(fresh) < len(rows):
        log.info("alert_events_suppressed", kind=kind, count=len(rows) - len(fresh))
    return fresh


EVENT_FIELDS = ("kind", "instance", "dedup_key", "payload", "created_at")


def emit_many(kind: str, events: Iterable[Mapping[str, Any]]) -> int:
    """Record events of one ``kind``, each a mapping with ``payload`` and optionally
    ``instance`` (model or id) and ``dedup_key``; returns how many were recorded (not
    suppressed as duplicates).

    Written in the caller's transaction with one query to find duplicates and one bulk
    insert (a sync may emit thousands); the dispatch is enqueued once it commits.
    """
    fresh = _fresh(kind, events)
    if fresh:
        insert_rows(Event, EVENT_FIELDS, fresh)
        _schedule_dispatch()
    return len(fresh)


def emit(
    kind: str, *, instance: Any = None, payload: Mapping[str, Any], dedup_key: str | None = None
) -> Event | None:
    """Record one event (the one function the apps call); None when it is a duplicate of
    one emitted within ``WHALEFALL_ALERT_DEDUP_SECONDS``."""
    fresh = _fresh(kind, [{"instance": instance, "payload": payload, "dedup_key": dedup_key}])
    if not fresh:
        return None
    kind, instance_id, key, data, now = fresh[0]
    event = Event.objects.create(
        kind=kind, instance_id=instance_id, dedup_key=key, payload=data, created_at=now
    )
    _schedule_dispatch()
    return event


# --- Routing ----------------------------------------------------------------------------


def rule_instance_ids(rule: Rule) -> set[int] | None:
    """The instances a rule watches; None for every instance (and instance-less events)."""
    if rule.scope == Scope.ALL:
        return None
    instance_model = apps.get_model("inventory", "Instance")
    if rule.scope == Scope.TAGS:
        tag_ids = [tag.pk for tag in rule.tags.all()]
        return set(instance_model.objects.filter(tags__in=tag_ids).values_list("pk", flat=True))
    names = rule.environment_list()
    if not names:
        return set()
    by_field = Q()
    by_tag = Q()
    for name in names:
        by_field |= Q(environment__iexact=name)
        by_tag |= Q(tags__name__iexact=name) | Q(tags__slug__iexact=name)
    return set(
        instance_model.objects.filter(
            by_field | (Q(tags__category="environment") & by_tag)
        ).values_list("pk", flat=True)
    )


def _in_scope(event: Event, ids: set[int] | None) -> bool:
    return ids is None or (event.instance_id is not None and event.instance_id in ids)


def _instance_names(events: Iterable[Event]) -> dict[int, str]:
    ids = {e.instance_id for e in events if e.instance_id}
    if not ids:
        return {}
    instance_model = apps.get_model("inventory", "Instance")
    return dict(instance_model.objects.filter(pk__in=ids).values_list("pk", "name"))


def _line(event: Event, names: Mapping[int, str]) -> str:
    return messages.event_line(
        kind=event.kind,
        instance_id=event.instance_id,
        instance_name=str(event.payload.get("instance") or names.get(event.instance_id, "")),
        payload=event.payload,
    )


def _render(kind: str, trigger: str, events: list[Event], names: Mapping[int, str]) -> tuple:
    """Subject and text of a delivery, in the site's language."""
    with translation.override(settings.LANGUAGE_CODE):
        label = str(Trigger(trigger).label)
        lines = [_line(e, names) for e in events]
        subject = messages.subject(
            kind_label=label, count=len(events), digest=kind == DeliveryKind.DIGEST
        )
        text = messages.body(
            lines, instances=[names.get(e.instance_id, "") for e in events if e.instance_id]
        )
        if kind == DeliveryKind.DIGEST and len(lines) == 1:
            text = messages.body(lines)
    return subject[:300], text


def _create_deliveries(
    groups: Mapping[tuple[Rule, Channel], list[Event]], *, digest: bool = False
) -> list[Delivery]:
    """The deliveries of routed events: one per event, or one summary of a flood."""
    names = _instance_names(e for events in groups.values() for e in events)
    planned: list[tuple[Delivery, list[Event]]] = []
    for (rule, channel), events in groups.items():
        if digest:
            batches = [(DeliveryKind.DIGEST, events)]
        elif len(events) > settings.WHALEFALL_ALERT_FLOOD_THRESHOLD:
            batches = [(DeliveryKind.SUMMARY, events)]
        else:
            batches = [(DeliveryKind.SINGLE, [event]) for event in events]
        for kind, batch in batches:
            subject, text = _render(kind, rule.trigger, batch, names)
            delivery = Delivery(
                rule=rule,
                channel=channel,
                kind=kind,
                event_count=len(batch),
                subject=subject,
                preview=text,
            )
            planned.append((delivery, batch))
    if not planned:
        return []
    deliveries = Delivery.objects.bulk_create([d for d, _events in planned])
    insert_rows(
        Delivery.events.through,
        ("delivery", "event"),
        ((delivery.pk, event.pk) for delivery, batch in planned for event in batch),
    )
    ids = [d.pk for d in deliveries]
    transaction.on_commit(lambda: [enqueue("send_delivery", pk) for pk in ids])
    return deliveries


def events_dispatch(*, now: datetime | None = None) -> list[int]:
    """Route the pending events to the immediate rules that want them; returns the ids of
    the deliveries created. Concurrent dispatches take disjoint events."""
    now = now or timezone.now()
    with transaction.atomic():
        events = list(
            Event.objects.pending()
            .select_for_update(skip_locked=True)
            .order_by("pk")[:DISPATCH_BATCH]
        )
        if not events:
            return []
        Event.objects.filter(pk__in=[e.pk for e in events]).update(dispatched_at=now)
        rules = list(
            Rule.objects.filter(
                enabled=True, mode=Mode.IMMEDIATE, trigger__in={e.kind for e in events}
            ).prefetch_related("channels", "tags")
        )
        groups: dict[tuple[Rule, Channel], list[Event]] = defaultdict(list)
        for rule in rules:
            ids = rule_instance_ids(rule)
            channels = [c for c in rule.channels.all() if c.enabled]
            wanted = [
                e
                for e in events
                if e.kind == rule.trigger and _in_scope(e, ids) and rule.threshold_met(e.payload)
            ]
            for channel in channels if wanted else ():
                groups[(rule, channel)].extend(wanted)
        deliveries = _create_deliveries(groups)
        more = len(events) == DISPATCH_BATCH
    if more:
        enqueue("dispatch_events")
    log.info("alert_events_dispatched", events=len(events), deliveries=len(deliveries))
    return [d.pk for d in deliveries]


def _digest_due(rule: Rule, now: datetime) -> datetime | None:
    """The moment today's digest of ``rule`` fell due, if it is due and not yet sent."""
    local = timezone.localtime(now)
    due = timezone.make_aware(datetime.combine(local.date(), rule.digest_time), local.tzinfo)
    if now < due or (rule.last_digest_at and rule.last_digest_at >= due):
        return None
    return due


def digests_send(*, now: datetime | None = None) -> list[int]:
    """Send the daily digests that are due: per digest rule, the events of its trigger,
    selection and threshold since its previous digest (at most a day back the first time)."""
    now = now or timezone.now()
    created: list[int] = []
    for rule in Rule.objects.filter(enabled=True, mode=Mode.DIGEST).prefetch_related(
        "channels", "tags"
    ):
        due = _digest_due(rule, now)
        if due is None:
            continue
        since = rule.last_digest_at or due - timedelta(days=1)
        with transaction.atomic():
            # Whoever moves last_digest_at first sends the digest; a second worker does not.
            if not Rule.objects.filter(pk=rule.pk, last_digest_at=rule.last_digest_at).update(
                last_digest_at=now
            ):
                continue
            ids = rule_instance_ids(rule)
            events = Event.objects.filter(
                kind=rule.trigger, created_at__gt=since, created_at__lte=now
            )
            if ids is not None:
                events = events.filter(instance_id__in=ids)
            wanted = [
                e for e in events.order_by("created_at", "pk") if rule.threshold_met(e.payload)
            ]
            if not wanted:
                continue
            groups = {(rule, c): wanted for c in rule.channels.all() if c.enabled}
            created += [d.pk for d in _create_deliveries(groups, digest=True)]
    if created:
        log.info("alert_digests_created", deliveries=len(created))
    return created


def channels_rotate_keys() -> tuple[int, int, list[str]]:
    """Re-encrypt every channel URL and signing secret under the primary key (the
    companion of ``manage.py rotate_credential_keys``); returns the values re-encrypted,
    those already current, and the names of channels no configured key opens."""
    from inventory import crypto

    rotated = current = 0
    failed: list[str] = []
    with transaction.atomic():
        for channel in Channel.objects.select_for_update().order_by("pk"):
            changed = []
            for field in ("url_ciphertext", "secret_ciphertext"):
                token = getattr(channel, field)
                if not token:
                    continue
                if crypto.is_current(token):
                    current += 1
                    continue
                try:
                    setattr(channel, field, crypto.rotate(token))
                except crypto.SecretUnavailable:
                    failed.append(channel.name)
                    continue
                changed.append(field)
            if changed:
                # update(): re-encryption is not a configuration change for the audit log.
                Channel.objects.filter(pk=channel.pk).update(
                    **{field: getattr(channel, field) for field in changed}
                )
                rotated += len(changed)
    return rotated, current, sorted(set(failed))


PURGE_BATCH = 5000


def alerts_purge(*, older_than_days: int | None = None) -> int:
    """Delete events and deliveries older than ``WHALEFALL_EVENT_RETENTION_DAYS``, in
    batches; returns the rows deleted."""
    days = settings.WHALEFALL_EVENT_RETENTION_DAYS if older_than_days is None else older_than_days
    cutoff = timezone.now() - timedelta(days=days)
    deleted = 0
    for model in (Delivery, Event):
        while True:
            batch = list(
                model.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[
                    :PURGE_BATCH
                ]
            )
            if not batch:
                break
            deleted += model.objects.filter(pk__in=batch).delete()[0]
    if deleted:
        log.info("alerts_purged", before=cutoff.isoformat(), rows=deleted)
    return deleted


def channel_send_test(*, channel: Channel) -> Delivery:
    """Queue a test message to ``channel``."""
    with translation.override(settings.LANGUAGE_CODE):
        subject, text = messages.test_text()
    with transaction.atomic():
        delivery = Delivery.objects.create(
            channel=channel, kind=DeliveryKind.TEST, subject=subject, preview=text
        )
        transaction.on_commit(lambda: enqueue("send_delivery", delivery.pk))
    log.info("alert_test_queued", channel_id=channel.pk, delivery_id=delivery.pk)
    return delivery


# --- Sending ----------------------------------------------------------------------------


class DeliveryFailed(Exception):
    """A channel refused or could not take a message; the text names no secret."""


def _outbound_check(url: str) -> tuple[str, ...]:
    """The outbound guard's decision on the URL's host, with the alert targets' rules:
    the addresses checked, to connect to."""
    from inventory.engines import guard

    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise DeliveryFailed("the URL cannot be read") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise DeliveryFailed("the URL is not an http(s) URL")
    try:
        return guard.ensure_allowed(
            parts.hostname, port, rules=settings.WHALEFALL_ALERT_ALLOWED_TARGETS
        )
    except guard.TargetNotAllowed as exc:
        raise DeliveryFailed(str(exc)) from None


def _pinned_post(url: str, address: str, **kwargs):
    """POST to ``url`` connecting to ``address`` (checked by the guard), not to whatever
    the name resolves to by then: the Host header, TLS server name and certificate check
    still use the URL's host."""
    import requests
    from requests.adapters import HTTPAdapter

    parts = urlsplit(url)
    hostname = parts.hostname or ""

    class Pinned(HTTPAdapter):
        def init_poolmanager(self, *args, **pool_kwargs):
            if parts.scheme == "https":
                pool_kwargs.update(server_hostname=hostname, assert_hostname=hostname)
            super().init_poolmanager(*args, **pool_kwargs)

    dial = f"[{address}]" if ":" in address else address
    netloc = f"{dial}:{parts.port}" if parts.port else dial
    headers = {**kwargs.pop("headers", {}), "Host": parts.netloc.rpartition("@")[2]}
    with requests.Session() as session:
        session.trust_env = False  # no proxy from the environment between us and the check
        session.mount(f"{parts.scheme}://", Pinned())
        return session.post(parts._replace(netloc=netloc).geturl(), headers=headers, **kwargs)


def webhook_body(delivery: Delivery, events: list[Event]) -> dict[str, Any]:
    """The JSON document a webhook receives (schema ``whalefall.alert/1``)."""
    names = _instance_names(events)
    with translation.override(settings.LANGUAGE_CODE):
        listed = [
            {
                "id": e.pk,
                "kind": e.kind,
                "created_at": e.created_at.isoformat(),
                "instance": (
                    {"id": e.instance_id, "name": names.get(e.instance_id, "")}
                    if e.instance_id
                    else None
                ),
                "message": _line(e, names),
                "url": messages.link(instance_id=e.instance_id, payload=e.payload),
                "data": e.payload,
            }
            for e in events[:MAX_WEBHOOK_EVENTS]
        ]
    rule = delivery.rule
    return {
        "schema": WEBHOOK_SCHEMA,
        "delivery_id": delivery.pk,
        "kind": delivery.kind,
        "rule": {"id": rule.pk, "name": rule.name, "trigger": rule.trigger} if rule else None,
        "subject": delivery.subject,
        "text": delivery.preview,
        "event_count": delivery.event_count,
        "events": listed,
        "sent_at": timezone.now().isoformat(),
    }


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: ``sha256=<hex HMAC-SHA256 of the body>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _send_webhook(channel: Channel, delivery: Delivery, events: list[Event]) -> None:
    import requests

    url = channel.decrypt("url")
    secret = channel.decrypt("secret")
    addresses = _outbound_check(url)
    body = json.dumps(webhook_body(delivery, events), ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "WhaleFall-Alerts/1",
        SIGNATURE_HEADER: sign(secret, body),
        "X-WhaleFall-Delivery": str(delivery.pk),
    }
    response = None
    for address in addresses:  # each address the name resolved to, until one connects
        try:
            response = _pinned_post(
                url,
                address,
                data=body,
                headers=headers,
                timeout=settings.WHALEFALL_ALERT_TIMEOUT,
                allow_redirects=False,
                stream=True,  # the answer's body is never read: only its status matters
            )
            break
        except requests.ConnectionError as exc:
            error = exc
        except requests.RequestException as exc:
            error = exc
            break
    if response is None:
        # The exception's text carries the URL, and with it any token: name the kind only.
        raise DeliveryFailed(f"{type(error).__name__} posting to {channel.url_hint}")
    response.close()
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(f"HTTP {response.status_code} from {channel.url_hint}")


def _send_email(channel: Channel, delivery: Delivery) -> None:
    message = EmailMessage(
        subject=delivery.subject,
        body=delivery.preview,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=channel.recipient_list(),
    )
    try:
        message.send(fail_silently=False)
    except Exception as exc:  # noqa: BLE001  SMTP and socket errors alike
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from None


def apprise_plugin(url: str):
    """Apprise's notifier for a chat-service URL, or None if Apprise cannot read it."""
    import apprise

    if urlsplit(url).scheme.lower() not in APPRISE_SCHEMES:
        return None
    return apprise.Apprise.instantiate(url, suppress_exceptions=True)


def _send_apprise(channel: Channel, delivery: Delivery) -> None:
    import apprise

    url = channel.decrypt("url")
    plugin = apprise_plugin(url)
    if plugin is None:
        raise DeliveryFailed(f"Apprise cannot use the URL of {channel.url_hint}")
    # Apprise's debug lines carry the full URL, token included: never below INFO.
    apprise_log = logging.getLogger("apprise")
    if apprise_log.getEffectiveLevel() < logging.INFO:
        apprise_log.setLevel(logging.INFO)
    with apprise.LogCapture(level=logging.WARNING) as captured:
        ok = plugin.notify(body=delivery.preview, title=delivery.subject)
    if not ok:
        detail = " ".join(captured.getvalue().split())[-300:]
        raise DeliveryFailed(
            (f"{channel.url_hint} refused the message: {detail}").replace(url, "…")
        )


@dataclass
class SendOutcome:
    status: str
    retry_in: int | None = None


def delivery_send(*, delivery_id: int) -> SendOutcome:
    """Send one delivery and record the attempt; a failure before the last attempt asks
    for a retry after ``WHALEFALL_ALERT_RETRY_DELAY`` seconds, doubling each time."""
    delivery = Delivery.objects.select_related("channel", "rule").filter(pk=delivery_id).first()
    if delivery is None:
        return SendOutcome(DeliveryStatus.FAILED)
    if delivery.status in (DeliveryStatus.SENT, DeliveryStatus.FAILED):
        return SendOutcome(delivery.status)  # a redelivered task: already settled
    channel = delivery.channel
    attempts = delivery.attempts + 1
    Delivery.objects.filter(pk=delivery.pk).update(attempts=attempts)
    events = list(delivery.events.order_by("created_at", "pk"))
    try:
        if not channel.enabled:
            raise DeliveryFailed("the channel is disabled")
        if channel.kind == ChannelKind.WEBHOOK:
            _send_webhook(channel, delivery, events)
        elif channel.kind == ChannelKind.EMAIL:
            _send_email(channel, delivery)
        else:
            _send_apprise(channel, delivery)
    except (DeliveryFailed, SecretUnavailable) as exc:
        error = redact_text(str(exc))[:MAX_ERROR_LENGTH]
        final = attempts >= settings.WHALEFALL_ALERT_MAX_ATTEMPTS or not channel.enabled
        status = DeliveryStatus.FAILED if final else DeliveryStatus.RETRYING
        Delivery.objects.filter(pk=delivery.pk).update(status=status, last_error=error)
        log.warning(
            "alert_delivery_failed",
            delivery_id=delivery.pk,
            channel_id=channel.pk,
            attempts=attempts,
            final=final,
            error=error,
        )
        if final:
            return SendOutcome(status)
        return SendOutcome(status, settings.WHALEFALL_ALERT_RETRY_DELAY * 2 ** (attempts - 1))
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.SENT, sent_at=timezone.now(), last_error=""
    )
    log.info(
        "alert_delivery_sent", delivery_id=delivery.pk, channel_id=channel.pk, attempts=attempts
    )
    return SendOutcome(DeliveryStatus.SENT)

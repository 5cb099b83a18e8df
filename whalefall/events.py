"""The application event log: warnings, errors and job events kept in the database.

``EventLogHandler`` sits beside the stdout handler (``whalefall.logging.configure``) and
stores what reviewers need from the log stream: every error, every warning except the
per-request 4xx noise of ``django.request``, and the job events of ``JOB_EVENTS``. It gets
the same redacted event as the stdout line and writes through the ``events`` database
connection, outside whatever transaction the code that logged is in, so an error that
rolls a transaction back is kept (on SQLite, whose one writer may be that transaction, the
entry waits for the commit instead). Storing never breaks the code that logs: if the
database cannot take the entry, the line is on stdout only.

Anyone on the network can make WhaleFall log — a wrong password, a bad ``Host`` header, a
readiness probe while a dependency is down — so what anonymous requests cause is stored
within bounds (:func:`admit_anonymous`): once per kind and client address, and at most
``WHALEFALL_ANONYMOUS_EVENTS_PER_WINDOW`` entries of one kind per window of
``WHALEFALL_ANONYMOUS_EVENTS_WINDOW`` seconds; the next stored entry of that kind says how
many were left out (``suppressed``). Signed-in users' requests, tasks and commands are
stored in full.
"""

import contextlib
import hashlib
import json
import logging
import threading
import time
from datetime import datetime, timedelta
from functools import partial

import structlog
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

log = structlog.get_logger(__name__)

# Info-level events that are job milestones, not chatter.
JOB_EVENTS = frozenset(
    {
        "run_created",
        "run_finished",
        "run_cancelled",
        "runs_purged",
        "events_purged",
        "capacity_partition_created",
        "capacity_partition_dropped",
        "capacity_samples_expired",
        "classification_statistics_computed",
        "schedule_installed",
        "roles_installed",
        "administrator_created",
    }
)
# Loggers whose warnings are per-request noise anyone on the internet can cause (404, 403).
NOISY_WARNING_LOGGERS = frozenset({"django.request", "django.server"})
_KEPT = {"event", "level", "logger", "timestamp", "request_id", "run_id", "instance_id"}
_storing = threading.local()
EVENTS_DB = "events"


def _event_name(record: logging.LogRecord) -> str:
    if isinstance(record.msg, dict):
        return str(record.msg.get("event", ""))
    return record.getMessage()


def wanted(record: logging.LogRecord) -> bool:
    """Whether a log record belongs in the event log."""
    if record.levelno >= logging.ERROR:
        return True
    if record.levelno >= logging.WARNING:
        return record.name not in NOISY_WARNING_LOGGERS
    return record.levelno >= logging.INFO and _event_name(record) in JOB_EVENTS


def _int_or_none(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def entry_fields(data: dict) -> dict:
    """The columns of an entry from a rendered (and redacted) JSON log event."""
    level = str(data.get("level", "info")).lower()
    if level not in {"info", "warning", "error", "critical"}:
        level = "critical" if level == "fatal" else "error" if level == "exception" else "info"
    try:
        created_at = datetime.fromisoformat(str(data["timestamp"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        created_at = timezone.now()
    return {
        "created_at": created_at,
        "level": level,
        "event": str(data.get("event", ""))[:200],
        "logger": str(data.get("logger", ""))[:200],
        "request_id": str(data.get("request_id") or "")[:128],
        "run_id": _int_or_none(data.get("run_id")),
        "instance_id": _int_or_none(data.get("instance_id")),
        "context": {k: v for k, v in data.items() if k not in _KEPT},
    }


# --- Bounds for what anonymous traffic causes ----------------------------------------------

_ANONYMOUS_KEY = "whalefall:anonymous-events:"
_CACHE_FUDGE_SECONDS = 5


def _counter(key: str, timeout: int) -> int:
    cache.add(key, 0, timeout)
    return cache.incr(key)


def admit_anonymous(kind: str, source: str, *, per_source: int = 1) -> int | None:
    """Whether one more record of ``kind`` that anonymous traffic from ``source`` caused may
    be stored now: ``None`` when not, else how many of that kind were left out since the
    last one stored. At most ``per_source`` per (kind, source) and
    ``WHALEFALL_ANONYMOUS_EVENTS_PER_WINDOW`` per kind are stored in each window. When the
    cache cannot count, nothing is stored."""
    window = max(1, settings.WHALEFALL_ANONYMOUS_EVENTS_WINDOW)
    timeout = window + _CACHE_FUDGE_SECONDS
    bucket = int(time.time() // window)
    kind_hash = hashlib.sha256(kind.encode()).hexdigest()[:32]
    source_hash = hashlib.sha256(f"{kind}\0{source}".encode()).hexdigest()[:32]
    suppressed_key = f"{_ANONYMOUS_KEY}suppressed:{kind_hash}"
    try:
        admitted = (
            _counter(f"{_ANONYMOUS_KEY}{bucket}:{source_hash}", timeout) <= per_source
            and _counter(f"{_ANONYMOUS_KEY}{bucket}:{kind_hash}", timeout)
            <= settings.WHALEFALL_ANONYMOUS_EVENTS_PER_WINDOW
        )
        if not admitted:
            _counter(suppressed_key, None)
            return None
        suppressed = cache.get(suppressed_key, 0)
        if suppressed:
            cache.decr(suppressed_key, suppressed)
    except Exception:  # noqa: BLE001  a cache that cannot count admits nothing
        return None
    return suppressed


def _anonymous(data: dict) -> bool:
    """Whether a log event belongs to a request of nobody signed in."""
    return bool(data.get("request_id")) and not data.get("user_id")


def _kind(record: logging.LogRecord) -> str:
    # A structlog event name is one of the code's; a stdlib message may quote the request,
    # so only its logger names the kind.
    if isinstance(record.msg, dict):
        return f"{record.name}:{record.msg.get('event', '')}"
    return record.name


# After a failed write the log stays on stdout only for a while, so that a database that
# is down does not make every log call wait for a connection attempt.
PAUSE_AFTER_FAILURE_SECONDS = 30.0
_paused_until = 0.0


def _store(fields: dict) -> None:
    from whalefall.models import EventLogEntry

    global _paused_until
    _storing.active = True
    try:
        EventLogEntry.objects.using(EVENTS_DB).create(**fields)
    except Exception:
        _paused_until = time.monotonic() + PAUSE_AFTER_FAILURE_SECONDS
        raise
    finally:
        _storing.active = False


class EventLogHandler(logging.Handler):
    """Stores the records :func:`wanted` selects as ``EventLogEntry`` rows."""

    def __init__(self, level=logging.INFO):
        super().__init__(level)
        from whalefall.logging import build_formatter

        self.setFormatter(build_formatter(use_json=True))

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(_storing, "active", False) or time.monotonic() < _paused_until:
            return
        if not wanted(record):
            return
        from django.apps import apps

        if not apps.ready:
            return
        # The line is on stdout already; the event log never breaks the code that logs.
        with contextlib.suppress(Exception):
            from django.db import connection, transaction

            data = json.loads(self.format(record))
            fields = entry_fields(data)
            if _anonymous(data):
                _storing.active = True  # the cache may log too
                try:
                    suppressed = admit_anonymous(_kind(record), str(data.get("client_ip", "")))
                finally:
                    _storing.active = False
                if suppressed is None:
                    return
                if suppressed:
                    fields["context"]["suppressed"] = suppressed
            if connection.vendor == "sqlite" and connection.in_atomic_block:
                # SQLite has one writer at a time, and this transaction is it: the entry
                # follows once it commits (and goes with it if it rolls back).
                transaction.on_commit(partial(_store, fields))
            else:
                _store(fields)


def events_purge(*, older_than_days: int | None = None, batch_size: int = 5000) -> int:
    """Delete entries older than ``WHALEFALL_EVENT_RETENTION_DAYS``, a batch at a time so
    that no statement holds many rows locked. Returns the number deleted."""
    from whalefall.models import EventLogEntry

    days = settings.WHALEFALL_EVENT_RETENTION_DAYS if older_than_days is None else older_than_days
    cutoff = timezone.now() - timedelta(days=days)
    old = EventLogEntry.objects.filter(created_at__lt=cutoff).order_by("pk")
    deleted = 0
    while ids := list(old.values_list("pk", flat=True)[:batch_size]):
        deleted += EventLogEntry.objects.filter(pk__in=ids).delete()[0]
    if deleted:
        log.info("events_purged", deleted=deleted, older_than_days=days)
    return deleted

"""Services of the sync machinery: runs and their items, the work lock, the reaper and
retention, the default schedule, roles and the first administrator.

A run has one item per instance; each item is executed by its own task
(:func:`run_item_execute`), which takes the work lock of its kind on its instance, calls
the kind's handler and records the outcome. Every status change is a conditional UPDATE
(``transition``), so a redelivered task, a reaper and a cancel can race without ever
overwriting a finished item.
"""

import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import structlog
from auditlog.models import LogEntry
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Count, DurationField, Exists, ExpressionWrapper, F, OuterRef, Q, Sum
from django.db.models import Value as V
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask, PeriodicTasks

from inventory.engines.base import EngineError, InsufficientPrivileges, Timeout, Unreachable
from inventory.models import Instance
from syncjobs.models import (
    ITEM_ACTIVE,
    ITEM_TERMINAL,
    RUN_ACTIVE,
    RUN_TERMINAL,
    ItemStatus,
    Run,
    RunItem,
    RunKind,
    RunStatus,
    RunTrigger,
    WorkLock,
)
from syncjobs.schedulable import SCHEDULABLE, problems_of
from whalefall import alerts, metrics
from whalefall.celery import app as celery_app
from whalefall.logging import redact_text
from whalefall.roles import ADMINISTRATORS, ALL_PERMISSIONS, all_role_definitions

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ScheduledJob:
    """One entry of the default schedule: a cron time or an interval in seconds."""

    name: str
    task: str
    description: str
    crontab: str = ""  # "minute hour" (daily)
    every_seconds: int = 0
    kwargs: dict | None = None


DEFAULT_SCHEDULE: tuple[ScheduledJob, ...] = (
    ScheduledJob(
        name="Beat heartbeat",
        task="whalefall.beat_heartbeat",
        description="Proves beat and a worker are alive; /health/ready checks its age.",
        every_seconds=60,
    ),
    ScheduledJob(
        name="Account sync",
        task="syncjobs.sync_accounts_all",
        description="Syncs the accounts and privileges of every active instance.",
        crontab="0 1",
    ),
    ScheduledJob(
        name="Classification statistics",
        task="syncjobs.classification_statistics",
        description="Counts the accounts each rule and classification matches, per instance.",
        crontab="0 2",
    ),
    ScheduledJob(
        name="Capacity partition maintenance",
        task="syncjobs.maintain_partitions",
        description="Creates the coming months' partitions of the daily size tables and drops "
        "those past WHALEFALL_CAPACITY_RETENTION_MONTHS.",
        crontab="30 0",
    ),
    ScheduledJob(
        name="Capacity collection",
        task="syncjobs.collect_capacity_all",
        description="Collects the databases and their sizes of every active instance.",
        crontab="0 3",
    ),
    ScheduledJob(
        name="Capacity aggregation",
        task="syncjobs.aggregate_capacity",
        description="Computes the weekly, monthly and quarterly size statistics of the last "
        "complete periods.",
        crontab="0 4",
    ),
    ScheduledJob(
        name="Run reaper",
        task="syncjobs.reap_runs",
        description="Fails run items whose worker stopped responding and closes their runs.",
        every_seconds=300,
    ),
    ScheduledJob(
        name="Run retention purge",
        task="syncjobs.purge_runs",
        description="Deletes runs older than WHALEFALL_RUN_RETENTION_DAYS, in batches.",
        crontab="0 5",
    ),
    ScheduledJob(
        name="Event log retention purge",
        task="whalefall.purge_events",
        description="Deletes application events older than WHALEFALL_EVENT_RETENTION_DAYS, "
        "in batches.",
        crontab="10 5",
    ),
    ScheduledJob(
        name="Alert digests",
        task="alerts.send_digests",
        description="Sends the daily alert digests at each rule's time and routes alert "
        "events a lost message left waiting.",
        every_seconds=60,
    ),
    ScheduledJob(
        name="Alert retention purge",
        task="alerts.purge",
        description="Deletes alert events and deliveries older than "
        "WHALEFALL_EVENT_RETENTION_DAYS, in batches.",
        crontab="20 5",
    ),
)


class RoleDefinitionError(Exception):
    """A role names a permission that no installed model defines."""


def _resolve_permissions(spec: dict[str, tuple[str, ...]]) -> list[Permission]:
    wanted: set[tuple[str, str]] = set()
    for label, actions in spec.items():
        app_label, model = label.split(".")
        for action in actions:
            codename = (
                f"{action}_{model}" if action in {"view", "add", "change", "delete"} else action
            )
            wanted.add((app_label, codename))
    found = {
        (p.content_type.app_label, p.codename): p
        for p in Permission.objects.select_related("content_type").filter(
            content_type__app_label__in={app for app, _ in wanted},
            codename__in={code for _, code in wanted},
        )
    }
    missing = sorted(wanted - found.keys())
    if missing:
        raise RoleDefinitionError(
            "Unknown permissions in role definitions: "
            + ", ".join(f"{app}.{code}" for app, code in missing)
        )
    return [found[key] for key in sorted(wanted)]


@transaction.atomic
def roles_install() -> dict[str, int]:
    """Create the role groups and add the permissions they lack; returns permissions added."""
    added: dict[str, int] = {}
    for role, spec in all_role_definitions().items():
        group, _ = Group.objects.get_or_create(name=role)
        if spec == ALL_PERMISSIONS:
            permissions = list(Permission.objects.all())
        else:
            permissions = _resolve_permissions(spec)
        held = set(group.permissions.values_list("pk", flat=True))
        new = [p for p in permissions if p.pk not in held]
        group.permissions.add(*new)
        added[role] = len(new)
    log.info("roles_installed", added=added)
    return added


@transaction.atomic
def schedule_install_defaults() -> list[str]:
    """Create the default periodic tasks that do not exist yet; never touch existing ones."""
    existing = set(
        PeriodicTask.objects.filter(name__in=[job.name for job in DEFAULT_SCHEDULE]).values_list(
            "name", flat=True
        )
    )
    created = []
    for job in DEFAULT_SCHEDULE:
        if job.name in existing:
            continue
        schedule: dict = {}
        if job.every_seconds:
            schedule["interval"], _ = IntervalSchedule.objects.get_or_create(
                every=job.every_seconds, period=IntervalSchedule.SECONDS
            )
        else:
            minute, hour = job.crontab.split()
            schedule["crontab"], _ = CrontabSchedule.objects.get_or_create(
                minute=minute,
                hour=hour,
                day_of_week="*",
                day_of_month="*",
                month_of_year="*",
                timezone=settings.TIME_ZONE,
            )
        PeriodicTask.objects.create(
            name=job.name,
            task=job.task,
            description=job.description,
            kwargs=json.dumps(job.kwargs or {}),
            **schedule,
        )
        created.append(job.name)
    log.info("schedule_installed", created=created)
    return created


# --- Periodic tasks ---------------------------------------------------------------------


def periodic_tasks_disable_unschedulable(periodic_tasks=None) -> list[str]:
    """Disable the enabled periodic tasks that name no schedulable task or carry arguments
    it refuses (stored before those rules, or behind the ORM's back), each with an audit
    entry; returns their names. All of them unless ``periodic_tasks`` narrows it."""
    candidates = PeriodicTask.objects.all() if periodic_tasks is None else periodic_tasks
    disabled = []
    for task in candidates.filter(enabled=True).order_by("pk"):
        found = problems_of(task)
        if not found:
            continue
        with transaction.atomic():
            # An UPDATE: saving would run the very check that refuses the row.
            if PeriodicTask.objects.filter(pk=task.pk, enabled=True).update(enabled=False):
                LogEntry.objects.log_create(
                    task,
                    action=LogEntry.Action.UPDATE,
                    changes={"enabled": ["True", "False"]},
                    additional_data={"unschedulable": found},
                )
                disabled.append(task.name)
        log.warning(
            "periodic_task_disabled_unschedulable",
            periodic_task=task.name,
            task=task.task,
            problems=found,
        )
    if disabled:
        PeriodicTasks.update_changed()
    return disabled


def periodic_tasks_set_enabled(*, periodic_tasks, enabled: bool | None) -> tuple[int, list[str]]:
    """Enable or disable periodic tasks (``enabled=None`` toggles each) one by one, so that
    every change is audited; returns how many changed and the names of those that could
    not be enabled because they are not schedulable."""
    changed, refused = 0, []
    for task in periodic_tasks.order_by("pk"):
        target = (not task.enabled) if enabled is None else enabled
        if task.enabled == target:
            continue
        if not target:
            # Stopping a task is always possible, even one whose arguments are refused now.
            with transaction.atomic():
                if PeriodicTask.objects.filter(pk=task.pk, enabled=True).update(
                    enabled=False, last_run_at=None
                ):
                    LogEntry.objects.log_create(
                        task, action=LogEntry.Action.UPDATE, changes={"enabled": ["True", "False"]}
                    )
                    changed += 1
            continue
        task.enabled = True
        try:
            with transaction.atomic():
                task.save()
        except ValidationError:
            refused.append(task.name)
            continue
        changed += 1
    PeriodicTasks.update_changed()
    return changed, refused


def periodic_tasks_run_now(*, periodic_tasks, user) -> tuple[dict[str, str], dict[str, dict]]:
    """Send the given periodic tasks now, on behalf of ``user`` (the person who pressed
    "Run selected tasks"): each is checked again, audited, and sent once committed; the
    runs they start record ``user`` as the requester, trigger manual, with the scope the
    schedule gives them. Returns, per name sent, the Celery task id (the ``task_id`` of the
    run it starts) and, per name, why a task was refused."""
    sent: dict[str, str] = {}
    refused: dict[str, dict] = {}
    unsent: list[str] = []
    queue_check()
    with transaction.atomic():
        for task in periodic_tasks.order_by("pk"):
            found = problems_of(task)
            if found:
                refused[task.name] = found
                continue
            kwargs = json.loads(task.kwargs or "{}")
            if SCHEDULABLE[task.task].records_requester:
                # From the request, never from what is stored.
                kwargs["requested_by_id"] = user.pk
            task_id = str(uuid.uuid4())
            LogEntry.objects.log_create(
                task,
                action=LogEntry.Action.ACCESS,
                changes={"run_now": ["", user.get_username()]},
                additional_data={
                    "run_now": {"task": task.task, "kwargs": kwargs, "task_id": task_id}
                },
                actor=user,
            )
            transaction.on_commit(
                partial(
                    _periodic_task_send,
                    name=task.name,
                    task=task.task,
                    kwargs=kwargs,
                    queue=task.queue or None,
                    unsent=unsent,
                    task_id=task_id,
                )
            )
            sent[task.name] = task_id
    if sent and len(unsent) == len(sent):
        raise QueueUnavailable("no task could be sent to the broker")
    sent = {name: task_id for name, task_id in sent.items() if name not in unsent}
    log.info("periodic_tasks_run_now", sent=sorted(sent), refused=sorted(refused), user_id=user.pk)
    return sent, refused


def _periodic_task_send(
    *,
    name: str,
    task: str,
    kwargs: dict[str, Any],
    queue: str | None,
    unsent: list[str],
    task_id: str | None = None,
):
    try:
        celery_app.send_task(
            task,
            kwargs=kwargs,
            queue=queue,
            headers={"periodic_task_name": name},
            task_id=task_id,
        )
    except Exception as exc:  # noqa: BLE001  a transport error must not undo the audit entry
        unsent.append(name)
        log.error(
            "periodic_task_not_sent",
            periodic_task=name,
            error_type=type(exc).__name__,
            error=redact_text(str(exc)),
        )


@transaction.atomic
def admin_user_ensure(*, username: str, email: str = "") -> tuple[object, str | None]:
    """Create the first administrator; returns the user and its generated password, if new."""
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is not None:
        return user, None
    password = secrets.token_urlsafe(18)
    user = User.objects.create_superuser(username=username, email=email, password=password)
    user.groups.add(Group.objects.get(name=ADMINISTRATORS))
    log.info("administrator_created", username=username)
    return user, password


# --- Handlers ---------------------------------------------------------------------------

# Run kind -> dotted path of ``handler(*, instance, run_id)``. Handlers are imported when an
# item runs, so that the apps doing the work never depend on syncjobs. A handler returns an
# object (or a mapping) with the int counts ``created``, ``changed``, ``removed`` and
# ``unchanged`` and optionally a ``detail`` mapping (a non-empty ``problems`` list in it marks
# work done around a problem, making the run partially failed); it raises the EngineError family for
# remote failures, and an exception with ``fail_closed = True`` (or named SyncRefused) when
# it refuses to act on incomplete data.
RUN_HANDLERS: dict[str, str] = {
    # Classification follows every account sync of an instance.
    RunKind.ACCOUNTS: "classification.services.account_sync_and_classify",
    RunKind.CLASSIFICATION: "classification.services.classification_classify_instance",
    RunKind.CAPACITY: "capacity.services.capacity_collect_instance",
}

OUTCOME_COUNTS = ("created", "changed", "removed", "restored", "unchanged")

# Failures worth another attempt: the instance or our own database may be back soon.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    Unreachable,
    Timeout,
    OperationalError,
    InterfaceError,
)

MAX_ERROR_LENGTH = 2000

# A lock outlives the hard time limit of the task holding it by this much; after that its
# holder cannot be alive and the lock is free for the taking.
LOCK_MARGIN = timedelta(minutes=5)

# The last attempt records its failure through a database outage this many times, waiting
# FINAL_WRITE_DELAY seconds and then twice as long each time; past that the reaper fails
# the item when its heartbeat is too old.
FINAL_WRITE_ATTEMPTS = 5
FINAL_WRITE_DELAY = 1.0


class HandlerMissing(Exception):
    """No handler is registered for a run kind."""


def _handler_for(kind: str) -> Callable[..., Any]:
    path = RUN_HANDLERS.get(kind)
    if path is None:
        raise HandlerMissing(f"no handler is registered for {kind} runs")
    return import_string(path)


def _outcome_counts(outcome: Any) -> dict[str, int]:
    """The counts of a handler's outcome, from attributes or mapping keys (0 if absent)."""
    counts = {}
    for name in OUTCOME_COUNTS:
        value = outcome.get(name, 0) if isinstance(outcome, dict) else getattr(outcome, name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise TypeError(f"handler outcome {name}={value!r} is not a count")
        counts[f"{name}_count"] = value
    return counts


def _outcome_detail(outcome: Any) -> dict[str, Any]:
    detail = (
        outcome.get("detail") if isinstance(outcome, dict) else getattr(outcome, "detail", None)
    )
    return dict(detail) if isinstance(detail, dict) else {}


def _is_fail_closed(exc: BaseException) -> bool:
    return getattr(exc, "fail_closed", False) is True or any(
        cls.__name__ == "SyncRefused" for cls in type(exc).__mro__
    )


def _failure_message(exc: BaseException) -> str:
    """What an item records about an exception: never a traceback, never a secret."""
    if isinstance(exc, SoftTimeLimitExceeded):
        message = f"time limit of {settings.CELERY_TASK_SOFT_TIME_LIMIT} s exceeded"
    elif isinstance(exc, EngineError) or _is_fail_closed(exc):
        # Engine errors are scrubbed where they are raised; refusals are our own words.
        message = str(exc) or getattr(exc, "label", type(exc).__name__)
    else:
        message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return redact_text(message)[:MAX_ERROR_LENGTH]


# --- Work lock --------------------------------------------------------------------------


def _lock_ttl() -> timedelta:
    return timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT) + LOCK_MARGIN


def work_lock_acquire(
    *, kind: str, instance_id: int, item_id: int, now: datetime | None = None
) -> bool:
    """Take the lock on ``kind`` work for an instance on behalf of a run item.

    The unique (kind, instance) key is the lock: of two concurrent INSERTs exactly one
    succeeds, on PostgreSQL and SQLite alike. An expired lock is deleted first, so the
    lock of a worker that died is taken over.
    """
    now = now or timezone.now()

    def insert() -> bool:
        lock = WorkLock(
            kind=kind,
            instance_id=instance_id,
            holder_id=item_id,
            acquired_at=now,
            expires_at=now + _lock_ttl(),
        )
        # Outside a transaction (a worker) the refused INSERT harms nothing and needs no
        # BEGIN/COMMIT around it; inside one, a savepoint keeps that transaction usable.
        guard = transaction.atomic() if connection.in_atomic_block else nullcontext()
        try:
            with guard:
                lock.save(force_insert=True)
        except IntegrityError:
            return False
        return True

    # The free lock (the usual case) costs one INSERT; expiry is looked at only when held.
    if insert():
        return True
    expired, _ = WorkLock.objects.filter(
        kind=kind, instance_id=instance_id, expires_at__lte=now
    ).delete()
    if expired:
        log.warning("work_lock_expired_taken_over", kind=kind, instance_id=instance_id)
        if insert():
            return True
    # Still held by this very item: an earlier attempt could not release it (the database
    # went away); the retry carries on under it.
    return bool(
        WorkLock.objects.filter(kind=kind, instance_id=instance_id, holder_id=item_id).update(
            acquired_at=now, expires_at=now + _lock_ttl()
        )
    )


def work_lock_release(*, kind: str, instance_id: int, item_id: int) -> None:
    """Release the lock if ``item_id`` still holds it (never a lock taken over since)."""
    # One DELETE: nothing cascades from a lock and nothing listens to its deletion, so the
    # collector's read and transaction that ``delete()`` adds would be pure cost per item.
    held = WorkLock.objects.filter(kind=kind, instance_id=instance_id, holder_id=item_id)
    held._raw_delete(held.db)


def _lock_holder_reason(*, kind: str, instance: Instance) -> str:
    holder = (
        WorkLock.objects.filter(kind=kind, instance=instance)
        .values("holder__run_id", "acquired_at")
        .first()
    )
    if holder is None:
        return f"{kind} sync of {instance.name} was already running in another run"
    since = timezone.localtime(holder["acquired_at"]).isoformat(sep=" ", timespec="seconds")
    return (
        f"{kind} sync of {instance.name} already running in run #{holder['holder__run_id']} "
        f"since {since}"
    )


# --- Runs -------------------------------------------------------------------------------


class QueueUnavailable(Exception):
    """The task queue (broker) did not answer: nothing was started. ``run`` is the run that
    was created and then failed because its tasks could not be sent, if any."""

    def __init__(self, reason: str, *, run: Run | None = None) -> None:
        super().__init__(reason)
        self.run = run


def queue_check() -> None:
    """Raise :class:`QueueUnavailable` unless the broker answers within
    ``WHALEFALL_BROKER_CHECK_TIMEOUT`` seconds (connected and, on Redis, answering PING)."""
    from whalefall.health import broker_connection

    try:
        with broker_connection() as conn:
            conn.ensure_connection(
                max_retries=1, interval_start=0, timeout=settings.WHALEFALL_BROKER_CHECK_TIMEOUT
            )
            if conn.transport_cls in {"redis", "rediss"}:
                conn.default_channel.client.ping()
    except Exception as exc:  # any transport error means "unavailable"
        log.warning("queue_unavailable", error_type=type(exc).__name__, error=redact_text(str(exc)))
        raise QueueUnavailable(_failure_message(exc)) from exc


def run_create(
    *,
    kind: str,
    trigger: str,
    requested_by=None,
    instance_ids: Iterable[int],
    task_id: str = "",
    summary: dict[str, Any] | None = None,
) -> Run:
    """Create a run with one pending item per instance and queue the items once committed.

    ``task_id`` makes creation idempotent: a task delivered twice finds its first run.
    Raises :class:`QueueUnavailable` when the broker does not answer (nothing is created),
    or when it stops answering before the first task is sent (the run is failed with that
    reason; no item runs, no lock is taken).
    """
    wanted = set(instance_ids)
    if wanted:
        queue_check()
    sending: dict[str, Any] = {}
    try:
        with transaction.atomic():
            if task_id and (existing := Run.objects.filter(task_id=task_id).first()):
                log.info("run_already_created", run_id=existing.pk, task_id=task_id)
                return existing
            ids = sorted(Instance.objects.filter(pk__in=wanted).values_list("pk", flat=True))
            run = Run.objects.create(
                kind=kind,
                trigger=trigger,
                requested_by=requested_by,
                task_id=task_id,
                items_total=len(ids),
                summary=summary or {},
            )
            items = RunItem.objects.bulk_create(
                [RunItem(run=run, instance_id=pk, queued_at=run.created_at) for pk in ids],
                batch_size=1000,
            )
            transaction.on_commit(
                partial(
                    _items_enqueue,
                    run_id=run.pk,
                    kind=kind,
                    items=[(item.pk, item.instance_id) for item in items],
                    outcome=sending,
                )
            )
    except IntegrityError:
        if task_id and (existing := Run.objects.filter(task_id=task_id).first()):
            return existing
        raise
    log.info("run_created", run_id=run.pk, kind=kind, trigger=trigger, items=len(ids))
    if sending.get("error") and not sending.get("sent"):
        # Sent on commit (no outer transaction) and the very first task was refused.
        run.refresh_from_db()
        raise QueueUnavailable(sending["error"], run=run)
    if not ids:
        run_finalise(run_id=run.pk)
        run.refresh_from_db()
    return run


@contextmanager
def job_run(
    *, kind: str, trigger: str = RunTrigger.SCHEDULED, user_id: int | None = None, task_id: str = ""
) -> Iterator[dict[str, Any]]:
    """Record work done once for the whole estate (aggregation, partition maintenance) as a
    run without items: running while the block runs, then succeeded with the summary the
    block fills in, or failed with the error that ended it, which is raised again.

    A worker killed mid-block leaves the run running; the reaper fails it once it is older
    than ``WHALEFALL_RUN_STALE_MINUTES``. A task delivered again (``task_id``) runs again
    under its first run: the jobs are idempotent.
    """
    if user_id is not None and not get_user_model().objects.filter(pk=user_id).exists():
        user_id = None  # gone since they asked: the run is still theirs to have started
    fields = {
        "kind": kind,
        "trigger": trigger,
        "status": RunStatus.RUNNING,
        "requested_by_id": user_id,
        "started_at": timezone.now(),
        "finished_at": None,
        "error": "",
    }
    if task_id:
        run, _ = Run.objects.update_or_create(task_id=task_id, defaults=fields)
    else:
        run = Run.objects.create(**fields)
    structlog.contextvars.bind_contextvars(run_id=run.pk)
    log.info("run_created", run_id=run.pk, kind=kind, trigger=trigger, items=0)
    summary: dict[str, Any] = {}
    try:
        yield summary
    except BaseException as exc:
        error = _failure_message(exc)
        Run.objects.filter(pk=run.pk).update(
            status=RunStatus.FAILED,
            finished_at=timezone.now(),
            summary=_json_safe(summary),
            error=error,
        )
        _alert_run_failed(run_id=run.pk, kind=kind, status=RunStatus.FAILED, error=error)
        metrics.run_finished(kind=kind, status=RunStatus.FAILED)
        log.error(
            "run_finished", run_id=run.pk, status=RunStatus.FAILED, error_type=type(exc).__name__
        )
        raise
    Run.objects.filter(pk=run.pk).update(
        status=RunStatus.SUCCEEDED, finished_at=timezone.now(), summary=_json_safe(summary)
    )
    metrics.run_finished(kind=kind, status=RunStatus.SUCCEEDED)
    log.info("run_finished", run_id=run.pk, status=RunStatus.SUCCEEDED)


def _json_safe(value: Any) -> Any:
    """``value`` with dates and other non-JSON scalars written as text."""
    return json.loads(json.dumps(value, default=str))


# A run of more items than this is sent in chunks: its creator sends one
# ``syncjobs.run_items_send`` task per chunk and the workers send the chunk's items, so that
# creating a run of 10 000 instances sends 40 messages, not 10 000 (about a millisecond each).
ENQUEUE_CHUNK = 250


def _items_enqueue(
    *,
    run_id: int,
    kind: str,
    items: list[tuple[int, int]],
    outcome: dict[str, Any] | None = None,
) -> None:
    """Queue the items of a run: one ``syncjobs.run_item`` task per item, to the queue of the
    run's ``kind``, or for a large run one ``syncjobs.run_items_send`` task per chunk of
    :data:`ENQUEUE_CHUNK` items. The items of whatever the broker refused fail. ``outcome``
    receives how many items were sent (or handed to a chunk) and the error that stopped it."""
    from syncjobs import tasks

    if len(items) > ENQUEUE_CHUNK:
        batches = [items[i : i + ENQUEUE_CHUNK] for i in range(0, len(items), ENQUEUE_CHUNK)]

        def send(batch):
            tasks.run_items_send.apply_async(
                kwargs={"run_id": run_id, "kind": kind, "items": [list(item) for item in batch]}
            )

        _batches_send(run_id=run_id, kind=kind, batches=batches, send=send, outcome=outcome)
    else:
        run_items_send(run_id=run_id, kind=kind, items=items, outcome=outcome)


def run_items_send(
    *,
    run_id: int,
    kind: str,
    items: list[tuple[int, int]],
    outcome: dict[str, Any] | None = None,
) -> None:
    """Send one ``syncjobs.run_item`` task per item, to the queue of the run's ``kind``: the
    items of a small run, or of one chunk of a large run (``syncjobs.run_items_send``)."""
    from syncjobs.tasks import run_item

    def send(batch):
        ((item_id, instance_id),) = batch
        run_item.apply_async(
            kwargs={"item_id": item_id, "run_id": run_id, "instance_id": instance_id, "kind": kind}
        )

    batches = [[item] for item in items]
    _batches_send(run_id=run_id, kind=kind, batches=batches, send=send, outcome=outcome)


def _batches_send(
    *,
    run_id: int,
    kind: str,
    batches: list[list[tuple[int, int]]],
    send: Callable[[list[tuple[int, int]]], None],
    outcome: dict[str, Any] | None = None,
) -> None:
    """``send`` each batch of (item, instance) in turn; when the broker refuses one, fail
    the items of that batch and every later one (nothing else would send them)."""
    outcome = {} if outcome is None else outcome
    sent = 0
    for position, batch in enumerate(batches):
        try:
            send(batch)
        except Exception as exc:  # noqa: BLE001  any transport error leaves the rest unsent
            outcome.update(sent=sent, error=_failure_message(exc))
            unsent = [pk for rest in batches[position:] for pk, _ in rest]
            log.error(
                "run_items_not_queued",
                run_id=run_id,
                items=len(unsent),
                error_type=type(exc).__name__,
                error=redact_text(str(exc)),
            )
            failed = _items_finish(
                RunItem.objects.filter(pk__in=unsent),
                ItemStatus.FAILED,
                error=f"could not be queued: {_failure_message(exc)}",
            )
            metrics.items_finished(kind=kind, status=ItemStatus.FAILED, count=failed)
            run_finalise(run_id=run_id)
            return
        sent += len(batch)
    outcome["sent"] = sent


def run_start(
    *,
    kind: str,
    trigger: str,
    user_id: int | None = None,
    requested_by_id: int | None = None,
    instance_ids: Iterable[int] | None = None,
    task_id: str = "",
) -> Run | None:
    """Create a run over the syncable instances, or the given ones among them.

    With ``user_id``, only the instances that user may sync; None if the user is unknown
    or inactive. ``requested_by_id`` (who ran a scheduled job now) is only recorded: the
    job keeps the scope the schedule gives it.
    """
    instances = Instance.objects.all()
    user = None
    if requested_by_id is not None:
        user = get_user_model().objects.filter(pk=requested_by_id).first()
    if user_id is not None:
        user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
        if user is None:
            log.warning("run_refused_unknown_user", kind=kind, user_id=user_id)
            return None
        instances = instances.visible_to(user, "inventory.sync")
    instances = instances.syncable()
    if instance_ids is not None:
        instances = instances.filter(pk__in=list(instance_ids))
    return run_create(
        kind=kind,
        trigger=trigger,
        requested_by=user,
        instance_ids=instances.values_list("pk", flat=True),
        task_id=task_id,
    )


def _items_finish(items, status: str, *, now: datetime | None = None, **fields) -> int:
    """Move ``items`` to a terminal status, stamping the end and the duration."""
    now = now or timezone.now()
    return items.transition(
        status,
        finished_at=now,
        duration=ExpressionWrapper(V(now) - F("started_at"), output_field=DurationField()),
        **fields,
    )


def run_item_execute(
    *,
    item_id: int,
    may_retry: bool = False,
    task_id: str = "",
    retries: int = 0,
    retry_in: int = 0,
) -> None:
    """Do the work of one run item: the unit a ``syncjobs.run_item`` task executes.

    Idempotent: an item that is finished, or that another delivery already started, is
    left alone. A retry of the task that started it (``task_id``, with more ``retries``
    than when it started) takes over an item an earlier attempt left running, as when the
    database went away before that attempt could hand it back. With ``may_retry``, a
    transient failure hands the item back (pending, due again in ``retry_in`` seconds) and
    re-raises for the task to retry; otherwise it fails the item.
    """
    item = RunItem.objects.select_related("run", "instance").filter(pk=item_id).first()
    if item is None:
        log.warning("run_item_missing", item_id=item_id)
        return
    if (
        task_id
        and item.status == ItemStatus.RUNNING
        and item.task_id == task_id
        and item.task_retries < retries
    ):
        # Read first so that the usual delivery costs no UPDATE; the UPDATE still checks.
        taken_over = RunItem.objects.filter(
            pk=item_id, status=ItemStatus.RUNNING, task_id=task_id, task_retries__lt=retries
        ).update(status=ItemStatus.PENDING)
        if taken_over:
            item.status = ItemStatus.PENDING
            log.warning("run_item_resumed", item_id=item_id, retries=retries)
    run, instance = item.run, item.instance
    if item.status != ItemStatus.PENDING:
        # Finished, or started by another delivery of the same task: not ours to touch.
        log.info("run_item_not_pending", item_id=item.pk, status=item.status)
        return
    this = RunItem.objects.filter(pk=item.pk)
    pending = this.filter(status=ItemStatus.PENDING)

    if run.cancel_requested:
        if _items_finish(pending, ItemStatus.CANCELLED):
            metrics.items_finished(kind=run.kind, status=ItemStatus.CANCELLED)
            log.info("run_item_cancelled", item_id=item.pk, run_id=run.pk)
        work_lock_release(kind=run.kind, instance_id=instance.pk, item_id=item.pk)
        run_finalise(run_id=run.pk)
        return
    if instance.is_retired or not instance.is_active:
        reason = f"{instance.name} is {'retired' if instance.is_retired else 'inactive'}"
        skipped = _items_finish(pending, ItemStatus.SKIPPED, skip_reason=reason)
        metrics.items_finished(kind=run.kind, status=ItemStatus.SKIPPED, count=skipped)
        work_lock_release(kind=run.kind, instance_id=instance.pk, item_id=item.pk)
        run_finalise(run_id=run.pk)
        return

    now = timezone.now()
    claimed = this.transition(
        ItemStatus.RUNNING,
        started_at=Coalesce(F("started_at"), V(now)),
        heartbeat_at=now,
        attempts=F("attempts") + 1,
        error="",
        task_id=task_id,
        task_retries=retries,
    )
    if not claimed:
        log.info("run_item_not_claimed", item_id=item.pk, status=item.status)
        return
    if run.status == RunStatus.QUEUED:
        Run.objects.filter(pk=run.pk).transition(RunStatus.RUNNING, started_at=now)

    if not work_lock_acquire(kind=run.kind, instance_id=instance.pk, item_id=item.pk, now=now):
        reason = _lock_holder_reason(kind=run.kind, instance=instance)
        skipped = _items_finish(this, ItemStatus.SKIPPED, skip_reason=reason)
        metrics.items_finished(kind=run.kind, status=ItemStatus.SKIPPED, count=skipped)
        log.info("run_item_skipped_locked", item_id=item.pk, reason=reason)
        run_finalise(run_id=run.pk)
        return
    release = partial(work_lock_release, kind=run.kind, instance_id=instance.pk, item_id=item.pk)
    try:
        with _heartbeat(item.pk):
            _item_perform(item=item, may_retry=may_retry, retry_in=retry_in)
    except TRANSIENT_ERRORS:
        # The item is pending again (or still running, if the database is gone): the retry
        # takes over the lock too. A failed release must not mask the error.
        try:
            release()
        except TRANSIENT_ERRORS:
            log.warning("work_lock_not_released", item_id=item.pk)
        raise
    except BaseException:
        release()
        raise
    if may_retry:
        release()
        _run_progress(run=run, item_id=item.pk)
    else:
        _write_through_outage(release)
        _write_through_outage(partial(_run_progress, run=run, item_id=item.pk))


# A run of many items recounts its progress about this many times, not after every item:
# the recount reads all the items of the run under the run's row lock, so recounting per
# item costs O(items²) and makes every worker queue on that one lock.
PROGRESS_RECOUNTS = 100


def _run_progress(*, run: Run, item_id: int) -> str | None:
    """After an item of ``run`` finished: close the run if no item is left, else recount
    its counters — every item in runs of fewer than twice ``PROGRESS_RECOUNTS`` items, every
    ``items_total // PROGRESS_RECOUNTS``-th item (by id) in bigger ones."""
    stride = max(1, run.items_total // PROGRESS_RECOUNTS)
    if (
        stride > 1
        and item_id % stride
        and RunItem.objects.filter(run_id=run.pk, status__in=ITEM_ACTIVE).exists()
    ):
        # Whichever item finishes last finds none active and closes the run.
        return None
    return run_finalise(run_id=run.pk)


def run_item_give_up(*, item_id: int, error: BaseException) -> bool:
    """Fail an item whose last attempt ended on a transient error it could not record
    (the database was gone), with that error, and free its instance; bounded retries.

    Returns whether the item was failed now.
    """
    message = _failure_message(error)

    def give_up() -> bool:
        item = RunItem.objects.filter(pk=item_id).values("run_id", "run__kind").first()
        if item is None:
            return False
        failed = _items_finish(RunItem.objects.filter(pk=item_id), ItemStatus.FAILED, error=message)
        metrics.items_finished(kind=item["run__kind"], status=ItemStatus.FAILED, count=failed)
        WorkLock.objects.filter(holder_id=item_id).delete()
        run_finalise(run_id=item["run_id"])
        return bool(failed)

    failed = _write_through_outage(give_up)
    if failed:
        log.warning("run_item_failed", item_id=item_id, error=message, transient=True)
    return failed


def _write_through_outage(write: Callable[[], Any]) -> Any:
    """``write()``, again after a lost database connection, a bounded number of times with
    a doubling pause and a fresh connection; the last error is raised."""
    delay = FINAL_WRITE_DELAY
    for attempt in range(1, FINAL_WRITE_ATTEMPTS + 1):
        try:
            return write()
        except TRANSIENT_ERRORS:
            if attempt == FINAL_WRITE_ATTEMPTS:
                raise
            log.warning("run_item_write_retried", attempt=attempt, delay=delay)
            if not connection.in_atomic_block:
                connection.close()
            time.sleep(delay)
            delay *= 2
    return None  # pragma: no cover


@contextmanager
def _heartbeat(item_id: int) -> Iterator[None]:
    """While the block runs, a thread stamps the running item's ``heartbeat_at`` every
    ``WHALEFALL_ITEM_HEARTBEAT_INTERVAL`` seconds, on a connection of its own."""
    stop = threading.Event()
    interval = settings.WHALEFALL_ITEM_HEARTBEAT_INTERVAL

    def beat() -> None:
        from django.db import connections

        try:
            while not stop.wait(interval):
                try:
                    RunItem.objects.filter(pk=item_id, status=ItemStatus.RUNNING).update(
                        heartbeat_at=timezone.now()
                    )
                except Exception as exc:  # noqa: BLE001  a missed beat is retried next time
                    log.warning(
                        "run_item_heartbeat_failed", item_id=item_id, error_type=type(exc).__name__
                    )
                    connections.close_all()
        finally:
            connections.close_all()

    thread = threading.Thread(target=beat, name=f"heartbeat-item-{item_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def _item_perform(*, item: RunItem, may_retry: bool, retry_in: int = 0) -> None:
    """Call the handler and record what came of it on the (running) item.

    A lost database connection while recording is raised as is: with ``may_retry`` the
    retry takes the item over and does the work again; on the last attempt the failure is
    written through the outage (bounded), with its true reason.
    """
    this = RunItem.objects.filter(pk=item.pk)
    started = timezone.now()
    kind = item.run.kind
    clock = time.perf_counter()

    def finished(status: str, count: int) -> None:
        metrics.items_finished(kind=kind, status=status, count=count)
        metrics.item_duration(
            kind=kind, engine=item.instance.engine, seconds=time.perf_counter() - clock
        )

    try:
        outcome = _handler_for(kind)(instance=item.instance, run_id=item.run_id)
        counts = _outcome_counts(outcome)
    except TRANSIENT_ERRORS as exc:
        message = _failure_message(exc)
        if may_retry:
            due = timezone.now() + timedelta(seconds=retry_in)
            try:
                if this.transition(ItemStatus.PENDING, error=message, queued_at=due):
                    log.warning("run_item_will_retry", item_id=item.pk, error=message)
            except TRANSIENT_ERRORS:
                # The database is gone: the item stays running, and the retry takes it over.
                log.warning(
                    "run_item_will_retry", item_id=item.pk, error=message, handed_back=False
                )
            raise
        failed = _write_through_outage(
            partial(_items_finish, this, ItemStatus.FAILED, error=message)
        )
        finished(ItemStatus.FAILED, failed)
        log.warning("run_item_failed", item_id=item.pk, error=message, transient=True)
        _alert_item_outcome(item=item, error=message, exc=exc)
    except Exception as exc:
        message = _failure_message(exc)
        failed = _write_through_outage(
            partial(_items_finish, this, ItemStatus.FAILED, error=message)
        )
        finished(ItemStatus.FAILED, failed)
        if isinstance(exc, EngineError) or _is_fail_closed(exc):
            log.warning("run_item_failed", item_id=item.pk, error=message)
        else:
            log.exception("run_item_crashed", item_id=item.pk, error_type=type(exc).__name__)
        _alert_item_outcome(item=item, error=message, exc=exc)
    else:
        finish = partial(
            _items_finish, this, ItemStatus.SUCCEEDED, detail=_outcome_detail(outcome), **counts
        )
        # With a retry left, a lost connection here lets the retry do the work again.
        succeeded = finish() if may_retry else _write_through_outage(finish)
        finished(ItemStatus.SUCCEEDED, succeeded)
        if item.run.kind in SYNC_KINDS:
            _instance_connected(instance_id=item.instance_id)
        log.info(
            "run_item_succeeded",
            item_id=item.pk,
            seconds=round((timezone.now() - started).total_seconds(), 3),
            **counts,
        )
        _alert_item_outcome(item=item)


# Runs of these kinds connect to their instances: their outcomes say whether an instance
# is reachable and whether its monitoring account has what it needs.
SYNC_KINDS = frozenset({RunKind.ACCOUNTS, RunKind.CAPACITY})


def _instance_connected(*, instance_id: int) -> None:
    """A sync of the instance succeeded, so did its connection: "last successful
    connection" moves as with a connection test (an UPDATE, no audit entry: not
    configuration). A lost database here leaves the old time; the item has succeeded."""
    try:
        Instance.objects.filter(pk=instance_id).update(
            last_connected_at=timezone.now(), last_connection_ok=True, last_connection_error=""
        )
    except TRANSIENT_ERRORS as exc:
        log.warning("instance_connected_not_recorded", error=_failure_message(exc))


def _alert_run_failed(*, run_id: int, kind: str, status: str, error: str) -> None:
    """A run that failed or partly failed: an alert event (in the caller's transaction)."""
    alerts.emit(
        "run_failed",
        payload={
            "run_id": run_id,
            "run_kind": kind,
            "status": status,
            "error": error[:500],
            "path": reverse("admin:syncjobs_run_change", args=[run_id]),
        },
        dedup_key=f"run:{run_id}",
    )


def _alert_item_outcome(
    *, item: RunItem, error: str = "", exc: BaseException | None = None
) -> None:
    """Alert events of a finished sync item: its instance failed N syncs in a row, became
    reachable again, or its monitoring account lacks a privilege. Never fails the item."""
    kind = item.run.kind
    if kind not in SYNC_KINDS:
        return
    instance = item.instance
    base = {"instance": instance.name, "run_kind": kind, "run_id": item.run_id}
    try:
        finished = RunItem.objects.filter(
            instance_id=instance.pk,
            run__kind=kind,
            status__in=(ItemStatus.SUCCEEDED, ItemStatus.FAILED),
        )
        if error:
            last_success = (
                finished.filter(status=ItemStatus.SUCCEEDED)
                .order_by("-finished_at")
                .values_list("finished_at", flat=True)
                .first()
            )
            streak = finished.filter(status=ItemStatus.FAILED)
            if last_success is not None:
                streak = streak.filter(finished_at__gt=last_success)
            count = streak.count()
            alerts.emit(
                "sync_failures",
                instance=instance,
                payload={**base, "consecutive_failures": count, "error": error[:500]},
                dedup_key=f"sync_failures:{kind}:{count}:{item.pk}",
            )
            if isinstance(exc, InsufficientPrivileges):
                alerts.emit(
                    "monitoring_privileges",
                    instance=instance,
                    payload={**base, "error": error[:500]},
                    dedup_key=f"monitoring_privileges:{kind}",
                )
            return
        previous = (
            finished.exclude(pk=item.pk).order_by("-finished_at").values_list("status", flat=True)
        ).first()
        if previous == ItemStatus.FAILED:
            alerts.emit(
                "instance_recovered",
                instance=instance,
                payload=base,
                dedup_key=f"instance_recovered:{kind}:{item.pk}",
            )
    except Exception as exc:  # noqa: BLE001  an alert must never change a run's outcome
        log.warning("run_item_alert_failed", item_id=item.pk, error_type=type(exc).__name__)


def _item_totals() -> dict[str, Any]:
    """The figures of a run, as aggregates over its items: the counters of ``Run`` plus
    ``running``, ``retried`` and ``with_problems``."""
    return {
        "items_total": Count("pk"),
        **{f"items_{status}": Count("pk", filter=Q(status=status)) for status in ITEM_TERMINAL},
        "running": Count("pk", filter=Q(status=ItemStatus.RUNNING)),
        "retried": Count("pk", filter=Q(attempts__gt=1)),
        "with_problems": Count(
            "pk", filter=Q(status=ItemStatus.SUCCEEDED, detail__has_key="problems")
        ),
        **{f"{name}_count": Coalesce(Sum(f"{name}_count"), 0) for name in OUTCOME_COUNTS},
    }


# Summary entries computed over all the items of a run.
ITEM_SUMMARY_KEYS = {"retried_items": "retried", "items_with_problems": "with_problems"}


def runs_show_items_on(runs: Iterable[Run], *, instance_ids: Iterable[int]) -> None:
    """Make each run's figures those of its items on ``instance_ids`` alone, in memory.

    What a person who sees only those instances is shown: counters, the summary entries
    computed over items, and the error that counts failed items, from one query over the
    items of every run given. The status comes from ``Run.objects.seen_on`` (``shown_status``).
    """
    runs = list(runs)
    zero = {name: 0 for name in _item_totals()}
    totals = {
        row.pop("run_id"): row
        for row in RunItem.objects.filter(
            run_id__in=[run.pk for run in runs], instance_id__in=list(instance_ids)
        )
        .values("run_id")
        .annotate(**_item_totals())
        .order_by()
    }
    for run in runs:
        seen = totals.get(run.pk, zero)
        counted_error = _run_error(
            {
                "items_failed": run.items_failed,
                "items_skipped": run.items_skipped,
                "items_total": run.items_total,
            },
            run.summary.get("items_with_problems", 0),
        )
        for field in ("items_total", *(f"items_{s}" for s in ITEM_TERMINAL)):
            setattr(run, field, seen[field])
        for name in OUTCOME_COUNTS:
            setattr(run, f"{name}_count", seen[f"{name}_count"])
        run.summary = {
            key: seen[ITEM_SUMMARY_KEYS[key]] if key in ITEM_SUMMARY_KEYS else value
            for key, value in run.summary.items()
        }
        if run.error and run.error == counted_error:
            run.error = _run_error(seen, seen["with_problems"])
        if hasattr(run, "shown_status"):
            run.status = run.shown_status


def run_finalise(*, run_id: int) -> str | None:
    """Recount a run from its items and close it once every item has finished.

    The run row is locked for the recount, so concurrent items finishing never write
    stale counters; the returned status is None if the run was already closed.
    """
    now = timezone.now()
    with transaction.atomic():
        run = (
            Run.objects.select_for_update()
            .filter(pk=run_id)
            .only("kind", "status", "started_at", "cancel_requested", "summary", "error")
            .first()
        )
        if run is None or run.status in RUN_TERMINAL:
            return None
        totals = RunItem.objects.filter(run_id=run_id).aggregate(**_item_totals())
        running, retried = totals.pop("running"), totals.pop("retried")
        with_problems = totals.pop("with_problems")
        done = sum(totals[f"items_{status}"] for status in ITEM_TERMINAL)
        fields: dict[str, Any] = dict(totals)
        status = run.status
        if done == totals["items_total"]:
            status = _run_outcome(run, totals, with_problems)
            fields.update(
                status=status,
                started_at=run.started_at or now,
                finished_at=now,
                summary={
                    **run.summary,
                    "retried_items": retried,
                    "items_with_problems": with_problems,
                },
            )
            if status in {RunStatus.FAILED, RunStatus.PARTIALLY_FAILED} and not run.error:
                fields["error"] = _run_error(totals, with_problems)
            if status in {RunStatus.FAILED, RunStatus.PARTIALLY_FAILED}:
                _alert_run_failed(
                    run_id=run_id,
                    kind=run.kind,
                    status=status,
                    error=fields.get("error") or run.error,
                )
        elif run.status == RunStatus.QUEUED and (done or running):
            status = RunStatus.RUNNING
            fields.update(status=status, started_at=run.started_at or now)
        Run.objects.filter(pk=run_id).update(**fields)
    if status in RUN_TERMINAL:
        metrics.run_finished(kind=run.kind, status=status)
        # The task closing the run has its own item's instance bound to its lines: the run
        # is about all of its instances, counted here, not that one.
        log.info(
            "run_finished",
            run_id=run_id,
            status=status,
            instance_id=None,
            instance_count=totals["items_total"],
            **totals,
        )
    return status


def _run_outcome(run: Run, totals: dict[str, int], with_problems: int) -> str:
    if run.cancel_requested and totals["items_cancelled"]:
        return RunStatus.CANCELLED
    if _all_skipped(totals):
        # None of the run's work was done (every instance locked by other work, retired or
        # inactive): that is no success.
        return RunStatus.FAILED
    if not totals["items_failed"]:
        # Work done around a problem (e.g. an invalid rule skipped) is not a full success.
        return RunStatus.PARTIALLY_FAILED if with_problems else RunStatus.SUCCEEDED
    if totals["items_failed"] == totals["items_total"]:
        return RunStatus.FAILED
    return RunStatus.PARTIALLY_FAILED


def _all_skipped(totals: dict[str, int]) -> bool:
    return 0 < totals["items_total"] == totals.get("items_skipped", 0)


def _run_error(totals: dict[str, int], with_problems: int) -> str:
    parts = []
    if _all_skipped(totals):
        # Without the reasons: they name instances, and each item shows its own.
        total = totals["items_total"]
        parts.append(f"every item was skipped ({total} of {total}; each item says why)")
    if totals["items_failed"]:
        parts.append(f"{totals['items_failed']} of {totals['items_total']} items failed")
    if with_problems:
        parts.append(
            f"{with_problems} of {totals['items_total']} items reported problems (see their detail)"
        )
    return "; ".join(parts)


def run_cancel(*, run: Run, requested_by=None) -> int:
    """Cancel a run between instances: items not started are cancelled, running ones finish.

    Returns the number of items cancelled now.
    """
    by = requested_by.get_username() if requested_by is not None else None
    # A run without items (one job for the whole estate) has nothing to stop between.
    flagged = Run.objects.filter(pk=run.pk, status__in=RUN_ACTIVE, items_total__gt=0).update(
        cancel_requested=True
    )
    if not flagged:
        return 0
    if by:
        # Recorded before the recount, which keeps what the summary already holds.
        Run.objects.filter(pk=run.pk).update(summary={**run.summary, "cancelled_by": by})
    cancelled = _items_finish(RunItem.objects.filter(run_id=run.pk), ItemStatus.CANCELLED)
    metrics.items_finished(kind=run.kind, status=ItemStatus.CANCELLED, count=cancelled)
    run_finalise(run_id=run.pk)
    log.info("run_cancelled", run_id=run.pk, items_cancelled=cancelled, by=by)
    return cancelled


def run_retry_failed(
    *, run: Run, requested_by=None, instance_ids: Iterable[int] | None = None
) -> Run | None:
    """Start a manual run over the instances whose items failed in ``run``.

    ``instance_ids`` narrows it (to those a person may sync); None when nothing failed.
    """
    failed = RunItem.objects.filter(run=run, status=ItemStatus.FAILED)
    if instance_ids is not None:
        failed = failed.filter(instance_id__in=list(instance_ids))
    ids = list(failed.values_list("instance_id", flat=True))
    if not ids:
        return None
    return run_create(
        kind=run.kind,
        trigger=RunTrigger.MANUAL,
        requested_by=requested_by,
        instance_ids=ids,
        summary={"retry_of": run.pk},
    )


# --- Reaper and retention ---------------------------------------------------------------


def _items_fail_by_kind(items, kinds: dict[int, str], *, now: datetime, error: str) -> int:
    """Fail the items of ``items`` whose ids ``kinds`` maps to their run's kind, counting
    them per kind."""
    failed = 0
    for kind in sorted(set(kinds.values())):
        count = _items_finish(
            items.filter(pk__in=[pk for pk, k in kinds.items() if k == kind]),
            ItemStatus.FAILED,
            now=now,
            error=error,
        )
        metrics.items_finished(kind=kind, status=ItemStatus.FAILED, count=count)
        failed += count
    return failed


def runs_reap(*, now: datetime | None = None) -> int:
    """Fail what no worker will finish, then close the runs it belonged to.

    Running items without a heartbeat for ``WHALEFALL_ITEM_HEARTBEAT_TIMEOUT`` seconds
    (their worker is gone; the lock is freed), pending items whose task message was due
    more than ``WHALEFALL_PENDING_ITEM_TIMEOUT`` seconds ago while no worker worked on any
    item for as long (the message never reached a worker), and the items of runs no worker
    started within ``WHALEFALL_RUN_QUEUED_MAX_MINUTES``. Returns the number of items failed.
    """
    now = now or timezone.now()
    stale_minutes = settings.WHALEFALL_RUN_STALE_MINUTES
    stale_cutoff = now - timedelta(minutes=stale_minutes)
    heartbeat_timeout = settings.WHALEFALL_ITEM_HEARTBEAT_TIMEOUT
    stale = RunItem.objects.filter(
        status=ItemStatus.RUNNING, heartbeat_at__lt=now - timedelta(seconds=heartbeat_timeout)
    )
    stale_rows = list(stale.values_list("pk", "run_id", "run__kind"))
    stale_items = {pk: run_id for pk, run_id, _kind in stale_rows}
    failed = 0
    if stale_items:
        failed += _items_fail_by_kind(
            stale,
            {pk: kind for pk, _run_id, kind in stale_rows},
            now=now,
            error=f"worker stopped responding (no heartbeat for {heartbeat_timeout} seconds)",
        )
        WorkLock.objects.filter(holder_id__in=list(stale_items)).delete()

    pending_timeout = settings.WHALEFALL_PENDING_ITEM_TIMEOUT
    pending_cutoff = now - timedelta(seconds=pending_timeout)
    # Claims and heartbeats stamp heartbeat_at: a worker worked on an item since the cutoff.
    workers_busy = RunItem.objects.filter(heartbeat_at__gte=pending_cutoff).exists()
    lost_items: dict[int, int] = {}
    if not workers_busy:
        lost = RunItem.objects.filter(status=ItemStatus.PENDING).filter(
            Q(queued_at__lt=pending_cutoff)
            | Q(queued_at__isnull=True, run__created_at__lt=pending_cutoff)
        )
        lost_rows = list(lost.values_list("pk", "run_id", "run__kind"))
        lost_items = {pk: run_id for pk, run_id, _kind in lost_rows}
    if lost_items:
        failed += _items_fail_by_kind(
            RunItem.objects.all(),
            {pk: kind for pk, _run_id, kind in lost_rows},
            now=now,
            error=f"its task message never reached a worker (pending for over "
            f"{pending_timeout} seconds with the workers idle)",
        )
        WorkLock.objects.filter(holder_id__in=list(lost_items)).delete()

    queued_minutes = settings.WHALEFALL_RUN_QUEUED_MAX_MINUTES
    never_started_kinds = dict(
        Run.objects.filter(
            status=RunStatus.QUEUED, created_at__lt=now - timedelta(minutes=queued_minutes)
        ).values_list("pk", "kind")
    )
    never_started = list(never_started_kinds)
    if never_started:
        message = f"no worker started the run within {queued_minutes} minutes"
        Run.objects.filter(pk__in=never_started, error="").update(error=message)
        for kind in sorted(set(never_started_kinds.values())):
            runs_of_kind = [pk for pk, k in never_started_kinds.items() if k == kind]
            count = _items_finish(
                RunItem.objects.filter(run_id__in=runs_of_kind),
                ItemStatus.FAILED,
                now=now,
                error=message,
            )
            metrics.items_finished(kind=kind, status=ItemStatus.FAILED, count=count)
            failed += count

    # Jobs run once for the whole estate (running runs without items, see job_run) whose
    # worker is gone.
    jobs = Run.objects.filter(status=RunStatus.RUNNING, items_total=0)
    stale_jobs = 0
    for pk, kind in jobs.filter(started_at__lt=stale_cutoff).values_list("pk", "kind"):
        if jobs.filter(pk=pk).update(
            status=RunStatus.FAILED,
            finished_at=now,
            error=f"worker stopped responding (still running after {stale_minutes} minutes)",
        ):
            metrics.run_finished(kind=kind, status=RunStatus.FAILED)
            stale_jobs += 1

    # Runs whose items have all finished but that were never closed (a worker died between
    # the two, or instances were deleted) are closed too.
    unclosed = (
        Run.objects.filter(status__in=RUN_ACTIVE)
        .exclude(pk__in=jobs.values("pk"))
        .exclude(Exists(RunItem.objects.filter(run=OuterRef("pk"), status__in=ITEM_ACTIVE)))
    )
    runs = (
        set(stale_items.values())
        | set(lost_items.values())
        | set(never_started)
        | set(unclosed.values_list("pk", flat=True))
    )
    for run_id in sorted(runs):
        run_finalise(run_id=run_id)
    WorkLock.objects.filter(expires_at__lte=now).delete()
    if failed or runs or stale_jobs:
        log.warning(
            "runs_reaped", items_failed=failed, runs_closed=len(runs), jobs_failed=stale_jobs
        )
    return failed


def runs_purge(
    *, older_than_days: int | None = None, batch_size: int = 500, now: datetime | None = None
) -> int:
    """Delete finished runs created more than ``older_than_days`` ago, in short batches.

    Defaults to ``WHALEFALL_RUN_RETENTION_DAYS``; never fewer days than
    ``WHALEFALL_RUN_RETENTION_MIN_DAYS`` (ValueError), whoever asks. Returns the number of
    runs deleted.
    """
    days = settings.WHALEFALL_RUN_RETENTION_DAYS if older_than_days is None else older_than_days
    if days < settings.WHALEFALL_RUN_RETENTION_MIN_DAYS:
        raise ValueError(
            f"run history is kept at least WHALEFALL_RUN_RETENTION_MIN_DAYS="
            f"{settings.WHALEFALL_RUN_RETENTION_MIN_DAYS} days; refusing to purge after {days}"
        )
    cutoff = (now or timezone.now()) - timedelta(days=days)
    old = Run.objects.filter(created_at__lt=cutoff, status__in=RUN_TERMINAL).order_by("pk")
    deleted = 0
    while run_ids := list(old.values_list("pk", flat=True)[:batch_size]):
        while item_ids := list(
            RunItem.objects.filter(run_id__in=run_ids).values_list("pk", flat=True)[:batch_size]
        ):
            with transaction.atomic():
                WorkLock.objects.filter(holder_id__in=item_ids).delete()
                RunItem.objects.filter(pk__in=item_ids).delete()
        Run.objects.filter(pk__in=run_ids).delete()
        deleted += len(run_ids)
    log.info("runs_purged", runs=deleted, older_than_days=days)
    return deleted


# --- Health -----------------------------------------------------------------------------


def runs_health() -> dict[str, Any]:
    """The ``runs`` section of /health/detailed: last success per kind, oldest running run,
    queued runs."""
    now = timezone.now()
    last_succeeded = {}
    for kind in RunKind.values:
        last = (
            Run.objects.filter(kind=kind, status=RunStatus.SUCCEEDED)
            .order_by("-finished_at")
            .values("pk", "finished_at")
            .first()
        )
        last_succeeded[kind] = (
            {"id": last["pk"], "finished_at": last["finished_at"].isoformat()} if last else None
        )
    oldest = (
        Run.objects.filter(status=RunStatus.RUNNING)
        .order_by("started_at")
        .values("pk", "kind", "started_at")
        .first()
    )
    oldest_running = None
    if oldest is not None:
        started = oldest["started_at"]
        oldest_running = {
            "id": oldest["pk"],
            "kind": oldest["kind"],
            "started_at": started.isoformat() if started else None,
            "age_seconds": round((now - started).total_seconds(), 1) if started else None,
        }
    return {
        "last_succeeded": last_succeeded,
        "oldest_running": oldest_running,
        "queued": Run.objects.filter(status=RunStatus.QUEUED).count(),
    }

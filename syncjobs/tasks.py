"""Celery tasks of the sync machinery: ids in, one service call, stable explicit names.

Who asked: ``user_id`` (a person's manual run, limited to the instances they may sync) is
passed by code acting on a request; ``requested_by_id`` (a scheduled job run now) is added
by "Run selected tasks" from its request and only recorded. Neither is ever a stored
argument of a periodic task (``syncjobs.schedulable``).

Queues: every task is routed by name (``WHALEFALL_TASK_QUEUES``, whalefall.celery), and a
run's items go to the queue of its kind, so that capacity work never delays account syncs.

Fan-out: a run sends one ``syncjobs.run_item`` task per instance, so the number of
instances worked on at once is bounded by the workers' concurrency (``celery worker
--concurrency N`` per worker); with ``acks_late`` and a prefetch multiplier of 1 a worker
never holds items it cannot start. Every task may be delivered twice (``acks_late``): the
services they call are idempotent.
"""

from datetime import date

import structlog
from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings

from capacity.partitions import partitions_maintain
from capacity.services import aggregates_compute_all
from classification.services import statistics_compute
from syncjobs import services
from syncjobs.models import RunKind, RunTrigger

# The retry delay doubles from WHALEFALL_RUN_RETRY_DELAY up to this many seconds.
RETRY_DELAY_MAX = 900


def _trigger(*requesters: int | None) -> str:
    """Manual when a person asked, scheduled when beat sent it."""
    return RunTrigger.MANUAL if any(r is not None for r in requesters) else RunTrigger.SCHEDULED


def retry_delay(retries: int) -> int:
    """Seconds before the next attempt after ``retries`` retries: doubling, capped."""
    return get_exponential_backoff_interval(
        factor=settings.WHALEFALL_RUN_RETRY_DELAY,
        retries=retries,
        maximum=RETRY_DELAY_MAX,
        full_jitter=False,
    )


@shared_task(
    bind=True,
    name="syncjobs.sync_accounts_all",
    acks_late=True,
    ignore_result=True,
    time_limit=300,
    soft_time_limit=240,
)
def sync_accounts_all(self, user_id: int | None = None, requested_by_id: int | None = None) -> None:
    """Start an account sync of every active instance (those ``user_id`` may sync, if given)."""
    structlog.contextvars.bind_contextvars(user_id=user_id or requested_by_id)
    services.run_start(
        kind=RunKind.ACCOUNTS,
        trigger=_trigger(user_id, requested_by_id),
        user_id=user_id,
        requested_by_id=requested_by_id,
        task_id=self.request.id or "",
    )


@shared_task(
    bind=True,
    name="syncjobs.sync_accounts_instance",
    acks_late=True,
    ignore_result=True,
    time_limit=300,
    soft_time_limit=240,
)
def sync_accounts_instance(
    self,
    instance_ids: list[int],
    user_id: int | None = None,
    requested_by_id: int | None = None,
) -> None:
    """Start a manual account sync of the given instances (those ``user_id`` may sync)."""
    structlog.contextvars.bind_contextvars(user_id=user_id or requested_by_id)
    services.run_start(
        kind=RunKind.ACCOUNTS,
        trigger=RunTrigger.MANUAL,
        user_id=user_id,
        requested_by_id=requested_by_id,
        instance_ids=instance_ids,
        task_id=self.request.id or "",
    )


@shared_task(
    bind=True,
    name="syncjobs.run_item",
    acks_late=True,
    ignore_result=True,
    max_retries=settings.WHALEFALL_RUN_ITEM_RETRIES,
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
)
def run_item(
    self,
    item_id: int,
    run_id: int | None = None,
    instance_id: int | None = None,
    kind: str | None = None,
) -> None:
    """Execute one run item; transient failures are retried a bounded number of times.
    ``kind`` (the run's) chooses the queue the item is sent to (whalefall.celery.route_task)."""
    structlog.contextvars.bind_contextvars(run_id=run_id, instance_id=instance_id, item_id=item_id)
    retries = self.request.retries
    may_retry = retries < self.max_retries
    countdown = retry_delay(retries)
    try:
        services.run_item_execute(
            item_id=item_id,
            may_retry=may_retry,
            task_id=self.request.id or "",
            retries=retries,
            retry_in=countdown,
        )
    except services.TRANSIENT_ERRORS as exc:
        if not may_retry:
            # The last attempt: fail the item with the true reason and free its instance
            # once the database answers again (bounded), rather than leave it running.
            services.run_item_give_up(item_id=item_id, error=exc)
            raise
        raise self.retry(exc=exc, countdown=countdown) from exc


@shared_task(name="syncjobs.run_items_send", acks_late=True, ignore_result=True)
def run_items_send(run_id: int, kind: str, items: list[list[int]]) -> None:
    """Send the item tasks of one chunk of a large run (its creator sends only the chunks);
    routed to the queue of the run's ``kind``."""
    structlog.contextvars.bind_contextvars(run_id=run_id)
    services.run_items_send(run_id=run_id, kind=kind, items=[tuple(item) for item in items])


@shared_task(
    name="syncjobs.reap_runs",
    acks_late=True,
    ignore_result=True,
    time_limit=300,
    soft_time_limit=240,
)
def reap_runs() -> None:
    """Fail items whose worker stopped responding and close their runs."""
    services.runs_reap()


@shared_task(
    name="syncjobs.purge_runs",
    acks_late=True,
    ignore_result=True,
    time_limit=3600,
    soft_time_limit=3300,
)
def purge_runs(older_than_days: int | None = None) -> None:
    """Delete runs past their retention, in batches."""
    services.runs_purge(older_than_days=older_than_days)


@shared_task(
    bind=True,
    name="syncjobs.classify_instances",
    acks_late=True,
    ignore_result=True,
    time_limit=300,
    soft_time_limit=240,
)
def classify_instances(
    self,
    instance_ids: list[int] | None = None,
    user_id: int | None = None,
    requested_by_id: int | None = None,
) -> None:
    """Start an auto-classification run of the given instances, or of every active one."""
    structlog.contextvars.bind_contextvars(user_id=user_id or requested_by_id)
    services.run_start(
        kind=RunKind.CLASSIFICATION,
        trigger=_trigger(user_id, requested_by_id),
        user_id=user_id,
        requested_by_id=requested_by_id,
        instance_ids=instance_ids,
        task_id=self.request.id or "",
    )


@shared_task(
    name="syncjobs.classification_statistics",
    acks_late=True,
    ignore_result=True,
    time_limit=3600,
    soft_time_limit=3300,
)
def classification_statistics(day: str | None = None) -> None:
    """Count today's (or ``day``'s, ISO date) matches per rule and classification."""
    statistics_compute(day=date.fromisoformat(day) if day else None)


@shared_task(
    bind=True,
    name="syncjobs.collect_capacity_all",
    acks_late=True,
    ignore_result=True,
    time_limit=300,
    soft_time_limit=240,
)
def collect_capacity_all(
    self, user_id: int | None = None, requested_by_id: int | None = None
) -> None:
    """Start a capacity collection of every active instance (those ``user_id`` may sync)."""
    structlog.contextvars.bind_contextvars(user_id=user_id or requested_by_id)
    services.run_start(
        kind=RunKind.CAPACITY,
        trigger=_trigger(user_id, requested_by_id),
        user_id=user_id,
        requested_by_id=requested_by_id,
        task_id=self.request.id or "",
    )


@shared_task(
    bind=True,
    name="syncjobs.collect_capacity_instances",
    acks_late=True,
    ignore_result=True,
    time_limit=300,
    soft_time_limit=240,
)
def collect_capacity_instances(
    self,
    instance_ids: list[int],
    user_id: int | None = None,
    requested_by_id: int | None = None,
) -> None:
    """Start a manual capacity collection of the given instances (those ``user_id`` may sync)."""
    structlog.contextvars.bind_contextvars(user_id=user_id or requested_by_id)
    services.run_start(
        kind=RunKind.CAPACITY,
        trigger=RunTrigger.MANUAL,
        user_id=user_id,
        requested_by_id=requested_by_id,
        instance_ids=instance_ids,
        task_id=self.request.id or "",
    )


@shared_task(
    bind=True,
    name="syncjobs.aggregate_capacity",
    acks_late=True,
    ignore_result=True,
    time_limit=3600,
    soft_time_limit=3300,
)
def aggregate_capacity(
    self,
    current: bool = False,
    day: str | None = None,
    user_id: int | None = None,
    requested_by_id: int | None = None,
) -> None:
    """Aggregate the last complete week, month and quarter (``current``: the open ones)."""
    with services.job_run(
        kind=RunKind.AGGREGATION,
        trigger=_trigger(user_id, requested_by_id),
        user_id=user_id if user_id is not None else requested_by_id,
        task_id=self.request.id or "",
    ) as summary:
        on = date.fromisoformat(day) if day else None
        summary.update(aggregates_compute_all(day=on, current=current))


@shared_task(
    bind=True,
    name="syncjobs.maintain_partitions",
    acks_late=True,
    ignore_result=True,
    time_limit=900,
    soft_time_limit=840,
)
def maintain_partitions(self, requested_by_id: int | None = None) -> None:
    """Create the coming months' sample partitions and drop those past the retention."""
    with services.job_run(
        kind=RunKind.MAINTENANCE,
        trigger=_trigger(requested_by_id),
        user_id=requested_by_id,
        task_id=self.request.id or "",
    ) as summary:
        summary.update(partitions=partitions_maintain())

"""Runs of sync work, their per-instance items, and the locks that keep work from overlapping.

Status changes are conditional UPDATEs (``transition``): a row moves only from a status
the target may follow, so a terminal status is never overwritten, whichever of two
concurrent writers comes second.
"""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from inventory.models import Instance


class RunKind(models.TextChoices):
    ACCOUNTS = "accounts", _("Account sync")
    CAPACITY = "capacity", _("Capacity collection")
    AGGREGATION = "aggregation", _("Capacity aggregation")
    CLASSIFICATION = "classification", _("Classification")
    MAINTENANCE = "maintenance", _("Maintenance")


class RunTrigger(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    MANUAL = "manual", _("Manual")


class RunStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    PARTIALLY_FAILED = "partially_failed", _("Partially failed")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class ItemStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped")
    CANCELLED = "cancelled", _("Cancelled")


RUN_ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)
RUN_TERMINAL = (
    RunStatus.SUCCEEDED,
    RunStatus.PARTIALLY_FAILED,
    RunStatus.FAILED,
    RunStatus.CANCELLED,
)
ITEM_ACTIVE = (ItemStatus.PENDING, ItemStatus.RUNNING)
ITEM_TERMINAL = (
    ItemStatus.SUCCEEDED,
    ItemStatus.FAILED,
    ItemStatus.SKIPPED,
    ItemStatus.CANCELLED,
)

# The statuses a row may move to each status from. No terminal status appears on the right,
# so once an item or a run has finished, nothing changes its status again.
ITEM_TRANSITIONS: dict[str, tuple[str, ...]] = {
    ItemStatus.RUNNING: (ItemStatus.PENDING,),
    # A transient failure hands the item back for another attempt.
    ItemStatus.PENDING: (ItemStatus.RUNNING,),
    ItemStatus.SUCCEEDED: (ItemStatus.RUNNING,),
    # From pending: the item could not be queued, or no worker ever started its run.
    ItemStatus.FAILED: (ItemStatus.PENDING, ItemStatus.RUNNING),
    ItemStatus.SKIPPED: (ItemStatus.PENDING, ItemStatus.RUNNING),
    ItemStatus.CANCELLED: (ItemStatus.PENDING,),
}
RUN_TRANSITIONS: dict[str, tuple[str, ...]] = {
    RunStatus.QUEUED: (),
    RunStatus.RUNNING: (RunStatus.QUEUED,),
    **{status: RUN_ACTIVE for status in RUN_TERMINAL},
}


def _finished_iff_terminal(terminal: tuple[str, ...]) -> Q:
    return Q(status__in=terminal, finished_at__isnull=False) | (
        ~Q(status__in=terminal) & Q(finished_at__isnull=True)
    )


class RunQuerySet(models.QuerySet):
    def transition(self, status: str, **fields) -> int:
        """Move the runs that may reach ``status`` to it; returns how many moved."""
        return self.filter(status__in=RUN_TRANSITIONS[status]).update(status=status, **fields)

    def active(self) -> "RunQuerySet":
        return self.filter(status__in=RUN_ACTIVE)

    def with_items_on(self, instance_ids) -> "RunQuerySet":
        """Runs with at least one item on one of ``instance_ids``."""
        return self.filter(
            models.Exists(
                RunItem.objects.filter(run=models.OuterRef("pk"), instance_id__in=instance_ids)
            )
        )

    def seen_on(self, instance_ids) -> "RunQuerySet":
        """Annotate ``shown_status`` and ``shown_items_failed``: what the items on
        ``instance_ids`` alone make of each run (None: every item, the stored figures).

        A finished run's status follows the same rule as when it closed (cancelled, failed
        if every item failed or every item was skipped, partially failed on any failure or
        problem, else succeeded), so a person who sees some of its instances learns nothing
        from it about the others.
        """
        if instance_ids is None:
            return self.annotate(shown_status=F("status"), shown_items_failed=F("items_failed"))
        items = RunItem.objects.filter(run=models.OuterRef("pk"), instance_id__in=instance_ids)
        failed = items.filter(status=ItemStatus.FAILED)
        problems = items.filter(status=ItemStatus.SUCCEEDED, detail__has_key="problems")
        cancelled = items.filter(status=ItemStatus.CANCELLED)
        status = models.Case(
            models.When(status__in=RUN_ACTIVE, then=F("status")),
            models.When(
                Q(cancel_requested=True) & models.Exists(cancelled),
                then=models.Value(RunStatus.CANCELLED),
            ),
            models.When(
                models.Exists(items) & ~models.Exists(items.exclude(status=ItemStatus.SKIPPED)),
                then=models.Value(RunStatus.FAILED),
            ),
            models.When(
                ~models.Exists(failed) & models.Exists(problems),
                then=models.Value(RunStatus.PARTIALLY_FAILED),
            ),
            models.When(~models.Exists(failed), then=models.Value(RunStatus.SUCCEEDED)),
            models.When(
                ~models.Exists(items.exclude(status=ItemStatus.FAILED)),
                then=models.Value(RunStatus.FAILED),
            ),
            default=models.Value(RunStatus.PARTIALLY_FAILED),
            output_field=models.CharField(),
        )
        failed_count = failed.order_by().values("run").annotate(n=models.Count("pk")).values("n")
        return self.annotate(
            shown_status=status,
            shown_items_failed=Coalesce(models.Subquery(failed_count), 0),
        )


class Run(models.Model):
    """One execution of a job over a set of instances, with its outcome counters."""

    Kind = RunKind
    Trigger = RunTrigger
    Status = RunStatus

    kind = models.CharField(_("kind"), max_length=20, choices=RunKind.choices)
    trigger = models.CharField(
        _("trigger"),
        max_length=20,
        choices=RunTrigger.choices,
        help_text=_("Started by the schedule or by a person."),
    )
    status = models.CharField(
        _("status"), max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("requested by"),
        help_text=_("Who started the run; empty for scheduled runs."),
    )
    task_id = models.CharField(
        _("task id"),
        max_length=64,
        blank=True,
        editable=False,
        help_text=_(
            "Celery id of the task that created the run: a redelivered task finds this run "
            "instead of starting another."
        ),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    started_at = models.DateTimeField(
        _("started"), null=True, blank=True, help_text=_("When a worker began the first item.")
    )
    finished_at = models.DateTimeField(
        _("finished"), null=True, blank=True, help_text=_("When the last item ended.")
    )
    items_total = models.PositiveIntegerField(_("items"), default=0)
    items_succeeded = models.PositiveIntegerField(_("succeeded"), default=0)
    items_failed = models.PositiveIntegerField(_("failed"), default=0)
    items_skipped = models.PositiveIntegerField(
        _("skipped"),
        default=0,
        help_text=_("Items not run: the same work was already running, or the instance retired."),
    )
    items_cancelled = models.PositiveIntegerField(_("cancelled"), default=0)
    created_count = models.PositiveIntegerField(
        _("created"), default=0, help_text=_("Objects created, summed over the items.")
    )
    changed_count = models.PositiveIntegerField(
        _("changed"), default=0, help_text=_("Objects changed, summed over the items.")
    )
    removed_count = models.PositiveIntegerField(
        _("removed"), default=0, help_text=_("Objects removed, summed over the items.")
    )
    restored_count = models.PositiveIntegerField(
        _("restored"),
        default=0,
        help_text=_("Objects found again after being marked removed, summed over the items."),
    )
    unchanged_count = models.PositiveIntegerField(
        _("unchanged"), default=0, help_text=_("Objects found unchanged, summed over the items.")
    )
    summary = models.JSONField(
        _("summary"), default=dict, blank=True, help_text=_("Outcome figures of the whole run.")
    )
    error = models.TextField(
        _("error"), blank=True, help_text=_("Why the run as a whole failed, if it did.")
    )
    cancel_requested = models.BooleanField(
        _("cancel requested"),
        default=False,
        help_text=_("Items not started yet are cancelled; running ones finish."),
    )

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        verbose_name = _("run")
        verbose_name_plural = _("runs")
        permissions = [
            # Run-level history for roles that see no instances (Schedulers): every run,
            # while its items stay limited to the instances one may see.
            ("view_all_runs", _("Can read every run (its items only on visible instances)")),
            ("cancel_run", _("Can cancel a run")),
            ("rerun_run", _("Can run the failed items of a run again")),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=RunKind.values), name="syncjobs_run_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(trigger__in=RunTrigger.values), name="syncjobs_run_trigger_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=RunStatus.values), name="syncjobs_run_status_valid"
            ),
            models.CheckConstraint(
                condition=_finished_iff_terminal(RUN_TERMINAL),
                name="syncjobs_run_finished_iff_terminal",
            ),
            models.CheckConstraint(
                condition=Q(
                    items_total__gte=F("items_succeeded")
                    + F("items_failed")
                    + F("items_skipped")
                    + F("items_cancelled")
                ),
                name="syncjobs_run_counters_within_total",
            ),
            models.UniqueConstraint(
                fields=["task_id"], condition=~Q(task_id=""), name="syncjobs_run_task_once"
            ),
        ]
        indexes = [
            models.Index(fields=["-created_at"], name="syncjobs_run_created_idx"),
            models.Index(fields=["status", "-created_at"], name="syncjobs_run_status_idx"),
            models.Index(fields=["kind", "status", "-finished_at"], name="syncjobs_run_kind_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_kind_display()} ({self.get_status_display()})"

    @property
    def is_active(self) -> bool:
        return self.status in RUN_ACTIVE

    @property
    def items_done(self) -> int:
        return self.items_succeeded + self.items_failed + self.items_skipped + self.items_cancelled

    @property
    def duration(self) -> timedelta | None:
        """Time from the first item's start to the end, or to now while running."""
        if self.started_at is None:
            return None
        return (self.finished_at or timezone.now()) - self.started_at


class RunItemQuerySet(models.QuerySet):
    def transition(self, status: str, **fields) -> int:
        """Move the items that may reach ``status`` to it; returns how many moved."""
        return self.filter(status__in=ITEM_TRANSITIONS[status]).update(status=status, **fields)


# The kinds of work done per instance (the others are one job for the whole estate).
PER_INSTANCE_KINDS = (RunKind.ACCOUNTS, RunKind.CAPACITY, RunKind.CLASSIFICATION)


def failing_sync(instances: models.QuerySet) -> models.QuerySet:
    """The live instances of ``instances`` whose latest finished work of some kind failed:
    an instance whose account sync failed stays here until an account sync succeeds, even
    if its capacity was collected since. Each kind is one index walk per instance."""
    latest = {
        f"_latest_{kind}": models.Subquery(
            RunItem.objects.filter(
                instance=models.OuterRef("pk"),
                run__kind=kind,
                status__in=(ItemStatus.SUCCEEDED, ItemStatus.FAILED),
            )
            .order_by("-id")
            .values("status")[:1]
        )
        for kind in PER_INSTANCE_KINDS
    }
    failed = Q()
    for name in latest:
        failed |= Q(**{name: ItemStatus.FAILED})
    return instances.filter(retired_at__isnull=True).alias(**latest).filter(failed)


class RunItem(models.Model):
    """The work of one run on one instance."""

    Status = ItemStatus

    run = models.ForeignKey(
        Run,
        on_delete=models.CASCADE,
        related_name="items",
        verbose_name=_("run"),
        db_index=False,  # the unique (run, instance) index serves lookups by run
    )
    # CASCADE: instances are retired, not deleted, while their history matters; deleting
    # one on purpose removes everything hanging off it, and the run keeps its totals.
    instance = models.ForeignKey(
        Instance,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("instance"),
        db_index=False,  # the (instance, -id) index serves lookups by instance
    )
    status = models.CharField(
        _("status"), max_length=20, choices=ItemStatus.choices, default=ItemStatus.PENDING
    )
    created_count = models.PositiveIntegerField(
        _("created"), default=0, help_text=_("Objects created on this instance.")
    )
    changed_count = models.PositiveIntegerField(
        _("changed"), default=0, help_text=_("Objects changed on this instance.")
    )
    removed_count = models.PositiveIntegerField(
        _("removed"), default=0, help_text=_("Objects removed from this instance.")
    )
    restored_count = models.PositiveIntegerField(
        _("restored"),
        default=0,
        help_text=_("Objects found again on this instance after being marked removed."),
    )
    unchanged_count = models.PositiveIntegerField(
        _("unchanged"), default=0, help_text=_("Objects found unchanged.")
    )
    started_at = models.DateTimeField(
        _("started"), null=True, blank=True, help_text=_("When the first attempt began.")
    )
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    duration = models.DurationField(
        _("duration"), null=True, blank=True, help_text=_("From the first start to the end.")
    )
    heartbeat_at = models.DateTimeField(
        _("heartbeat"),
        null=True,
        blank=True,
        help_text=_("Last sign of life of the worker running the item."),
    )
    attempts = models.PositiveSmallIntegerField(
        _("attempts"), default=0, help_text=_("Times a worker started the item.")
    )
    queued_at = models.DateTimeField(
        _("queued"),
        null=True,
        blank=True,
        help_text=_("When the item's task message was due at a worker (sent, or retry due)."),
    )
    task_id = models.CharField(
        _("task"),
        max_length=255,
        blank=True,
        help_text=_("The task that last started the item; its retries may take it over."),
    )
    task_retries = models.PositiveSmallIntegerField(
        _("task retries"), default=0, help_text=_("Retries of that task when it started the item.")
    )
    error = models.TextField(_("error"), blank=True, help_text=_("Why the item failed."))
    skip_reason = models.TextField(
        _("skip reason"), blank=True, help_text=_("Why the item was not run.")
    )
    detail = models.JSONField(
        _("detail"), default=dict, blank=True, help_text=_("Further figures from the work.")
    )

    objects = RunItemQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        verbose_name = _("run item")
        verbose_name_plural = _("run items")
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ItemStatus.values), name="syncjobs_runitem_status_valid"
            ),
            models.CheckConstraint(
                condition=_finished_iff_terminal(ITEM_TERMINAL),
                name="syncjobs_runitem_finished_iff_terminal",
            ),
            models.UniqueConstraint(
                fields=["run", "instance"], name="syncjobs_runitem_once_per_run"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-id"], name="syncjobs_item_status_idx"),
            models.Index(fields=["instance", "-id"], name="syncjobs_item_instance_idx"),
            # The reaper looks only at running items.
            models.Index(
                fields=["heartbeat_at"],
                condition=Q(status="running"),
                name="syncjobs_item_running_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} run {self.run_id} on instance {self.instance_id}"

    @property
    def is_terminal(self) -> bool:
        return self.status in ITEM_TERMINAL


class WorkLock(models.Model):
    """Held while one kind of work runs on one instance; the unique key is the lock."""

    kind = models.CharField(_("kind"), max_length=20, choices=RunKind.choices)
    instance = models.ForeignKey(
        Instance, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    holder = models.ForeignKey(
        RunItem,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("holder"),
        help_text=_("The run item doing the work."),
    )
    acquired_at = models.DateTimeField(_("acquired"))
    expires_at = models.DateTimeField(
        _("expires"),
        help_text=_("After this the lock is free for the taking: its holder cannot be alive."),
    )

    class Meta:
        verbose_name = _("work lock")
        verbose_name_plural = _("work locks")
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "instance"], name="syncjobs_worklock_one_holder"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=RunKind.values), name="syncjobs_worklock_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("acquired_at")),
                name="syncjobs_worklock_expires_after_acquired",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} on instance {self.instance_id} held by item {self.holder_id}"

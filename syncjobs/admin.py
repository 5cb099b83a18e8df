"""Admin pages of the syncjobs app (the admin is WhaleFall's user interface).

Runs and run items are records: nobody edits or deletes them here. A user limited to some
instances sees only the items of those instances, and only the runs with at least one of
them, with the figures of those items alone (counters, status, summary, error); holders of
``syncjobs.view_all_runs`` (Schedulers) read every run and its figures, still without the
items of instances they may not see. Cancelling a run or running its failed items again
needs the sync permission on the instances concerned.
"""

from datetime import timedelta

from celery.schedules import crontab as celery_crontab
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Case, Exists, OuterRef, Value, When
from django.http import Http404, HttpRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.http import urlencode
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django_celery_beat.admin import PeriodicTaskAdmin
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from inventory.admin import (
    InstanceAdmin,
    VisibleInstanceFilter,
    instance_permitted,
    visible_instance_ids,
)
from inventory.models import Instance
from syncjobs import schedulable, schedules, services
from syncjobs.models import (
    RUN_ACTIVE,
    ItemStatus,
    Run,
    RunItem,
    RunKind,
    RunStatus,
    RunTrigger,
    failing_sync,
)
from whalefall.admin import BigTableMixin, ReadOnlyAdminMixin
from whalefall.moments import moment

# Items listed on a run's page; the run items list shows the rest.
RUN_PAGE_ITEMS = 200

STATUS_STYLE = {
    RunStatus.SUCCEEDED: "wf-good",
    RunStatus.PARTIALLY_FAILED: "wf-bad",
    RunStatus.FAILED: "wf-bad",
    ItemStatus.SUCCEEDED: "wf-good",
    ItemStatus.FAILED: "wf-bad",
}


def _status_badge(obj) -> str:
    return format_html(
        '<span class="wf-status {}">{}</span>',
        STATUS_STYLE.get(obj.status, "wf-muted"),
        obj.get_status_display(),
    )


def _format_duration(value: timedelta | None) -> str:
    if value is None:
        return "—"
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {seconds:02d}s"
    return f"{value.total_seconds():.1f}s"


# Words for the summary keys the services write; other keys are shown as written.
SUMMARY_LABELS = {
    "retried_items": _("Retried items"),
    "items_with_problems": _("Items with problems"),
    "retry_of": _("Retry of run"),
    "cancelled_by": _("Cancelled by"),
    "partitions": _("Partitions"),
}


def summary_html(value) -> str:
    """A run's summary (JSON) as nested tables and lists people can read."""
    if isinstance(value, dict):
        if not value:
            return "—"
        rows = format_html_join(
            "",
            '<tr><th scope="row">{}</th><td>{}</td></tr>',
            (
                (SUMMARY_LABELS.get(key) or capfirst(str(key).replace("_", " ")), summary_html(v))
                for key, v in value.items()
            ),
        )
        return format_html('<table class="wf-summary"><tbody>{}</tbody></table>', rows)
    if isinstance(value, list):
        return format_html_join(", ", "{}", ((summary_html(v),) for v in value)) or "—"
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if value is None or value == "":
        return "—"
    return conditional_escape(value)


def sync_scope(request: HttpRequest) -> set[int] | None:
    """Instances the user may sync (None: all of them)."""
    return visible_instance_ids(request, "inventory.sync")


def figures_scope(request: HttpRequest) -> set[int] | None:
    """Instances whose items make up the run figures the user is shown (None: every item)."""
    if request.user.has_perm("syncjobs.view_all_runs"):
        return None
    return visible_instance_ids(request)


def runs_seen(request: HttpRequest, queryset):
    """The runs of ``queryset`` the user may read, with their figures as the user is shown
    them (``RunQuerySet.seen_on``): the run list's and the dashboard's scope."""
    ids = figures_scope(request)
    if ids is not None:
        queryset = queryset.with_items_on(ids)
    return queryset.seen_on(ids)


def runs_actionable(request: HttpRequest, queryset):
    """The runs of ``queryset`` the user may act on: those touching only instances they may
    sync (the admin's and the API's cancel)."""
    ids = sync_scope(request)
    if ids is None:
        return queryset
    return queryset.exclude(
        Exists(RunItem.objects.filter(run=OuterRef("pk")).exclude(instance_id__in=ids))
    )


class RunStatusFilter(admin.SimpleListFilter):
    """The status as the user is shown it (``shown_status``), from the fixed list."""

    title = _("status")
    parameter_name = "status__exact"

    def lookups(self, request, model_admin):
        return RunStatus.choices

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(shown_status=value) if value else queryset


@admin.register(Run)
class RunAdmin(BigTableMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    change_form_template = "admin/syncjobs/run/change_form.html"
    list_display = [
        "id",
        "kind",
        "trigger",
        "status_badge",
        "progress",
        "failed_items",
        "requested_by",
        "started_at",
        "run_duration",
    ]
    list_display_links = ["id", "kind"]
    list_filter = ["kind", RunStatusFilter, "trigger", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["requested_by"]
    list_per_page = 50
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "kind",
                    "trigger",
                    "status",
                    "requested_by",
                    "cancel_requested_text",
                    "error",
                ]
            },
        ),
        (_("Times"), {"fields": ["created_at", "started_at", "finished_at", "run_duration"]}),
        (
            _("Items"),
            {
                "fields": [
                    "items_total",
                    "items_succeeded",
                    "items_failed",
                    "items_skipped",
                    "items_cancelled",
                ]
            },
        ),
        (
            _("Changes"),
            {
                "fields": [
                    "created_count",
                    "changed_count",
                    "removed_count",
                    "restored_count",
                    "unchanged_count",
                ]
            },
        ),
        (_("Summary"), {"fields": ["summary_table"]}),
    ]
    readonly_fields = ["created_at", "run_duration", "cancel_requested_text", "summary_table"]
    actions = ["cancel_runs", "rerun_failed_items"]

    # Scope: the runs with at least one item the user may see, unless they read the whole
    # run history (items stay scoped either way).

    def get_queryset(self, request):
        return runs_seen(request, super().get_queryset(request))

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404(_("No such run."))
        ids = figures_scope(request)
        if ids is not None:
            services.runs_show_items_on([obj], instance_ids=ids)
        return obj

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        ids = figures_scope(request)
        if ids is not None:
            services.runs_show_items_on(changelist.result_list, instance_ids=ids)
        return changelist

    def has_cancel_permission(self, request, obj=None):
        return request.user.has_perm("syncjobs.cancel_run")

    def has_rerun_permission(self, request, obj=None):
        return request.user.has_perm("syncjobs.rerun_run")

    # Columns.

    @admin.display(description=_("status"), ordering="shown_status")
    def status_badge(self, obj: Run) -> str:
        return _status_badge(obj)

    @admin.display(description=_("failed"), ordering="shown_items_failed")
    def failed_items(self, obj: Run) -> int:
        return obj.shown_items_failed

    @admin.display(description=_("progress"))
    def progress(self, obj: Run) -> str:
        if not obj.items_total:
            return "—"  # one job for the whole estate (aggregation, maintenance)
        return format_html(
            '<progress class="wf-progress" value="{}" max="{}"></progress> {}/{}',
            obj.items_done,
            max(obj.items_total, 1),
            obj.items_done,
            obj.items_total,
        )

    @admin.display(description=_("duration"))
    def run_duration(self, obj: Run) -> str:
        return _format_duration(obj.duration)

    @admin.display(description=_("cancel requested"))
    def cancel_requested_text(self, obj: Run) -> str:
        # A plain answer: "no" is the normal state, not a failure to mark in red.
        return _("Yes") if obj.cancel_requested else _("No")

    @admin.display(description=_("summary"))
    def summary_table(self, obj: Run) -> str:
        return summary_html(obj.summary)

    # Actions: a person may act on a run only where they may sync every instance it touches.

    def _actionable(self, request, queryset):
        return runs_actionable(request, queryset)

    def _cancel(self, request, runs) -> None:
        runs = list(runs)
        for run in runs:
            services.run_cancel(run=run, requested_by=request.user)
        if runs:
            self.message_user(
                request,
                ngettext(
                    "%(count)d run cancelled: items not started yet will not run.",
                    "%(count)d runs cancelled: items not started yet will not run.",
                    len(runs),
                )
                % {"count": len(runs)},
                messages.SUCCESS,
            )

    def _rerun(self, request, runs) -> list[Run]:
        started = []
        scope = sync_scope(request)
        for run in runs:
            try:
                new = services.run_retry_failed(
                    run=run, requested_by=request.user, instance_ids=scope
                )
            except services.QueueUnavailable as exc:
                _report_queue_unavailable(self, request, exc)
                break
            if new is None:
                self.message_user(
                    request,
                    _("Run #%(run)d has no failed items you may run again.") % {"run": run.pk},
                    messages.WARNING,
                )
                continue
            started.append(new)
            self.message_user(
                request,
                ngettext(
                    "Run #%(new)d started for %(count)d failed item of run #%(run)d.",
                    "Run #%(new)d started for %(count)d failed items of run #%(run)d.",
                    new.items_total,
                )
                % {"new": new.pk, "count": new.items_total, "run": run.pk},
                messages.SUCCESS,
            )
        return started

    @admin.action(description=_("Cancel selected runs"), permissions=["cancel"])
    def cancel_runs(self, request, queryset):
        active = queryset.filter(status__in=RUN_ACTIVE)
        allowed = self._actionable(request, active)
        refused = active.count() - allowed.count()
        if refused:
            self.message_user(
                request,
                ngettext(
                    "%(count)d run not cancelled: it covers instances you may not sync.",
                    "%(count)d runs not cancelled: they cover instances you may not sync.",
                    refused,
                )
                % {"count": refused},
                messages.WARNING,
            )
        self._cancel(request, allowed)

    @admin.action(description=_("Run failed items again"), permissions=["rerun"])
    def rerun_failed_items(self, request, queryset):
        self._rerun(request, queryset)

    # The per-run buttons.

    def get_urls(self):
        return [
            path(
                "<path:object_id>/cancel/",
                self.admin_site.admin_view(self.cancel_view),
                name="syncjobs_run_cancel",
            ),
            path(
                "<path:object_id>/rerun/",
                self.admin_site.admin_view(self.rerun_view),
                name="syncjobs_run_rerun",
            ),
            *super().get_urls(),
        ]

    def cancel_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_cancel_permission(request):
            raise PermissionDenied
        run = get_object_or_404(self.get_queryset(request), pk=object_id)
        if not self._actionable(request, Run.objects.filter(pk=run.pk)).exists():
            raise PermissionDenied
        if run.is_active:
            self._cancel(request, [run])
        else:
            self.message_user(
                request, _("Run #%(run)d has already finished.") % {"run": run.pk}, messages.INFO
            )
        return HttpResponseRedirect(reverse("admin:syncjobs_run_change", args=[run.pk]))

    def rerun_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_rerun_permission(request):
            raise PermissionDenied
        run = get_object_or_404(self.get_queryset(request), pk=object_id)
        started = self._rerun(request, [run])
        target = started[0] if started else run
        return HttpResponseRedirect(reverse("admin:syncjobs_run_change", args=[target.pk]))

    def changelist_view(self, request, extra_context=None):
        # While work is under way the list refreshes itself: progress without clicking.
        live = self.get_queryset(request).filter(status__in=RUN_ACTIVE).exists()
        return super().changelist_view(request, {**(extra_context or {}), "live": live})

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            items = RunItem.objects.filter(run=obj).select_related("instance")
            ids = visible_instance_ids(request)
            if ids is not None:
                items = items.filter(instance_id__in=ids)
            # Failed items first, then running ones: they are why people open a run.
            first = Case(
                When(status=ItemStatus.FAILED, then=Value(0)),
                When(status=ItemStatus.RUNNING, then=Value(1)),
                default=Value(2),
            )
            items = list(items.order_by(first.asc(), "instance__name")[: RUN_PAGE_ITEMS + 1])
            for item in items:
                item.duration_text = _format_duration(item.duration)
            context.update(
                live=obj.status in RUN_ACTIVE,
                run_items=items[:RUN_PAGE_ITEMS],
                run_items_more=len(items) > RUN_PAGE_ITEMS,
                run_items_url=reverse("admin:syncjobs_runitem_changelist")
                + "?"
                + urlencode({"run__id__exact": obj.pk}),
                can_cancel_run=obj.is_active
                and self.has_cancel_permission(request, obj)
                and self._actionable(request, Run.objects.filter(pk=obj.pk)).exists(),
                can_rerun_run=obj.items_failed > 0 and self.has_rerun_permission(request, obj),
            )
        return super().render_change_form(request, context, add, change, form_url, obj)


class RunKindFilter(admin.SimpleListFilter):
    """The kind of the item's run, from the fixed list of kinds (no query for choices)."""

    title = _("kind")
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return Run.Kind.choices

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(run__kind=value) if value else queryset


@admin.register(RunItem)
class RunItemAdmin(BigTableMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "run_link",
        "run_kind",
        "instance",
        "status_badge",
        "created_count",
        "changed_count",
        "removed_count",
        "restored_count",
        "unchanged_count",
        "attempts",
        "item_duration",
        "message",
    ]
    list_display_links = ["id"]
    list_filter = [
        "status",
        RunKindFilter,
        VisibleInstanceFilter,
        ("started_at", admin.DateFieldListFilter),
    ]
    list_select_related = ["run", "instance"]
    search_fields = ["^instance__name"]
    list_per_page = 100
    fieldsets = [
        (None, {"fields": ["run", "instance", "status", "error", "skip_reason"]}),
        (
            _("Counts"),
            {
                "fields": [
                    "created_count",
                    "changed_count",
                    "removed_count",
                    "restored_count",
                    "unchanged_count",
                ]
            },
        ),
        (
            _("Execution"),
            {"fields": ["started_at", "finished_at", "duration", "heartbeat_at", "attempts"]},
        ),
        (_("Detail"), {"fields": ["detail"]}),
    ]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        ids = visible_instance_ids(request)
        return queryset if ids is None else queryset.filter(instance_id__in=ids)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404(_("No such run item."))
        return obj

    @admin.display(description=_("run"), ordering="run")
    def run_link(self, obj: RunItem) -> str:
        return format_html(
            '<a href="{}">#{}</a>',
            reverse("admin:syncjobs_run_change", args=[obj.run_id]),
            obj.run_id,
        )

    @admin.display(description=_("kind"), ordering="run__kind")
    def run_kind(self, obj: RunItem) -> str:
        return obj.run.get_kind_display()

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: RunItem) -> str:
        return _status_badge(obj)

    @admin.display(description=_("duration"), ordering="duration")
    def item_duration(self, obj: RunItem) -> str:
        return _format_duration(obj.duration)

    @admin.display(description=_("error / reason"))
    def message(self, obj: RunItem) -> str:
        text = obj.error or obj.skip_reason
        if len(text) <= 120:
            return text
        return format_html('<span title="{}">{}…</span>', text, text[:120])


def _report_queue_unavailable(model_admin, request, exc) -> None:
    """The error message of an action that needed the task queue and found it down."""
    if exc.run is None:
        message = _("The task queue is unavailable; nothing was started.")
    else:
        message = _(
            "The task queue is unavailable; nothing was started. Run #%(id)d could not be "
            "queued and has failed."
        ) % {"id": exc.run.pk}
    model_admin.message_user(request, message, messages.ERROR)


# --- "Sync accounts now" on the instance list --------------------------------------------


# What hangs off an instance, each list filtered to it: (permission, list, label).
INSTANCE_RELATED = [
    ("accounts.view_account", "admin:accounts_account_changelist", _("Accounts")),
    ("accounts.view_accountchange", "admin:accounts_accountchange_changelist", _("Changes")),
    ("capacity.view_database", "admin:capacity_database_changelist", _("Databases")),
    ("syncjobs.view_runitem", "admin:syncjobs_runitem_changelist", _("Runs")),
]


def instance_related_links(request: HttpRequest, instance: Instance) -> list[tuple[str, str]]:
    """(label, url) of the lists of what hangs off ``instance`` that the user may read."""
    return [
        (label, f"{reverse(name)}?{urlencode({'instance': instance.pk})}")
        for perm, name, label in INSTANCE_RELATED
        if request.user.has_perm(perm)
    ]


class SyncHealthFilter(admin.SimpleListFilter):
    """Instances whose latest work of some kind failed (``syncjobs.models.failing_sync``)."""

    title = _("sync")
    parameter_name = "sync"

    def lookups(self, request, model_admin):
        return [("failing", _("Last sync failed"))]

    def queryset(self, request, queryset):
        return failing_sync(queryset) if self.value() == "failing" else queryset


class SyncableInstanceAdmin(InstanceAdmin):
    """The inventory's instance admin plus the actions that start runs and the filter on
    their outcome (syncjobs owns runs)."""

    list_filter = [*InstanceAdmin.list_filter, SyncHealthFilter]

    actions = [
        *InstanceAdmin.actions,
        "sync_accounts_now",
        "classify_accounts_now",
        "collect_capacity_now",
    ]

    def has_sync_permission(self, request, obj=None):
        return instance_permitted(request, "sync", obj)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["related_links"] = instance_related_links(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.action(description=_("Sync accounts now"), permissions=["sync"])
    def sync_accounts_now(self, request, queryset):
        self._start_run(request, queryset, RunKind.ACCOUNTS)

    @admin.action(description=_("Classify accounts now"), permissions=["sync"])
    def classify_accounts_now(self, request, queryset):
        self._start_run(request, queryset, RunKind.CLASSIFICATION)

    @admin.action(description=_("Collect capacity now"), permissions=["sync"])
    def collect_capacity_now(self, request, queryset):
        self._start_run(request, queryset, RunKind.CAPACITY)

    def _start_run(self, request, queryset, kind: str) -> None:
        ids = sync_scope(request)
        allowed = (queryset if ids is None else queryset.filter(pk__in=ids)).syncable()
        instance_ids = list(allowed.values_list("pk", flat=True))
        skipped = queryset.count() - len(instance_ids)
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d instance skipped: retired, inactive or not yours to sync.",
                    "%(count)d instances skipped: retired, inactive or not yours to sync.",
                    skipped,
                )
                % {"count": skipped},
                messages.WARNING,
            )
        if not instance_ids:
            return
        try:
            run = services.run_create(
                kind=kind,
                trigger=RunTrigger.MANUAL,
                requested_by=request.user,
                instance_ids=instance_ids,
            )
        except services.QueueUnavailable as exc:
            _report_queue_unavailable(self, request, exc)
            return
        url = reverse("admin:syncjobs_run_change", args=[run.pk])
        self.message_user(
            request,
            format_html(
                '{} <a href="{}">{}</a>',
                ngettext(
                    "%(kind)s of %(count)d instance queued.",
                    "%(kind)s of %(count)d instances queued.",
                    len(instance_ids),
                )
                % {"kind": RunKind(kind).label, "count": len(instance_ids)},
                url,
                _("Follow run #%(id)d") % {"id": run.pk},
            ),
        )


admin.site.unregister(Instance)
admin.site.register(Instance, SyncableInstanceAdmin)


# --- Periodic tasks ---------------------------------------------------------------------


class Repeat(models.TextChoices):
    DAILY = "daily", _("Every day at a time")
    INTERVAL = "interval", _("Every few minutes")
    CRON = "cron", _("Cron expression")


# Interval schedules are edited in whole minutes, up to a week.
MAX_EVERY_MINUTES = 7 * 24 * 60


class SchedulablePeriodicTaskForm(forms.ModelForm):
    """A periodic task with its schedule edited in place: a time of day, a number of
    minutes, or a cron expression; the ``CrontabSchedule`` or ``IntervalSchedule`` behind it
    is reused when one matches, created otherwise (shared rows are never changed). Only
    WhaleFall's schedulable tasks with the arguments each one takes are accepted
    (``syncjobs.schedulable``)."""

    task = forms.ChoiceField(
        label=_("Task"),
        choices=[("", "—"), *((name, name) for name in sorted(schedulable.SCHEDULABLE))],
        help_text=_("WhaleFall's schedulable tasks; their arguments are checked on save."),
    )
    repeat = forms.ChoiceField(
        label=_("Repeats"),
        choices=Repeat.choices,
        initial=Repeat.DAILY,
        widget=forms.RadioSelect,
        help_text=_("How often the task runs; fill in the matching field below."),
    )
    at = forms.TimeField(
        label=_("Time of day"),
        required=False,
        widget=forms.TimeInput(format="%H:%M", attrs={"size": 5, "placeholder": "01:00"}),
        help_text=_("HH:MM, for “every day at a time”."),
    )
    every_minutes = forms.IntegerField(
        label=_("Every (minutes)"),
        required=False,
        min_value=1,
        max_value=MAX_EVERY_MINUTES,
        help_text=_("For “every few minutes”."),
    )
    cron = forms.CharField(
        label=_("Cron expression"),
        required=False,
        max_length=200,
        help_text=_(
            "For “cron expression”: minute hour day-of-month month day-of-week, e.g. "
            "“30 2 * * 1” for Mondays at 02:30."
        ),
    )

    class Meta:
        model = PeriodicTask
        fields = ["name", "task", "enabled", "description", "kwargs"]
        help_texts = {
            "kwargs": _("The task's keyword arguments as a JSON object, e.g. {}."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.zone = settings.TIME_ZONE
        task = self.instance
        if task.pk is None:
            self.initial.setdefault("kwargs", "{}")
        elif task.crontab_id:
            crontab = task.crontab
            self.zone = str(crontab.timezone)
            at = schedules.daily_time(**_crontab_fields(crontab))
            if at is not None:
                self.initial.update(repeat=Repeat.DAILY, at=at)
            else:
                self.initial.update(
                    repeat=Repeat.CRON, cron=" ".join(_crontab_fields(crontab).values())
                )
        elif task.interval_id:
            seconds = task.interval.every * schedules.PERIOD_SECONDS.get(task.interval.period, 0)
            self.initial.update(repeat=Repeat.INTERVAL, every_minutes=max(1, seconds // 60))
        self.fields["at"].help_text = _("HH:MM, in %(zone)s, for “every day at a time”.") % {
            "zone": self.zone
        }

    def clean(self):
        data = super().clean()
        repeat = data.get("repeat")
        self._schedule = None
        if repeat == Repeat.DAILY:
            if data.get("at") is None:
                self.add_error("at", _("Enter the time of day the task runs."))
            else:
                at = data["at"]
                self._schedule = (
                    "crontab",
                    {
                        "minute": str(at.minute),
                        "hour": str(at.hour),
                        "day_of_month": "*",
                        "month_of_year": "*",
                        "day_of_week": "*",
                    },
                )
        elif repeat == Repeat.INTERVAL:
            if data.get("every_minutes") is None:
                self.add_error("every_minutes", _("Enter every how many minutes the task runs."))
            else:
                self._schedule = ("interval", {"every": data["every_minutes"] * 60})
        elif repeat == Repeat.CRON:
            fields = (data.get("cron") or "").split()
            if len(fields) != 5:
                self.add_error(
                    "cron", _("Five fields: minute hour day-of-month month day-of-week.")
                )
            else:
                names = ["minute", "hour", "day_of_month", "month_of_year", "day_of_week"]
                try:
                    celery_crontab(*fields)
                except (ValueError, KeyError) as exc:
                    self.add_error(
                        "cron", _("Not a valid cron expression (%(error)s).") % {"error": exc}
                    )
                else:
                    self._schedule = ("crontab", dict(zip(names, fields, strict=True)))
        found = schedulable.problems(
            task=data.get("task") or "",
            args=self.instance.args,
            kwargs=data.get("kwargs"),
            headers=self.instance.headers,
        )
        for name, messages_ in found.items():
            self.add_error(name if name in self.fields else None, messages_)
        return data

    def _post_clean(self):
        # The model refuses a task without a schedule, so the schedule is attached before
        # the model's own validation; new schedule rows are saved with the task.
        if getattr(self, "_schedule", None) is not None:
            kind, fields = self._schedule
            task = self.instance
            task.interval = task.crontab = task.solar = task.clocked = None
            if kind == "crontab":
                fields = {**fields, "timezone": self.zone}
                task.crontab = CrontabSchedule.objects.filter(**fields).first() or CrontabSchedule(
                    **fields
                )
            else:
                fields = {**fields, "period": IntervalSchedule.SECONDS}
                task.interval = IntervalSchedule.objects.filter(
                    **fields
                ).first() or IntervalSchedule(**fields)
        super()._post_clean()

    def save(self, commit=True):
        task = self.instance
        for name in ("crontab", "interval"):
            schedule = getattr(task, name)
            if schedule is not None and schedule.pk is None:
                schedule.save()
                setattr(task, name, schedule)
        return super().save(commit)


def _crontab_fields(crontab) -> dict[str, str]:
    return {
        "minute": crontab.minute,
        "hour": crontab.hour,
        "day_of_month": crontab.day_of_month,
        "month_of_year": crontab.month_of_year,
        "day_of_week": crontab.day_of_week,
    }


def schedule_text(task: PeriodicTask) -> str:
    """The task's schedule in words ("daily at 01:00 (Asia/Shanghai)")."""
    if task.crontab_id:
        return schedules.crontab_text(
            **_crontab_fields(task.crontab), timezone=str(task.crontab.timezone)
        )
    if task.interval_id:
        return schedules.interval_text(every=task.interval.every, period=task.interval.period)
    if task.clocked_id:
        return _("once, at %(time)s") % {"time": moment(task.clocked.clocked_time)}
    if task.solar_id:
        return str(task.solar)
    return "—"


admin.site.unregister(PeriodicTask)


@admin.register(PeriodicTask)
class SchedulablePeriodicTaskAdmin(PeriodicTaskAdmin):
    """Periodic tasks as people read them: the schedule in words with its zone, the next
    and the last run (linked to the runs the task made); the time edited in place.
    Enabling, disabling and running one now need the change permission and are audited;
    "Run selected tasks" records the person who pressed it as the requester of the runs it
    starts (trigger manual) and links to them."""

    form = SchedulablePeriodicTaskForm
    list_display = ["name", "schedule", "next_run", "last_run", "enabled", "task"]
    list_display_links = ["name"]
    list_filter = ["enabled", "task"]
    date_hierarchy = None
    change_form_template = None
    fieldsets = [
        (None, {"fields": ["name", "task", "enabled", "description"]}),
        (
            _("Schedule"),
            {"fields": ["repeat", "at", "every_minutes", "cron", "next_run", "last_run"]},
        ),
        (_("Arguments"), {"fields": ["kwargs"]}),
    ]
    readonly_fields = ["schedule", "next_run", "last_run"]

    def get_fieldsets(self, request, obj=None):
        if self.has_change_permission(request, obj):
            return self.fieldsets
        # A reader sees the schedule in words, not the empty fields that edit it.
        return [
            (None, {"fields": ["name", "task", "enabled", "description"]}),
            (_("Schedule"), {"fields": ["schedule", "next_run", "last_run"]}),
            (_("Arguments"), {"fields": ["kwargs"]}),
        ]

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Not the stock view: it lists every crontab for the popup this form no longer has.
        return admin.ModelAdmin.changeform_view(self, request, object_id, form_url, extra_context)

    def action_checkbox(self, obj):
        # Django labels the box with str(obj), which for a periodic task is its raw cron.
        attrs = {
            "class": "action-select",
            "aria-label": format_html(_("Select this object for an action - {}"), obj.name),
        }
        return forms.CheckboxInput(attrs, lambda value: False).render(
            helpers.ACTION_CHECKBOX_NAME, str(obj.pk)
        )

    @admin.display(description=_("Schedule"))
    def schedule(self, obj):
        return schedule_text(obj) if obj is not None and obj.pk else "—"

    @admin.display(description=_("Next run"))
    def next_run(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        if not obj.enabled:
            return _("— (disabled)")
        if obj.one_off and obj.total_run_count:
            return _("— (ran once)")
        try:
            due = schedules.next_run(obj.schedule, last_run_at=obj.last_run_at, now=timezone.now())
        except (AttributeError, ValueError, TypeError):
            return "—"
        return moment(due)

    @admin.display(description=_("Last run"), ordering="last_run_at")
    def last_run(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        when = moment(obj.last_run_at) if obj.last_run_at else _("never")
        spec = schedulable.SCHEDULABLE.get(obj.task)
        if spec is None or not spec.run_kind:
            return when
        url = reverse("admin:syncjobs_run_changelist") + "?" + urlencode({"kind": spec.run_kind})
        return format_html('{} · <a href="{}">{}</a>', when, url, _("its runs"))

    def _report_refused(self, request, refused) -> None:
        for name in refused:
            self.message_user(
                request,
                _("%(name)s was not started or enabled: it is not a schedulable task with "
                  "valid arguments; open it to see why.") % {"name": name},
                messages.ERROR,
            )  # fmt: skip

    def _set_enabled(self, request, queryset, enabled: bool | None) -> None:
        changed, refused = services.periodic_tasks_set_enabled(
            periodic_tasks=queryset, enabled=enabled
        )
        self._report_refused(request, refused)
        self.message_user(
            request,
            ngettext("%(count)d task changed.", "%(count)d tasks changed.", changed)
            % {"count": changed},
        )

    @admin.action(description=_("Enable selected tasks"), permissions=["change"])
    def enable_tasks(self, request, queryset):
        self._set_enabled(request, queryset, True)

    @admin.action(description=_("Disable selected tasks"), permissions=["change"])
    def disable_tasks(self, request, queryset):
        self._set_enabled(request, queryset, False)

    @admin.action(description=_("Toggle activity of selected tasks"), permissions=["change"])
    def toggle_tasks(self, request, queryset):
        self._set_enabled(request, queryset, None)

    @admin.action(description=_("Run selected tasks"), permissions=["change"])
    def run_tasks(self, request, queryset):
        try:
            sent, refused = services.periodic_tasks_run_now(
                periodic_tasks=queryset, user=request.user
            )
        except services.QueueUnavailable as exc:
            _report_queue_unavailable(self, request, exc)
            return
        self._report_refused(request, refused)
        tasks_by_name = {task.name: task.task for task in queryset}
        runs = reverse("admin:syncjobs_run_changelist")
        for name, task_id in sent.items():
            spec = schedulable.SCHEDULABLE.get(tasks_by_name.get(name, ""))
            if spec is not None and spec.run_kind:
                self.message_user(
                    request,
                    format_html(
                        _(
                            "{name} was sent to the workers as a manual run by {user}: "
                            '<a href="{url}">run {task_id}</a>.'
                        ),
                        name=name,
                        user=request.user.get_username(),
                        url=runs + "?" + urlencode({"task_id": task_id}),
                        task_id=task_id[:8],
                    ),
                    messages.SUCCESS,
                )
            else:
                self.message_user(
                    request,
                    _("%(name)s was sent to the workers on behalf of %(user)s.")
                    % {"name": name, "user": request.user.get_username()},
                    messages.SUCCESS,
                )

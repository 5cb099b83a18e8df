"""The syncjobs dashboard panels: instances needing attention and the last day's runs."""

from django.contrib import admin
from django.db.models import Case, Count, IntegerField, Value, When
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from inventory.models import Instance
from syncjobs.admin import runs_seen
from syncjobs.models import Run, RunStatus, failing_sync
from whalefall.dashboard import changelist_url, since, timestamp_param
from whalefall.scope import visible_instance_ids
from whalefall.sites import DashboardPanel

# Rows listed per panel; the figures link to the full lists.
PANEL_ROWS = 10
RUN_WINDOW_HOURS = 24
RUN_FAILURES = (RunStatus.FAILED, RunStatus.PARTIALLY_FAILED)


def _visible_instances(request: HttpRequest):
    ids = visible_instance_ids(request)
    if ids is not None and not ids:
        return None
    return Instance.objects.all() if ids is None else Instance.objects.filter(pk__in=ids)


@admin.site.register_panel
def attention_panel(request: HttpRequest) -> DashboardPanel | None:
    """Visible instances whose last connection or whose latest sync of some kind failed."""
    instances = _visible_instances(request)
    if instances is None:
        return None
    connection = instances.filter(retired_at__isnull=True, last_connection_ok=False)
    sync = failing_sync(instances)
    sections = [
        {
            "title": _("Last connection failed"),
            "count": connection.count(),
            "url": changelist_url("inventory.instance", status="failing"),
            "rows": list(
                connection.order_by("name").values("pk", "name", "last_connection_error")[
                    :PANEL_ROWS
                ]
            ),
        },
        {
            "title": _("Last sync failed"),
            "count": sync.count(),
            "url": changelist_url("inventory.instance", sync="failing"),
            "rows": list(sync.order_by("name").values("pk", "name")[:PANEL_ROWS]),
        },
    ]
    if request.user.has_perm("syncjobs.view_runitem"):
        for section in sections:
            for row in section["rows"]:
                row["items_url"] = changelist_url("syncjobs.runitem", instance=row["pk"])
    return DashboardPanel(
        title=_("Instances needing attention"),
        template="admin/panels/attention.html",
        context={"sections": sections},
        order=10,
    )


@admin.site.register_panel
def recent_runs_panel(request: HttpRequest) -> DashboardPanel | None:
    """Runs of the last 24 hours the user may read, counted by status, failures first."""
    if not request.user.has_perm("syncjobs.view_run"):
        return None
    start = since(RUN_WINDOW_HOURS)
    runs = runs_seen(request, Run.objects.filter(created_at__gte=start))
    window = timestamp_param(start)
    counts = dict(
        runs.order_by()
        .values_list("shown_status")
        .annotate(n=Count("pk"))
        .values_list("shown_status", "n")
    )
    statuses = [
        {
            "label": label,
            "status": status,
            "count": counts.get(status, 0),
            "url": changelist_url("syncjobs.run", created_at__gte=window, status__exact=status),
            "bad": status in RUN_FAILURES,
        }
        for status, label in RunStatus.choices
    ]
    first = Case(
        When(shown_status__in=RUN_FAILURES, then=Value(0)),
        When(shown_status__in=(RunStatus.QUEUED, RunStatus.RUNNING), then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    rows = list(runs.order_by(first, "-created_at")[:PANEL_ROWS])
    for run in rows:
        run.shown_status_label = RunStatus(run.shown_status).label
        run.bad = run.shown_status in RUN_FAILURES
    return DashboardPanel(
        title=_("Runs of the last 24 hours"),
        template="admin/panels/recent_runs.html",
        context={
            "statuses": statuses,
            "total": sum(counts.values()),
            "all_url": changelist_url("syncjobs.run", created_at__gte=window),
            "rows": rows,
        },
        order=15,
    )

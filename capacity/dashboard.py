"""The capacity dashboard panels: databases nearest their limit, and the sample partitions."""

from django.contrib import admin
from django.db.models import Count, F, FloatField, Q
from django.db.models.functions import Cast
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from capacity.models import LIMIT_USAGE_STEPS, Database
from capacity.partitions import partition_status
from whalefall.dashboard import changelist_url
from whalefall.scope import sees_whole_estate, visible_instance_ids
from whalefall.sites import DashboardPanel

PANEL_ROWS = 10


@admin.site.register_panel
def nearest_limit_panel(request: HttpRequest) -> DashboardPanel | None:
    """Visible present databases by the share of their capacity limit they use."""
    if not request.user.has_perm("capacity.view_database"):
        return None
    ids = visible_instance_ids(request)
    if ids is not None and not ids:
        return None
    limited = Database.objects.present().filter(
        capacity_limit_bytes__gt=0, total_bytes__isnull=False
    )
    if ids is not None:
        limited = limited.filter(instance_id__in=ids)
    counts = limited.alias(used=F("total_bytes") * 100).aggregate(
        **{
            f"at_{percent}": Count("pk", filter=Q(used__gte=F("capacity_limit_bytes") * percent))
            for percent in LIMIT_USAGE_STEPS
        }
    )
    steps = [
        {
            "percent": percent,
            "count": counts[f"at_{percent}"],
            "url": changelist_url("capacity.database", usage=percent),
        }
        for percent in LIMIT_USAGE_STEPS
    ]
    usage = Cast("total_bytes", FloatField()) * 100 / Cast("capacity_limit_bytes", FloatField())
    rows = list(
        limited.select_related("instance")
        .annotate(usage=usage)
        .order_by("-usage", "name")[:PANEL_ROWS]
    )
    return DashboardPanel(
        title=_("Nearest their capacity limit"),
        template="admin/panels/nearest_limit.html",
        context={"steps": steps, "rows": rows},
        order=25,
    )


@admin.site.register_panel
def partitions_panel(request: HttpRequest) -> DashboardPanel | None:
    """Whether the sample tables have their partitions, for staff who see the whole estate."""
    if not (request.user.is_staff and sees_whole_estate(request)):
        return None
    if not request.user.has_perm("capacity.view_instancecapacity"):
        return None
    status = partition_status()
    return DashboardPanel(
        title=_("Sample partitions"),
        template="admin/panels/partitions.html",
        context={
            "status": status,
            "months": {table: len(months) for table, months in status["tables"].items()},
            "url": changelist_url("capacity.instancecapacity"),
        },
        order=40,
    )

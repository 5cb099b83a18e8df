"""Admin pages of capacity: the database ledger, instance capacity, trend charts, forecasts,
table sizes and the top growers on the dashboard.

The ledger reads the latest size and the 30-day growth kept on each database row (refreshed
by every collection), never the sample history.
"""

from collections import defaultdict
from datetime import timedelta
from functools import partial

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.shortcuts import redirect
from django.template.defaultfilters import filesizeformat
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from import_export import fields

from capacity import forecast, services
from capacity.models import (
    LIMIT_USAGE_STEPS,
    AggregatePeriod,
    Database,
    DatabaseSizeAggregate,
    DatabaseSizeSample,
    InstanceCapacity,
    InstanceSizeAggregate,
    InstanceSizeSample,
    TableSizeSnapshot,
    limit_used_at_least,
)
from capacity.partitions import partition_status
from capacity.sizes import exact_size, parse_size, signed_size
from inventory.admin import (
    EngineFilter,
    FormulaSafeResource,
    InstanceScopedMixin,
    TagFilter,
    VisibleInstanceFilter,
    instance_permitted,
    visible_instance_ids,
)
from inventory.engines.base import EngineError
from inventory.models import Engine
from syncjobs.services import QueueUnavailable, queue_check
from syncjobs.tasks import aggregate_capacity
from whalefall.admin import BigTableMixin, FastChangeListMixin
from whalefall.charts import Series, line_chart
from whalefall.exports import ExportActionMixin
from whalefall.moments import moment
from whalefall.sites import DashboardPanel

CHART_DAYS = 90
TOP_GROWERS = 10
CHART_COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777"]


def _size(value) -> str:
    return "—" if value is None else filesizeformat(value)


def _timestamp(value) -> str:
    """A moment written the one way (``whalefall.moments``), "—" for none."""
    return "—" if value is None else moment(value)


def _growth(value: float | None) -> str:
    return "—" if value is None else f"{signed_size(value)}/{_('day')}"


def _bytes_axis(value: float) -> str:
    return filesizeformat(value)


class LedgerChangeList(ChangeList):
    """The page's rows, read with only the columns the ledger shows, get the day their
    capacity limit is reached at their growth."""

    columns = [
        "instance_id", "name", "total_bytes", "growth_bytes_per_day", "capacity_limit_bytes",
        "collected_at", "instance__name", "instance__engine",
    ]  # fmt: skip

    def get_results(self, request):
        self.queryset = self.queryset.only(*self.columns)
        super().get_results(request)
        today = timezone.localdate()
        for row in self.result_list:
            row.limit_date = None
            if row.total_bytes is not None and row.collected_at is not None:
                row.limit_date = forecast.date_reached(
                    timezone.localdate(row.collected_at),
                    row.total_bytes,
                    row.growth_bytes_per_day,
                    row.capacity_limit_bytes,
                    today=today,
                )


class PresenceFilter(admin.SimpleListFilter):
    title = _("presence")
    parameter_name = "presence"

    def lookups(self, request, model_admin):
        return [("present", _("Present")), ("removed", _("Removed")), ("all", _("All"))]

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": (self.value() or "present") == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value() or "present"
        if value == "present":
            return queryset.filter(removed_at__isnull=True)
        if value == "removed":
            return queryset.filter(removed_at__isnull=False)
        return queryset


class LimitUsageFilter(admin.SimpleListFilter):
    """Databases whose latest size has reached a share of their capacity limit."""

    title = _("capacity limit")
    parameter_name = "usage"

    def lookups(self, request, model_admin):
        return [(str(percent), _("%(percent)d %% or more used") % {"percent": percent})
                for percent in LIMIT_USAGE_STEPS]  # fmt: skip

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        try:
            percent = int(value)
        except ValueError:
            return queryset.none()
        return limit_used_at_least(queryset, percent)


class DatabaseResource(FormulaSafeResource):
    """The ledger as exported, with what the ledger shows: the 30-day growth (bytes a day)
    and the day the capacity limit is reached at that growth."""

    instance = fields.Field(attribute="instance__name", column_name="instance")
    engine = fields.Field(attribute="instance__engine", column_name="engine")
    host = fields.Field(attribute="instance__host", column_name="host")
    growth_bytes_per_day = fields.Field(column_name="growth_bytes_per_day")
    limit_reached_on = fields.Field(column_name="limit_reached_on")

    class Meta:
        model = Database
        fields = [
            "instance", "engine", "host", "name", "total_bytes", "data_bytes", "log_bytes",
            "growth_bytes_per_day", "capacity_limit_bytes", "limit_reached_on",
            "collected_at", "first_seen_at", "last_seen_at", "removed_at",
        ]  # fmt: skip
        export_order = fields

    def dehydrate_growth_bytes_per_day(self, database: Database) -> int | None:
        growth = database.growth_bytes_per_day
        return None if growth is None else round(growth)

    def dehydrate_limit_reached_on(self, database: Database):
        if database.total_bytes is None or database.collected_at is None:
            return None
        return forecast.date_reached(
            timezone.localdate(database.collected_at),
            database.total_bytes,
            database.growth_bytes_per_day,
            database.capacity_limit_bytes,
            today=timezone.localdate(),
        )


class SizeField(forms.CharField):
    """A size typed as people write it ("500 GB", "1.5 TB" or bytes), stored in bytes and
    shown back in the largest unit that keeps it exact."""

    default_error_messages = {
        "invalid": _("Enter a size such as 500 GB, 1.5 TB or a number of bytes."),
    }

    def __init__(self, **kwargs):
        kwargs.setdefault(
            "help_text",
            _(
                "Optional; e.g. 500 GB or 2 TB (1 GB = 1024³ bytes). The forecast tells "
                "when it will be reached."
            ),
        )
        super().__init__(required=False, **kwargs)

    def prepare_value(self, value):
        return exact_size(value) if isinstance(value, int) else value

    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return None
        try:
            return parse_size(value)
        except ValueError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None

    def has_changed(self, initial, data):
        try:
            return initial != self.to_python(data)
        except forms.ValidationError:
            return True


class CapacityLimitForm(forms.ModelForm):
    capacity_limit_bytes = SizeField(label=_("Capacity limit"))


class CapacityLimitMixin:
    """The capacity limit typed as a size; shown as one to those who may only read it."""

    form = CapacityLimitForm

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is not None and not self.has_change_permission(request, obj):
            return ["capacity_limit" if f == "capacity_limit_bytes" else f for f in fields]
        return fields

    @admin.display(description=_("capacity limit"), ordering="capacity_limit_bytes")
    def capacity_limit(self, obj) -> str:
        return _size(obj.capacity_limit_bytes)


class InstanceScopedAdmin(InstanceScopedMixin, admin.ModelAdmin):
    """Capacity rows: visible per instance, never added or deleted by hand."""

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("instance")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _chart(series: list[Series], *, today, title: str, limit: int | None = None):
    start = today - timedelta(days=CHART_DAYS - 1)
    return line_chart(
        series,
        start=start,
        end=today,
        title=title,
        value_format=_bytes_axis,
        limit=limit,
        limit_label=str(_("capacity limit")),
    )


def _aggregate_rows(queryset):
    rows = {}
    for period in AggregatePeriod.values:
        rows[period] = list(queryset.filter(period_type=period).order_by("-period_start")[:4])
    return rows


@admin.register(Database)
class DatabaseAdmin(
    BigTableMixin, FastChangeListMixin, CapacityLimitMixin, ExportActionMixin, InstanceScopedAdmin
):
    """The database ledger."""

    resource_classes = [DatabaseResource]
    change_form_template = "admin/capacity/database/change_form.html"
    list_display = [
        "name",
        "instance",
        "engine",
        "size",
        "growth_30d",
        "limit_forecast",
        "collected",
    ]
    list_filter = [PresenceFilter, LimitUsageFilter, EngineFilter, TagFilter, VisibleInstanceFilter]
    list_select_related = ["instance"]
    search_fields = ["^name"]
    ordering = ["instance__name", "name"]
    list_per_page = 50
    fields = [
        "instance",
        "name",
        "size",
        "data_size",
        "log_size",
        "capacity_limit_bytes",
        "collected_at",
        "first_seen_at",
        "last_seen_at",
        "removed_at",
    ]
    readonly_fields = [f for f in fields if f != "capacity_limit_bytes"]

    def get_changelist(self, request, **kwargs):
        return LedgerChangeList

    @admin.display(description=_("engine"), ordering="instance__engine")
    def engine(self, obj: Database) -> str:
        return Engine(obj.instance.engine).label

    @admin.display(description=_("size"), ordering=F("total_bytes").desc(nulls_last=True))
    def size(self, obj: Database) -> str:
        return _size(obj.total_bytes)

    @admin.display(description=_("data"))
    def data_size(self, obj: Database) -> str:
        return _size(obj.data_bytes)

    @admin.display(description=_("log"))
    def log_size(self, obj: Database) -> str:
        return _size(obj.log_bytes)

    @admin.display(
        description=_("growth (30 days)"),
        ordering=F("growth_bytes_per_day").desc(nulls_last=True),
    )
    def growth_30d(self, obj: Database) -> str:
        return _growth(obj.growth_bytes_per_day)

    @admin.display(description=_("collected at"), ordering="collected_at")
    def collected(self, obj: Database) -> str:
        return _timestamp(obj.collected_at)

    @admin.display(description=_("limit reached"))
    def limit_forecast(self, obj: Database) -> str:
        if not obj.capacity_limit_bytes:
            return "—"
        when = getattr(obj, "limit_date", None)
        return format_html("{} ({})", when or _("not growing"), _size(obj.capacity_limit_bytes))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # The row Django read for the form: the page adds its chart, forecast and tables.
        if obj is not None:
            today = timezone.localdate()
            points = list(
                DatabaseSizeSample.objects.filter(
                    database=obj, day__gt=today - timedelta(days=CHART_DAYS), day__lte=today
                )
                .order_by("day")
                .values_list("day", "total_bytes")
            )
            context |= {
                "chart": _chart(
                    [Series(obj.name, CHART_COLOURS[0], points)],
                    today=today,
                    title=str(obj),
                    limit=obj.capacity_limit_bytes,
                ),
                "forecast": services.forecast_database(obj),
                "aggregates": _aggregate_rows(DatabaseSizeAggregate.objects.filter(database=obj)),
                "tables": TableSizeSnapshot.objects.filter(database=obj).order_by(
                    "-total_bytes", "schema_name", "table_name"
                )[:200],
                "can_refresh_tables": instance_permitted(request, "sync", obj.instance),
            }
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/table-sizes/",
                self.admin_site.admin_view(self.table_sizes_view),
                name="capacity_database_table_sizes",
            ),
            *super().get_urls(),
        ]

    def table_sizes_view(self, request, object_id):
        """Read the table sizes of one database now (a remote read, then a replace)."""
        if request.method != "POST":
            return redirect("admin:capacity_database_change", object_id)
        database = self.get_object(request, object_id)
        if database is None or not self.has_view_permission(request, database):
            raise PermissionDenied
        if not instance_permitted(request, "sync", database.instance):
            raise PermissionDenied
        try:
            count = services.table_sizes_refresh(database=database)
        except EngineError as exc:  # the engine's error classes carry a safe message
            self.message_user(request, _("Table sizes could not be read: %s") % exc, messages.ERROR)
        else:
            self.message_user(request, _("%d table sizes read.") % count)
        return redirect("admin:capacity_database_change", object_id)


@admin.register(InstanceCapacity)
class InstanceCapacityAdmin(CapacityLimitMixin, InstanceScopedAdmin):
    """Size per instance, with the trend of its largest databases."""

    change_form_template = "admin/capacity/instancecapacity/change_form.html"
    change_list_template = "admin/capacity/instancecapacity/change_list.html"
    list_display = [
        "instance", "engine", "size", "database_count", "capacity_limit", "collected_at",
    ]  # fmt: skip
    list_filter = [EngineFilter, TagFilter]
    list_select_related = ["instance"]
    search_fields = ["^instance__name"]
    ordering = ["instance__name"]
    fields = ["instance", "size", "database_count", "capacity_limit_bytes", "collected_at"]
    readonly_fields = ["instance", "size", "database_count", "collected_at"]

    @admin.display(description=_("engine"), ordering="instance__engine")
    def engine(self, obj: InstanceCapacity) -> str:
        return obj.instance.get_engine_display()

    @admin.display(description=_("size"), ordering=F("total_bytes").desc(nulls_last=True))
    def size(self, obj: InstanceCapacity) -> str:
        return _size(obj.total_bytes)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context |= self._trend_context(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _trend_context(self, capacity: InstanceCapacity) -> dict:
        """The instance total and its largest databases over 90 days: two queries."""
        instance, today = capacity.instance, timezone.localdate()
        since = today - timedelta(days=CHART_DAYS)
        totals = list(
            InstanceSizeSample.objects.filter(instance=instance, day__gt=since, day__lte=today)
            .order_by("day")
            .values_list("day", "total_bytes")
        )
        largest = list(
            Database.objects.filter(instance=instance, removed_at__isnull=True)
            .order_by(F("total_bytes").desc(nulls_last=True))
            .values_list("pk", "name")[: len(CHART_COLOURS) - 1]
        )
        per_database = defaultdict(list)
        for database_id, day, total in DatabaseSizeSample.objects.filter(
            database_id__in=[pk for pk, _name in largest], day__gt=since, day__lte=today
        ).values_list("database_id", "day", "total_bytes"):
            per_database[database_id].append((day, total))
        series = [Series(str(_("instance total")), CHART_COLOURS[0], totals)] + [
            Series(name, colour, sorted(per_database[pk]))
            for (pk, name), colour in zip(largest, CHART_COLOURS[1:], strict=False)
        ]
        return {
            "chart": _chart(
                series, today=today, title=str(instance), limit=capacity.capacity_limit_bytes
            ),
            "legend": [(s.label, s.colour) for s in series],
            "forecast": services.forecast_instance(instance),
            "aggregates": _aggregate_rows(InstanceSizeAggregate.objects.filter(instance=instance)),
            "databases_url_query": f"instance={instance.pk}",
        }

    # "Aggregate now": the current open periods, for every instance.

    def get_urls(self):
        return [
            path(
                "aggregate/",
                self.admin_site.admin_view(self.aggregate_view),
                name="capacity_instancecapacity_aggregate",
            ),
            *super().get_urls(),
        ]

    def has_aggregate_permission(self, request) -> bool:
        # Aggregates span the whole estate: only those who may sync every instance.
        return request.user.has_perm("inventory.sync")

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_aggregate": self.has_aggregate_permission(request),
            # Row estimates and sizes of the whole estate's samples: for those who see it all.
            "partitions": partition_status() if visible_instance_ids(request) is None else None,
        }
        return super().changelist_view(request, extra_context)

    def aggregate_view(self, request):
        if request.method != "POST":
            return redirect("admin:capacity_instancecapacity_changelist")
        if not self.has_aggregate_permission(request):
            raise PermissionDenied
        try:
            queue_check()
        except QueueUnavailable:
            self.message_user(
                request, _("The task queue is unavailable; nothing was started."), messages.ERROR
            )
            return redirect("admin:capacity_instancecapacity_changelist")
        transaction.on_commit(
            partial(aggregate_capacity.delay, current=True, user_id=request.user.pk)
        )
        self.message_user(request, _("Aggregation of the current week, month and quarter queued."))
        return redirect("admin:capacity_instancecapacity_changelist")


# --- Dashboard --------------------------------------------------------------------------


@admin.site.register_panel
def top_growers_panel(request: HttpRequest) -> DashboardPanel | None:
    """The databases that grew most over the last complete month, among the visible ones."""
    if not request.user.has_perm("capacity.view_database"):
        return None
    latest = (
        DatabaseSizeAggregate.objects.filter(period_type=AggregatePeriod.MONTH)
        .order_by("-period_start")
        .values_list("period_start", flat=True)
        .first()
    )
    rows = []
    if latest is not None:
        rows = DatabaseSizeAggregate.objects.filter(
            period_type=AggregatePeriod.MONTH, period_start=latest, change_bytes__gt=0
        ).select_related("database__instance")
        ids = visible_instance_ids(request)
        if ids is not None:
            rows = rows.filter(database__instance_id__in=ids)
        rows = rows.order_by("-change_bytes")[:TOP_GROWERS]
    return DashboardPanel(
        title=_("Top growing databases"),
        template="admin/panels/top_growers.html",
        context={"rows": rows, "period_start": latest},
        order=20,
    )

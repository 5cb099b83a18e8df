"""API v1 of capacity: the database ledger (with its capacity limits), the daily size
samples, the week/month/quarter aggregates, forecasts, and the capacity of one instance.

Every row is scoped to the instances the caller may see, as on the admin's pages. The
forecasts are :func:`capacity.services.forecast_database` / ``forecast_instance``, the
functions the admin's pages show.
"""

import base64
import binascii
import json

import django_filters
from django.core.exceptions import ImproperlyConfigured
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import F
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from capacity import forecast, services
from capacity.models import (
    AggregatePeriod,
    Database,
    DatabaseSizeAggregate,
    DatabaseSizeSample,
    InstanceCapacity,
    InstanceSizeAggregate,
    InstanceSizeSample,
    Trend,
)
from inventory.models import Engine
from whalefall.api import router
from whalefall.api.filters import IdFilter
from whalefall.api.pagination import KeysetPagination
from whalefall.api.permissions import InstanceScopedMixin, on_some_instance
from whalefall.db import MAX_BIGINT
from whalefall.scope import VIEW_INSTANCE

# --- Pagination ---------------------------------------------------------------------------


class CompositeKeysetPagination(KeysetPagination):
    """Keyset pages over a unique ordering of several columns, all in one direction.

    DRF's cursor keeps only the first ordering column and counts the rows that share its
    value (an offset): on a table with ten thousand rows per day that is an OFFSET inside
    the day. Here the cursor holds every column of the boundary row and the next page is
    ``WHERE (a, b) < (x, y)`` — a row comparison PostgreSQL answers from an index on
    ``(a, b)`` — so page 1000 costs what page 1 does. One direction for every column
    keeps that comparison a single index range; a mixed ordering could not use one.
    """

    ordering: tuple[str, ...] = ()

    def _columns(self) -> tuple[list[str], bool]:
        names = [name.lstrip("-") for name in self.ordering]
        descending = {name.startswith("-") for name in self.ordering}
        if len(names) < 2 or len(descending) != 1:
            raise ImproperlyConfigured(
                f"{type(self).__name__}.ordering needs two or more columns in one direction"
            )
        return names, descending.pop()

    def paginate_queryset(self, queryset, request, view=None):
        self.page_size = self.get_page_size(request)
        if not self.page_size:
            return None
        self.request = request
        self.base_url = request.build_absolute_uri()
        self.model = queryset.model
        names, descending = self._columns()
        self.names = names
        reverse, position = self.decode_keyset(request)
        backwards = descending != reverse
        queryset = queryset.order_by(*(f"-{name}" if backwards else name for name in names))
        if position is not None:
            after = TupleLessThan if backwards else TupleGreaterThan
            queryset = queryset.filter(after(Tuple(*(F(name) for name in names)), position))
        rows = list(queryset[: self.page_size + 1])
        more = len(rows) > self.page_size
        rows = rows[: self.page_size]
        if reverse:
            rows.reverse()
        self.has_next = (more and not reverse) or (reverse and position is not None)
        self.has_previous = (more and reverse) or (not reverse and position is not None)
        self.first = self._position(rows[0]) if rows else None
        self.last = self._position(rows[-1]) if rows else None
        if not rows:
            self.has_next = self.has_previous = False
        return rows

    def _position(self, row) -> list:
        values = []
        for name in self.names:
            value = getattr(row, name)
            values.append(value.isoformat() if hasattr(value, "isoformat") else value)
        return values

    @staticmethod
    def encode_keyset(reverse: bool, position: list) -> str:
        """The cursor of a page after (or, reversed, before) the row at ``position``."""
        raw = json.dumps({"r": int(reverse), "p": position}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    def decode_keyset(self, request) -> tuple[bool, tuple | None]:
        encoded = request.query_params.get(self.cursor_query_param)
        if not encoded:
            return False, None
        try:
            raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            data = json.loads(raw)
            reverse, position = bool(data["r"]), data["p"]
            if not isinstance(position, list) or len(position) != len(self.names):
                raise ValueError
            values = tuple(
                self.model._meta.get_field(name).to_python(value)
                for name, value in zip(self.names, position, strict=True)
            )
            if any(value is None or not _storable(value) for value in values):
                raise ValueError
        except (ValueError, TypeError, KeyError, binascii.Error, DjangoValidationError):
            raise exceptions.ValidationError(
                {self.cursor_query_param: [self.invalid_cursor_message]}, code="invalid"
            ) from None
        return reverse, values

    def _link(self, reverse: bool, position) -> str:
        return replace_query_param(
            self.base_url, self.cursor_query_param, self.encode_keyset(reverse, position)
        )

    def get_next_link(self):
        return self._link(False, self.last) if self.has_next else None

    def get_previous_link(self):
        if not self.has_previous:
            return None
        return self._link(True, self.first)


def _storable(value) -> bool:
    """Ids fit a bigint; anything larger is no row's (and would be a database error)."""
    return not isinstance(value, int) or -MAX_BIGINT - 1 <= value <= MAX_BIGINT


class DatabaseSamplePagination(CompositeKeysetPagination):
    """Database by database (newest database id first), each newest day first: the order
    of the samples' primary key (database, day), read backwards."""

    ordering = ("-database_id", "-day")


class InstanceSamplePagination(CompositeKeysetPagination):
    """Instance by instance, each newest day first: the primary key (instance, day)."""

    ordering = ("-instance_id", "-day")


class AggregatePagination(CompositeKeysetPagination):
    """Newest period first; the id breaks ties between subjects of one period."""

    ordering = ("-period_start", "-id")


# --- Shared fields ------------------------------------------------------------------------


class InstanceBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)
    engine = serializers.ChoiceField(choices=Engine.choices, read_only=True)


def _limit_field(help_text) -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=0,
        max_value=MAX_BIGINT,
        allow_null=True,
        required=False,
        help_text=help_text,
    )


class ForecastSerializer(serializers.Serializer):
    """:class:`capacity.services.Forecast`."""

    growth_30d = serializers.FloatField(
        allow_null=True, help_text=_("Least-squares growth in bytes per day, last 30 days.")
    )
    growth_90d = serializers.FloatField(
        allow_null=True, help_text=_("Least-squares growth in bytes per day, last 90 days.")
    )
    limit_bytes = serializers.IntegerField(
        allow_null=True, help_text=_("The capacity limit, if one is set.")
    )
    projected_date = serializers.DateField(
        allow_null=True,
        help_text=_(
            "The day the limit is reached at the 30-day growth (90-day without one); "
            "empty without a limit or growth."
        ),
    )


class DateRangeFilter(django_filters.FilterSet):
    """``start`` and ``end``: inclusive days."""

    start = django_filters.DateFilter(
        field_name="day", lookup_expr="gte", label=_("From this day (inclusive).")
    )
    end = django_filters.DateFilter(
        field_name="day", lookup_expr="lte", label=_("Up to this day (inclusive).")
    )


class CapacityScopedMixin(InstanceScopedMixin):
    """Rows of the instances one may see; like the admin's capacity pages, refused (403) to
    whoever may see no instance at all rather than shown empty."""

    permission_classes = on_some_instance()


# --- Databases ----------------------------------------------------------------------------


class DatabaseSerializer(serializers.ModelSerializer):
    instance = InstanceBriefSerializer(read_only=True)
    capacity_limit_bytes = _limit_field(
        _("Optional size limit in bytes (null: none); the forecast tells when it is reached.")
    )
    limit_date = serializers.SerializerMethodField(
        help_text=_("The day the limit is reached at the 30-day growth; empty without one.")
    )
    is_removed = serializers.BooleanField(read_only=True)

    class Meta:
        model = Database
        fields = [
            "id", "instance", "name", "total_bytes", "data_bytes", "log_bytes",
            "growth_bytes_per_day", "capacity_limit_bytes", "limit_date", "collected_at",
            "first_seen_at", "last_seen_at", "removed_at", "is_removed",
        ]  # fmt: skip
        read_only_fields = [f for f in fields if f != "capacity_limit_bytes"]

    @extend_schema_field(serializers.DateField(allow_null=True))
    def get_limit_date(self, obj: Database):
        # As the ledger computes it: from the latest size and the stored growth.
        if obj.total_bytes is None or obj.collected_at is None:
            return None
        today = self.context.setdefault("today", timezone.localdate())
        return forecast.date_reached(
            timezone.localdate(obj.collected_at),
            obj.total_bytes,
            obj.growth_bytes_per_day,
            obj.capacity_limit_bytes,
            today=today,
        )

    def update(self, instance, validated_data):
        if "capacity_limit_bytes" in validated_data:
            instance.capacity_limit_bytes = validated_data["capacity_limit_bytes"]
            instance.save(update_fields=["capacity_limit_bytes"])
        return instance


class DatabaseFilter(django_filters.FilterSet):
    instance = IdFilter(field_name="instance_id")
    engine = django_filters.ChoiceFilter(field_name="instance__engine", choices=Engine.choices)
    removed = django_filters.BooleanFilter(
        field_name="removed_at",
        lookup_expr="isnull",
        exclude=True,
        label=_("true: removed databases only; false: present ones only."),
    )
    tag = django_filters.CharFilter(field_name="instance__tags__slug", label=_("Tag slug."))
    search = django_filters.CharFilter(
        field_name="name", lookup_expr="istartswith", label=_("Name starts with.")
    )

    class Meta:
        model = Database
        fields = ["instance", "engine", "removed", "tag"]


@extend_schema_view(
    list=extend_schema(summary="The database ledger"),
    retrieve=extend_schema(summary="One database"),
    partial_update=extend_schema(summary="Set or clear a database's capacity limit"),
)
class DatabaseViewSet(
    CapacityScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Databases (Oracle: tablespaces) with their latest size, growth and limit."""

    queryset = Database.objects.select_related("instance")
    serializer_class = DatabaseSerializer
    filterset_class = DatabaseFilter
    http_method_names = ["get", "patch", "head", "options"]
    # The admin lets whoever holds capacity.change_database edit the limit of every
    # database it shows, i.e. of the instances one may see.
    write_permission = VIEW_INSTANCE

    @extend_schema(
        summary="Growth and limit forecast of one database", responses=ForecastSerializer
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def forecast(self, request, pk=None):
        database = self.get_object()
        return Response(ForecastSerializer(services.forecast_database(database)).data)


router.register("capacity/databases", DatabaseViewSet, basename="capacity-database")


# --- Daily samples ------------------------------------------------------------------------


class DatabaseSampleSerializer(serializers.ModelSerializer):
    database = serializers.IntegerField(source="database_id", read_only=True)

    class Meta:
        model = DatabaseSizeSample
        fields = ["database", "day", "total_bytes", "data_bytes", "log_bytes", "collected_at"]
        read_only_fields = fields


class DatabaseSampleFilter(DateRangeFilter):
    database = IdFilter(field_name="database_id")
    instance = IdFilter(field_name="database__instance_id")

    class Meta:
        model = DatabaseSizeSample
        fields = ["database", "instance"]


@extend_schema_view(list=extend_schema(summary="Daily sizes of databases"))
class DatabaseSampleViewSet(CapacityScopedMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """One row per database per day; filter by database or instance and a range of days."""

    queryset = DatabaseSizeSample.objects.all()
    serializer_class = DatabaseSampleSerializer
    filterset_class = DatabaseSampleFilter
    pagination_class = DatabaseSamplePagination
    instance_field = "database__instance"
    # Shown on the database's admin page: whoever may see the database sees its history.
    action_permissions = {"list": ["capacity.view_database"]}


router.register(
    "capacity/database-samples", DatabaseSampleViewSet, basename="capacity-database-sample"
)


class InstanceSampleSerializer(serializers.ModelSerializer):
    instance = serializers.IntegerField(source="instance_id", read_only=True)

    class Meta:
        model = InstanceSizeSample
        fields = ["instance", "day", "total_bytes", "database_count", "collected_at"]
        read_only_fields = fields


class InstanceSampleFilter(DateRangeFilter):
    instance = IdFilter(field_name="instance_id")

    class Meta:
        model = InstanceSizeSample
        fields = ["instance"]


@extend_schema_view(list=extend_schema(summary="Daily sizes of instances"))
class InstanceSampleViewSet(CapacityScopedMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """One row per instance per day: total size and number of databases."""

    queryset = InstanceSizeSample.objects.all()
    serializer_class = InstanceSampleSerializer
    filterset_class = InstanceSampleFilter
    pagination_class = InstanceSamplePagination
    # Shown on the instance capacity page.
    action_permissions = {"list": ["capacity.view_instancecapacity"]}


router.register(
    "capacity/instance-samples", InstanceSampleViewSet, basename="capacity-instance-sample"
)


# --- Aggregates ---------------------------------------------------------------------------

_AGGREGATE_FIELDS = [
    "period_type", "period_start", "period_end", "avg_bytes", "min_bytes", "max_bytes",
    "sample_count", "change_bytes", "change_percent", "trend", "computed_at",
]  # fmt: skip


class DatabaseAggregateSerializer(serializers.ModelSerializer):
    database = serializers.IntegerField(source="database_id", read_only=True)
    period_type = serializers.ChoiceField(choices=AggregatePeriod.choices, read_only=True)
    trend = serializers.ChoiceField(choices=Trend.choices, read_only=True)

    class Meta:
        model = DatabaseSizeAggregate
        fields = ["id", "database", *_AGGREGATE_FIELDS]
        read_only_fields = fields


class InstanceAggregateSerializer(serializers.ModelSerializer):
    instance = serializers.IntegerField(source="instance_id", read_only=True)
    period_type = serializers.ChoiceField(choices=AggregatePeriod.choices, read_only=True)
    trend = serializers.ChoiceField(choices=Trend.choices, read_only=True)

    class Meta:
        model = InstanceSizeAggregate
        fields = ["id", "instance", *_AGGREGATE_FIELDS]
        read_only_fields = fields


class AggregateFilter(django_filters.FilterSet):
    period = django_filters.ChoiceFilter(field_name="period_type", choices=AggregatePeriod.choices)
    trend = django_filters.ChoiceFilter(choices=Trend.choices)
    start = django_filters.DateFilter(
        field_name="period_start", lookup_expr="gte", label=_("Periods starting on or after.")
    )
    end = django_filters.DateFilter(
        field_name="period_start", lookup_expr="lte", label=_("Periods starting on or before.")
    )


class DatabaseAggregateFilter(AggregateFilter):
    database = IdFilter(field_name="database_id")
    instance = IdFilter(field_name="database__instance_id")

    class Meta:
        model = DatabaseSizeAggregate
        fields = ["period", "trend", "database", "instance"]


class InstanceAggregateFilter(AggregateFilter):
    instance = IdFilter(field_name="instance_id")

    class Meta:
        model = InstanceSizeAggregate
        fields = ["period", "trend", "instance"]


@extend_schema_view(
    list=extend_schema(summary="Week, month and quarter figures of databases"),
    retrieve=extend_schema(summary="One period of one database"),
)
class DatabaseAggregateViewSet(CapacityScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Average, minimum, maximum and change against the previous period, per database."""

    queryset = DatabaseSizeAggregate.objects.all()
    serializer_class = DatabaseAggregateSerializer
    filterset_class = DatabaseAggregateFilter
    pagination_class = AggregatePagination
    instance_field = "database__instance"


router.register(
    "capacity/database-aggregates", DatabaseAggregateViewSet, basename="capacity-database-aggregate"
)


@extend_schema_view(
    list=extend_schema(summary="Week, month and quarter figures of instances"),
    retrieve=extend_schema(summary="One period of one instance"),
)
class InstanceAggregateViewSet(CapacityScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Average, minimum, maximum and change against the previous period, per instance."""

    queryset = InstanceSizeAggregate.objects.all()
    serializer_class = InstanceAggregateSerializer
    filterset_class = InstanceAggregateFilter
    pagination_class = AggregatePagination


router.register(
    "capacity/instance-aggregates", InstanceAggregateViewSet, basename="capacity-instance-aggregate"
)


# --- Capacity of one instance -------------------------------------------------------------


class InstanceCapacitySerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(
        source="pk", read_only=True, help_text=_("The instance's id, which is this row's.")
    )
    instance = InstanceBriefSerializer(read_only=True)
    capacity_limit_bytes = _limit_field(
        _("Optional size limit of the instance in bytes (null: none).")
    )

    class Meta:
        model = InstanceCapacity
        fields = [
            "id", "instance", "total_bytes", "database_count", "collected_at",
            "capacity_limit_bytes",
        ]  # fmt: skip
        read_only_fields = ["total_bytes", "database_count", "collected_at"]

    def update(self, instance, validated_data):
        if "capacity_limit_bytes" in validated_data:
            instance.capacity_limit_bytes = validated_data["capacity_limit_bytes"]
            instance.save(update_fields=["capacity_limit_bytes"])
        return instance


class InstanceDatabaseSerializer(serializers.ModelSerializer):
    class Meta:
        model = Database
        fields = [
            "id", "name", "total_bytes", "data_bytes", "log_bytes", "growth_bytes_per_day",
            "capacity_limit_bytes", "collected_at",
        ]  # fmt: skip
        read_only_fields = fields


class InstanceCapacitySummarySerializer(InstanceCapacitySerializer):
    """The instance's size, limit and forecast, and its present databases, largest first."""

    used_percent = serializers.SerializerMethodField(
        help_text=_("Size as a percentage of the limit; empty without a limit.")
    )
    forecast = serializers.SerializerMethodField()
    databases = serializers.SerializerMethodField()

    class Meta(InstanceCapacitySerializer.Meta):
        fields = [*InstanceCapacitySerializer.Meta.fields, "used_percent", "forecast", "databases"]

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_used_percent(self, obj: InstanceCapacity):
        if not obj.capacity_limit_bytes or obj.total_bytes is None:
            return None
        return round(obj.total_bytes * 100 / obj.capacity_limit_bytes, 2)

    @extend_schema_field(ForecastSerializer)
    def get_forecast(self, obj: InstanceCapacity):
        return ForecastSerializer(services.forecast_instance(obj.instance)).data

    @extend_schema_field(InstanceDatabaseSerializer(many=True))
    def get_databases(self, obj: InstanceCapacity):
        databases = Database.objects.filter(instance_id=obj.pk, removed_at__isnull=True).order_by(
            F("total_bytes").desc(nulls_last=True), "name"
        )
        return InstanceDatabaseSerializer(databases, many=True).data


class InstanceCapacityFilter(django_filters.FilterSet):
    engine = django_filters.ChoiceFilter(field_name="instance__engine", choices=Engine.choices)
    tag = django_filters.CharFilter(field_name="instance__tags__slug", label=_("Tag slug."))
    search = django_filters.CharFilter(
        field_name="instance__name", lookup_expr="istartswith", label=_("Name starts with.")
    )

    class Meta:
        model = InstanceCapacity
        fields = ["engine", "tag"]


_INSTANCE_ID = OpenApiParameter(
    "instance_id", OpenApiTypes.INT, OpenApiParameter.PATH, description=_("The instance's id.")
)


@extend_schema_view(
    list=extend_schema(summary="Size and limit of every instance"),
    retrieve=extend_schema(
        summary="Capacity of one instance",
        description=(
            "Total size, limit and its use, growth and forecast, and the present databases "
            "with their sizes. 404 until the instance's capacity is first collected."
        ),
        parameters=[_INSTANCE_ID],
    ),
    partial_update=extend_schema(
        summary="Set or clear an instance's capacity limit", parameters=[_INSTANCE_ID]
    ),
)
class InstanceCapacityViewSet(
    CapacityScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Capacity per instance, at ``/capacity/instances/{instance_id}/``."""

    queryset = InstanceCapacity.objects.select_related("instance")
    filterset_class = InstanceCapacityFilter
    http_method_names = ["get", "patch", "head", "options"]
    lookup_url_kwarg = "instance_id"
    write_permission = VIEW_INSTANCE  # as the admin: the limit of every instance one sees

    def get_serializer_class(self):
        if self.action == "list":
            return InstanceCapacitySerializer
        return InstanceCapacitySummarySerializer

    @extend_schema(
        summary="Growth and limit forecast of one instance",
        responses=ForecastSerializer,
        parameters=[_INSTANCE_ID],
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def forecast(self, request, instance_id=None):
        capacity = self.get_object()
        return Response(ForecastSerializer(services.forecast_instance(capacity.instance)).data)


router.register("capacity/instances", InstanceCapacityViewSet, basename="capacity-instance")

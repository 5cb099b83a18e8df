"""Databases of each instance, their daily sizes, period aggregates and table sizes.

The two daily sample tables are range-partitioned by month on PostgreSQL (see
``capacity.partitions``); their primary key is therefore (subject, day), which includes the
partition key as PostgreSQL requires.
"""

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from capacity.periods import Period
from inventory.models import Instance


class AggregatePeriod(models.TextChoices):
    WEEK = Period.WEEK.value, _("Week")
    MONTH = Period.MONTH.value, _("Month")
    QUARTER = Period.QUARTER.value, _("Quarter")


class Trend(models.TextChoices):
    GROWING = "growing", _("Growing")
    SHRINKING = "shrinking", _("Shrinking")
    STABLE = "stable", _("Stable")


def _bytes_field(verbose_name, help_text, *, null: bool = False) -> models.BigIntegerField:
    return models.BigIntegerField(
        verbose_name,
        null=null,
        blank=null,
        validators=[MinValueValidator(0)],
        help_text=help_text,
    )


def _non_negative(*fields: str) -> list[models.CheckConstraint]:
    """One named check per size column; NULL passes, as in SQL."""
    return [
        models.CheckConstraint(
            condition=Q(**{f"{name}__gte": 0}),
            name=f"%(app_label)s_%(class)s_{name}_non_negative",
        )
        for name in fields
    ]


# Shares of the capacity limit (percent) the ledger filters on and the dashboard counts.
LIMIT_USAGE_STEPS = (80, 90, 100)


def limit_used_at_least(databases: models.QuerySet, percent: int) -> models.QuerySet:
    """Those of ``databases`` with a limit whose latest size is at least ``percent`` % of it
    (compared in integers: size * 100 >= limit * percent)."""
    return (
        databases.filter(capacity_limit_bytes__gt=0, total_bytes__isnull=False)
        .alias(_used_hundredths=F("total_bytes") * 100)
        .filter(_used_hundredths__gte=F("capacity_limit_bytes") * percent)
    )


class DatabaseQuerySet(models.QuerySet):
    def visible_to(self, user, perm: str = "inventory.view_instance") -> "DatabaseQuerySet":
        """Databases of the instances ``user`` holds ``perm`` on."""
        if user is not None and user.is_active and user.has_perm(perm):
            return self
        return self.filter(instance__in=Instance.objects.visible_to(user, perm))

    def present(self) -> "DatabaseQuerySet":
        """Databases the last inventory sync still found."""
        return self.filter(removed_at__isnull=True)


class Database(models.Model):
    """A database (Oracle: a tablespace) of an instance, with its latest size."""

    instance = models.ForeignKey(
        Instance,
        on_delete=models.CASCADE,
        related_name="databases",
        verbose_name=_("instance"),
        help_text=_("The instance the database lives on."),
    )
    name = models.CharField(
        _("name"),
        max_length=255,
        help_text=_("Database (Oracle: tablespace) name, in the case the instance reports."),
    )
    first_seen_at = models.DateTimeField(
        _("first seen"), help_text=_("When an inventory sync first found the database.")
    )
    last_seen_at = models.DateTimeField(
        _("last seen"), help_text=_("When an inventory sync last found the database.")
    )
    removed_at = models.DateTimeField(
        _("removed at"),
        null=True,
        blank=True,
        help_text=_("When an inventory sync found it gone; empty while it exists."),
    )
    total_bytes = _bytes_field(
        _("size"), _("Latest total size in bytes; empty until first collected."), null=True
    )
    data_bytes = _bytes_field(
        _("data size"),
        _("Latest size of the data files in bytes; empty when not reported separately."),
        null=True,
    )
    log_bytes = _bytes_field(
        _("log size"),
        _("Latest size of the log files in bytes (SQL Server); empty when not reported."),
        null=True,
    )
    collected_at = models.DateTimeField(
        _("last collected"),
        null=True,
        blank=True,
        help_text=_("When the latest size was collected."),
    )
    capacity_limit_bytes = _bytes_field(
        _("capacity limit"),
        _("Optional size limit in bytes; the forecast tells when it will be reached."),
        null=True,
    )
    growth_bytes_per_day = models.FloatField(
        _("growth per day"),
        null=True,
        blank=True,
        editable=False,
        help_text=_(
            "Least-squares growth over the last 30 days, refreshed by every collection; "
            "empty with fewer than two days of samples."
        ),
    )

    objects = DatabaseQuerySet.as_manager()

    class Meta:
        ordering = ["instance", "name"]
        verbose_name = _("database")
        verbose_name_plural = _("databases")
        constraints = [
            models.UniqueConstraint(
                fields=["instance", "name"], name="%(app_label)s_%(class)s_instance_name_unique"
            ),
            models.CheckConstraint(
                condition=~Q(name=""), name="%(app_label)s_%(class)s_name_not_blank"
            ),
            models.CheckConstraint(
                condition=Q(last_seen_at__gte=F("first_seen_at")),
                name="%(app_label)s_%(class)s_seen_in_order",
            ),
            *_non_negative("total_bytes", "data_bytes", "log_bytes", "capacity_limit_bytes"),
        ]
        indexes = [
            models.Index(fields=["instance", "removed_at"], name="capacity_database_present_idx"),
            models.Index(fields=["name"], name="capacity_database_name_idx"),
            # Sorting the ledger by size uses capacity_database_size_idx, created on
            # PostgreSQL only by migration 0002 (SQLite cannot index NULLS LAST).
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_removed(self) -> bool:
        return self.removed_at is not None


class InstanceCapacity(models.Model):
    """The latest size of an instance and its optional capacity limit."""

    instance = models.OneToOneField(
        Instance,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="capacity",
        verbose_name=_("instance"),
        help_text=_("The instance these figures belong to."),
    )
    total_bytes = _bytes_field(
        _("size"),
        _("Latest total size of its present databases in bytes; empty until collected."),
        null=True,
    )
    database_count = models.PositiveIntegerField(
        _("databases"),
        null=True,
        blank=True,
        help_text=_("Number of databases in the latest collection."),
    )
    collected_at = models.DateTimeField(
        _("last collected"),
        null=True,
        blank=True,
        help_text=_("When the latest size was collected."),
    )
    capacity_limit_bytes = _bytes_field(
        _("capacity limit"),
        _("Optional size limit in bytes; the forecast tells when it will be reached."),
        null=True,
    )

    class Meta:
        verbose_name = _("instance capacity")
        verbose_name_plural = _("instance capacities")
        constraints = _non_negative("total_bytes", "capacity_limit_bytes")

    def __str__(self) -> str:
        return str(self.instance)


class DatabaseSizeSample(models.Model):
    """The size of one database on one day; collecting the day again overwrites it."""

    pk = models.CompositePrimaryKey("database", "day")
    database = models.ForeignKey(
        Database,
        on_delete=models.CASCADE,
        related_name="size_samples",
        db_index=False,  # the primary key (database, day) already leads with it
        verbose_name=_("database"),
        help_text=_("The database that was measured."),
    )
    day = models.DateField(_("day"), help_text=_("Day of the collection (partition key)."))
    total_bytes = _bytes_field(_("size"), _("Total size in bytes."))
    data_bytes = _bytes_field(
        _("data size"),
        _("Size of the data files in bytes; empty when not reported separately."),
        null=True,
    )
    log_bytes = _bytes_field(
        _("log size"),
        _("Size of the log files in bytes (SQL Server); empty when not reported."),
        null=True,
    )
    collected_at = models.DateTimeField(
        _("collected at"), help_text=_("When the size was read from the instance.")
    )

    class Meta:
        verbose_name = _("database size sample")
        verbose_name_plural = _("database size samples")
        constraints = _non_negative("total_bytes", "data_bytes", "log_bytes")

    def __str__(self) -> str:
        return f"{self.database_id} @ {self.day:%Y-%m-%d}"


class InstanceSizeSample(models.Model):
    """The total size and database count of one instance on one day."""

    pk = models.CompositePrimaryKey("instance", "day")
    instance = models.ForeignKey(
        Instance,
        on_delete=models.CASCADE,
        related_name="size_samples",
        db_index=False,  # the primary key (instance, day) already leads with it
        verbose_name=_("instance"),
        help_text=_("The instance that was measured."),
    )
    day = models.DateField(_("day"), help_text=_("Day of the collection (partition key)."))
    total_bytes = _bytes_field(_("size"), _("Sum of the sizes of its present databases."))
    database_count = models.PositiveIntegerField(
        _("databases"), help_text=_("Number of databases measured that day.")
    )
    collected_at = models.DateTimeField(
        _("collected at"), help_text=_("When the sizes were read from the instance.")
    )

    class Meta:
        verbose_name = _("instance size sample")
        verbose_name_plural = _("instance size samples")
        constraints = _non_negative("total_bytes")

    def __str__(self) -> str:
        return f"{self.instance_id} @ {self.day:%Y-%m-%d}"


class SizeAggregate(models.Model):
    """Abstract base: size statistics of one subject over one week, month or quarter."""

    period_type = models.CharField(
        _("period"),
        max_length=10,
        choices=AggregatePeriod.choices,
        help_text=_("Week (Monday to Sunday), month or quarter."),
    )
    period_start = models.DateField(_("from"), help_text=_("First day of the period."))
    period_end = models.DateField(_("to"), help_text=_("Last day of the period (inclusive)."))
    avg_bytes = _bytes_field(_("average size"), _("Mean of the daily sizes, in bytes."))
    min_bytes = _bytes_field(_("minimum size"), _("Smallest daily size, in bytes."))
    max_bytes = _bytes_field(_("maximum size"), _("Largest daily size, in bytes."))
    sample_count = models.PositiveIntegerField(
        _("samples"), help_text=_("Number of days with a sample in the period.")
    )
    change_bytes = models.BigIntegerField(
        _("change"),
        help_text=_("Average minus the previous period's average, in bytes; 0 without one."),
    )
    change_percent = models.DecimalField(
        _("change %"),
        max_digits=24,
        decimal_places=2,
        help_text=_("Change relative to the previous period's average; 0 without one."),
    )
    trend = models.CharField(
        _("trend"),
        max_length=10,
        choices=Trend.choices,
        help_text=_("Growing above +5 %, shrinking below −5 %, else stable."),
    )
    computed_at = models.DateTimeField(
        _("computed at"), help_text=_("When the aggregation last wrote this row.")
    )

    class Meta:
        abstract = True
        constraints = [
            models.CheckConstraint(
                condition=Q(period_type__in=AggregatePeriod.values),
                name="%(app_label)s_%(class)s_period_type_valid",
            ),
            models.CheckConstraint(
                condition=Q(trend__in=Trend.values), name="%(app_label)s_%(class)s_trend_valid"
            ),
            models.CheckConstraint(
                condition=Q(period_end__gte=F("period_start")),
                name="%(app_label)s_%(class)s_period_in_order",
            ),
            models.CheckConstraint(
                condition=Q(sample_count__gte=1), name="%(app_label)s_%(class)s_has_samples"
            ),
            models.CheckConstraint(
                condition=Q(min_bytes__gte=0)
                & Q(avg_bytes__gte=F("min_bytes"))
                & Q(max_bytes__gte=F("avg_bytes")),
                name="%(app_label)s_%(class)s_min_avg_max_ordered",
            ),
        ]


class DatabaseSizeAggregate(SizeAggregate):
    """Size statistics of one database over one period."""

    database = models.ForeignKey(
        Database,
        on_delete=models.CASCADE,
        related_name="size_aggregates",
        verbose_name=_("database"),
        help_text=_("The database the figures describe."),
    )

    class Meta(SizeAggregate.Meta):
        verbose_name = _("database size aggregate")
        verbose_name_plural = _("database size aggregates")
        constraints = [
            models.UniqueConstraint(
                fields=["database", "period_type", "period_start"],
                name="%(app_label)s_%(class)s_period_unique",
            ),
            *SizeAggregate.Meta.constraints,
        ]
        indexes = [
            models.Index(fields=["period_type", "period_start"], name="capacity_dbagg_period_idx")
        ]

    def __str__(self) -> str:
        return f"{self.database_id} {self.period_type} {self.period_start:%Y-%m-%d}"


class InstanceSizeAggregate(SizeAggregate):
    """Size statistics of one instance (daily totals) over one period."""

    instance = models.ForeignKey(
        Instance,
        on_delete=models.CASCADE,
        related_name="size_aggregates",
        verbose_name=_("instance"),
        help_text=_("The instance the figures describe."),
    )

    class Meta(SizeAggregate.Meta):
        verbose_name = _("instance size aggregate")
        verbose_name_plural = _("instance size aggregates")
        constraints = [
            models.UniqueConstraint(
                fields=["instance", "period_type", "period_start"],
                name="%(app_label)s_%(class)s_period_unique",
            ),
            *SizeAggregate.Meta.constraints,
        ]
        indexes = [
            models.Index(fields=["period_type", "period_start"], name="capacity_instagg_period_idx")
        ]

    def __str__(self) -> str:
        return f"{self.instance_id} {self.period_type} {self.period_start:%Y-%m-%d}"


class TableSizeSnapshot(models.Model):
    """The latest size of one table of a database; refreshed on demand, no history."""

    database = models.ForeignKey(
        Database,
        on_delete=models.CASCADE,
        related_name="table_sizes",
        verbose_name=_("database"),
        help_text=_("The database the table belongs to."),
    )
    schema_name = models.CharField(
        _("schema"),
        max_length=255,
        blank=True,
        help_text=_("Schema (owner) of the table; empty where the engine has none (MySQL)."),
    )
    table_name = models.CharField(_("table"), max_length=255, help_text=_("Table name."))
    row_count = models.BigIntegerField(
        _("rows"),
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text=_("Row count as the engine's statistics estimate it."),
    )
    data_bytes = _bytes_field(_("data size"), _("Size of the table data in bytes."), null=True)
    index_bytes = _bytes_field(_("index size"), _("Size of its indexes in bytes."), null=True)
    total_bytes = _bytes_field(_("size"), _("Total size in bytes (data, indexes, LOBs)."))
    collected_at = models.DateTimeField(
        _("collected at"), help_text=_("When the size was read from the instance.")
    )

    class Meta:
        ordering = ["database", "-total_bytes"]
        verbose_name = _("table size")
        verbose_name_plural = _("table sizes")
        constraints = [
            models.UniqueConstraint(
                fields=["database", "schema_name", "table_name"],
                name="%(app_label)s_%(class)s_table_unique",
            ),
            models.CheckConstraint(
                condition=~Q(table_name=""), name="%(app_label)s_%(class)s_table_not_blank"
            ),
            *_non_negative("row_count", "data_bytes", "index_bytes", "total_bytes"),
        ]

    def __str__(self) -> str:
        return f"{self.schema_name}.{self.table_name}" if self.schema_name else self.table_name

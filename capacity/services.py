"""Capacity collection, table sizes, period aggregates and forecasts (SPEC §7).

Collection of one instance reads everything remote first (the databases, then their sizes
in one statement), closes the connection, and then writes in one short transaction: the
inventory of databases, the latest sizes, and today's samples. A listing that comes back
empty where databases existed fails the collection and removes nothing.

Aggregates are computed in the database: per level (database, instance) one
``INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE`` over the period's samples, joined
to the previous period's averages, so no sample travels to Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import structlog
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Model
from django.urls import reverse
from django.utils import timezone

from capacity import forecast
from capacity.models import (
    AggregatePeriod,
    Database,
    DatabaseSizeAggregate,
    DatabaseSizeSample,
    InstanceCapacity,
    InstanceSizeAggregate,
    InstanceSizeSample,
    TableSizeSnapshot,
    Trend,
)
from capacity.partitions import partition_ensure, samples_upsert
from capacity.periods import previous_window, window
from inventory.engines.base import DatabaseSize, connect
from inventory.models import Instance
from whalefall import alerts

log = structlog.get_logger(__name__)

BATCH = 2000

# Engines whose databases have log files of their own. Elsewhere the logs belong to the
# whole server, the engine reports 0 for them, and no log size is stored ("not reported").
ENGINES_WITH_DATABASE_LOGS = frozenset({"sqlserver"})
# Engines whose table "schema" is the database itself: the snapshot stores no schema.
ENGINES_WITHOUT_SCHEMAS = frozenset({"mysql"})

# Trend thresholds: growing above +5 %, shrinking below -5 % of the previous average.
TREND_PERCENT = 5

FORECAST_DAYS = (30, 90)


class CollectionRefused(Exception):
    """The collection would act on an incomplete listing; nothing was written."""

    fail_closed = True


# --- Collection -------------------------------------------------------------------------


@dataclass
class CollectOutcome:
    """What one capacity collection of one instance did (the run item's counts).

    ``created``: databases new to the inventory; ``removed``: databases gone from the
    instance; ``restored``: databases that reappeared after being marked removed;
    ``changed``: databases whose size changed; ``unchanged``: the others still present.
    """

    created: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    restored: int = 0
    remote_queries: int = 0
    detail: dict[str, Any] = field(default_factory=dict)


def _read_sizes(instance: Instance) -> tuple[list[str], dict[str, DatabaseSize], int]:
    """All remote work: list the databases, size them in one go, disconnect."""
    with connect(instance) as engine:
        records = engine.run(engine.list_databases)
        names = sorted({record.name for record in records})
        sizes = engine.run(engine.database_sizes, names) if names else []
        queries = engine.queries
    listed = set(names)
    return names, {size.name: size for size in sizes if size.name in listed}, queries


def capacity_collect_instance(*, instance: Instance, run_id: int | None = None) -> CollectOutcome:
    """Collect the databases and sizes of one instance (the capacity run's handler).

    Re-collecting on the same day overwrites that day's samples.
    """
    log.info("capacity_collect_started", instance_id=instance.pk, run_id=run_id)
    names, sizes, queries = _read_sizes(instance)
    now = timezone.now()
    day = timezone.localdate(now)
    # Creating a partition locks the parent table: never while holding row locks.
    partition_ensure(day)
    outcome = _write(instance=instance, names=names, sizes=sizes, now=now, day=day)
    outcome.remote_queries = queries
    database_growth_refresh(instance_ids=[instance.pk], today=day)
    capacity_alerts_emit(instance=instance, today=day)
    log.info(
        "capacity_collect_finished",
        instance_id=instance.pk,
        run_id=run_id,
        created=outcome.created,
        changed=outcome.changed,
        removed=outcome.removed,
        restored=outcome.restored,
        unchanged=outcome.unchanged,
        total_bytes=outcome.detail["total_bytes"],
        remote_queries=queries,
    )
    return outcome


def _write(
    *,
    instance: Instance,
    names: list[str],
    sizes: dict[str, DatabaseSize],
    now: datetime,
    day: date,
) -> CollectOutcome:
    """Compare with the stored inventory and write inventory, samples and latest sizes.

    Only new databases are written as model objects; everything else is a set-based
    UPDATE or DELETE, and the latest sizes are copied from the day's samples in one
    statement.
    """
    outcome = CollectOutcome()
    with_logs = instance.engine in ENGINES_WITH_DATABASE_LOGS
    with transaction.atomic():
        stored = {
            name: (pk, removed_at, total)
            for pk, name, removed_at, total in Database.objects.filter(
                instance=instance
            ).values_list("pk", "name", "removed_at", "total_bytes")
        }
        present_before = sum(1 for _pk, removed_at, _total in stored.values() if not removed_at)
        if not names and present_before:
            raise CollectionRefused(
                f"the instance listed no databases where {present_before} existed; "
                "nothing was marked removed"
            )
        if names and not sizes:
            raise CollectionRefused(
                f"the instance listed {len(names)} database(s) but sized none of them; "
                "nothing was written"
            )

        new: list[str] = []
        for name in names:
            row = stored.get(name)
            if row is None:
                new.append(name)
            elif row[1] is not None:
                outcome.restored += 1
            elif name in sizes and sizes[name].total_bytes != row[2]:
                outcome.changed += 1
            else:
                outcome.unchanged += 1
        listed = set(names)
        gone = [
            pk for name, (pk, removed, _t) in stored.items() if name not in listed and not removed
        ]
        outcome.created, outcome.removed = len(new), len(gone)

        created = Database.objects.bulk_create(
            [
                Database(instance=instance, name=name, first_seen_at=now, last_seen_at=now)
                for name in new
            ],
            batch_size=BATCH,
        )
        ids = {name: row[0] for name, row in stored.items()} | {d.name: d.pk for d in created}
        if gone:
            Database.objects.filter(pk__in=gone).update(removed_at=now)
        # Listed, then gone before it could be sized: present, but nothing to sample.
        unsized = [ids[name] for name in names if name not in sizes]
        if unsized:
            Database.objects.filter(pk__in=unsized).update(last_seen_at=now, removed_at=None)

        # The day's samples: what was measured now replaces what an earlier run that day
        # wrote, and databases no longer measured lose theirs.
        if gone or unsized:
            DatabaseSizeSample.objects.filter(day=day, database_id__in=gone + unsized).delete()
        samples_upsert(
            [
                DatabaseSizeSample(
                    database_id=ids[size.name],
                    day=day,
                    total_bytes=size.total_bytes,
                    data_bytes=size.data_bytes,
                    log_bytes=size.log_bytes if with_logs else None,
                    collected_at=now,
                )
                for size in sizes.values()
            ]
        )
        _latest_from_samples(instance=instance, day=day, now=now)

        total = sum(size.total_bytes for size in sizes.values())
        samples_upsert(
            [
                InstanceSizeSample(
                    instance=instance,
                    day=day,
                    total_bytes=total,
                    database_count=len(sizes),
                    collected_at=now,
                )
            ]
        )
        InstanceCapacity.objects.bulk_create(
            [
                InstanceCapacity(
                    instance=instance,
                    total_bytes=total,
                    database_count=len(sizes),
                    collected_at=now,
                )
            ],
            update_conflicts=True,
            unique_fields=["instance"],
            update_fields=["total_bytes", "database_count", "collected_at"],
        )
    outcome.detail = {
        "day": day.isoformat(),
        "databases": len(names),
        "sampled": len(sizes),
        "total_bytes": total,
    }
    if unsized:
        missing = [name for name in names if name not in sizes]
        outcome.detail["unsized"] = missing[:20]
        outcome.detail["problems"] = [
            f"{len(missing)} listed database(s) returned no size, e.g. {missing[0]!r}"
        ]
    return outcome


def _latest_from_samples(*, instance: Instance, day: date, now: datetime) -> int:
    """Copy the day's samples onto the instance's databases as their latest sizes, marking
    them seen: one ``UPDATE … FROM`` join (PostgreSQL, SQLite 3.33+), no object per row."""
    connection = connections[DEFAULT_DB_ALIAS]
    quote, ops = connection.ops.quote_name, connection.ops
    databases, samples = (quote(m._meta.db_table) for m in (Database, DatabaseSizeSample))

    def column(model: type[Model], name: str) -> str:
        return quote(model._meta.get_field(name).column)

    pk = quote(Database._meta.pk.column)
    sizes = ", ".join(
        f"{column(Database, name)} = {samples}.{column(DatabaseSizeSample, name)}"
        for name in ("total_bytes", "data_bytes", "log_bytes")
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {databases}
            SET {column(Database, "last_seen_at")} = %(now)s,
                {column(Database, "removed_at")} = NULL,
                {column(Database, "collected_at")} = %(now)s,
                {sizes}
            FROM {samples}
            WHERE {samples}.{column(DatabaseSizeSample, "database")} = {databases}.{pk}
              AND {samples}.{column(DatabaseSizeSample, "day")} = %(day)s
              AND {databases}.{column(Database, "instance")} = %(instance)s
            """,  # noqa: S608  (identifiers quoted by the backend, values bound)
            {
                "now": ops.adapt_datetimefield_value(now),
                "day": ops.adapt_datefield_value(day),
                "instance": instance.pk,
            },
        )
        return cursor.rowcount


# --- Table sizes ------------------------------------------------------------------------


def table_sizes_refresh(*, database: Database) -> int:
    """Replace the table-size snapshot of ``database`` with the instance's current figures.

    Returns the number of tables stored.
    """
    instance = database.instance
    with connect(instance) as engine:
        tables = engine.run(engine.table_sizes, database.name)
    now = timezone.now()
    without_schema = instance.engine in ENGINES_WITHOUT_SCHEMAS
    with transaction.atomic():
        TableSizeSnapshot.objects.filter(database=database).delete()
        TableSizeSnapshot.objects.bulk_create(
            [
                TableSizeSnapshot(
                    database=database,
                    schema_name="" if without_schema else table.schema,
                    table_name=table.table,
                    row_count=table.rows,
                    data_bytes=table.data_bytes,
                    index_bytes=table.index_bytes,
                    total_bytes=table.total_bytes,
                    collected_at=now,
                )
                for table in tables
            ],
            batch_size=BATCH,
        )
    log.info(
        "capacity_table_sizes_refreshed",
        instance_id=instance.pk,
        database_id=database.pk,
        tables=len(tables),
    )
    return len(tables)


# --- Aggregates -------------------------------------------------------------------------

AGGREGATE_LEVELS: tuple[tuple[str, type[Model], type[Model], str], ...] = (
    ("databases", DatabaseSizeAggregate, DatabaseSizeSample, "database"),
    ("instances", InstanceSizeAggregate, InstanceSizeSample, "instance"),
)


def _aggregate_sql(connection, aggregate: type[Model], sample: type[Model], subject: str) -> str:
    """The upsert of one level's aggregates for one window, with named parameters.

    Averages are rounded to whole bytes before anything is derived from them, so the change
    is exactly the difference of the two stored averages. The trend compares the exact
    change with 5 % of the previous average (20 times the change against it), so growth
    from a previous average of 0 reads as growing while its percent stays 0.
    """
    quote = connection.ops.quote_name

    def column(model: type[Model], name: str) -> str:
        return quote(model._meta.get_field(name).column)

    subject_column, size, day = (column(sample, n) for n in (subject, "total_bytes", "day"))
    samples = quote(sample._meta.db_table)
    target = [
        column(aggregate, name)
        for name in (
            subject, "period_type", "period_start", "period_end", "avg_bytes", "min_bytes",
            "max_bytes", "sample_count", "change_bytes", "change_percent", "trend", "computed_at",
        )
    ]  # fmt: skip
    key = ", ".join(target[:3])
    updates = ",\n            ".join(f"{name} = EXCLUDED.{name}" for name in target[3:])
    factor = 100 // TREND_PERCENT
    return f"""
        INSERT INTO {quote(aggregate._meta.db_table)} ({", ".join(target)})
        SELECT cur.subject, %(period)s, %(start)s, %(end)s,
               cur.avg_bytes, cur.min_bytes, cur.max_bytes, cur.samples,
               COALESCE(cur.avg_bytes - prev.avg_bytes, 0),
               CASE WHEN prev.avg_bytes > 0
                    THEN ROUND((cur.avg_bytes - prev.avg_bytes) * 100.0 / prev.avg_bytes, 2)
                    ELSE 0 END,
               CASE WHEN prev.avg_bytes IS NULL THEN %(stable)s
                    WHEN (cur.avg_bytes - prev.avg_bytes) * {factor} > prev.avg_bytes
                        THEN %(growing)s
                    WHEN (cur.avg_bytes - prev.avg_bytes) * {factor} < -prev.avg_bytes
                        THEN %(shrinking)s
                    ELSE %(stable)s END,
               %(now)s
        FROM (
            SELECT {subject_column} AS subject,
                   CAST(ROUND(AVG({size})) AS BIGINT) AS avg_bytes,
                   MIN({size}) AS min_bytes, MAX({size}) AS max_bytes, COUNT(*) AS samples
            FROM {samples}
            WHERE {day} BETWEEN %(start)s AND %(end)s
            GROUP BY {subject_column}
        ) cur
        LEFT JOIN (
            SELECT {subject_column} AS subject, CAST(ROUND(AVG({size})) AS BIGINT) AS avg_bytes
            FROM {samples}
            WHERE {day} BETWEEN %(previous_start)s AND %(previous_end)s
            GROUP BY {subject_column}
        ) prev ON prev.subject = cur.subject
        WHERE 1 = 1
        ON CONFLICT ({key}) DO UPDATE SET
            {updates}
    """  # noqa: S608  (identifiers quoted by the backend, values bound)


def _stale_aggregates_sql(
    connection, aggregate: type[Model], sample: type[Model], subject: str
) -> str:
    """The delete of one level's aggregates of the window whose subject no longer has a
    sample in it (its month was dropped by the retention, say): a re-run leaves exactly
    what the samples say."""
    quote = connection.ops.quote_name
    aggregates, samples = quote(aggregate._meta.db_table), quote(sample._meta.db_table)
    subject_in_aggregate = quote(aggregate._meta.get_field(subject).column)
    subject_in_sample = quote(sample._meta.get_field(subject).column)
    period_type = quote(aggregate._meta.get_field("period_type").column)
    period_start = quote(aggregate._meta.get_field("period_start").column)
    day = quote(sample._meta.get_field("day").column)
    return f"""
        DELETE FROM {aggregates}
        WHERE {period_type} = %(period)s AND {period_start} = %(start)s
          AND NOT EXISTS (
              SELECT 1 FROM {samples} s
              WHERE s.{subject_in_sample} = {aggregates}.{subject_in_aggregate}
                AND s.{day} BETWEEN %(start)s AND %(end)s
          )
    """  # noqa: S608  (identifiers quoted by the backend, values bound)


def aggregates_compute(
    *, period: str, day: date | None = None, current: bool = False
) -> dict[str, Any]:
    """Upsert the database and instance aggregates of one week, month or quarter.

    By default the last complete period before ``day`` (today), as the schedule wants; with
    ``current`` the still open period containing ``day``. Idempotent: aggregates of
    subjects left without samples in the window are deleted. Returns ``{"period", "start",
    "end", "previous_start", "previous_end", "databases", "instances", "databases_removed",
    "instances_removed"}``: rows written and deleted per level.
    """
    period = AggregatePeriod(period)
    day = day or timezone.localdate()
    start, end = window(period, day) if current else previous_window(period, day)
    previous_start, previous_end = previous_window(period, start)
    connection = connections[DEFAULT_DB_ALIAS]
    ops = connection.ops
    params = {
        "period": period.value,
        "start": ops.adapt_datefield_value(start),
        "end": ops.adapt_datefield_value(end),
        "previous_start": ops.adapt_datefield_value(previous_start),
        "previous_end": ops.adapt_datefield_value(previous_end),
        "growing": Trend.GROWING.value,
        "shrinking": Trend.SHRINKING.value,
        "stable": Trend.STABLE.value,
        "now": ops.adapt_datetimefield_value(timezone.now()),
    }
    result: dict[str, Any] = {
        "period": period.value,
        "start": start,
        "end": end,
        "previous_start": previous_start,
        "previous_end": previous_end,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        for label, aggregate, sample, subject in AGGREGATE_LEVELS:
            cursor.execute(_aggregate_sql(connection, aggregate, sample, subject), params)
            result[label] = max(cursor.rowcount, 0)
            cursor.execute(_stale_aggregates_sql(connection, aggregate, sample, subject), params)
            result[f"{label}_removed"] = max(cursor.rowcount, 0)
    log.info(
        "capacity_aggregated",
        period=period.value,
        start=start.isoformat(),
        end=end.isoformat(),
        current=current,
        databases=result["databases"],
        instances=result["instances"],
    )
    return result


def aggregates_compute_all(
    *, day: date | None = None, current: bool = False
) -> dict[str, dict[str, Any]]:
    """Run :func:`aggregates_compute` for week, month and quarter; results by period."""
    day = day or timezone.localdate()
    return {
        period.value: aggregates_compute(period=period, day=day, current=current)
        for period in AggregatePeriod
    }


# --- Forecast ---------------------------------------------------------------------------


def database_growth_refresh(*, instance_ids: list[int], today: date | None = None) -> int:
    """Store each database's 30-day least-squares growth on its row (the ledger reads it).

    One UPDATE on PostgreSQL (``regr_slope`` per database); elsewhere the samples are fitted
    here. Databases without two days of samples get none. Returns the rows updated.
    """
    today = today or timezone.localdate()
    since = today - timedelta(days=FORECAST_DAYS[0])
    databases = Database.objects.filter(instance_id__in=instance_ids)
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor == "postgresql":
        quote = connection.ops.quote_name
        sample = quote(DatabaseSizeSample._meta.db_table)
        table = quote(Database._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS d SET growth_bytes_per_day = ("  # noqa: S608
                f"SELECT regr_slope(s.total_bytes, s.day - %s::date) FROM {sample} AS s "
                "WHERE s.database_id = d.id AND s.day > %s AND s.day <= %s) "
                "WHERE d.instance_id = ANY(%s)",
                [since, since, today, list(instance_ids)],
            )
            return cursor.rowcount
    points: dict[int, list[tuple[date, int]]] = {
        pk: [] for pk in databases.values_list("pk", flat=True)
    }
    for database_id, day, total in DatabaseSizeSample.objects.filter(
        database_id__in=list(points), day__gt=since, day__lte=today
    ).values_list("database_id", "day", "total_bytes"):
        points[database_id].append((day, total))
    rows = [
        Database(pk=pk, growth_bytes_per_day=forecast.growth_per_day(samples))
        for pk, samples in points.items()
    ]
    Database.objects.bulk_update(rows, ["growth_bytes_per_day"], batch_size=1000)
    return len(rows)


# Forecasts further out than this raise no alert event (rules ask for N days ahead).
ALERT_HORIZON_DAYS = 366
# The period growth alerts compare: today's instance size against the earliest sample in it.
GROWTH_PERIOD_DAYS = 30


def capacity_alerts_emit(*, instance: Instance, today: date) -> None:
    """Alert events of one instance's fresh sizes, once a day each: the instance and its
    databases with a capacity limit forecast to be reached (days to it; rules compare N),
    and the instance's growth over the last 30 days in percent (rules compare X)."""
    events: list[dict[str, Any]] = []

    def forecast_event(target: str, key: str, reached: date | None, path: str) -> None:
        if reached is None or (days := (reached - today).days) > ALERT_HORIZON_DAYS:
            return
        events.append(
            {
                "instance": instance,
                "payload": {
                    "instance": instance.name,
                    "target": target,
                    "days_to_limit": days,
                    "reached_on": reached.isoformat(),
                    "path": path,
                },
                "dedup_key": f"forecast:{key}:{today.isoformat()}",
            }
        )

    limited = Database.objects.filter(
        instance=instance,
        removed_at__isnull=True,
        capacity_limit_bytes__isnull=False,
        growth_bytes_per_day__isnull=False,
    ).values_list("pk", "name", "total_bytes", "capacity_limit_bytes", "growth_bytes_per_day")
    for pk, name, total, limit, growth in limited:
        reached = forecast.date_reached(today, total or 0, growth, limit, today=today)
        path = reverse("admin:capacity_database_change", args=[pk])
        forecast_event(name, f"database:{pk}", reached, path)
    whole = forecast_instance(instance, today=today)
    if whole.limit_bytes is not None:
        path = reverse("admin:inventory_instance_change", args=[instance.pk])
        forecast_event(instance.name, f"instance:{instance.pk}", whole.projected_date, path)
    if events:
        alerts.emit_many("capacity_forecast", events)

    sizes = list(
        InstanceSizeSample.objects.filter(
            instance=instance,
            day__gte=today - timedelta(days=GROWTH_PERIOD_DAYS),
            day__lte=today,
        )
        .order_by("day")
        .values_list("day", "total_bytes")
    )
    if len(sizes) >= 2 and sizes[0][1] > 0 and sizes[-1][0] == today:
        percent = round((sizes[-1][1] - sizes[0][1]) * 100 / sizes[0][1], 1)
        if percent > 0:
            alerts.emit(
                "capacity_growth",
                instance=instance,
                payload={
                    "instance": instance.name,
                    "target": instance.name,
                    "growth_percent": percent,
                    "period": f"{(today - sizes[0][0]).days} days",
                    "from_bytes": sizes[0][1],
                    "to_bytes": sizes[-1][1],
                },
                dedup_key=f"growth:{instance.pk}:{today.isoformat()}",
            )


@dataclass(frozen=True)
class Forecast:
    """Growth of a database or instance in bytes per day over the last 30 and 90 days, and
    the day it reaches its capacity limit at the 30-day growth (90-day without one)."""

    growth_30d: float | None
    growth_90d: float | None
    limit_bytes: int | None
    projected_date: date | None


def _forecast(points: list[tuple[date, int]], limit: int | None, today: date) -> Forecast:
    recent = [point for point in points if point[0] > today - timedelta(days=FORECAST_DAYS[0])]
    growth_30d = forecast.growth_per_day(recent)
    basis = recent if growth_30d is not None else points
    return Forecast(
        growth_30d=growth_30d,
        growth_90d=forecast.growth_per_day(points),
        limit_bytes=limit,
        projected_date=forecast.projected_date(basis, limit, today=today),
    )


def _since(today: date) -> date:
    return today - timedelta(days=FORECAST_DAYS[-1] - 1)


def forecast_database(database: Database, *, today: date | None = None) -> Forecast:
    """Growth and limit forecast of one database, from its samples of the last 90 days."""
    today = today or timezone.localdate()
    points = list(
        DatabaseSizeSample.objects.filter(
            database=database, day__gte=_since(today), day__lte=today
        ).values_list("day", "total_bytes")
    )
    return _forecast(points, database.capacity_limit_bytes, today)


def forecast_instance(instance: Instance, *, today: date | None = None) -> Forecast:
    """Growth and limit forecast of one instance, from its samples of the last 90 days."""
    today = today or timezone.localdate()
    points = list(
        InstanceSizeSample.objects.filter(
            instance=instance, day__gte=_since(today), day__lte=today
        ).values_list("day", "total_bytes")
    )
    try:
        limit = instance.capacity.capacity_limit_bytes
    except InstanceCapacity.DoesNotExist:
        limit = None
    return _forecast(points, limit, today)

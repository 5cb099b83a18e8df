"""Monthly range partitions of the daily size tables on PostgreSQL.

Both sample tables are declared ``PARTITION BY RANGE (day)`` by their migration
(:class:`CreatePartitionedModel`), one partition per calendar month, named
``<table>_pYYYY_MM``. A scheduled job (:func:`partitions_maintain`) creates the coming months
and drops the months past the retention; every write of samples goes through
:func:`samples_upsert`, which first ensures the partitions its days need, so a write never
fails for a missing month. There is no DEFAULT partition: a row outside every partition is a
bug to surface, and a default partition would make creating later months scan it.

On other databases (SQLite in development) the tables are plain: ensuring is a no-op and
retention deletes rows instead of dropping partitions.
"""

import re
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, migrations, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from capacity.models import DatabaseSizeSample, InstanceSizeSample
from capacity.periods import Period, window

log = structlog.get_logger(__name__)

PARTITIONED_MODELS = (DatabaseSizeSample, InstanceSizeSample)

# pg_advisory_xact_lock(int, int) key that serialises partition DDL across processes:
# concurrent CREATE TABLE IF NOT EXISTS can still collide on the catalog's unique indexes.
_LOCK_KEY = (0x57F1, 0x0CA9)

_BOUND = re.compile(r"FROM \('(\d{4}-\d{2}-\d{2})'\) TO \('(\d{4}-\d{2}-\d{2})'\)")
_UPSERT_BATCH = 5000


def partition_name(table: str, month: date) -> str:
    """The name of ``table``'s partition for the month of ``month``."""
    return f"{table}_p{month:%Y_%m}"


def _month_start(day: date) -> date:
    return window(Period.MONTH, day)[0]


def _next_month(day: date) -> date:
    return window(Period.MONTH, day)[1] + timedelta(days=1)


def _months_back(day: date, months: int) -> date:
    """The first day of the month ``months`` calendar months before ``day``'s month."""
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def _create_partition_sql(quote_name, table: str, month: date) -> str:
    start = _month_start(month)
    return (
        f"CREATE TABLE IF NOT EXISTS {quote_name(partition_name(table, start))} "
        f"PARTITION OF {quote_name(table)} "
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{_next_month(start).isoformat()}')"
    )


def _tables() -> list[str]:
    return [model._meta.db_table for model in PARTITIONED_MODELS]


def _missing(cursor, names: Sequence[str]) -> set[str]:
    # The catalogs read as plain tables, with this statement's snapshot: to_regclass() asks
    # a per-session cache that may not know yet of a table another session just committed.
    cursor.execute(
        """
        SELECT name FROM unnest(%s::text[]) AS name
        WHERE NOT EXISTS (
            SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relname = name AND n.nspname = ANY(current_schemas(false))
        )
        """,
        [list(names)],
    )
    return {row[0] for row in cursor.fetchall()}


def _create_months(connection, months: Sequence[date]) -> list[str]:
    """Create the partitions of ``months`` that are missing; names of those created."""
    wanted = {
        partition_name(table, month): (table, month) for month in months for table in _tables()
    }
    with connection.cursor() as cursor:
        # The common case, every partition present, takes no lock at all.
        if not _missing(cursor, wanted):
            return []
    quote = connection.ops.quote_name
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", list(_LOCK_KEY))
        missing = _missing(cursor, wanted)  # again: another process may have won the lock
        for name in sorted(missing):
            table, month = wanted[name]
            cursor.execute(_create_partition_sql(quote, table, month))
    for name in sorted(missing):
        log.info("capacity_partition_created", partition=name)
    return sorted(missing)


def partition_ensure(day: date, *, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Make sure both sample tables have a partition for ``day``'s month.

    Idempotent and safe when several processes call it at once; a no-op off PostgreSQL.
    Call it before opening the transaction that writes the samples: creating a partition
    locks the parent table, and holding row locks on it meanwhile invites deadlocks.
    Returns the names of the partitions it created.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        return []
    return _create_months(connection, [_month_start(day)])


def samples_upsert(
    samples: Sequence[DatabaseSizeSample] | Sequence[InstanceSizeSample],
    *,
    using: str = DEFAULT_DB_ALIAS,
) -> int:
    """Write daily samples of one model, replacing any row of the same subject and day.

    The partitions of every month among the samples' days are ensured first. One
    ``INSERT … ON CONFLICT (subject, day) DO UPDATE`` per batch; returns the rows written.
    """
    if not samples:
        return 0
    model = type(samples[0])
    if model not in PARTITIONED_MODELS or any(type(s) is not model for s in samples):
        raise TypeError("samples_upsert takes samples of one partitioned model")
    for month in sorted({_month_start(sample.day) for sample in samples}):
        partition_ensure(month, using=using)
    key = list(model._meta.pk.field_names)
    model.objects.using(using).bulk_create(
        samples,
        batch_size=_UPSERT_BATCH,
        update_conflicts=True,
        unique_fields=key,
        update_fields=[f.name for f in model._meta.concrete_fields if f.name not in key],
    )
    return len(samples)


def _partitions(cursor, table: str) -> list[dict[str, Any]]:
    """Every partition of ``table`` with its month bounds, row estimate and size."""
    cursor.execute(
        """
        SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples::bigint,
               pg_total_relation_size(c.oid)
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = to_regclass(%s)
        ORDER BY c.relname
        """,
        [table],
    )
    partitions = []
    for name, bound, reltuples, size in cursor.fetchall():
        match = _BOUND.search(bound or "")
        start, end = (date.fromisoformat(d) for d in match.groups()) if match else (None, None)
        partitions.append(
            {
                "name": name,
                "from": start,
                "to": end,  # exclusive
                # -1: never vacuumed or analysed, so no estimate yet
                "rows_estimate": reltuples if reltuples >= 0 else None,
                "size_bytes": size,
            }
        )
    return partitions


def partitions_maintain(today: date | None = None, *, using: str = DEFAULT_DB_ALIAS) -> dict:
    """Create the partitions of this month and the next WHALEFALL_CAPACITY_PARTITIONS_AHEAD
    months; drop those whose whole month is older than WHALEFALL_CAPACITY_RETENTION_MONTHS.

    Returns ``{"created": [...], "dropped": [...], "deleted_rows": n}``; off PostgreSQL
    nothing is created or dropped and the expired rows are deleted instead.
    """
    today = today or timezone.localdate()
    # A month is dropped once its last day is more than the retention before today, which
    # for whole months means: it ends on or before the first day of the cutoff month.
    cutoff = _months_back(today, settings.WHALEFALL_CAPACITY_RETENTION_MONTHS)
    connection = connections[using]
    if connection.vendor != "postgresql":
        deleted = sum(
            model.objects.using(using).filter(day__lt=cutoff).delete()[0]
            for model in PARTITIONED_MODELS
        )
        if deleted:
            log.info("capacity_samples_expired", before=cutoff.isoformat(), rows=deleted)
        return {"created": [], "dropped": [], "deleted_rows": deleted}

    months = [_month_start(today)]
    while len(months) <= settings.WHALEFALL_CAPACITY_PARTITIONS_AHEAD:
        months.append(_next_month(months[-1]))
    created = _create_months(connection, months)

    quote = connection.ops.quote_name
    dropped: list[str] = []
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", list(_LOCK_KEY))
        for table in _tables():
            for partition in _partitions(cursor, table):
                if partition["to"] is not None and partition["to"] <= cutoff:
                    cursor.execute(f"DROP TABLE {quote(partition['name'])}")
                    dropped.append(partition["name"])
    for name in dropped:
        log.info("capacity_partition_dropped", partition=name, before=cutoff.isoformat())
    return {"created": created, "dropped": dropped, "deleted_rows": 0}


def partition_status(today: date | None = None, *, using: str = DEFAULT_DB_ALIAS) -> dict:
    """Months present per sample table with row estimates and sizes; ``status`` is
    ``warning`` (naming the missing partitions) when this or next month's is missing."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return {"status": "ok", "partitioned": False, "tables": {}, "missing": []}
    today = today or timezone.localdate()
    needed = [_month_start(today), _next_month(today)]
    tables: dict[str, list[dict[str, Any]]] = {}
    missing: list[str] = []
    with connection.cursor() as cursor:
        for table in _tables():
            partitions = _partitions(cursor, table)
            present = {p["from"] for p in partitions}
            missing += [partition_name(table, m) for m in needed if m not in present]
            tables[table] = [
                {
                    "name": p["name"],
                    "month": f"{p['from']:%Y-%m}" if p["from"] else None,
                    "rows_estimate": p["rows_estimate"],
                    "size_bytes": p["size_bytes"],
                }
                for p in partitions
            ]
    status: dict[str, Any] = {
        "status": "warning" if missing else "ok",
        "partitioned": True,
        "tables": tables,
        "missing": missing,
    }
    if missing:
        status["warning"] = _(
            "Partitions missing for the current or next month: %(names)s. "
            "Run the partition maintenance job."
        ) % {"names": ", ".join(missing)}
    return status


class CreatePartitionedModel(migrations.CreateModel):
    """``CreateModel`` whose table is, on PostgreSQL, range-partitioned by month on
    ``partition_key``, with the partitions of the current and next month.

    The model state is exactly that of ``CreateModel``; only the DDL differs, so other
    databases get a plain table.
    """

    def __init__(self, name, fields, options=None, bases=None, managers=None, *, partition_key):
        self.partition_key = partition_key
        super().__init__(name, fields, options=options, bases=bases, managers=managers)

    def deconstruct(self):
        name, args, kwargs = super().deconstruct()
        return name, args, {**kwargs, "partition_key": self.partition_key}

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        connection = schema_editor.connection
        model = to_state.apps.get_model(app_label, self.name)
        if connection.vendor != "postgresql" or not self.allow_migrate_model(
            connection.alias, model
        ):
            super().database_forwards(app_label, schema_editor, from_state, to_state)
            return
        column = model._meta.get_field(self.partition_key).column
        quote = schema_editor.quote_name
        # The schema editor builds the table (columns, primary key, checks, deferred
        # foreign keys) as usual; only its CREATE TABLE template gains the clause.
        schema_editor.sql_create_table = (
            f"{type(schema_editor).sql_create_table} PARTITION BY RANGE ({quote(column)})"
        )
        try:
            schema_editor.create_model(model)
        finally:
            del schema_editor.sql_create_table
        this_month = _month_start(timezone.localdate())
        for month in (this_month, _next_month(this_month)):
            schema_editor.execute(_create_partition_sql(quote, model._meta.db_table, month))

    def reduce(self, operation, app_label):
        # Folding a later operation in would turn this back into a plain CreateModel.
        return not operation.references_model(self.name, app_label)

    def describe(self):
        return f"Create model {self.name} partitioned by month on {self.partition_key}"

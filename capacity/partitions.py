"""Monthly range partitions of the daily size tables on PostgreSQL.

Both sample tables are declared ``PARTITION BY RANGE (day)`` by their migration
(:class:`CreatePartitionedModel`), one partition per calendar month, named
``<table>_pYYYY_MM``. A scheduled job (:func:`partitions_maintain`) creates the coming months
and drops the months past the retention; every write of samples goes through
:func:`samples_upsert`, which first ensures the partitions its days need, so a write never
fails for a missing month. A table that carries a partition's name but is no longer attached
(``ALTER TABLE … DETACH PARTITION``) counts as absent: ensuring and maintenance attach it
again when all its rows fall within its month, and otherwise stop with
:class:`PartitionError` naming the table and what to do. There is no DEFAULT partition: a
row outside every partition is a bug to surface, and a default partition would make creating
later months scan it.

On other databases (SQLite in development) the tables are plain: ensuring is a no-op and
retention deletes rows instead of dropping partitions.
"""

import re
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, migrations, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from capacity.models import DatabaseSizeSample, InstanceSizeSample
from capacity.periods import Period, window
from whalefall import alerts

log = structlog.get_logger(__name__)

PARTITIONED_MODELS = (DatabaseSizeSample, InstanceSizeSample)

# pg_advisory_xact_lock(int, int) key that serialises partition DDL across processes:
# concurrent CREATE TABLE IF NOT EXISTS can still collide on the catalog's unique indexes.
_LOCK_KEY = (0x57F1, 0x0CA9)

_NAME_MONTH = re.compile(r"_p(\d{4})_(\d{2})$")
_BOUND = re.compile(r"FROM \('(\d{4}-\d{2}-\d{2})'\) TO \('(\d{4}-\d{2}-\d{2})'\)")
_UPSERT_BATCH = 5000


class PartitionError(RuntimeError):
    """A sample table's partition exists by name but cannot be attached as it should be."""


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


def _absent(cursor, wanted: dict[str, tuple[str, date]]) -> dict[str, str]:
    """Of the ``wanted`` partitions (name → parent table, month), those not attached to
    their parent: name → ``missing`` (no such table), ``detached`` (a plain table of that
    name, attachable) or ``conflict`` (a partition of another table, a detach still
    pending, or not a plain table)."""
    # The catalogs read as plain tables, with this statement's snapshot: to_regclass() asks
    # a per-session cache that may not know yet of a table another session just committed.
    cursor.execute(
        """
        SELECT w.name,
               CASE WHEN c.oid IS NULL THEN 'missing'
                    WHEN i.inhrelid IS NULL AND c.relkind = 'r' THEN 'detached'
                    ELSE 'conflict' END
        FROM unnest(%s::text[], %s::text[]) AS w(name, parent)
        LEFT JOIN LATERAL (
            SELECT c.oid, c.relkind FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relname = w.name AND n.nspname = ANY(current_schemas(false))
            ORDER BY array_position(current_schemas(false), n.nspname::text)
            LIMIT 1
        ) c ON true
        LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
        WHERE c.oid IS NULL OR i.inhrelid IS NULL OR i.inhdetachpending
           OR i.inhparent <> (
               SELECT p.oid FROM pg_class p JOIN pg_namespace pn ON pn.oid = p.relnamespace
               WHERE p.relname = w.parent AND pn.nspname = ANY(current_schemas(false))
               ORDER BY array_position(current_schemas(false), pn.nspname::text)
               LIMIT 1
           )
        """,
        [list(wanted), [table for table, _month in wanted.values()]],
    )
    return dict(cursor.fetchall())


def _day_column(table: str) -> str:
    model = next(m for m in PARTITIONED_MODELS if m._meta.db_table == table)
    return model._meta.get_field("day").column


def _attach(connection, cursor, name: str, table: str, month: date) -> None:
    """Attach the detached table ``name`` to ``table`` as the partition of ``month``, or
    raise :class:`PartitionError` when its rows do not all fall within that month."""
    quote = connection.ops.quote_name
    start, end = _month_start(month), _next_month(month)
    column = quote(_day_column(table))
    cursor.execute(
        f"SELECT count(*) FROM {quote(name)} "  # noqa: S608 - names are ours, quoted
        f"WHERE {column} IS NULL OR {column} < %s OR {column} >= %s",
        [start, end],
    )
    outside = cursor.fetchone()[0]
    if outside:
        raise PartitionError(
            _(
                "Table %(name)s is not attached to %(table)s and holds %(count)d rows outside "
                "%(month)s, so it cannot be attached as that month's partition and samples of "
                "that month cannot be written. Move those rows out (or rename or drop the "
                "table), then run the partition maintenance job."
            )
            % {"name": name, "table": table, "count": outside, "month": f"{start:%Y-%m}"}
        )
    try:
        with transaction.atomic(using=connection.alias):
            cursor.execute(
                f"ALTER TABLE {quote(table)} ATTACH PARTITION {quote(name)} "
                f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
            )
    except DatabaseError as exc:
        raise PartitionError(
            _(
                "Table %(name)s is not attached to %(table)s and attaching it as the partition "
                "of %(month)s failed: %(error)s. Fix or rename the table, then run the partition "
                "maintenance job."
            )
            % {"name": name, "table": table, "month": f"{start:%Y-%m}", "error": exc}
        ) from exc
    log.warning("capacity_partition_reattached", partition=name, table=table)


def _conflict_error(name: str, table: str) -> PartitionError:
    return PartitionError(
        _(
            "%(name)s should be a partition of %(table)s but is not a plain table that can be "
            "attached (it is a partition of another table, its detach is still pending, or it "
            "is not a table). Finish the detach (ALTER TABLE … DETACH PARTITION … FINALIZE) or "
            "rename it, then run the partition maintenance job."
        )
        % {"name": name, "table": table}
    )


def _create_months(connection, months: Sequence[date]) -> tuple[list[str], list[str]]:
    """Create the partitions of ``months`` that are missing and attach again those that
    exist detached; the names of those created and of those attached."""
    wanted = {
        partition_name(table, month): (table, month) for month in months for table in _tables()
    }
    with connection.cursor() as cursor:
        # The common case, every partition present and attached, takes no lock at all.
        if not _absent(cursor, wanted):
            return [], []
    quote = connection.ops.quote_name
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", list(_LOCK_KEY))
        absent = _absent(cursor, wanted)  # again: another process may have won the lock
        for name, state in sorted(absent.items()):
            if state == "conflict":
                raise _conflict_error(name, wanted[name][0])
        reattached = sorted(name for name, state in absent.items() if state == "detached")
        for name in reattached:
            _attach(connection, cursor, name, *wanted[name])
        created = sorted(name for name, state in absent.items() if state == "missing")
        for name in created:
            table, month = wanted[name]
            cursor.execute(_create_partition_sql(quote, table, month))
    for name in created:
        log.info("capacity_partition_created", partition=name)
    return created, reattached


def _detached(cursor, since: date) -> list[tuple[str, str, date]]:
    """Plain tables named like a sample table's partition of a month from ``since`` on
    but attached to nothing: (name, parent table, month)."""
    found = []
    for table in _tables():
        cursor.execute(
            """
            SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = ANY(current_schemas(false)) AND c.relkind = 'r'
              AND c.relname ~ %s
              AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid)
            ORDER BY c.relname
            """,
            ["^" + re.escape(table) + r"_p\d{4}_\d{2}$"],
        )
        for (name,) in cursor.fetchall():
            year, month = (int(part) for part in _NAME_MONTH.search(name).groups())
            if 1 <= month <= 12 and date(year, month, 1) >= since:
                found.append((name, table, date(year, month, 1)))
    return found


def partition_ensure(day: date, *, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Make sure both sample tables have a partition for ``day``'s month.

    Idempotent and safe when several processes call it at once; a no-op off PostgreSQL.
    Call it before opening the transaction that writes the samples: creating a partition
    locks the parent table, and holding row locks on it meanwhile invites deadlocks.
    A table of the partition's name that is detached is attached again, or
    :class:`PartitionError` says why it cannot be. Returns the names of the partitions it
    created or attached.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        return []
    created, reattached = _create_months(connection, [_month_start(day)])
    return sorted(created + reattached)


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

    Detached tables named as a partition of a month within the retention are attached
    again; one that cannot be raises :class:`PartitionError` (after the other months are
    done), so the job fails loudly instead of succeeding with the month unwritable.
    Returns ``{"created": [...], "reattached": [...], "dropped": [...], "deleted_rows": n}``;
    off PostgreSQL nothing is created or dropped and the expired rows are deleted instead.
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
        return {"created": [], "reattached": [], "dropped": [], "deleted_rows": deleted}

    months = [_month_start(today)]
    while len(months) <= settings.WHALEFALL_CAPACITY_PARTITIONS_AHEAD:
        months.append(_next_month(months[-1]))
    # Detached past months within the retention too: their rows are invisible to every read.
    with connection.cursor() as cursor:
        past = sorted({month for _n, _t, month in _detached(cursor, cutoff) if month < months[0]})
    created: list[str] = []
    reattached: list[str] = []
    failures: list[PartitionError] = []
    # Month by month, so that one table that cannot be attached leaves the others done.
    for month in past + months:
        try:
            month_created, month_reattached = _create_months(connection, [month])
        except PartitionError as exc:
            failures.append(exc)
            continue
        created += month_created
        reattached += month_reattached

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
    partitions_alert_missing(today, using=using)
    if failures:
        raise PartitionError(" ".join(str(exc) for exc in failures))
    return {
        "created": created,
        "reattached": sorted(reattached),
        "dropped": dropped,
        "deleted_rows": 0,
    }


def partitions_alert_missing(
    today: date | None = None, *, using: str = DEFAULT_DB_ALIAS
) -> list[str]:
    """An alert event naming the sample tables whose partition for next month is missing
    (rows of that month would have nowhere to go); returns their names."""
    today = today or timezone.localdate()
    month = _next_month(today)
    missing = set(partition_status(today, using=using)["missing"])
    names = sorted(n for n in (partition_name(t, month) for t in _tables()) if n in missing)
    if names:
        alerts.emit(
            "partitions_missing",
            payload={"month": f"{month:%Y-%m}", "tables": names},
            dedup_key=f"partitions:{month:%Y-%m}",
        )
    return names


def partition_status(today: date | None = None, *, using: str = DEFAULT_DB_ALIAS) -> dict:
    """Months present per sample table with row estimates and sizes; ``status`` is
    ``warning`` when this or next month's partition is missing (``missing``) or when a
    table named as a partition of a month within the retention is detached (``detached``),
    each named."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return {
            "status": "ok",
            "partitioned": False,
            "tables": {},
            "missing": [],
            "detached": [],
        }
    today = today or timezone.localdate()
    needed = [_month_start(today), _next_month(today)]
    tables: dict[str, list[dict[str, Any]]] = {}
    missing: list[str] = []
    with connection.cursor() as cursor:
        since = _months_back(today, settings.WHALEFALL_CAPACITY_RETENTION_MONTHS)
        detached = [name for name, _table, _month in _detached(cursor, since)]
        for table in _tables():
            partitions = _partitions(cursor, table)
            present = {p["from"] for p in partitions}
            missing += [
                name
                for name in (partition_name(table, m) for m in needed if m not in present)
                if name not in detached
            ]
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
        "status": "warning" if missing or detached else "ok",
        "partitioned": True,
        "tables": tables,
        "missing": missing,
        "detached": detached,
    }
    warnings = []
    if missing:
        warnings.append(
            _(
                "Partitions missing for the current or next month: %(names)s. "
                "Run the partition maintenance job."
            )
            % {"names": ", ".join(missing)}
        )
    if detached:
        warnings.append(
            _(
                "Partitions detached from their table (their rows are invisible and samples "
                "of their months cannot be written): %(names)s. The partition maintenance job "
                "attaches them again, or fails naming what prevents it."
            )
            % {"names": ", ".join(detached)}
        )
    if warnings:
        status["warning"] = " ".join(warnings)
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


def partitions_ahead(today: date | None = None, *, using: str = DEFAULT_DB_ALIAS) -> dict | None:
    """Per sample table, how many consecutive months after this one already have their
    partition (0: next month's is missing, and its first write will create it under
    load); None off PostgreSQL, where nothing is partitioned. Reads the catalog only."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    month = _month_start(today or timezone.localdate())
    ahead = {}
    with connection.cursor() as cursor:
        for table in _tables():
            cursor.execute(
                """
                SELECT pg_get_expr(c.relpartbound, c.oid)
                FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = to_regclass(%s)
                """,
                [table],
            )
            present = {
                date.fromisoformat(match.group(1))
                for (bound,) in cursor.fetchall()
                if (match := _BOUND.search(bound or ""))
            }
            count, month_ahead = 0, _next_month(month)
            while month_ahead in present:
                count += 1
                month_ahead = _next_month(month_ahead)
            ahead[table] = count
    return ahead

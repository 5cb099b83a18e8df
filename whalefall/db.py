"""Bulk writes that bypass the ORM's per-object work where thousands of rows are written."""

import json
from collections.abc import Iterable, Sequence

from django.db import connections, router
from django.db.models import BigIntegerField, Func, JSONField, Model, Q, QuerySet

# The largest bigint: ids, transaction ids and every other 64-bit column stop here.
MAX_BIGINT = 2**63 - 1


class JsonText(str):
    """JSON already serialised (for example the text a fingerprint was computed from)."""


def insert_rows(model: type[Model], fields: Sequence[str], rows: Iterable[Sequence]) -> int:
    """Insert plain rows into ``model``'s table: ``COPY`` on PostgreSQL, ``executemany`` elsewhere.

    No model instances, signals or returned keys: for append-only rows (snapshots, history)
    whose values are already validated. JSON fields take Python objects or :class:`JsonText`.
    """
    connection = connections[router.db_for_write(model)]
    meta = model._meta
    model_fields = [meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    columns = ", ".join(quote(f.column) for f in model_fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            return _copy_rows(connection, cursor, table, model_fields, rows)
        prepared = _prepared(connection, model_fields, rows)
        placeholders = ", ".join(["%s"] * len(model_fields))
        cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", prepared)  # noqa: S608
        return len(prepared)


def _copy_rows(connection, cursor, table: str, model_fields, rows: Iterable[Sequence]) -> int:
    """``COPY`` rows into ``table`` (quoted) on PostgreSQL, JSON serialised once."""
    json_positions = [i for i, f in enumerate(model_fields) if isinstance(f, JSONField)]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in model_fields)
    count = 0
    # The driver's own cursor: its errors are mapped to Django's (IntegrityError …).
    with (
        connection.wrap_database_errors,
        cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        for row in rows:
            row = list(row)
            for i in json_positions:
                if not isinstance(row[i], JsonText):
                    row[i] = json.dumps(row[i], separators=(",", ":"), ensure_ascii=False)
            copy.write_row(row)
            count += 1
    return count


def _prepared(connection, model_fields, rows: Iterable[Sequence]) -> list[list]:
    """Rows as the driver takes them (``executemany``); JsonText passes as it is."""
    return [
        [
            value if isinstance(value, JsonText) else f.get_db_prep_save(value, connection)
            for f, value in zip(model_fields, row, strict=True)
        ]
        for row in rows
    ]


def update_rows(model: type[Model], fields: Sequence[str], rows: Iterable[Sequence]) -> int:
    """Set ``fields`` of existing rows of ``model``: each row is ``(pk, value, …)``.

    On PostgreSQL the values are copied into a temporary table and applied with one
    ``UPDATE … FROM``; elsewhere ``executemany``. Like :func:`insert_rows`, no model
    instances or signals: ``bulk_update`` builds a ``CASE`` per row and field, which costs
    seconds at thousands of JSON values.
    """
    connection = connections[router.db_for_write(model)]
    meta = model._meta
    model_fields = [meta.pk, *(meta.get_field(name) for name in fields)]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    pk = quote(meta.pk.column)
    rows = list(rows)
    if not rows:
        return 0
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            staging = quote(f"wf_update_{meta.db_table}")
            definitions = ", ".join(
                f"{quote(f.column)} {f.db_type(connection)}" for f in model_fields
            )
            assignments = ", ".join(
                f"{quote(f.column)} = s.{quote(f.column)}" for f in model_fields[1:]
            )
            cursor.execute(f"DROP TABLE IF EXISTS {staging}")
            cursor.execute(f"CREATE TEMPORARY TABLE {staging} ({definitions}) ON COMMIT DROP")
            _copy_rows(connection, cursor, staging, model_fields, rows)
            cursor.execute(
                f"UPDATE {table} AS t SET {assignments} FROM {staging} AS s "  # noqa: S608
                f"WHERE t.{pk} = s.{pk}"
            )
            cursor.execute(f"DROP TABLE {staging}")
            return len(rows)
        # SET …, then WHERE pk
        prepared = [
            [*values[1:], values[0]] for values in _prepared(connection, model_fields, rows)
        ]
        assignments = ", ".join(f"{quote(f.column)} = %s" for f in model_fields[1:])
        cursor.executemany(f"UPDATE {table} SET {assignments} WHERE {pk} = %s", prepared)  # noqa: S608
        return len(prepared)


class CurrentTransactionId(Func):
    """The id of the writing transaction: PostgreSQL's 64-bit ``pg_current_xact_id()``
    (never wraps), 0 on SQLite, where one writer at a time makes id order commit order.

    Used as a column default so that a reader can tell rows of transactions that have
    committed from rows of transactions that may still commit (see :func:`committed_before`).
    """

    output_field = BigIntegerField()

    def as_sql(self, compiler, connection, **extra_context):
        return "0", []

    def as_postgresql(self, compiler, connection, **extra_context):
        return "(pg_current_xact_id()::text::bigint)", []


class _SettledBefore(Func):
    """The oldest transaction still running (or the next to start): every transaction with
    a smaller id has committed or rolled back, so its rows are final."""

    output_field = BigIntegerField()
    template = "(pg_snapshot_xmin(pg_current_snapshot())::text::bigint)"


class _OwnWhenOldest(Func):
    """The reader's own transaction, when it writes and no older one is open: a reader
    inside a writing transaction sees its own rows then."""

    output_field = BigIntegerField()
    template = (
        "(CASE WHEN pg_current_xact_id_if_assigned() = pg_snapshot_xmin(pg_current_snapshot()) "
        "THEN pg_current_xact_id_if_assigned()::text::bigint END)"
    )


def committed_before(queryset: QuerySet, field: str = "txid") -> QuerySet:
    """Rows of ``queryset`` whose writing transaction (``field``, a
    :class:`CurrentTransactionId` default) is settled, i.e. no row can still appear before
    them in (transaction id, id) order. Identity on SQLite."""
    if connections[queryset.db].vendor != "postgresql":
        return queryset
    return queryset.filter(Q(**{f"{field}__lt": _SettledBefore()}) | Q(**{field: _OwnWhenOldest()}))

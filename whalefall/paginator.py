"""A paginator for big tables: never a full ``COUNT(*)``.

Unfiltered PostgreSQL querysets are counted from the planner's statistics (``reltuples``,
summed over partitions); filtered ones are counted up to a cap. The admin then shows at
most ``CAP`` rows' worth of pages for a broad filter, which is all a person pages through.
"""

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

CAP = 10_000


def _table_estimate(queryset) -> int | None:
    """Planner estimate of the whole table's rows (PostgreSQL), or None."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    table = queryset.model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT COALESCE(SUM(GREATEST(c.reltuples, 0)), 0)::bigint, BOOL_OR(c.reltuples >= 0)
            FROM pg_class c
            WHERE c.oid = %s::regclass
               OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = %s::regclass)
            """,
            [table, table],
        )
        estimate, analysed = cursor.fetchone()
    return int(estimate) if analysed else None


class EstimatedCountPaginator(Paginator):
    """Counts cheaply: table statistics when unfiltered, a capped count when filtered."""

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not hasattr(queryset, "query"):
            return len(queryset)
        if not queryset.query.where:
            estimate = _table_estimate(queryset)
            if estimate is not None and estimate > CAP:
                return estimate
        return queryset.order_by()[: CAP + 1].count()

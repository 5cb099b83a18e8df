"""Figures about capacity read when /metrics is scraped (whalefall.metrics)."""

from collections.abc import Iterator

from prometheus_client.core import Metric

from capacity.partitions import partitions_ahead
from whalefall.metrics import gauge, register_section


@register_section("partitions")
def partitions_metrics() -> Iterator[Metric]:
    """Months of partitions ready ahead of the current one, per sample table (PostgreSQL)."""
    ahead = partitions_ahead()
    if ahead is None:
        return
    family = gauge(
        "whalefall_capacity_partitions_ahead",
        "Consecutive months after the current one whose partition exists, per sample table.",
        ["table"],
    )
    for table, months in sorted(ahead.items()):
        family.add_metric([table], float(months))
    yield family

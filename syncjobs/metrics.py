"""Figures about runs read when /metrics is scraped (whalefall.metrics): when each kind of
run last succeeded, the runs waiting or running, and how long the oldest has been running.
Each is one walk of an index of ``Run`` (kind, status, finished_at; status, created_at)."""

from collections.abc import Iterator

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import Metric

from syncjobs.models import RUN_ACTIVE, Run, RunKind, RunStatus
from whalefall.metrics import gauge, register_section


@register_section("runs")
def runs_metrics() -> Iterator[Metric]:
    """Last success per kind, active runs per kind and status, oldest running run's age."""
    last = gauge(
        "whalefall_run_last_success_timestamp_seconds",
        "When the last successful run of the kind finished (Unix time); absent if none has.",
        ["kind"],
    )
    for kind in RunKind.values:
        finished = (
            Run.objects.filter(kind=kind, status=RunStatus.SUCCEEDED)
            .order_by("-finished_at")
            .values_list("finished_at", flat=True)
            .first()
        )
        if finished is not None:
            last.add_metric([kind], finished.timestamp())
    yield last

    counts = {
        (row["kind"], row["status"]): row["n"]
        for row in Run.objects.filter(status__in=RUN_ACTIVE)
        .values("kind", "status")
        .annotate(n=Count("pk"))
        .order_by()
    }
    active = gauge("whalefall_runs_active", "Runs queued or running, by kind.", ["kind", "status"])
    for kind in RunKind.values:
        for status in RUN_ACTIVE:
            active.add_metric([kind, status], float(counts.get((kind, status), 0)))
    yield active

    now = timezone.now()
    oldest = gauge(
        "whalefall_run_oldest_running_age_seconds",
        "Seconds since the oldest running run of the kind started; absent when none runs.",
        ["kind"],
    )
    for row in (
        Run.objects.filter(status=RunStatus.RUNNING, started_at__isnull=False)
        .values("kind")
        .annotate(started=Min("started_at"))
        .order_by()
    ):
        oldest.add_metric([row["kind"]], max(0.0, (now - row["started"]).total_seconds()))
    yield oldest

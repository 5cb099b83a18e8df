"""Prometheus metrics, served at ``/metrics`` in the text exposition format.

Two kinds of figures:

* **Counted by the processes** that do the work — runs and items finished, item durations,
  failed sign-ins, request latency. With ``PROMETHEUS_MULTIPROC_DIR`` set, every process
  (each gunicorn worker, each Celery worker child) writes its own into that directory and a
  scrape adds them all up, so web and workers must share it. Each process's files carry the
  host name and the pid, so that containers sharing the directory never write the same
  file; gunicorn empties its host's files as it starts (``deploy/gunicorn.conf.py``).
* **Read at scrape time** from the database and the broker — readiness checks, beat
  heartbeat age, queue depths, alert deliveries, and the sections other apps contribute
  in a ``metrics`` module of their own (:func:`register_section`: last success per run
  kind, partitions ahead…) — each with bounded, indexed queries under a statement timeout.

Who may scrape: a client address in ``WHALEFALL_METRICS_ALLOWED`` (``whalefall.security``'s
``client_ip``, so trusted proxies are honoured) or a request with
``Authorization: Bearer <WHALEFALL_METRICS_TOKEN>``. Anyone else gets 403; with neither
configured (the production default) the endpoint answers 404.
"""

import functools
import glob
import hmac
import ipaddress
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import structlog
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

log = structlog.get_logger(__name__)


def _host() -> str:
    # An underscore separates the parts of prometheus-client's file names.
    return socket.gethostname().replace("_", "-") or "localhost"


HOST = _host()


def process_id(pid: int | None = None) -> str:
    """The name of this process's files in the shared directory: host and pid, as pids
    repeat across containers."""
    return f"{HOST}-{os.getpid() if pid is None else pid}"


# A *_created sample per series doubles the output for nothing Prometheus needs.
disable_created_metrics()

if settings.PROMETHEUS_MULTIPROC_DIR:
    # Before any metric exists: every value is then backed by this process's files.
    values.ValueClass = values.MultiProcessValue(process_identifier=process_id)


def clear_host_files(path: str | None = None) -> int:
    """Delete the files the processes of this host left in the shared directory (at the
    start of a process manager that owns every such process: gunicorn in its container,
    ``make run``). Returns how many were deleted."""
    path = path or settings.PROMETHEUS_MULTIPROC_DIR
    if not path:
        return 0
    removed = 0
    for name in glob.glob(os.path.join(glob.escape(path), f"*_{glob.escape(HOST)}-*.db")):
        try:
            os.remove(name)
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def process_exited(pid: int, path: str | None = None) -> None:
    """Bookkeeping when a worker process of this host exits (gunicorn ``child_exit``,
    Celery ``worker_process_shutdown``): its live gauges go; its counters stay counted."""
    path = path or settings.PROMETHEUS_MULTIPROC_DIR
    if path:
        mark_process_dead(process_id(pid), path)


# --- Counted by the processes ---------------------------------------------------------

RUNS_FINISHED = Counter(
    "whalefall_runs_finished",
    "Runs finished, by run kind and outcome (status).",
    ["kind", "status"],
)
RUN_ITEMS_FINISHED = Counter(
    "whalefall_run_items_finished",
    "Run items finished, by run kind and outcome (status).",
    ["kind", "status"],
)
RUN_ITEM_DURATION = Histogram(
    "whalefall_run_item_duration_seconds",
    "Time the work of one run item took (the handler: remote reads and writes), by run "
    "kind and engine.",
    ["kind", "engine"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
LOGIN_FAILURES = Counter("whalefall_login_failures", "Failed sign-ins (wrong password or code).")
REQUEST_LATENCY = Histogram(
    "whalefall_http_request_duration_seconds",
    "Time to answer a request, by URL name, method and status class.",
    ["view", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

# Label values a request can choose are bounded: an unknown method or URL gets one value.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"


def run_finished(*, kind: str, status: str) -> None:
    """Count one run that reached a terminal status."""
    RUNS_FINISHED.labels(kind=kind, status=status).inc()


def items_finished(*, kind: str, status: str, count: int = 1) -> None:
    """Count ``count`` run items of a ``kind`` run that reached ``status``."""
    if count > 0:
        RUN_ITEMS_FINISHED.labels(kind=kind, status=status).inc(count)


def item_duration(*, kind: str, engine: str, seconds: float) -> None:
    """Record how long the work of one item took."""
    RUN_ITEM_DURATION.labels(kind=kind, engine=engine or "unknown").observe(max(0.0, seconds))


def login_failed() -> None:
    """Count one failed sign-in."""
    LOGIN_FAILURES.inc()


# --- Read at scrape time ----------------------------------------------------------------

Section = Callable[[], Iterable[Metric]]
_SECTIONS: dict[str, Section] = {}


def register_section(name: str) -> Callable[[Section], Section]:
    """Decorator: a function yielding metric families read from the database at scrape
    time (run under the statement timeout). Apps declare theirs in ``<app>/metrics.py``."""

    def decorator(func: Section) -> Section:
        _SECTIONS[name] = func
        return func

    return decorator


@functools.cache
def _discover() -> None:
    autodiscover_modules("metrics")


def gauge(name: str, documentation: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    """A gauge family for a scrape-time section."""
    return GaugeMetricFamily(name, documentation, labels=list(labels))


@contextmanager
def statement_timeout() -> Iterator[None]:
    """A transaction whose statements give up after ``WHALEFALL_METRICS_QUERY_TIMEOUT``."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                milliseconds = max(1, int(settings.WHALEFALL_METRICS_QUERY_TIMEOUT * 1000))
                cursor.execute(
                    "SELECT set_config('statement_timeout', %s, true)", [str(milliseconds)]
                )
        yield
        if connection.vendor == "postgresql":
            # Within a caller's transaction the setting would otherwise outlive the scrape.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL statement_timeout TO DEFAULT")


def _readiness() -> Iterator[Metric]:
    from whalefall import health

    results = health.run_checks(timeout=settings.WHALEFALL_READY_TIMEOUT)
    up = gauge("whalefall_ready_check_up", "1 when the readiness check passes.", ["check"])
    latency = gauge(
        "whalefall_ready_check_latency_seconds", "Time the readiness check took.", ["check"]
    )
    for name, result in results.items():
        up.add_metric([name], 1.0 if result.ok else 0.0)
        latency.add_metric([name], result.latency_ms / 1000)
    yield up
    yield latency
    age = results["beat_heartbeat"].detail.get("age_seconds")
    if age is not None:
        yield GaugeMetricFamily(
            "whalefall_beat_heartbeat_age_seconds",
            "Seconds since beat's heartbeat task last ran on a worker.",
            value=age,
        )
    if results["broker"].ok:
        yield from _queue_depths()


def _queue_depths() -> Iterator[Metric]:
    from whalefall import health

    depths = gauge("whalefall_queue_depth", "Task messages waiting in the queue.", ["queue"])
    with health.broker_connection() as conn:
        conn.ensure_connection(
            max_retries=1, interval_start=0, timeout=settings.WHALEFALL_BROKER_CHECK_TIMEOUT
        )
        channel = conn.default_channel
        for queue in settings.WHALEFALL_QUEUES:
            try:
                _name, depth, _consumers = channel.queue_declare(queue=queue, passive=True)
            except Exception:  # noqa: BLE001  a queue never declared holds nothing
                depth = 0
            depths.add_metric([queue], float(depth))
    yield depths


@register_section("alert_deliveries")
def _alert_deliveries() -> Iterator[Metric]:
    from whalefall.alerts.models import Channel, Delivery, DeliveryStatus

    hours = settings.WHALEFALL_METRICS_DELIVERY_HOURS
    family = gauge(
        "whalefall_alert_deliveries",
        f"Alert deliveries created in the last {hours} hours, by channel kind and status.",
        ["channel_kind", "status"],
    )
    since = timezone.now() - timedelta(hours=hours)
    counts = {
        (row["channel__kind"], row["status"]): row["n"]
        for row in Delivery.objects.filter(created_at__gte=since)
        .values("channel__kind", "status")
        .annotate(n=Count("pk"))
        .order_by()
    }
    for channel_kind in Channel._meta.get_field("kind").choices or ():
        for status in DeliveryStatus.values:
            family.add_metric(
                [channel_kind[0], status], float(counts.get((channel_kind[0], status), 0))
            )
    yield family


class ScrapeCollector:
    """The figures read at scrape time; a section that fails is reported, not raised."""

    def collect(self) -> Iterator[Metric]:
        _discover()
        errors = gauge(
            "whalefall_scrape_section_error",
            "1 when a section of the scrape could not be read (see the log).",
            ["section"],
        )
        sections: list[tuple[str, Callable[[], Iterable[Metric]], bool]] = [
            ("readiness", _readiness, False),
            *((name, func, True) for name, func in _SECTIONS.items()),
        ]
        for name, func, in_database in sections:
            started = time.perf_counter()
            try:
                if in_database:
                    with statement_timeout():
                        families = list(func())
                else:
                    families = list(func())
            except Exception as exc:  # noqa: BLE001  one failing section hides no other
                log.warning("metrics_section_failed", section=name, error_type=type(exc).__name__)
                errors.add_metric([name], 1.0)
                continue
            errors.add_metric([name], 0.0)
            log.debug("metrics_section", section=name, seconds=time.perf_counter() - started)
            yield from families
        yield errors


class _ThisProcess:
    """This process's own metrics (no shared directory configured)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def exposition(path: str | None = None) -> bytes:
    """The text of a scrape: every process's counted metrics (from the shared directory
    ``path``, by default ``PROMETHEUS_MULTIPROC_DIR``, or this process's) and the figures
    read now."""
    path = settings.PROMETHEUS_MULTIPROC_DIR if path is None else path
    registry = CollectorRegistry(auto_describe=False)
    if path:
        MultiProcessCollector(registry, path=path)
    else:
        registry.register(_ThisProcess())
    registry.register(ScrapeCollector())
    return generate_latest(registry)


# --- Access -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _networks(allowed: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(a.strip(), strict=False) for a in allowed if a.strip())


def access(request: HttpRequest) -> int:
    """200 when the request may read the metrics, 403 when not, 404 when nobody may."""
    token = settings.WHALEFALL_METRICS_TOKEN
    networks = _networks(tuple(settings.WHALEFALL_METRICS_ALLOWED))
    if not token and not networks:
        return 404
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    if (
        token
        and scheme.lower() == "bearer"
        and hmac.compare_digest(offered.strip().encode(), token.encode())
    ):
        return 200
    from whalefall import security

    address = security.parse_ip(security.client_ip(request))
    if address is not None and any(
        address.version == network.version and address in network for network in networks
    ):
        return 200
    return 403


def view(request: HttpRequest) -> HttpResponse:
    """``GET /metrics``."""
    if request.method not in {"GET", "HEAD"}:
        return HttpResponseNotAllowed(["GET", "HEAD"])
    status = access(request)
    if status != 200:
        response = HttpResponse(status=status, content_type="text/plain")
        # The request log line records it; a scanner's refusals are no application warning.
        response._has_been_logged = True
        return response
    response = HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response


def _view_name(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    return (match.view_name if match is not None else None) or UNMATCHED


class MetricsMiddleware:
    """Answer ``/metrics`` before host validation and HTTPS redirects (Prometheus scrapes
    by address over the internal network), and time every other request by URL name."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if request.path.rstrip("/") == "/metrics" and request.method in {"GET", "HEAD"}:
            return view(request)
        started = time.perf_counter()
        response = self.get_response(request)
        REQUEST_LATENCY.labels(
            view=_view_name(request),
            method=request.method if request.method in METHODS else "other",
            status=f"{response.status_code // 100}xx",
        ).observe(time.perf_counter() - started)
        return response

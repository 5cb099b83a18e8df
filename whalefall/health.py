"""Health endpoints: liveness, readiness (503 naming each failing check) and a staff report.

Bodies never carry secrets, host names or dependency versions: a failing check says what
failed in a fixed phrase, and details go to the log.
"""

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import structlog
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from whalefall import scope
from whalefall.celery import app as celery_app
from whalefall.models import Heartbeat
from whalefall.tasks import BEAT_HEARTBEAT

log = structlog.get_logger(__name__)

BROKER_TIMEOUT = 1.0


@dataclass
class CheckResult:
    """Outcome of one readiness check."""

    ok: bool
    latency_ms: float = 0.0
    error: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


def _timed(check: Callable[[], CheckResult]) -> CheckResult:
    started = time.perf_counter()
    result = check()
    result.latency_ms = round((time.perf_counter() - started) * 1000, 2)
    return result


def check_database() -> CheckResult:
    """The main database answers a trivial query."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        log.warning("health_database_failed", error_type=type(exc).__name__, error=str(exc))
        return CheckResult(ok=False, error="database unreachable")
    return CheckResult(ok=True)


# Once every migration is applied it stays applied for the life of this process (new
# migrations only arrive with new code), so a positive answer is remembered.
_migrations_applied = False


def check_migrations() -> CheckResult:
    """No migration of the running code is left unapplied."""
    global _migrations_applied
    if _migrations_applied:
        return CheckResult(ok=True)
    try:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        log.warning("health_migrations_failed", error_type=type(exc).__name__, error=str(exc))
        return CheckResult(ok=False, error="migration state unreadable")
    if pending:
        return CheckResult(ok=False, error="migrations pending", detail={"pending": len(pending)})
    _migrations_applied = True
    return CheckResult(ok=True)


def check_broker() -> CheckResult:
    """The Celery broker accepts a connection."""
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT)
            depth = _queue_depth(conn)
    except Exception as exc:  # noqa: BLE001  any transport error means "not ready"
        log.warning("health_broker_failed", error_type=type(exc).__name__, error=str(exc))
        return CheckResult(ok=False, error="broker unreachable")
    return CheckResult(ok=True, detail={"queue_depth": depth})


def _queue_depth(conn) -> int | None:
    """Messages waiting in the default queue, where the transport can tell cheaply."""
    queue = celery_app.conf.task_default_queue
    try:
        _name, depth, _consumers = conn.default_channel.queue_declare(queue=queue, passive=True)
    except Exception:  # noqa: BLE001  a transport that cannot count is not a failure
        return None
    return depth


NO_HEARTBEAT_YET = "no heartbeat recorded yet"


def check_heartbeat() -> CheckResult:
    """Beat scheduled, and a worker ran, the heartbeat task recently."""
    max_age = settings.WHALEFALL_HEARTBEAT_MAX_AGE
    try:
        beat_at = (
            Heartbeat.objects.filter(name=BEAT_HEARTBEAT).values_list("beat_at", flat=True).first()
        )
    except DatabaseError:
        return CheckResult(ok=False, error="heartbeat unreadable")
    if beat_at is None:
        return CheckResult(ok=False, error=NO_HEARTBEAT_YET)
    age = max(0.0, (timezone.now() - beat_at).total_seconds())
    detail = {"age_seconds": round(age, 1), "max_age_seconds": max_age}
    if age > max_age:
        return CheckResult(ok=False, error="heartbeat stale", detail=detail)
    return CheckResult(ok=True, detail=detail)


READINESS_CHECKS: dict[str, Callable[[], CheckResult]] = {
    "database": check_database,
    "migrations": check_migrations,
    "broker": check_broker,
    "beat_heartbeat": check_heartbeat,
}


def run_checks() -> dict[str, CheckResult]:
    """Run every readiness check; checks that need the database are skipped without it."""
    results: dict[str, CheckResult] = {"database": _timed(check_database)}
    for name, check in READINESS_CHECKS.items():
        if name == "database":
            continue
        if name in {"migrations", "beat_heartbeat"} and not results["database"].ok:
            results[name] = CheckResult(ok=False, error="database unreachable")
            continue
        results[name] = _timed(check)
    return results


# Details any staff member may read: how the platform itself is doing. The rest (queue
# depth, pending migrations) and the sections other apps add (run ids, oldest running run,
# partitions) are figures about the whole estate's work, for staff who see every instance.
PLATFORM_DETAIL = frozenset({"age_seconds", "max_age_seconds"})


def checks_for(request: HttpRequest) -> dict[str, CheckResult]:
    """Every readiness check, with estate-wide figures only for those who see every instance."""
    results = run_checks()
    if scope.sees_whole_estate(request):
        return results
    for result in results.values():
        result.detail = {k: v for k, v in result.detail.items() if k in PLATFORM_DETAIL}
    return results


# Extra sections of /health/detailed contributed by other apps (runs, partitions ...).
_DETAIL_PROVIDERS: dict[str, Callable[[], dict[str, Any]]] = {}


def register_detail(name: str) -> Callable[[Callable[[], dict[str, Any]]], Callable]:
    """Decorator: add a named section to the detailed health report."""

    def decorator(func: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
        _DETAIL_PROVIDERS[name] = func
        return func

    return decorator


def _no_store(response: JsonResponse) -> JsonResponse:
    response["Cache-Control"] = "no-store"
    return response


def live(_request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers; no dependency is touched."""
    return _no_store(JsonResponse({"status": "ok"}))


def ready(_request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when every dependency is usable, else 503 naming the failures."""
    results = run_checks()
    failing = sorted(name for name, result in results.items() if not result.ok)
    body = {
        "status": "unavailable" if failing else "ok",
        "failing": failing,
        "checks": {
            name: {"ok": r.ok, **({"error": r.error} if r.error else {})}
            for name, r in results.items()
        },
    }
    if failing == ["beat_heartbeat"] and results["beat_heartbeat"].error == NO_HEARTBEAT_YET:
        # The normal state after a start until beat's first heartbeat: not an incident.
        log.info("readiness_waiting_for_heartbeat")
    elif failing:
        log.warning("readiness_failed", failing=failing)
    response = _no_store(JsonResponse(body, status=503 if failing else 200))
    # The failure is logged above at its true level: not again as a server error by
    # django.request, which logs every 5xx as an error.
    response._has_been_logged = True
    return response


@never_cache
def detailed(request: HttpRequest) -> JsonResponse:
    """Staff report: every check with its latency and the sections other apps add; staff
    limited to some instances get the checks without figures about the whole estate."""
    user = request.user
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return JsonResponse({"error": "staff only"}, status=403)
    results = checks_for(request)
    body: dict[str, Any] = {
        "status": "ok" if all(r.ok for r in results.values()) else "unavailable",
        "checked_at": timezone.now().isoformat(),
        "checks": {name: asdict(r) for name, r in results.items()},
    }
    if not scope.sees_whole_estate(request):
        return JsonResponse(body)
    for name, provider in _DETAIL_PROVIDERS.items():
        try:
            body[name] = provider()
        except Exception as exc:  # one broken section must not hide the rest
            log.exception("health_detail_failed", section=name)
            body[name] = {"error": type(exc).__name__}
    return JsonResponse(body)


class HealthCheckMiddleware:
    """Answer liveness and readiness before host validation, sessions and HTTPS redirects.

    Container runtimes and load balancers probe by IP over plain HTTP; those probes must
    not depend on ``ALLOWED_HOSTS`` or on a session lookup.
    """

    _routes = {"/health/live": live, "/health/ready": ready}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        view = self._routes.get(request.path.rstrip("/"))
        if view is not None and request.method in {"GET", "HEAD"}:
            return view(request)
        return self.get_response(request)

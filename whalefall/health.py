"""Health endpoints: liveness, readiness (503 naming each failing check) and a staff report.

Bodies never carry secrets, host names or dependency versions: a failing check says what
failed in a fixed phrase, and details go to the log.
"""

import contextvars
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import structlog
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy, gettext_noop
from django.views.decorators.cache import never_cache

from whalefall import alerts, scope
from whalefall.celery import app as celery_app
from whalefall.models import Heartbeat
from whalefall.tasks import BEAT_HEARTBEAT

log = structlog.get_logger(__name__)

# Check errors stay English in the JSON endpoints (probes read them) and are marked for
# translation, so that the dashboard shows them in the reader's language.
TIMED_OUT = gettext_noop("timed out")
# The dashboard's names of the checks.
CHECK_LABELS = {
    "database": gettext_lazy("Database"),
    "migrations": gettext_lazy("Migrations"),
    "broker": gettext_lazy("Broker"),
    "beat_heartbeat": gettext_lazy("Beat heartbeat"),
}


@dataclass
class CheckResult:
    """Outcome of one readiness check."""

    ok: bool
    latency_ms: float = 0.0
    error: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


# A probe thread collects its warnings here and the thread that asked logs them: the event
# log is written by the request, never by a thread that may outlive it.
_probe = threading.local()


def _warn(event: str, **fields: Any) -> None:
    deferred = getattr(_probe, "warnings", None)
    if deferred is None:
        log.warning(event, **fields)
    else:
        deferred.append((event, fields))


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
        _warn("health_database_failed", error_type=type(exc).__name__, error=str(exc))
        return CheckResult(ok=False, error=gettext_noop("database unreachable"))
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
        _warn("health_migrations_failed", error_type=type(exc).__name__, error=str(exc))
        return CheckResult(ok=False, error=gettext_noop("migration state unreadable"))
    if pending:
        return CheckResult(
            ok=False, error=gettext_noop("migrations pending"), detail={"pending": len(pending)}
        )
    _migrations_applied = True
    return CheckResult(ok=True)


def broker_connection():
    """A connection to the broker whose every socket operation gives up within
    ``WHALEFALL_BROKER_CHECK_TIMEOUT`` (a frozen broker accepts and then never answers)."""
    timeout = settings.WHALEFALL_BROKER_CHECK_TIMEOUT
    conn = celery_app.connection_for_write()
    if conn.transport_cls in {"redis", "rediss"}:
        conn.transport_options = {
            **conn.transport_options,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
        }
    conn.connect_timeout = timeout
    return conn


def check_broker() -> CheckResult:
    """The Celery broker accepts a connection."""
    timeout = settings.WHALEFALL_BROKER_CHECK_TIMEOUT
    try:
        with broker_connection() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
            depth = _queue_depth(conn)
    except Exception as exc:  # noqa: BLE001  any transport error means "not ready"
        _warn("health_broker_failed", error_type=type(exc).__name__, error=str(exc))
        return CheckResult(ok=False, error=gettext_noop("broker unreachable"))
    return CheckResult(ok=True, detail={"queue_depth": depth})


def _queue_depth(conn) -> int | None:
    """Messages waiting in the default queue, where the transport can tell cheaply."""
    queue = celery_app.conf.task_default_queue
    try:
        _name, depth, _consumers = conn.default_channel.queue_declare(queue=queue, passive=True)
    except Exception:  # noqa: BLE001  a transport that cannot count is not a failure
        return None
    return depth


NO_HEARTBEAT_YET = gettext_noop("no heartbeat recorded yet")
HEARTBEAT_STALE = gettext_noop("heartbeat stale")


def check_heartbeat() -> CheckResult:
    """Beat scheduled, and a worker ran, the heartbeat task recently."""
    max_age = settings.WHALEFALL_HEARTBEAT_MAX_AGE
    try:
        beat_at = (
            Heartbeat.objects.filter(name=BEAT_HEARTBEAT).values_list("beat_at", flat=True).first()
        )
    except DatabaseError:
        return CheckResult(ok=False, error=gettext_noop("heartbeat unreadable"))
    if beat_at is None:
        return CheckResult(ok=False, error=NO_HEARTBEAT_YET)
    age = max(0.0, (timezone.now() - beat_at).total_seconds())
    detail = {"age_seconds": round(age, 1), "max_age_seconds": max_age}
    if age > max_age:
        return CheckResult(ok=False, error=HEARTBEAT_STALE, detail=detail)
    return CheckResult(ok=True, detail=detail)


READINESS_CHECKS: dict[str, Callable[[], CheckResult]] = {
    "database": check_database,
    "migrations": check_migrations,
    "broker": check_broker,
    "beat_heartbeat": check_heartbeat,
}


DATABASE_CHECKS = ("database", "migrations", "beat_heartbeat")

# The probe of each group (the database checks, the broker) still running after its
# deadline: while it waits on a frozen dependency no second one is started, so a hang costs
# this process one thread and one connection, not one per probe.
_in_flight: dict[str, threading.Thread] = {}
_in_flight_lock = threading.Lock()


def _guarded(name: str) -> CheckResult:
    try:
        return _timed(READINESS_CHECKS[name])
    except Exception as exc:  # noqa: BLE001  a check that breaks is a failing check
        _warn("health_check_failed", check=name, error_type=type(exc).__name__)
        return CheckResult(ok=False, error=gettext_noop("check failed"))


def _database_checks(results: dict[str, CheckResult], db, warnings: list) -> None:
    # Runs in its own thread on the connection of the request thread (``db``), so what the
    # request sees (its transaction, in tests) is what the checks see.
    _probe.warnings = warnings
    connections[DEFAULT_DB_ALIAS] = db
    try:
        for name in DATABASE_CHECKS:
            if name != "database" and not results["database"].ok:
                results[name] = CheckResult(ok=False, error=gettext_noop("database unreachable"))
                continue
            results[name] = CheckResult(ok=False, error=TIMED_OUT)  # until it answers
            results[name] = _guarded(name)
    finally:
        del connections[DEFAULT_DB_ALIAS]
        connections.close_all()  # this thread's own connections (the event log's)


def _other_checks(results: dict[str, CheckResult], names: list[str], warnings: list) -> None:
    _probe.warnings = warnings
    try:
        for name in names:
            results[name] = CheckResult(ok=False, error=TIMED_OUT)
            results[name] = _guarded(name)
    finally:
        connections.close_all()


def _start(group: str, target: Callable[..., None], *args) -> threading.Thread | None:
    """Start ``target`` in a daemon thread, unless the previous probe of ``group`` hangs."""
    with _in_flight_lock:
        previous = _in_flight.get(group)
        if previous is not None and previous.is_alive():
            return None
        thread = threading.Thread(
            target=contextvars.copy_context().run,
            args=(target, *args),
            name=f"readiness-{group}",
            daemon=True,
        )
        _in_flight[group] = thread
        thread.start()
        return thread


def run_checks(*, db=None, timeout: float | None = None) -> dict[str, CheckResult]:
    """Run every readiness check, concurrently, and answer within ``timeout`` seconds
    (``WHALEFALL_READY_TIMEOUT``) whatever hangs: a check still waiting then is reported
    "timed out" and the checks after it in its group "not checked". Checks that need the
    database are skipped without it. ``db`` is the database connection to probe (by
    default the one of the calling thread)."""
    timeout = settings.WHALEFALL_READY_TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + timeout
    shared = connections[DEFAULT_DB_ALIAS] if db is None else db
    others = [name for name in READINESS_CHECKS if name not in DATABASE_CHECKS]
    db_results: dict[str, CheckResult] = {}
    other_results: dict[str, CheckResult] = {}

    shared.inc_thread_sharing()
    db_warnings: list = []
    other_warnings: list = []
    db_thread = _start("database", _database_checks, db_results, shared, db_warnings)
    if db_thread is None:
        shared.dec_thread_sharing()
    other_thread = _start("other", _other_checks, other_results, others, other_warnings)
    for thread in (db_thread, other_thread):
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))

    if db_thread is not None:
        if not db_thread.is_alive():
            shared.dec_thread_sharing()
        else:
            # The probe keeps the connection it hangs on; the caller gets a fresh one.
            threading.Thread(target=_release_after, args=(db_thread, shared), daemon=True).start()
            if db is None:
                connections[DEFAULT_DB_ALIAS] = connections.create_connection(DEFAULT_DB_ALIAS)
    for event, fields in [*list(db_warnings), *list(other_warnings)]:
        log.warning(event, **fields)
    results = {**_group(DATABASE_CHECKS, dict(db_results)), **_group(others, dict(other_results))}
    timed_out = sorted(name for name, r in results.items() if r.error == TIMED_OUT)
    if timed_out:
        log.warning("readiness_timed_out", checks=timed_out, timeout_seconds=timeout)
    return {name: results[name] for name in READINESS_CHECKS}


def _group(names, finished: dict[str, CheckResult]) -> dict[str, CheckResult]:
    """The results of one group of checks run in order: the first with no answer timed out
    (it stays marked so while it runs), those after it were not reached."""
    results: dict[str, CheckResult] = {}
    cut_short = False
    for name in names:
        result = finished.get(name)
        if cut_short:
            result = CheckResult(ok=False, error=gettext_noop("not checked"))
        elif result is None or result.error == TIMED_OUT:
            result = CheckResult(ok=False, error=TIMED_OUT)
            cut_short = True
        results[name] = result
    return results


def _release_after(thread: threading.Thread, db) -> None:
    """Close the connection a timed-out probe holds once the probe ends (the dependency
    answered or the connection broke)."""
    thread.join()
    try:
        db.close()
    except Exception:  # noqa: BLE001, S110  a broken connection is closed either way
        pass
    finally:
        db.dec_thread_sharing()


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
    _alert_heartbeat_stale(results)
    response = _no_store(JsonResponse(body, status=503 if failing else 200))
    # The failure is logged above at its true level: not again as a server error by
    # django.request, which logs every 5xx as an error.
    response._has_been_logged = True
    return response


def _alert_heartbeat_stale(results: dict[str, CheckResult]) -> None:
    """A stale beat heartbeat seen by a probe becomes an alert event (one per deduplication
    window): beat itself cannot report that it stopped. Only while the database and the
    broker answer, so the probe never waits on them here."""
    heartbeat, database, broker = (
        results.get(name) for name in ("beat_heartbeat", "database", "broker")
    )
    if not (heartbeat and database and broker) or heartbeat.error != HEARTBEAT_STALE:
        return
    if not (database.ok and broker.ok):
        return
    try:
        alerts.emit(
            "heartbeat_stale",
            payload={
                "age": int(heartbeat.detail.get("age_seconds", 0)),
                "max_age": heartbeat.detail.get("max_age_seconds"),
            },
            dedup_key=BEAT_HEARTBEAT,
        )
    except Exception as exc:  # noqa: BLE001  the probe answers whatever the alert does
        log.warning("heartbeat_alert_failed", error_type=type(exc).__name__)


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

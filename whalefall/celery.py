"""The Celery application shared by the web process, the worker and beat."""

import os

import structlog
from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "whalefall.settings")

app = Celery("whalefall")


def route_task(name, args, kwargs, options, task=None, **_kw) -> dict | None:
    """``task_routes``: the queue of a task (``WHALEFALL_TASK_QUEUES``), and for a run's item
    (or a chunk of them) the queue of the run's kind (``WHALEFALL_RUN_KIND_QUEUES``). An
    explicit ``queue=`` given when sending wins over it."""
    from django.conf import settings

    queue = None
    if name in ("syncjobs.run_item", "syncjobs.run_items_send"):
        queue = settings.WHALEFALL_RUN_KIND_QUEUES.get((kwargs or {}).get("kind"))
    if queue is None:
        queue = settings.WHALEFALL_TASK_QUEUES.get(name)
    return {"queue": queue} if queue else None


app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def _setup_logging(**_kwargs) -> None:
    """Route worker and beat logs through the project's structlog pipeline."""
    from django.conf import settings

    from whalefall.logging import configure

    configure(settings.LOGGING)


@signals.task_prerun.connect
def _bind_task_context(task_id=None, task=None, **_kwargs) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(task_id=task_id, task_name=getattr(task, "name", None))


@signals.task_postrun.connect
def _clear_task_context(**_kwargs) -> None:
    structlog.contextvars.clear_contextvars()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _close_old_connections(task=None, **_kwargs) -> None:
    """Around each task, what Django does around each request: close this thread's database
    connections that are too old (``CONN_MAX_AGE``) or broken, have the next query check the
    others (``CONN_HEALTH_CHECKS``), and hand pooled ones back to the pool. Not for a task run
    eagerly, inside its caller's transaction."""
    if getattr(getattr(task, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


@signals.worker_init.connect
@signals.worker_process_init.connect
def _collector_tune(**_kwargs) -> None:
    """The worker (and each of its pool's processes) keeps the garbage collector away from
    what it loaded at start (whalefall.collector)."""
    from whalefall.collector import collector_tune

    collector_tune()


@signals.worker_process_shutdown.connect
def _metrics_process_exited(pid=None, **_kwargs) -> None:
    """A worker child exits: its live gauges leave the shared metrics directory."""
    from whalefall import metrics

    metrics.process_exited(pid or os.getpid())

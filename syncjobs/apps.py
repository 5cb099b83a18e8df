from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.utils.translation import gettext_lazy as _


def check_stale_after_time_limit(app_configs=None, **_kwargs) -> list[checks.CheckMessage]:
    """The reaper must not fail items that may still be running within their time limit."""
    if settings.WHALEFALL_RUN_STALE_MINUTES * 60 > settings.CELERY_TASK_TIME_LIMIT:
        return []
    return [
        checks.Warning(
            "WHALEFALL_RUN_STALE_MINUTES is not longer than WHALEFALL_TASK_TIME_LIMIT: the "
            "reaper would fail run items that are still running.",
            hint="Set WHALEFALL_RUN_STALE_MINUTES above the task time limit (in minutes).",
            id="syncjobs.W001",
        )
    ]


def check_run_retention_floor(app_configs=None, **_kwargs) -> list[checks.CheckMessage]:
    """The retention job's default must respect the floor it enforces on every purge."""
    if settings.WHALEFALL_RUN_RETENTION_DAYS >= settings.WHALEFALL_RUN_RETENTION_MIN_DAYS:
        return []
    return [
        checks.Error(
            "WHALEFALL_RUN_RETENTION_DAYS is below WHALEFALL_RUN_RETENTION_MIN_DAYS: the run "
            "retention job would refuse to purge.",
            hint="Keep run history at least WHALEFALL_RUN_RETENTION_MIN_DAYS days.",
            id="syncjobs.E001",
        )
    ]


class SyncJobsConfig(AppConfig):
    """Runs, run items, Celery tasks and the default schedule."""

    name = "syncjobs"
    verbose_name = _("Sync jobs")

    def ready(self) -> None:
        from django.db.models.signals import pre_save
        from django_celery_beat.models import PeriodicTask

        from syncjobs.schedulable import refuse_unschedulable
        from syncjobs.services import runs_health
        from whalefall.health import register_detail

        register_detail("runs")(runs_health)

        from syncjobs import dashboard  # noqa: F401  (registers the dashboard panels)

        checks.register(check_stale_after_time_limit)
        checks.register(check_run_retention_floor)
        # Whatever stores a periodic task, it names a schedulable task with valid arguments.
        pre_save.connect(
            refuse_unschedulable, sender=PeriodicTask, dispatch_uid="syncjobs_schedulable"
        )

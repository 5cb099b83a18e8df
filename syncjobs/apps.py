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


class SyncJobsConfig(AppConfig):
    """Runs, run items, Celery tasks and the default schedule."""

    name = "syncjobs"
    verbose_name = _("Sync jobs")

    def ready(self) -> None:
        from syncjobs.services import runs_health
        from whalefall.health import register_detail

        register_detail("runs")(runs_health)
        checks.register(check_stale_after_time_limit)

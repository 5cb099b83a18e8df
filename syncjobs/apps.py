from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SyncJobsConfig(AppConfig):
    """Runs, run items, Celery tasks and the default schedule."""

    name = "syncjobs"
    verbose_name = _("Sync jobs")

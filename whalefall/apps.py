"""Application configs of the project package."""

import structlog
from django.apps import AppConfig
from django.conf import settings
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _

log = structlog.get_logger(__name__)


class WhaleFallConfig(AppConfig):
    """Project-wide models (heartbeat, events), signals and start-up notices."""

    default = True
    name = "whalefall"
    verbose_name = _("WhaleFall")

    def ready(self) -> None:
        # security connects login receivers, sso its system check.
        from whalefall import audit, language, security, sso  # noqa: F401

        audit.register()

        if settings.EMBEDDED_DEFAULTS and settings.WHALEFALL_EMBEDDED_NOTICE:
            log.info(
                "embedded_defaults_in_use",
                django_env=settings.DJANGO_ENV,
                components=settings.EMBEDDED_DEFAULTS,
            )


class WhaleFallAdminConfig(admin_apps.AdminConfig):
    """The Django admin, served by WhaleFall's branded site."""

    default = False
    default_site = "whalefall.sites.WhaleFallAdminSite"

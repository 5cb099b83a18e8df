"""Dashboard panels of the project package."""

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from whalefall.health import run_checks
from whalefall.sites import DashboardPanel


@admin.site.register_panel
def system_health_panel(request: HttpRequest) -> DashboardPanel | None:
    """Readiness of the platform, shown to staff on the dashboard."""
    if not request.user.is_staff:
        return None
    return DashboardPanel(
        title=_("System health"),
        template="admin/panels/system_health.html",
        context={"checks": run_checks()},
        order=0,
    )

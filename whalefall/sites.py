"""WhaleFall's admin site: branding, the dashboard panel registry and login throttling."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from whalefall.security import login_is_throttled


@dataclass
class DashboardPanel:
    """One box on the admin index page, rendered from its own template."""

    title: str
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    order: int = 100


PanelProvider = Callable[[HttpRequest], DashboardPanel | None]


class WhaleFallAdminSite(admin.AdminSite):
    """The admin is WhaleFall's user interface; apps add panels to its index page."""

    site_header = _("WhaleFall")
    site_title = _("WhaleFall")
    index_title = _("Database estate")
    index_template = "admin/whalefall_index.html"

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)
        self._panel_providers: list[PanelProvider] = []

    def register_panel(self, provider: PanelProvider) -> PanelProvider:
        """Add a dashboard panel; the provider returns None to hide it for a request."""
        self._panel_providers.append(provider)
        return provider

    def dashboard_panels(self, request: HttpRequest) -> list[DashboardPanel]:
        panels = [panel for p in self._panel_providers if (panel := p(request)) is not None]
        return sorted(panels, key=lambda panel: panel.order)

    def index(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        extra_context = {**(extra_context or {}), "panels": self.dashboard_panels(request)}
        return super().index(request, extra_context)

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        if request.method == "POST" and login_is_throttled(request):
            return TemplateResponse(
                request,
                "admin/rate_limited.html",
                {**self.each_context(request), "title": _("Too many login attempts")},
                status=429,
            )
        return super().login(request, extra_context)

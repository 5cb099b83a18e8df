"""WhaleFall's admin site: branding, the dashboard panel registry and login throttling."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache

from whalefall.mfa import AdminLoginView
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

    def get_urls(self):
        from django.urls import path

        from whalefall.language import set_language_view

        return [
            path("language/", self.admin_view(set_language_view), name="set-language"),
            *super().get_urls(),
        ]

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
        return self._login_view(request, extra_context)

    @method_decorator(never_cache)
    def _login_view(self, request: HttpRequest, extra_context: dict | None) -> HttpResponse:
        """Django's admin login with the second factor between password and session
        (:class:`whalefall.mfa.AdminLoginView`) and the single sign-on button."""
        if request.method == "GET" and self.has_permission(request):
            return HttpResponseRedirect(reverse("admin:index", current_app=self.name))
        context = {
            **self.each_context(request),
            "title": _("Log in"),
            "subtitle": None,
            "app_path": request.get_full_path(),
            "username": request.user.get_username(),
            "sso_provider_name": (
                settings.WHALEFALL_OIDC_PROVIDER_NAME if settings.WHALEFALL_OIDC_ENABLED else ""
            ),
        }
        if REDIRECT_FIELD_NAME not in request.GET and REDIRECT_FIELD_NAME not in request.POST:
            context[REDIRECT_FIELD_NAME] = reverse("admin:index", current_app=self.name)
        context.update(extra_context or {})
        request.current_app = self.name
        return AdminLoginView.as_view(
            extra_context=context,
            authentication_form=self.login_form or AdminAuthenticationForm,
            template_name=self.login_template or "admin/login.html",
        )(request)

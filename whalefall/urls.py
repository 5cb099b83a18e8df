"""URL routes: the admin is the user interface, API v1 serves automation, health endpoints
serve probes."""

from django.contrib import admin
from django.http import HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from whalefall import health, metrics, mfa, sso


def favicon(request) -> HttpResponsePermanentRedirect:
    """Browsers ask every site for /favicon.ico, pages or not (the API's docs, say)."""
    return HttpResponsePermanentRedirect(static("whalefall/favicon.svg"))


urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("favicon.ico", favicon),
    # Two-factor sign-in and single sign-on, ahead of the admin's own routes.
    path("admin/two-factor/", mfa.setup_view, name="mfa-setup"),
    path("admin/two-factor/verify/", mfa.verify_view, name="mfa-verify"),
    path("admin/two-factor/set-up/", mfa.enrol_view, name="mfa-enrol"),
    path("admin/sso/start/", sso.start_view, name="sso-start"),
    path("admin/sso/callback/", sso.callback_view, name="sso-callback"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("whalefall.api.urls")),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("health/detailed", health.detailed, name="health-detailed"),
    # Answered by whalefall.metrics.MetricsMiddleware ahead of host checks; named for reverse().
    path("metrics", metrics.view, name="metrics"),
]

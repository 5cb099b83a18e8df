"""URL routes: the admin is the user interface; health endpoints for probes."""

from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from whalefall import health

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("health/detailed", health.detailed, name="health-detailed"),
]

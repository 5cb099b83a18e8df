"""Routes of API v1: the resources every app registers, the OpenAPI schema, Swagger UI and
ReDoc (served from WhaleFall's static files), and the envelope for unknown addresses."""

from importlib import import_module
from importlib.util import find_spec

from django.apps import apps
from django.conf import settings
from django.urls import include, path, re_path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from whalefall.api import router
from whalefall.api.errors import not_found

# Each WhaleFall app's api.py registers its views on the router when imported.
for config in apps.get_app_configs():
    if config.path.startswith(str(settings.BASE_DIR)) and find_spec(f"{config.name}.api"):
        import_module(f"{config.name}.api")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The address the previous system served its schema at, kept for existing clients.
    path("openapi.json", SpectacularAPIView.as_view(), name="api-schema-json"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("", include(router.urls)),
    re_path(r"^.*$", not_found),
]

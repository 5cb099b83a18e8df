"""Routes of API v1: the resources every app registers, the OpenAPI schema, Swagger UI and
ReDoc (served from WhaleFall's static files), and the envelope for unknown addresses."""

from importlib import import_module
from importlib.util import find_spec

from csp.decorators import csp_update
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

# Swagger UI and ReDoc render the schema with styles their scripts inject, Swagger UI draws
# its icons as data: images and ReDoc searches in a worker it starts from a blob; scripts
# stay WhaleFall's own files, as everywhere.
_docs_policy = csp_update(
    {"style-src": ["'unsafe-inline'"], "img-src": ["data:"], "worker-src": ["blob:"]}
)

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The address the previous system served its schema at, kept for existing clients.
    path("openapi.json", SpectacularAPIView.as_view(), name="api-schema-json"),
    path(
        "docs/",
        _docs_policy(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    path(
        "redoc/",
        _docs_policy(SpectacularRedocView.as_view(url_name="api-schema")),
        name="api-redoc",
    ),
    path("", include(router.urls)),
    re_path(r"^.*$", not_found),
]

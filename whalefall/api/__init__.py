"""REST API v1: the router every app registers its views on, token authentication, the
permission and scope rules shared with the admin, pagination and the error envelope.

Each app keeps its serializers and views in its own ``api.py`` and registers them here
(``router.register(...)``); :mod:`whalefall.api.urls` imports those modules.
"""

from rest_framework.routers import DefaultRouter


class Router(DefaultRouter):
    """The v1 router; its root view lists every resource. Addresses end with a slash; one
    without gets a 404 that names the address with it (:func:`whalefall.api.errors.not_found`)."""

    include_format_suffixes = False


router = Router()

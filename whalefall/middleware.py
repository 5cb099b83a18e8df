"""Request-scoped logging context (a request id and the client address on every log line,
the id in the response), forwarded headers only from trusted proxies, and the
Permissions-Policy header."""

import re
import time
import uuid

import structlog
from auditlog.middleware import AuditlogMiddleware
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from whalefall.security import client_ip, is_trusted_proxy, parse_ip

log = structlog.get_logger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
# Accept an upstream id only if it is short and harmless to echo back.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_QUIET_PREFIXES = ("/health/", "/static/")


class RequestIDMiddleware:
    """Read or create ``X-Request-ID``, bind it for the request's logs, return it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id, client_ip=client_ip(request))
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            if not request.path.startswith(_QUIET_PREFIXES) or response.status_code >= 500:
                log.info(
                    "request_finished",
                    method=request.method,
                    path=request.path,
                    status=response.status_code,
                    duration_ms=round((time.perf_counter() - started) * 1000, 1),
                )
            return response
        finally:
            structlog.contextvars.clear_contextvars()


_FORWARDED_HEADERS = (
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_FORWARDED",
)


class TrustedProxyMiddleware:
    """Drop ``X-Forwarded-*`` and ``Forwarded`` headers unless the peer is one of
    ``WHALEFALL_TRUSTED_PROXIES``, so that Django's proxy settings (HTTPS detection,
    forwarded host) and :func:`~whalefall.security.client_ip` believe only those proxies."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_trusted_proxy(parse_ip(request.META.get("REMOTE_ADDR") or "")):
            for header in _FORWARDED_HEADERS:
                request.META.pop(header, None)
        return self.get_response(request)


class PermissionsPolicyMiddleware:
    """Send ``WHALEFALL_PERMISSIONS_POLICY``: the browser features no WhaleFall page uses
    are denied to it and to anything it could embed."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", settings.WHALEFALL_PERMISSIONS_POLICY)
        return response


class BindUserMiddleware:
    """Add the authenticated user's id to the request's logging context."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            structlog.contextvars.bind_contextvars(user_id=user.pk)
        return self.get_response(request)


def current_request_id() -> str | None:
    """The request (or task) id bound to the logging context; the audit log's correlation id."""
    context = structlog.contextvars.get_contextvars()
    return context.get("request_id") or context.get("task_id")


class AuditContextMiddleware(AuditlogMiddleware):
    """django-auditlog's actor/address capture, with the address from :func:`client_ip`.

    The stock middleware believes any client-sent ``X-Forwarded-For``; audit entries must
    not carry an address the client chose.
    """

    @staticmethod
    def _get_remote_addr(request: HttpRequest) -> str | None:
        return client_ip(request)

    @staticmethod
    def _get_remote_port(request: HttpRequest) -> int | None:
        return None

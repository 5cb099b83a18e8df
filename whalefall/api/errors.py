"""One error envelope for every 4xx and 5xx answer of the API::

    {"error": {"code": "validation_error", "message": "…",
               "fields": [{"path": "tags[1]", "code": "does_not_exist", "message": "…"}],
               "request_id": "…"}}

``request_id`` is the ``X-Request-ID`` header of the answer and the id on the request's log
lines.
"""

import structlog
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.urls import is_valid_path, resolve
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

log = structlog.get_logger(__name__)

# The error envelope's schema component (whalefall.api.schema adds it to the document).
ERROR_REF = {"$ref": "#/components/schemas/Error"}


class Conflict(exceptions.APIException):
    """The request is valid but the object's state forbids it (409)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = gettext_lazy("The object's current state does not allow this.")


def conflict_response(description: str) -> OpenApiResponse:
    """The schema of a 409 answer, in the error envelope."""
    return OpenApiResponse(response=ERROR_REF, description=description)


def _flatten(detail, path: str = "") -> list[dict]:
    """Field errors as a flat list, each with its path (``items[2].name``)."""
    if isinstance(detail, dict):
        found = []
        for key, value in detail.items():
            if key in ("non_field_errors", "__all__"):
                found += _flatten(value, path)
            elif isinstance(key, int):  # DRF keys a list field's errors by position
                found += _flatten(value, f"{path}[{key}]")
            else:
                found += _flatten(value, f"{path}.{key}" if path else str(key))
        return found
    if isinstance(detail, list):
        if all(isinstance(item, exceptions.ErrorDetail) for item in detail):
            return [
                {"path": path, "code": item.code or "invalid", "message": str(item)}
                for item in detail
            ]
        found = []
        for index, item in enumerate(detail):
            found += _flatten(item, f"{path}[{index}]")
        return found
    code = getattr(detail, "code", None) or "invalid"
    return [{"path": path, "code": code, "message": str(detail)}]


def envelope(request, *, code: str, message: str, fields: list[dict] | None = None) -> dict:
    return {
        "error": {
            "code": code,
            "message": message,
            "fields": fields or [],
            "request_id": getattr(request, "request_id", ""),
        }
    }


def exception_handler(exc, context):
    """DRF's exception handler with every answer in the envelope, unexpected errors too."""
    request = context.get("request")
    django_request = getattr(request, "_request", request)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        log.exception("api_unhandled_error", error_type=type(exc).__name__)
        set_rollback()
        body = envelope(django_request, code="server_error", message=_("Internal server error."))
        return Response(body, status=status.HTTP_500_INTERNAL_SERVER_ERROR)

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(max(1, int(exc.wait + 0.999)))
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        body = envelope(
            django_request,
            code="validation_error",
            message=_("The request is not valid; see the fields."),
            fields=fields,
        )
    else:
        detail = exc.detail
        message = str(detail) if not isinstance(detail, dict | list) else str(exc.default_detail)
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
        body = envelope(django_request, code=code, message=message)
    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)


@csrf_exempt  # a POST to an unknown address gets this answer, not the CSRF failure page
def not_found(request, *args, **kwargs) -> JsonResponse:
    """An unknown address under the API: the envelope, not the admin's HTML 404."""
    message = _("No such API endpoint.")
    if not request.path_info.endswith("/"):
        with_slash = request.path_info + "/"
        match = resolve(with_slash) if is_valid_path(with_slash) else None
        if match is not None and match.func is not not_found:
            message = _("No such API endpoint; addresses end with a slash: %(path)s") % {
                "path": with_slash
            }
    return JsonResponse(envelope(request, code="not_found", message=message), status=404)

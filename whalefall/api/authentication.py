"""Who a request is: a personal token (``Authorization: Bearer wf_…``) or, for the browsable
API and Swagger UI, the admin's session with its CSRF check."""

from auditlog.context import auditlog_value
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from whalefall.api.tokens import api_token_authenticate, api_token_touch
from whalefall.security import client_ip


class TokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <token>``; ``request.auth`` is the :class:`ApiToken`."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Malformed Authorization header."))
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed(_("Malformed token.")) from exc
        row = api_token_authenticate(token)
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid, expired or revoked token."))
        api_token_touch(row, ip=client_ip(request._request) or None)
        _audit_as(row.user)
        return row.user, row

    def authenticate_header(self, request) -> str:
        return self.keyword


def _audit_as(user) -> None:
    """Name ``user`` as the actor of the audit entries this request writes: the audit
    middleware ran before the token was read, when the request had no user yet."""
    try:
        context = auditlog_value.get()
    except LookupError:
        return
    context["actor"] = user


class SessionAuthentication(authentication.SessionAuthentication):
    """The admin's session, with CSRF enforced on every unsafe request."""


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "whalefall.api.authentication.TokenAuthentication"
    name = "token"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": str(_("A personal API token, created in the admin under “API tokens”.")),
        }


class SessionAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "whalefall.api.authentication.SessionAuthentication"
    name = "session"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}

"""Login throttling and security event logging."""

import structlog
from django.conf import settings
from django.contrib.auth import signals as auth_signals
from django.dispatch import receiver
from django.http import HttpRequest
from django_ratelimit.core import is_ratelimited

log = structlog.get_logger(__name__)


def client_ip(request: HttpRequest) -> str:
    """The client's address: the proxy-appended one when a trusted proxy is configured."""
    if settings.WHALEFALL_TRUSTED_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        # The right-most entry is the one our own proxy appended; the rest is client-supplied.
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    # Behind a Unix-socket proxy REMOTE_ADDR is empty; such clients share one bucket.
    return request.META.get("REMOTE_ADDR") or "0.0.0.0"  # noqa: S104


def _username_key(_group: str, request: HttpRequest) -> str:
    return request.POST.get("username", "").strip().lower()


def login_is_throttled(request: HttpRequest) -> bool:
    """Count one login attempt against the address and the username; True when over a limit."""
    by_ip = is_ratelimited(
        request,
        group="admin-login-ip",
        key="ip",
        rate=settings.WHALEFALL_LOGIN_RATE_IP,
        method="POST",
        increment=True,
    )
    by_username = bool(_username_key("", request)) and is_ratelimited(
        request,
        group="admin-login-username",
        key=_username_key,
        rate=settings.WHALEFALL_LOGIN_RATE_USERNAME,
        method="POST",
        increment=True,
    )
    if by_ip or by_username:
        log.warning(
            "login_rate_limited",
            security_event=True,
            ip=client_ip(request),
            username=_username_key("", request),
            by_ip=by_ip,
            by_username=by_username,
        )
        return True
    return False


@receiver(auth_signals.user_logged_in)
def _log_login(sender, request, user, **_kwargs) -> None:
    log.info("login_succeeded", security_event=True, user_id=user.pk, ip=_ip_or_none(request))


@receiver(auth_signals.user_login_failed)
def _log_login_failure(sender, credentials, request=None, **_kwargs) -> None:
    log.warning(
        "login_failed",
        security_event=True,
        username=str(credentials.get("username", ""))[:150],
        ip=_ip_or_none(request),
    )


def _ip_or_none(request: HttpRequest | None) -> str | None:
    return client_ip(request) if request is not None else None

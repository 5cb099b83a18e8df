"""Login throttling and the record of login attempts."""

import ipaddress

import structlog
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth import signals as auth_signals
from django.dispatch import receiver
from django.http import HttpRequest
from django_ratelimit.core import is_ratelimited

from whalefall.models import LoginEvent

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


def _typed_username(request: HttpRequest | None) -> str:
    if request is None or request.method != "POST":
        return ""
    return request.POST.get("username", "").strip()[:150]


def _username_key(_group: str, request: HttpRequest) -> str:
    return _typed_username(request).lower()


def record_login_event(kind: str, request: HttpRequest | None, user=None, username: str = ""):
    """Store one login attempt for the auditors and log it as a security event."""
    ip = client_ip(request) if request is not None else None
    try:
        ip = str(ipaddress.ip_address(ip)) if ip else None
    except ValueError:
        ip = None
    username = username or _typed_username(request)
    if user is None and username:
        user = get_user_model().objects.filter(username=username).first()
    event = LoginEvent.objects.create(
        kind=kind,
        username=username,
        user=user,
        ip_address=ip,
        user_agent=(request.headers.get("User-Agent", "") if request is not None else "")[:300],
        request_id=getattr(request, "request_id", "") if request is not None else "",
    )
    level = log.info if kind == LoginEvent.Kind.SUCCEEDED else log.warning
    level(f"login_{kind}", security_event=True, username=username, ip=ip)
    return event


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
        record_login_event(LoginEvent.Kind.RATE_LIMITED, request)
        return True
    return False


@receiver(auth_signals.user_logged_in)
def _record_login(sender, request, user, **_kwargs) -> None:
    record_login_event(LoginEvent.Kind.SUCCEEDED, request, user=user, username=user.get_username())


@receiver(auth_signals.user_login_failed)
def _record_login_failure(sender, credentials, request=None, **_kwargs) -> None:
    username = str(credentials.get("username", ""))[:150]
    record_login_event(LoginEvent.Kind.FAILED, request, username=username)

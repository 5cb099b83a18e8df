"""The client's address, login throttling and the record of login attempts.

Only failed logins count toward the limits (``WHALEFALL_LOGIN_RATE_IP`` per client
address, ``WHALEFALL_LOGIN_RATE_USERNAME`` per typed username, case-insensitive): a wrong
password or second-factor code — anything that sends Django's ``user_login_failed`` —
counts once against both; an address or name over its limit gets the 429 page before its
credentials are even checked; a successful login starts the username's count afresh (not
the address's, so one valid account cannot lift the limit of an address that guesses
others).
"""

import functools
import hashlib
import ipaddress

import structlog
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth import signals as auth_signals
from django.core.cache import cache
from django.dispatch import receiver
from django.http import HttpRequest
from django_ratelimit import ALL
from django_ratelimit.core import get_usage

from whalefall import events, metrics
from whalefall.models import LoginEvent

log = structlog.get_logger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
UNKNOWN_CLIENT = "0.0.0.0"  # noqa: S104  (a peer without address, e.g. a Unix socket)


def parse_ip(text: str) -> IPAddress | None:
    """``text`` as an IP address (an IPv4-mapped IPv6 address as its IPv4 one), or None."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


@functools.lru_cache(maxsize=4)
def _proxy_networks(proxies: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in proxies if p.strip())


def is_trusted_proxy(address: IPAddress | None) -> bool:
    """Whether ``address`` is one of ``WHALEFALL_TRUSTED_PROXIES``."""
    if address is None:
        return False
    networks = _proxy_networks(tuple(settings.WHALEFALL_TRUSTED_PROXIES))
    return any(address.version == n.version and address in n for n in networks)


def client_ip(request: HttpRequest) -> str:
    """The client's address — the one the login limiter, every log line, the login records,
    the audit log and the event log use.

    ``REMOTE_ADDR``, unless that peer is one of ``WHALEFALL_TRUSTED_PROXIES``: then the
    right-most ``X-Forwarded-For`` address that is not a trusted proxy (each proxy appends
    the peer it saw; whatever lies left of the first untrusted address is the client's own
    claim). An entry that is no address ends the walk at the proxy that passed it on.
    """
    peer = parse_ip(request.META.get("REMOTE_ADDR") or "")
    if peer is None:
        return UNKNOWN_CLIENT
    client = peer
    if is_trusted_proxy(peer):
        for hop in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
            address = parse_ip(hop)
            if address is None:
                break
            client = address
            if not is_trusted_proxy(address):
                break
    return str(client)


def _typed_username(request: HttpRequest | None) -> str:
    if request is None or request.method != "POST":
        return ""
    return request.POST.get("username", "").strip()[:150]


# --- The limiter ------------------------------------------------------------------------
#
# django-ratelimit keeps the counts. A username's count lives in a bucket named after the
# name and a generation number; a successful login moves the name to a new generation, an
# empty bucket, which is how its count starts afresh.

IP_GROUP = "admin-login-ip"
USERNAME_GROUP = "admin-login-username"


def _generation_key(name: str) -> str:
    return "whalefall:login-generation:" + hashlib.sha256(name.encode()).hexdigest()


def _username_bucket(name: str):
    bucket = f"{name}#{cache.get(_generation_key(name), 0)}"
    return lambda _group, _request: bucket


def _usage(request: HttpRequest, name: str, *, increment: bool) -> list[dict]:
    usages = [
        get_usage(
            request,
            group=IP_GROUP,
            key="ip",
            rate=settings.WHALEFALL_LOGIN_RATE_IP,
            method=ALL,
            increment=increment,
        )
    ]
    if name:
        usages.append(
            get_usage(
                request,
                group=USERNAME_GROUP,
                key=_username_bucket(name),
                rate=settings.WHALEFALL_LOGIN_RATE_USERNAME,
                method=ALL,
                increment=increment,
            )
        )
    return [usage for usage in usages if usage is not None]


def count_login_failure(request: HttpRequest, username: str) -> None:
    """Count one failed login against the client address and the (lower-cased) username."""
    _usage(request, username.strip()[:150].lower(), increment=True)


def reset_login_failures(username: str) -> None:
    """Start the username's failure count afresh (after a successful login)."""
    key = _generation_key(username.strip()[:150].lower())
    cache.set(key, cache.get(key, 0) + 1, timeout=None)


def record_login_event(kind: str, request: HttpRequest | None, user=None, username: str = ""):
    """Store one login attempt for the auditors and log it as a security event.

    Failures and refusals come from anyone on the network: beyond a few per address and
    name, and a budget per window, they are not stored (``events.admit_anonymous``), so
    that such traffic cannot grow the database; the log line is always written."""
    ip = client_ip(request) if request is not None else None
    ip = None if ip == UNKNOWN_CLIENT else ip
    username = username or _typed_username(request)
    level = log.info if kind == LoginEvent.Kind.SUCCEEDED else log.warning
    # A person who mistypes is recorded every time; a flood of refusals once per window.
    per_source = 10 if kind == LoginEvent.Kind.FAILED else 1
    if (
        kind != LoginEvent.Kind.SUCCEEDED
        and events.admit_anonymous(
            f"login_{kind}", f"{ip}|{username.lower()}", per_source=per_source
        )
        is None
    ):
        level(f"login_{kind}", security_event=True, username=username, ip=ip, stored=False)
        return None
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
    level(f"login_{kind}", security_event=True, username=username, ip=ip)
    return event


def login_is_throttled(request: HttpRequest, username: str | None = None) -> bool:
    """True when the client address or the username (the typed one, or ``username`` for
    the second-factor step, which has no username field) has used up its failed logins.

    Checking counts nothing: only :func:`count_login_failure` does."""
    name = _typed_username(request) if username is None else username.strip()[:150]
    if any(u["count"] >= u["limit"] for u in _usage(request, name.lower(), increment=False)):
        record_login_event(LoginEvent.Kind.RATE_LIMITED, request, username=name)
        return True
    return False


@receiver(auth_signals.user_logged_in)
def _record_login(sender, request, user, **_kwargs) -> None:
    reset_login_failures(user.get_username())
    record_login_event(LoginEvent.Kind.SUCCEEDED, request, user=user, username=user.get_username())


@receiver(auth_signals.user_login_failed)
def _record_login_failure(sender, credentials, request=None, **_kwargs) -> None:
    username = str(credentials.get("username", ""))[:150]
    metrics.login_failed()
    if request is not None:
        count_login_failure(request, username)
    record_login_event(LoginEvent.Kind.FAILED, request, username=username)

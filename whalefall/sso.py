"""Optional single sign-on through OpenID Connect (mozilla-django-oidc).

Off unless ``WHALEFALL_OIDC_*`` is configured. A directory account is known by its issuer and
subject (never by e-mail or name, which another account could claim); its directory groups
are mapped to WhaleFall's groups by ``WHALEFALL_OIDC_GROUP_MAP`` at every sign-in, and only a
mapped role makes it staff. The second factor follows :mod:`whalefall.mfa`.
"""

import jwt
import requests
import structlog
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group
from django.core import checks
from django.core.exceptions import SuspiciousOperation, ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from whalefall import mfa
from whalefall.models import SingleSignOnIdentity
from whalefall.roles import all_role_definitions

log = structlog.get_logger(__name__)

# Clock difference tolerated between the identity provider and WhaleFall.
LEEWAY_SECONDS = 60


# --- Directory groups -> WhaleFall groups ----------------------------------------------------


def directory_groups(value) -> set[str]:
    """The group names a groups claim lists (a list of strings, or one string)."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, list | tuple):
        return {item for item in value if isinstance(item, str)}
    return set()


def mapped_groups(groups: set[str]) -> set[str]:
    """The WhaleFall groups that ``WHALEFALL_OIDC_GROUP_MAP`` gives these directory groups."""
    mapping = settings.WHALEFALL_OIDC_GROUP_MAP
    return {target for group in groups for target in mapping.get(group, ())}


def managed_groups() -> set[str]:
    """Groups single sign-on sets and clears: every role and every mapped group."""
    targets = {t for targets in settings.WHALEFALL_OIDC_GROUP_MAP.values() for t in targets}
    return set(all_role_definitions()) | targets


def _groups_apply(user, wanted: set[str]) -> None:
    managed = managed_groups()
    current = {g.name: g for g in user.groups.filter(name__in=managed)}
    if removed := [g for name, g in current.items() if name not in wanted]:
        user.groups.remove(*removed)
    missing = wanted - set(current)
    if missing:
        added = list(Group.objects.filter(name__in=missing))
        if added:
            user.groups.add(*added)
        if unknown := missing - {g.name for g in added}:
            log.warning("sso_group_missing", groups=sorted(unknown), user_id=user.pk)


def _profile_apply(user, claims: dict) -> None:
    fields = {"email": "email", "first_name": "given_name", "last_name": "family_name"}
    for field, claim in fields.items():
        value = claims.get(claim)
        if isinstance(value, str):
            setattr(user, field, value.strip()[: user._meta.get_field(field).max_length])


def _username(claims: dict) -> str | None:
    value = claims.get(settings.WHALEFALL_OIDC_USERNAME_CLAIM)
    if not isinstance(value, str) or not 0 < len(value.strip()) <= 150:
        return None
    value = value.strip()
    try:
        get_user_model().username_validator(value)
    except ValidationError:
        return None
    return value


def directory_user_sync(*, issuer: str, claims: dict):
    """Create or update the WhaleFall user of a verified directory account and apply its
    groups; return the user when it may use the admin (mapped to a role), else None."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not 0 < len(subject) <= 255:
        log.warning("sso_refused", security_event=True, reason="subject_invalid")
        return None
    wanted = mapped_groups(directory_groups(claims.get(settings.WHALEFALL_OIDC_GROUPS_CLAIM)))
    roles = wanted & set(all_role_definitions())
    User = get_user_model()
    with transaction.atomic():
        identity = (
            SingleSignOnIdentity.objects.select_for_update()
            .select_related("user")
            .filter(issuer=issuer, subject=subject)
            .first()
        )
        if identity is None:
            if not roles:
                log.info("sso_refused", security_event=True, reason="no_role", subject=subject)
                return None
            username = _username(claims)
            if username is None:
                log.warning(
                    "sso_refused", security_event=True, reason="username_invalid", subject=subject
                )
                return None
            if User.objects.filter(username__iexact=username).exists():
                # A local account of that name is never taken over by a directory account.
                log.warning(
                    "sso_refused",
                    security_event=True,
                    reason="username_taken",
                    subject=subject,
                    username=username,
                )
                return None
            user = User(username=username)
            user.set_unusable_password()
            _profile_apply(user, claims)
            user.save()
            SingleSignOnIdentity.objects.create(user=user, issuer=issuer, subject=subject)
        else:
            user = identity.user
            _profile_apply(user, claims)
        user.is_staff = bool(roles)
        user.is_superuser = False
        user.save()
        _groups_apply(user, wanted)
    log.info(
        "sso_user_synced",
        security_event=True,
        user_id=user.pk,
        subject=subject,
        groups=sorted(wanted),
    )
    return user if user.is_staff else None


# --- Authentication backend ---------------------------------------------------------------


class OIDCBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's code flow, with the ID token's issuer, audience and expiry
    checked, and users matched by subject instead of e-mail."""

    def authenticate(self, request, **kwargs):
        try:
            return super().authenticate(request, **kwargs)
        except (
            requests.RequestException,
            SuspiciousOperation,
            jwt.PyJWTError,
            ValueError,  # a response that is not JSON
            KeyError,  # a key set without the fields the library reads
        ) as exc:
            # The exception's text may quote the provider's response: only its kind is logged.
            log.warning("sso_failed", security_event=True, error=type(exc).__name__)
            return None

    def _verify_jws(self, payload, key):
        alg = jwt.get_unverified_header(payload).get("alg")
        if alg != self.OIDC_RP_SIGN_ALGO:
            raise SuspiciousOperation("The ID token's algorithm is not the configured one.")
        try:
            return jwt.decode(
                payload,
                key,
                algorithms=[alg],
                audience=self.OIDC_RP_CLIENT_ID,
                issuer=settings.WHALEFALL_OIDC_ISSUER,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise SuspiciousOperation(f"ID token rejected: {type(exc).__name__}") from exc

    def verify_claims(self, claims):
        return isinstance(claims.get("sub"), str)

    def get_or_create_user(self, access_token, id_token, payload):
        userinfo = self.get_userinfo(access_token, id_token, payload)
        if not isinstance(userinfo, dict) or userinfo.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("The user info is about another subject than the ID token.")
        # Providers put the groups in the ID token, the user info or both.
        claims = {**payload, **userinfo}
        return directory_user_sync(issuer=settings.WHALEFALL_OIDC_ISSUER, claims=claims)

    def filter_users_by_claims(self, claims):  # pragma: no cover - replaced by subject matching
        return self.UserModel.objects.none()

    def get_user(self, user_id):
        # Django's rule, which the library drops: a deactivated user's sessions end.
        return ModelBackend.get_user(self, user_id)


# --- Views ------------------------------------------------------------------------------------


class _CallbackView(OIDCAuthenticationCallbackView):
    def login_success(self):
        return mfa.login_begin(
            self.request, self.user, backend=self.user.backend, redirect_to=self.success_url
        )

    def login_failure(self):
        messages.error(
            self.request,
            _(
                "Sign-in with %(provider)s did not succeed, or your directory account has no "
                "WhaleFall role. Ask an administrator if you should have one."
            )
            % {"provider": settings.WHALEFALL_OIDC_PROVIDER_NAME},
        )
        return redirect("admin:login")


def start_view(request: HttpRequest) -> HttpResponse:
    """Send the browser to the identity provider (state, nonce and PKCE kept in the session)."""
    if not settings.WHALEFALL_OIDC_ENABLED:
        raise Http404
    return OIDCAuthenticationRequestView.as_view()(request)


def callback_view(request: HttpRequest) -> HttpResponse:
    """The identity provider's answer: sign the user in, or back to the login page."""
    if not settings.WHALEFALL_OIDC_ENABLED:
        raise Http404
    return _CallbackView.as_view()(request)


@checks.register(checks.Tags.security)
def group_map_check(app_configs=None, **_kwargs) -> list[checks.CheckMessage]:
    """Warn about mapped groups that are not WhaleFall roles: they never grant staff access."""
    roles = set(all_role_definitions())
    targets = {t for targets in settings.WHALEFALL_OIDC_GROUP_MAP.values() for t in targets}
    return [
        checks.Warning(
            f"WHALEFALL_OIDC_GROUP_MAP maps to {name!r}, which is not a WhaleFall role: "
            "members get that group but no admin access from it.",
            id="whalefall.W101",
        )
        for name in sorted(targets - roles)
    ]

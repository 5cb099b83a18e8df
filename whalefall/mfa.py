"""Two-factor sign-in for the admin: TOTP authenticator apps and backup codes (django-otp).

One policy decides what a person still owes after their password (or single sign-on):
:func:`second_factor_step`. Signing in goes through :func:`login_begin`, which either logs
the user in or parks the sign-in in the session until :func:`login_complete` receives a
valid code; :class:`SecondFactorMiddleware` applies the same policy to every session, so a
session that no longer satisfies it (device reset, newly required group) ends.
"""

import re
import time
from base64 import b32encode
from enum import StrEnum
from typing import Any

import qrcode
import qrcode.image.svg
import structlog
from django import forms
from django.conf import settings
from django.contrib import admin, auth, messages
from django.contrib.auth import BACKEND_SESSION_KEY, get_user_model
from django.contrib.auth import signals as auth_signals
from django.contrib.auth.views import LoginView
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from whalefall import security
from whalefall.roles import ADMINISTRATORS

log = structlog.get_logger(__name__)

PENDING_SESSION_KEY = "whalefall_mfa_pending"
# Seconds a password-verified sign-in waits for its code.
PENDING_SECONDS = 5 * 60
SSO_BACKEND = "whalefall.sso.OIDCBackend"
BACKUP_CODE_COUNT = 10
TOTP_DEVICE_NAME = "Authenticator app"
BACKUP_DEVICE_NAME = "Backup codes"

_TOTP_CODE = re.compile(r"[0-9]{6}")
_BACKUP_CODE = re.compile(r"[a-z2-7]{8}")
_CODE_NOISE = re.compile(r"[\s-]")


class Step(StrEnum):
    """What a sign-in still needs before the admin opens."""

    VERIFY = "verify"  # a code from the confirmed authenticator app or a backup code
    ENROL = "enrol"  # a member of a required group without an authenticator app


# --- Policy -------------------------------------------------------------------------------


def required_by_group(user) -> bool:
    """True when one of the user's groups is in WHALEFALL_MFA_REQUIRED_GROUPS."""
    required = set(settings.WHALEFALL_MFA_REQUIRED_GROUPS)
    if not required:
        return False
    if user.is_superuser and ADMINISTRATORS in required:
        return True
    return user.groups.filter(name__in=required).exists()


def has_authenticator(user) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def second_factor_step(user, *, backend: str, verified: bool = False) -> Step | None:
    """The one two-factor decision: what ``user``, signed in through ``backend``, still owes.

    ``verified`` says a code was already accepted in this session.
    """
    if backend == SSO_BACKEND and settings.WHALEFALL_OIDC_SKIP_MFA:
        return None  # the identity provider enforces its own second factor
    if verified:
        return None
    if has_authenticator(user):
        return Step.VERIFY
    if required_by_group(user):
        return Step.ENROL
    return None


def session_step(request: HttpRequest) -> Step | None:
    """The policy applied to the signed-in session of ``request``."""
    user = request.user
    return second_factor_step(
        user,
        backend=request.session.get(BACKEND_SESSION_KEY, ""),
        verified=user.is_verified(),
    )


class SecondFactorMiddleware:
    """Ends a signed-in session that the two-factor policy no longer allows: its device was
    reset, the user joined a required group or enrolled elsewhere. The next sign-in asks for
    what is missing. Runs after django-otp's ``OTPMiddleware``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and (step := session_step(request)):
            log.warning("mfa_session_ended", security_event=True, user_id=user.pk, step=step)
            auth.logout(request)
        return self.get_response(request)


# --- Signing in -----------------------------------------------------------------------------


def login_begin(
    request: HttpRequest, user, *, backend: str, redirect_to: str
) -> HttpResponseRedirect:
    """Log ``user`` in, or hold the sign-in until the second factor when the policy asks."""
    request.session.pop(PENDING_SESSION_KEY, None)
    step = second_factor_step(user, backend=backend)
    if step is None:
        auth.login(request, user, backend=backend)
        return HttpResponseRedirect(redirect_to)
    if request.user.is_authenticated:
        auth.logout(request)
    request.session.cycle_key()
    request.session[PENDING_SESSION_KEY] = {
        "user": user.pk,
        "backend": backend,
        "next": redirect_to,
        "since": int(time.time()),
    }
    log.info("mfa_step_required", user_id=user.pk, step=step)
    return redirect("mfa-verify" if step is Step.VERIFY else "mfa-enrol")


def pending_login(request: HttpRequest) -> tuple[Any, dict] | None:
    """The user whose sign-in waits for a code in this session, and the sign-in's details."""
    pending = request.session.get(PENDING_SESSION_KEY)
    if not isinstance(pending, dict):
        return None
    user = None
    if time.time() - pending.get("since", 0) <= PENDING_SECONDS:
        user = get_user_model().objects.filter(pk=pending.get("user"), is_active=True).first()
    if user is None:
        del request.session[PENDING_SESSION_KEY]
        return None
    return user, pending


def login_complete(request: HttpRequest, user, pending: dict, device) -> HttpResponseRedirect:
    """Finish a held sign-in once ``device`` has accepted a code."""
    del request.session[PENDING_SESSION_KEY]
    # django-otp's user_logged_in receiver records the device in the new session.
    user.otp_device = device
    auth.login(request, user, backend=pending["backend"])
    return HttpResponseRedirect(pending["next"])


class AdminLoginView(LoginView):
    """Django's login view, with the second factor between the password and the session."""

    def form_valid(self, form):
        user = form.get_user()
        return login_begin(
            self.request, user, backend=user.backend, redirect_to=self.get_success_url()
        )


# --- Devices --------------------------------------------------------------------------------


def normalise_code(raw: str) -> str:
    return _CODE_NOISE.sub("", raw or "").lower()[:32]


def device_for_code(user, code: str):
    """The user's confirmed device that accepts ``code`` (consuming a backup code), or None."""
    if _TOTP_CODE.fullmatch(code):
        devices = TOTPDevice.objects.filter(user=user, confirmed=True)
    elif _BACKUP_CODE.fullmatch(code):
        devices = StaticDevice.objects.filter(user=user, confirmed=True)
    else:
        return None
    with transaction.atomic():
        for device in devices.select_for_update():
            if device.verify_token(code):
                return device
    return None


def authenticator_for_enrolment(user) -> TOTPDevice:
    """The unconfirmed authenticator the user is setting up; the same one until confirmed."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
    return device


def backup_codes_renew(user) -> list[str]:
    """Replace the user's backup codes with a fresh set and return them (shown once)."""
    codes = [StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
    with transaction.atomic():
        device, _created = StaticDevice.objects.get_or_create(
            user=user, name=BACKUP_DEVICE_NAME, defaults={"confirmed": True}
        )
        device.token_set.all().delete()
        StaticToken.objects.bulk_create(StaticToken(device=device, token=c) for c in codes)
    log.info("mfa_backup_codes_renewed", security_event=True, user_id=user.pk)
    return codes


def authenticator_confirm(user, device: TOTPDevice, code: str) -> list[str] | None:
    """Confirm an enrolment with its first code; return the new backup codes, or None."""
    if not _TOTP_CODE.fullmatch(code):
        return None
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk, user=user)
        if device.confirmed or not device.verify_token(code):
            return None
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        # Any older authenticator is replaced by the one just confirmed.
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    log.info("mfa_enrolled", security_event=True, user_id=user.pk)
    return backup_codes_renew(user)


def devices_reset(*, user, actor) -> int:
    """Remove every authenticator and backup code of ``user`` (an administrator's reset or
    the user turning two-factor sign-in off); the audit log records each device."""
    with transaction.atomic():
        removed = 0
        for model in (TOTPDevice, StaticDevice):
            for device in model.objects.filter(user=user):
                device.delete()  # one by one, so that each deletion is audited
                removed += 1
    log.warning(
        "mfa_devices_reset",
        security_event=True,
        user_id=user.pk,
        actor_id=getattr(actor, "pk", None),
        devices=removed,
    )
    return removed


def qr_code_svg(device: TOTPDevice) -> str:
    """The enrolment QR code as an inline ``<svg>`` element: no script, no data: URI."""
    image = qrcode.make(
        device.config_url, image_factory=qrcode.image.svg.SvgPathFillImage, box_size=10
    )
    svg = image.to_string(encoding="unicode")
    # Drawn by qrcode from our own otpauth URL: a single path, no text from the user.
    return mark_safe(svg)  # noqa: S308


def readable_key(device: TOTPDevice) -> str:
    """The device key in base32 groups of four, for typing into an app by hand."""
    key = b32encode(device.bin_key).decode()
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


# --- Views ----------------------------------------------------------------------------------


class CodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Code"),
        max_length=32,
        help_text=gettext_lazy(
            "The six digits your authenticator app shows, or one of your backup codes."
        ),
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "autofocus": True,
                "inputmode": "numeric",
                "spellcheck": "false",
            }
        ),
    )


def _page(request: HttpRequest, template: str, context: dict, status: int = 200):
    return TemplateResponse(
        request,
        template,
        {**admin.site.each_context(request), **context},
        status=status,
    )


def _throttled(request: HttpRequest, user) -> HttpResponse | None:
    """The login limiter's 429 page when this address or account is over its limit."""
    if security.login_is_throttled(request, username=user.get_username()):
        return _page(
            request, "admin/rate_limited.html", {"title": _("Too many login attempts")}, 429
        )
    return None


def _wrong_code(request: HttpRequest, user) -> None:
    """A wrong code is a failed login, announced like a wrong password: the login records
    and the limiter's failure count see it."""
    auth_signals.user_login_failed.send(
        sender=__name__, credentials={"username": user.get_username()}, request=request
    )


@never_cache
@sensitive_post_parameters("code")
def verify_view(request: HttpRequest) -> HttpResponse:
    """Second step of signing in: a code from the authenticator app or a backup code."""
    held = pending_login(request)
    if held is None:
        return redirect("admin:login")
    user, pending = held
    form = CodeForm(request.POST or None)
    if request.method == "POST":
        if (response := _throttled(request, user)) is not None:
            return response
        if form.is_valid():
            device = device_for_code(user, normalise_code(form.cleaned_data["code"]))
            if device is not None:
                return login_complete(request, user, pending, device)
            _wrong_code(request, user)
            form.add_error("code", _("This code is not valid. Try the next one."))
    return _page(
        request,
        "admin/mfa/verify.html",
        {"title": _("Two-factor sign-in"), "form": form, "pending_user": user},
    )


@never_cache
@sensitive_post_parameters("code")
def enrol_view(request: HttpRequest) -> HttpResponse:
    """Set up an authenticator app: scan the code, confirm with the first code it shows.

    Reached after the password by members of a required group, or from the admin by anyone
    signed in.
    """
    held = pending_login(request)
    if held is not None:
        user, pending = held
    elif request.user.is_authenticated and request.user.is_staff:
        user, pending = request.user, None
    else:
        return redirect("admin:login")
    if has_authenticator(user):
        return redirect("mfa-verify" if pending else "mfa-setup")
    device = authenticator_for_enrolment(user)
    form = CodeForm(request.POST or None)
    if request.method == "POST":
        if pending and (response := _throttled(request, user)) is not None:
            return response
        if form.is_valid():
            codes = authenticator_confirm(user, device, normalise_code(form.cleaned_data["code"]))
            if codes is not None:
                if pending:
                    next_url = pending["next"]
                    login_complete(request, user, pending, device)
                else:
                    next_url = reverse("mfa-setup")
                    otp_login(request, device)
                return _page(
                    request,
                    "admin/mfa/backup_codes.html",
                    {"title": _("Your backup codes"), "codes": codes, "next_url": next_url},
                )
            if pending:
                _wrong_code(request, user)
            form.add_error("code", _("This code is not valid. Try the next one."))
    return _page(
        request,
        "admin/mfa/enrol.html",
        {
            "title": _("Set up two-factor sign-in"),
            "form": form,
            "qr_code": qr_code_svg(device),
            "key": readable_key(device),
            "required": required_by_group(user),
            "pending_user": user if pending else None,
        },
    )


@never_cache
def setup_view(request: HttpRequest) -> HttpResponse:
    """The signed-in user's two-factor page: status, new backup codes, turning it off."""
    user = request.user
    if not (user.is_authenticated and user.is_staff):
        return redirect(f"{reverse('admin:login')}?next={reverse('mfa-setup')}")
    enrolled = has_authenticator(user)
    required = required_by_group(user)
    if request.method == "POST" and enrolled:
        if "backup_codes" in request.POST:
            codes = backup_codes_renew(user)
            return _page(
                request,
                "admin/mfa/backup_codes.html",
                {
                    "title": _("Your backup codes"),
                    "codes": codes,
                    "next_url": reverse("mfa-setup"),
                },
            )
        if "turn_off" in request.POST and not required:
            devices_reset(user=user, actor=user)
            messages.success(request, _("Two-factor sign-in is off for your account."))
            return redirect("mfa-setup")
    backup_left = StaticToken.objects.filter(device__user=user, device__confirmed=True).count()
    return _page(
        request,
        "admin/mfa/setup.html",
        {
            "title": _("Two-factor sign-in"),
            "enrolled": enrolled,
            "required": required,
            "backup_left": backup_left,
        },
    )

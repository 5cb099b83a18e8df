"""The interface language: each user's choice, kept in the database and mirrored in the
session at sign-in, with ``LANGUAGE_CODE`` for everyone who has not chosen."""

import structlog
from django.conf import settings
from django.contrib.auth import signals as auth_signals
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import reverse
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme

from whalefall.models import UserPreference

log = structlog.get_logger(__name__)

# The session caches the preference so that a request costs no query for it.
SESSION_KEY = "whalefall_language"


def supported(code: str | None) -> str | None:
    """``code`` if it names one of ``LANGUAGES``, else None."""
    return code if code in dict(settings.LANGUAGES) else None


def user_language(user) -> str:
    """The language a user reads WhaleFall in: their choice, else ``LANGUAGE_CODE``."""
    chosen = UserPreference.objects.filter(user=user).values_list("language", flat=True).first()
    return supported(chosen) or settings.LANGUAGE_CODE


def user_language_set(*, user, language: str) -> UserPreference:
    """Store ``user``'s interface language (one of ``LANGUAGES``)."""
    if not supported(language):
        raise ValueError(f"unsupported language {language!r}")
    preference, _ = UserPreference.objects.update_or_create(
        user=user, defaults={"language": language}
    )
    log.info("user_language_set", user_id=user.pk, language=language)
    return preference


@receiver(auth_signals.user_logged_in)
def _remember_language(sender, request, user, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = user_language(user)


class UserLanguageMiddleware:
    """Activate the signed-in user's language (after ``LocaleMiddleware``, which only knows
    the browser); everyone else reads ``LANGUAGE_CODE``, or the language last chosen in
    this browser on the login page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        language = None
        user = getattr(request, "user", None)
        session = getattr(request, "session", None)
        if user is not None and user.is_authenticated and session is not None:
            language = supported(session.get(SESSION_KEY))
            if language is None:
                # A session from before the preference existed: read it once.
                language = session[SESSION_KEY] = user_language(user)
        else:
            language = supported(request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME))
        language = language or settings.LANGUAGE_CODE
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()
        return self.get_response(request)


def set_language_view(request: HttpRequest) -> HttpResponse:
    """POST ``language`` (and ``next``): store it as the user's choice and go back."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    language = supported(request.POST.get("language"))
    target = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("admin:index")
    response = HttpResponseRedirect(target)
    if language is None:
        return response
    user_language_set(user=request.user, language=language)
    request.session[SESSION_KEY] = language
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE or request.is_secure(),
        httponly=True,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE or "Lax",
    )
    return response

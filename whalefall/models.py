"""Models owned by the project package itself."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Heartbeat(models.Model):
    """Last time a periodic liveness task ran; readiness checks its age."""

    name = models.CharField(_("name"), max_length=64, unique=True)
    beat_at = models.DateTimeField(_("beat at"), help_text=_("When the task last ran."))

    class Meta:
        verbose_name = _("heartbeat")
        verbose_name_plural = _("heartbeats")

    def __str__(self) -> str:
        return f"{self.name} @ {self.beat_at:%Y-%m-%d %H:%M:%S}"


class TimestampedModel(models.Model):
    """Abstract base: creation and last-change times."""

    created_at = models.DateTimeField(_("created"), auto_now_add=True, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True, editable=False)

    class Meta:
        abstract = True


class LoginEvent(models.Model):
    """One admin login attempt: success, failure or refusal by the rate limit."""

    class Kind(models.TextChoices):
        SUCCEEDED = "succeeded", pgettext_lazy("login outcome", "Succeeded")
        FAILED = "failed", pgettext_lazy("login outcome", "Failed")
        RATE_LIMITED = "rate_limited", pgettext_lazy("login outcome", "Rate limited")

    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)
    kind = models.CharField(_("outcome"), max_length=20, choices=Kind.choices)
    username = models.CharField(
        _("username"), max_length=150, blank=True, help_text=_("The name that was typed.")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("user"),
        help_text=_("The account, when the name matched one."),
    )
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True)
    request_id = models.CharField(_("request id"), max_length=128, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("login event")
        verbose_name_plural = _("login events")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=["succeeded", "failed", "rate_limited"]),
                name="whalefall_loginevent_kind_valid",
            )
        ]
        indexes = [models.Index(fields=["kind", "-created_at"], name="whalefall_login_kind_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.username} @ {self.created_at:%Y-%m-%d %H:%M:%S}"


class EventLevel(models.TextChoices):
    INFO = "info", _("Info")
    WARNING = "warning", _("Warning")
    ERROR = "error", _("Error")
    CRITICAL = "critical", _("Critical")


class EventLogEntry(models.Model):
    """A warning, an error or a job event of the application, kept for review (SPEC §8)."""

    created_at = models.DateTimeField(_("time"), db_index=True)
    level = models.CharField(_("level"), max_length=10, choices=EventLevel.choices)
    event = models.CharField(
        _("event"), max_length=200, help_text=_("What happened, as a snake_case name.")
    )
    logger = models.CharField(
        _("logger"), max_length=200, help_text=_("The module that logged it.")
    )
    request_id = models.CharField(
        _("request id"), max_length=128, blank=True, help_text=_("The request it happened in.")
    )
    run_id = models.BigIntegerField(
        _("run"), null=True, blank=True, help_text=_("The run it belongs to, if any.")
    )
    instance_id = models.BigIntegerField(
        _("instance"), null=True, blank=True, help_text=_("The instance concerned, if any.")
    )
    context = models.JSONField(
        _("details"),
        default=dict,
        blank=True,
        help_text=_("The rest of the log line, with secrets masked."),
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("application event")
        verbose_name_plural = _("application events")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(level__in=EventLevel.values),
                name="whalefall_eventlogentry_level_valid",
            )
        ]
        indexes = [
            models.Index(fields=["level", "-created_at"], name="whalefall_event_level_idx"),
            models.Index(fields=["event", "-created_at"], name="whalefall_event_event_idx"),
            models.Index(fields=["request_id"], name="whalefall_event_request_idx"),
            models.Index(fields=["run_id"], name="whalefall_event_run_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.level} {self.event} @ {self.created_at:%Y-%m-%d %H:%M:%S}"


class SingleSignOnIdentity(models.Model):
    """The directory account, by issuer and subject, that signs in as a WhaleFall user."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="sso_identity",
        verbose_name=_("user"),
        help_text=_("The WhaleFall account created at the first single sign-on."),
    )
    issuer = models.CharField(
        _("issuer"), max_length=255, help_text=_("The identity provider that vouches for it.")
    )
    subject = models.CharField(
        _("subject"),
        max_length=255,
        help_text=_("The provider's permanent identifier of the person (the sub claim)."),
    )
    created_at = models.DateTimeField(_("linked"), auto_now_add=True)

    class Meta:
        verbose_name = _("single sign-on identity")
        verbose_name_plural = _("single sign-on identities")
        constraints = [
            models.UniqueConstraint(
                fields=["issuer", "subject"],
                name="whalefall_singlesignonidentity_subject_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.subject} @ {self.issuer}"


class ApiTokenQuerySet(models.QuerySet):
    def usable(self) -> "ApiTokenQuerySet":
        """Tokens that authenticate now: not revoked, not expired."""
        from django.utils import timezone

        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=timezone.now())
        )


class ApiToken(models.Model):
    """A personal token for the REST API: only its SHA-256 digest is stored; the token is
    shown once, when it is created. It acts as its owner, read-only unless "write"."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="api_tokens",
        verbose_name=_("owner"),
        help_text=_("The user the token acts as; it can do no more than they can."),
    )
    name = models.CharField(
        _("name"), max_length=100, help_text=_("What the token is for, e.g. “CMDB import”.")
    )
    prefix = models.CharField(
        _("prefix"),
        max_length=16,
        editable=False,
        help_text=_("The token's first characters, to recognise it; the rest is not stored."),
    )
    digest = models.CharField(_("digest"), max_length=64, unique=True, editable=False)
    can_write = models.BooleanField(
        _("write"),
        default=False,
        help_text=_(
            "Allow changes (create, edit, delete, start runs) as far as the owner may make "
            "them. Without it the token only reads."
        ),
    )
    expires_at = models.DateTimeField(
        _("expires"), null=True, blank=True, help_text=_("Empty: the token does not expire.")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    last_used_ip = models.GenericIPAddressField(
        _("last used from"), null=True, blank=True, editable=False
    )
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True, editable=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        permissions = [("manage_api_tokens", _("Can see and revoke every user's API tokens"))]
        indexes = [models.Index(fields=["user", "-created_at"], name="whalefall_apitoken_user_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class UserPreference(models.Model):
    """A user's own settings of the interface; for now the language it speaks."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="preference",
        verbose_name=_("user"),
    )
    language = models.CharField(
        _("language"),
        max_length=10,
        choices=settings.LANGUAGES,
        help_text=_("The language WhaleFall is shown in to this user."),
    )

    class Meta:
        verbose_name = _("user preference")
        verbose_name_plural = _("user preferences")

    def __str__(self) -> str:
        return f"{self.user} ({self.language})"

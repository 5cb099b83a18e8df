"""Models owned by the project package itself."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


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
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        RATE_LIMITED = "rate_limited", _("Rate limited")

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

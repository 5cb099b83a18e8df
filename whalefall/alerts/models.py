"""Alert channels, rules, the events the apps emit (the outbox) and their deliveries.

Events reference instances by a string model reference, so this module imports nothing from
the apps that emit into it (SPEC §3).
"""

from datetime import time

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class SecretUnavailable(Exception):
    """A channel's stored secret is missing or no configured key decrypts it."""


class ChannelKind(models.TextChoices):
    EMAIL = "email", _("E-mail")
    WEBHOOK = "webhook", _("Webhook (signed JSON)")
    APPRISE = "apprise", _("Chat service (Apprise URL)")


# Apprise schemes a channel may use: the chat services WhaleFall supports, whose plugins
# post to the vendor's own host.
APPRISE_SCHEMES = frozenset(
    {"dingtalk", "feishu", "lark", "wecombot", "slack", "msteams", "workflows", "workflow"}
)


class Channel(models.Model):
    """Where alert messages go: e-mail addresses, a signed webhook or a chat service."""

    name = models.CharField(
        _("name"), max_length=100, unique=True, help_text=_("Name shown in rules and lists.")
    )
    kind = models.CharField(
        _("kind"),
        max_length=20,
        choices=ChannelKind.choices,
        help_text=_("E-mail, a webhook receiving signed JSON, or a chat service through Apprise."),
    )
    enabled = models.BooleanField(
        _("enabled"), default=True, help_text=_("Disabled channels receive nothing.")
    )
    recipients = models.TextField(
        _("recipients"),
        blank=True,
        help_text=_("E-mail: addresses separated by commas or new lines."),
    )
    url_ciphertext = models.TextField(
        _("URL (encrypted)"),
        blank=True,
        editable=False,
        help_text=_("Fernet token of the webhook or Apprise URL, which may carry access tokens."),
    )
    url_hint = models.CharField(
        _("destination"),
        max_length=300,
        blank=True,
        editable=False,
        help_text=_("Scheme and host of the URL, without any token."),
    )
    secret_ciphertext = models.TextField(
        _("signing secret (encrypted)"),
        blank=True,
        editable=False,
        help_text=_("Fernet token of the webhook's HMAC secret; never shown."),
    )
    secret_changed_at = models.DateTimeField(
        _("secret changed at"), null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("alert channel")
        verbose_name_plural = _("alert channels")
        permissions = [("test_channel", _("Can send a test message to a channel"))]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=ChannelKind.values), name="alerts_channel_kind_valid"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Channel {self.pk}: {self.name} ({self.kind})>"

    @property
    def has_url(self) -> bool:
        return bool(self.url_ciphertext)

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_ciphertext)

    def recipient_list(self) -> list[str]:
        return [r.strip() for r in self.recipients.replace("\n", ",").split(",") if r.strip()]

    def set_url(self, plaintext: str) -> None:
        """Encrypt and store the webhook or Apprise URL (saved with the next ``save()``)."""
        from urllib.parse import urlsplit

        from inventory import crypto

        parts = urlsplit(plaintext)
        self.url_ciphertext = crypto.encrypt(plaintext)
        host = parts.hostname or ""
        # Apprise puts the access token where a host would be: show only the service.
        self.url_hint = (
            f"{parts.scheme}://{host}"
            if self.kind == ChannelKind.WEBHOOK
            else f"{parts.scheme}://…"
        )[:300]

    def set_secret(self, plaintext: str) -> None:
        """Encrypt and store the webhook signing secret."""
        from inventory import crypto

        if not plaintext:
            raise ValidationError({"secret": _("The secret cannot be empty.")})
        self.secret_ciphertext = crypto.encrypt(plaintext)
        self.secret_changed_at = timezone.now()

    def decrypt(self, field: str) -> str:
        """The clear text of ``url`` or ``secret``: the one place a channel secret is
        decrypted, called only when a message is sent."""
        from inventory import crypto

        token = {"url": self.url_ciphertext, "secret": self.secret_ciphertext}[field]
        if not token:
            raise SecretUnavailable(
                _("Channel %(name)s has no %(field)s.") % {"name": self.name, "field": field}
            )
        try:
            return crypto.decrypt(token)
        except crypto.SecretUnavailable as exc:
            raise SecretUnavailable(
                _(
                    "The %(field)s of channel %(name)s cannot be decrypted with the configured "
                    "keys (WHALEFALL_CREDENTIAL_KEYS); enter it again."
                )
                % {"field": field, "name": self.name}
            ) from exc

    def clean(self) -> None:
        super().clean()
        if self.kind == ChannelKind.EMAIL:
            addresses = self.recipient_list()
            if not addresses:
                raise ValidationError({"recipients": _("Give at least one e-mail address.")})
            for address in addresses:
                try:
                    validate_email(address)
                except ValidationError:
                    raise ValidationError(
                        {
                            "recipients": _("%(value)s is not an e-mail address.")
                            % {"value": address}
                        }
                    ) from None


class Trigger(models.TextChoices):
    """What happened: the kind of an event and the trigger of a rule."""

    ACCOUNT_PRIVILEGED = "account_privileged", _("Account became privileged")
    PRIVILEGED_CHANGED = "privileged_changed", _("Privileged account changed")
    ACCOUNT_INSECURE = "account_insecure", _("Anonymous or password-less account appeared")
    CLASSIFICATION_MATCHED = (
        "classification_matched",
        _("Account newly matched a classification of risk level ≤ N"),
    )
    RUN_FAILED = "run_failed", _("Run failed or partly failed")
    SYNC_FAILURES = "sync_failures", _("Instance failed N syncs in a row")
    INSTANCE_RECOVERED = "instance_recovered", _("Instance reachable again")
    CAPACITY_FORECAST = "capacity_forecast", _("Capacity limit forecast within N days")
    # "X % in" is no printf directive.
    # xgettext:no-python-format
    CAPACITY_GROWTH = "capacity_growth", _("Growth over X % in a period")
    PARTITIONS_MISSING = "partitions_missing", _("Partitions missing for next month")
    HEARTBEAT_STALE = "heartbeat_stale", _("Beat heartbeat stale")
    MONITORING_PRIVILEGES = (
        "monitoring_privileges",
        _("Monitoring account lacks a privilege it needs"),
    )


# Triggers whose rules need a threshold, and the payload value it is compared with:
# (payload key, comparison) — the event matches when ``payload[key] <op> threshold``.
THRESHOLDS: dict[str, tuple[str, str]] = {
    Trigger.CLASSIFICATION_MATCHED: ("risk_level", "le"),
    Trigger.SYNC_FAILURES: ("consecutive_failures", "eq"),
    Trigger.CAPACITY_FORECAST: ("days_to_limit", "le"),
    Trigger.CAPACITY_GROWTH: ("growth_percent", "gt"),
}


class Scope(models.TextChoices):
    ALL = "all", _("All instances")
    TAGS = "tags", _("Instances carrying one of the tags")
    ENVIRONMENT = "environment", _("Instances of the environments")


class Mode(models.TextChoices):
    IMMEDIATE = "immediate", _("Immediately")
    DIGEST = "digest", _("Daily digest")


class Rule(models.Model):
    """What fires, about which instances, to which channels, immediately or in a digest."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    trigger = models.CharField(
        _("trigger"), max_length=40, choices=Trigger.choices, help_text=_("What fires the rule.")
    )
    threshold = models.PositiveIntegerField(
        _("threshold N / X"),
        null=True,
        blank=True,
        help_text=_(
            # xgettext:no-python-format
            "Risk level N (fires for risk ≤ N), N failed syncs in a row, N days to the "
            "capacity limit, or X % growth; only for the triggers that name one."
        ),
    )
    scope = models.CharField(
        _("instances"),
        max_length=20,
        choices=Scope.choices,
        default=Scope.ALL,
        help_text=_(
            "Which instances the rule watches. A rule limited to some instances never sends "
            "anything about others, nor events that concern no instance."
        ),
    )
    tags = models.ManyToManyField(
        "inventory.Tag",
        blank=True,
        related_name="+",
        verbose_name=_("tags"),
        help_text=_("With “instances carrying one of the tags”."),
    )
    environments = models.CharField(
        _("environments"),
        max_length=300,
        blank=True,
        help_text=_(
            "With “instances of the environments”: names separated by commas, matched against "
            "the instance's environment and its environment tags, ignoring case."
        ),
    )
    channels = models.ManyToManyField(
        Channel, related_name="rules", verbose_name=_("channels"), help_text=_("Where it sends.")
    )
    mode = models.CharField(
        _("delivery"),
        max_length=20,
        choices=Mode.choices,
        default=Mode.IMMEDIATE,
        help_text=_("Send each event at once, or one digest a day."),
    )
    digest_time = models.TimeField(
        _("digest time"),
        default=time(8, 0),
        help_text=_("Local time (TIME_ZONE) the daily digest is sent."),
    )
    last_digest_at = models.DateTimeField(_("last digest"), null=True, blank=True, editable=False)
    description = models.TextField(_("description"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("alert rule")
        verbose_name_plural = _("alert rules")
        constraints = [
            models.CheckConstraint(
                condition=Q(trigger__in=Trigger.values), name="alerts_rule_trigger_valid"
            ),
            models.CheckConstraint(
                condition=Q(scope__in=Scope.values), name="alerts_rule_scope_valid"
            ),
            models.CheckConstraint(
                condition=Q(mode__in=Mode.values), name="alerts_rule_mode_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def environment_list(self) -> list[str]:
        return [e.strip().lower() for e in self.environments.split(",") if e.strip()]

    def clean(self) -> None:
        super().clean()
        if self.trigger in THRESHOLDS and self.threshold is None:
            raise ValidationError({"threshold": _("This trigger needs a threshold.")})
        if self.trigger == Trigger.SYNC_FAILURES and self.threshold == 0:
            raise ValidationError({"threshold": _("At least one failed sync.")})
        if self.scope == Scope.ENVIRONMENT and not self.environment_list():
            raise ValidationError({"environments": _("Name at least one environment.")})

    def threshold_met(self, payload: dict) -> bool:
        """Whether an event's payload passes this rule's threshold."""
        if self.trigger not in THRESHOLDS:
            return True
        key, op = THRESHOLDS[self.trigger]
        value = payload.get(key)
        if self.threshold is None or isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if op == "le":
            return value <= self.threshold
        if op == "gt":
            return value > self.threshold
        return value == self.threshold


class EventQuerySet(models.QuerySet):
    def pending(self) -> "EventQuerySet":
        """Events in the outbox: not yet routed to rules."""
        return self.filter(dispatched_at__isnull=True)


class Event(models.Model):
    """Something an app reported (the outbox row), written in the transaction that caused it."""

    kind = models.CharField(_("kind"), max_length=40, choices=Trigger.choices)
    instance = models.ForeignKey(
        "inventory.Instance",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("instance"),
    )
    dedup_key = models.CharField(
        _("deduplication key"),
        max_length=255,
        blank=True,
        help_text=_("Identical events (kind, instance, key) within the window are suppressed."),
    )
    payload = models.JSONField(_("payload"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    dispatched_at = models.DateTimeField(
        _("routed"), null=True, blank=True, help_text=_("When the rules were applied to it.")
    )

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("alert event")
        verbose_name_plural = _("alert events")
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=Trigger.values), name="alerts_event_kind_valid"
            )
        ]
        indexes = [
            models.Index(fields=["kind", "dedup_key", "created_at"], name="alerts_event_dedup_idx"),
            models.Index(
                fields=["created_at"],
                condition=Q(dispatched_at__isnull=True),
                name="alerts_event_pending_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} @ {self.created_at:%Y-%m-%d %H:%M:%S}"


class DeliveryKind(models.TextChoices):
    SINGLE = "single", _("One event")
    SUMMARY = "summary", _("Summary of a burst")
    DIGEST = "digest", _("Daily digest")
    TEST = "test", _("Test message")


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    RETRYING = "retrying", _("Retrying")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")


class Delivery(models.Model):
    """One message of a rule to a channel, covering one or more events, with its outcome."""

    rule = models.ForeignKey(
        Rule,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deliveries",
        verbose_name=_("rule"),
    )
    channel = models.ForeignKey(
        Channel, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("channel")
    )
    events = models.ManyToManyField(
        Event, blank=True, related_name="deliveries", verbose_name=_("events")
    )
    kind = models.CharField(
        _("kind"), max_length=20, choices=DeliveryKind.choices, default=DeliveryKind.SINGLE
    )
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=DeliveryStatus.choices,
        default=DeliveryStatus.PENDING,
        db_index=True,
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    event_count = models.PositiveIntegerField(_("events"), default=0)
    subject = models.CharField(_("subject"), max_length=300, blank=True)
    preview = models.TextField(
        _("payload preview"), blank=True, help_text=_("The message text as sent; no secrets.")
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("alert delivery")
        verbose_name_plural = _("alert deliveries")
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=DeliveryKind.values), name="alerts_delivery_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=DeliveryStatus.values), name="alerts_delivery_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel_id} {self.get_kind_display()} ({self.get_status_display()})"

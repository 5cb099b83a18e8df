"""Classifications, their versioned rules, the assignments of accounts, daily statistics."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.signals import pre_delete
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Account
from inventory.models import Engine, Instance


class RiskLevel(models.IntegerChoices):
    CRITICAL = 1, _("1 — critical")
    HIGH = 2, _("2 — high")
    ELEVATED = 3, _("3 — elevated")
    MEDIUM = 4, _("4 — medium")
    LOW = 5, _("5 — low")
    MINIMAL = 6, _("6 — minimal")


# The seeded classifications (code -> risk level). Their risk level is fixed by a database
# constraint and they cannot be deleted.
SYSTEM_CLASSIFICATIONS: dict[str, int] = {
    "super": RiskLevel.CRITICAL,
    "highly_privileged": RiskLevel.HIGH,
    "sensitive": RiskLevel.ELEVATED,
    "medium": RiskLevel.MEDIUM,
    "low": RiskLevel.LOW,
    "public": RiskLevel.MINIMAL,
}


def _system_risk_fixed() -> Q:
    condition = Q(is_system=False)
    for code, risk in SYSTEM_CLASSIFICATIONS.items():
        condition |= Q(code=code, risk_level=risk)
    return condition


class SystemClassificationProtected(models.ProtectedError):
    """The seeded classifications are never deleted."""


class ClassificationQuerySet(models.QuerySet):
    def in_priority_order(self) -> "ClassificationQuerySet":
        return self.order_by("-priority", "risk_level", "code")


class Classification(models.Model):
    """A named class of accounts (e.g. "super"), with its risk level."""

    code = models.SlugField(
        _("code"),
        max_length=50,
        unique=True,
        help_text=_("Stable identifier used in exports and imports; cannot be changed."),
    )
    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    risk_level = models.PositiveSmallIntegerField(
        _("risk level"),
        choices=RiskLevel.choices,
        default=RiskLevel.MEDIUM,
        help_text=_("1 is the highest risk, 6 the lowest."),
    )
    priority = models.PositiveSmallIntegerField(
        _("priority"),
        default=100,
        help_text=_("Classifications with a higher priority are listed and evaluated first."),
    )
    colour = models.CharField(
        _("colour"),
        max_length=7,
        default="#6b7280",
        help_text=_("Badge colour as #rrggbb."),
    )
    is_system = models.BooleanField(
        _("system"),
        default=False,
        editable=False,
        help_text=_("Seeded classification: cannot be deleted and its risk level is fixed."),
    )
    is_active = models.BooleanField(
        _("active"), default=True, help_text=_("Inactive classifications' rules are not run.")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = ClassificationQuerySet.as_manager()

    class Meta:
        ordering = ["-priority", "risk_level", "code"]
        verbose_name = _("classification")
        verbose_name_plural = _("classifications")
        constraints = [
            models.CheckConstraint(
                condition=Q(risk_level__gte=1, risk_level__lte=6),
                name="classification_classification_risk_range",
            ),
            models.CheckConstraint(
                condition=_system_risk_fixed(), name="classification_classification_system_risk"
            ),
            models.CheckConstraint(
                condition=Q(colour__regex=r"^#[0-9a-fA-F]{6}$"),
                name="classification_classification_colour_hex",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        loaded = getattr(self, "_loaded_code", None)
        if loaded is not None and self.code != loaded:
            raise ValueError("a classification's code cannot be changed")
        super().save(*args, **kwargs)
        self._loaded_code = self.code

    @classmethod
    def from_db(cls, db, field_names, values):
        obj = super().from_db(db, field_names, values)
        obj._loaded_code = obj.__dict__.get("code")
        return obj


@receiver(pre_delete, sender=Classification)
def _refuse_system_delete(sender, instance: Classification, **kwargs) -> None:
    # Sent for queryset deletes too, so the admin's bulk delete cannot remove one either.
    if instance.is_system:
        raise SystemClassificationProtected(
            f"{instance.name} is a system classification and cannot be deleted", {instance}
        )


class RuleQuerySet(models.QuerySet):
    def current(self) -> "RuleQuerySet":
        """The latest version of every rule."""
        return self.filter(superseded_at__isnull=True)

    def runnable(self) -> "RuleQuerySet":
        """Current, active rules of active classifications, in evaluation order."""
        return (
            self.current()
            .filter(is_active=True, classification__is_active=True)
            .select_related("classification")
            .order_by("-classification__priority", "classification__risk_level", "name", "pk")
        )

    def for_engine(self, engine: str) -> "RuleQuerySet":
        return self.filter(Q(engine="") | Q(engine=engine))


class Rule(models.Model):
    """One version of a classification rule; a new expression makes a new version."""

    lineage = models.UUIDField(
        _("rule id"),
        default=uuid.uuid4,
        editable=False,
        help_text=_("Shared by every version of the same rule."),
    )
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    classification = models.ForeignKey(
        Classification,
        on_delete=models.CASCADE,
        related_name="rules",
        verbose_name=_("classification"),
    )
    name = models.CharField(_("name"), max_length=200)
    engine = models.CharField(
        _("engine"),
        max_length=20,
        choices=Engine.choices,
        blank=True,
        help_text=_("Only accounts of this engine are evaluated; empty for every engine."),
    )
    expression = models.JSONField(
        _("expression"),
        help_text=_('DSL v4: {"version": 4, "expr": …}. Changing it creates a new version.'),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    superseded_at = models.DateTimeField(
        _("superseded"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("When a newer version replaced this one; superseded versions are read-only."),
    )

    objects = RuleQuerySet.as_manager()

    class Meta:
        ordering = ["classification", "name", "-version"]
        verbose_name = _("rule")
        verbose_name_plural = _("rules")
        constraints = [
            models.UniqueConstraint(
                fields=["lineage", "version"], name="classification_rule_version_unique"
            ),
            models.UniqueConstraint(
                fields=["lineage"],
                condition=Q(superseded_at__isnull=True),
                name="classification_rule_one_current",
            ),
            models.UniqueConstraint(
                fields=["classification", "engine", "name"],
                condition=Q(superseded_at__isnull=True),
                name="classification_rule_name_unique",
                violation_error_message=_(
                    "A rule with this name already exists for this classification and engine."
                ),
            ),
            models.CheckConstraint(
                condition=Q(engine="") | Q(engine__in=Engine.values),
                name="classification_rule_engine_valid",
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="classification_rule_version"),
        ]
        indexes = [
            models.Index(
                fields=["classification", "is_active"],
                condition=Q(superseded_at__isnull=True),
                name="classif_rule_current_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def is_current(self) -> bool:
        return self.superseded_at is None


class AssignmentSource(models.TextChoices):
    AUTO = "auto", _("Automatic")
    MANUAL = "manual", _("Manual")


class AssignmentQuerySet(models.QuerySet):
    def visible_to(self, user, perm: str = "inventory.view_instance") -> "AssignmentQuerySet":
        return self.filter(account__in=Account.objects.visible_to(user, perm))


class Assignment(models.Model):
    """An account placed in a classification, by a rule version or by hand."""

    account = models.ForeignKey(
        Account,
        on_delete=models.CASCADE,
        related_name="assignments",
        verbose_name=_("account"),
        db_index=False,  # the unique (account, classification) index serves it
    )
    classification = models.ForeignKey(
        Classification,
        on_delete=models.CASCADE,
        related_name="assignments",
        verbose_name=_("classification"),
    )
    rule = models.ForeignKey(
        Rule,
        on_delete=models.PROTECT,  # the version that matched is the assignment's evidence
        null=True,
        blank=True,
        related_name="assignments",
        verbose_name=_("rule version"),
        help_text=_("The rule version that matched; empty for manual assignments."),
    )
    source = models.CharField(
        _("source"), max_length=10, choices=AssignmentSource.choices, default=AssignmentSource.AUTO
    )
    # A plain value, not a foreign key: runs are purged by retention, assignments are not.
    run_id = models.BigIntegerField(_("run"), null=True, blank=True)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("assigned by"),
        help_text=_("Who assigned it by hand."),
    )
    assigned_at = models.DateTimeField(_("assigned at"), default=timezone.now)
    note = models.CharField(
        _("note"), max_length=500, blank=True, help_text=_("Why it was assigned by hand.")
    )

    objects = AssignmentQuerySet.as_manager()

    class Meta:
        ordering = ["-assigned_at", "-id"]
        verbose_name = _("assignment")
        verbose_name_plural = _("assignments")
        constraints = [
            models.UniqueConstraint(
                fields=["account", "classification"],
                name="classification_assignment_once",
                violation_error_message=_("The account already has this classification."),
            ),
            models.CheckConstraint(
                condition=Q(source=AssignmentSource.MANUAL, rule__isnull=True)
                | Q(source=AssignmentSource.AUTO, rule__isnull=False),
                name="classification_assignment_rule_iff_auto",
            ),
        ]
        indexes = [
            models.Index(fields=["classification", "source"], name="classif_assign_cls_idx"),
            # The admin lists the newest first: without it, every page sorts the whole table.
            models.Index(fields=["-assigned_at", "-id"], name="classif_assign_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account} → {self.classification}"


class RuleDailyStat(models.Model):
    """How many accounts of one instance a rule version matched on one day."""

    day = models.DateField(_("day"))
    rule = models.ForeignKey(
        Rule, on_delete=models.CASCADE, related_name="daily_stats", verbose_name=_("rule")
    )
    instance = models.ForeignKey(
        Instance, on_delete=models.CASCADE, related_name="+", verbose_name=_("instance")
    )
    engine = models.CharField(_("engine"), max_length=20, choices=Engine.choices)
    matched = models.PositiveIntegerField(_("matched"), help_text=_("Accounts matched."))
    evaluated = models.PositiveIntegerField(
        _("evaluated"), help_text=_("Active accounts of the instance the rule was evaluated on.")
    )
    computed_at = models.DateTimeField(_("computed at"))

    class Meta:
        ordering = ["-day", "rule"]
        verbose_name = _("rule daily statistic")
        verbose_name_plural = _("rule daily statistics")
        constraints = [
            models.UniqueConstraint(
                fields=["day", "rule", "instance"], name="classification_ruledailystat_once"
            ),
            models.CheckConstraint(
                condition=Q(matched__lte=models.F("evaluated")),
                name="classification_ruledailystat_matched_le_evaluated",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rule_id} on {self.instance_id}, {self.day}: {self.matched}"


class ClassificationDailyStat(models.Model):
    """How many accounts of one instance a classification's rules matched on one day."""

    day = models.DateField(_("day"))
    classification = models.ForeignKey(
        Classification,
        on_delete=models.CASCADE,
        related_name="daily_stats",
        verbose_name=_("classification"),
    )
    instance = models.ForeignKey(
        Instance, on_delete=models.CASCADE, related_name="+", verbose_name=_("instance")
    )
    engine = models.CharField(_("engine"), max_length=20, choices=Engine.choices)
    matched = models.PositiveIntegerField(
        _("matched"), help_text=_("Distinct accounts matched by any of its rules.")
    )
    assigned = models.PositiveIntegerField(
        _("assigned"), help_text=_("Accounts holding the classification, manual ones included.")
    )
    evaluated = models.PositiveIntegerField(_("evaluated"), help_text=_("Active accounts."))
    computed_at = models.DateTimeField(_("computed at"))

    class Meta:
        ordering = ["-day", "classification"]
        verbose_name = _("classification daily statistic")
        verbose_name_plural = _("classification daily statistics")
        constraints = [
            models.UniqueConstraint(
                fields=["day", "classification", "instance"],
                name="classification_classificationdailystat_once",
            ),
            models.CheckConstraint(
                condition=Q(matched__lte=models.F("evaluated")),
                name="classification_classificationdailystat_matched_le_evaluated",
            ),
        ]
        indexes = [models.Index(fields=["classification", "day"], name="classif_stat_trend_idx")]

    def __str__(self) -> str:
        return f"{self.classification_id} on {self.instance_id}, {self.day}: {self.matched}"

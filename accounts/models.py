"""Accounts found on instances, their current privileges and the permanent change history."""

from django.db import models
from django.db.models import F, Q
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThanOrEqual
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.canonical import FORMAT
from inventory.models import Engine, Instance
from whalefall.db import MAX_BIGINT, CurrentTransactionId, committed_before


class AccountKind(models.TextChoices):
    USER = "user", _("User")
    ROLE = "role", _("Role")
    LOGIN = "login", _("Login")
    GROUP = "group", _("Group")
    PUBLIC = "public", _("PUBLIC")


EMPTY_NAME = "''"  # how an anonymous account's empty user name is written


def account_identity(name: str, host: str) -> str:
    """How people read an account: ``name@host`` (``''@host`` when anonymous) or the name."""
    if host:
        return f"{name or EMPTY_NAME}@{host}"
    return name


class AccountQuerySet(models.QuerySet):
    def visible_to(self, user, perm: str = "inventory.view_instance") -> "AccountQuerySet":
        """Accounts of the instances ``user`` holds ``perm`` on."""
        if user is not None and user.is_active and user.has_perm(perm):
            return self
        return self.filter(instance__in=Instance.objects.visible_to(user, perm))

    def active(self) -> "AccountQuerySet":
        return self.filter(removed_at__isnull=True)

    def privileged(self) -> "AccountQuerySet":
        """Accounts whose effective capabilities include SUPERUSER, GRANT_ADMIN or ESCALATION."""
        return self.filter(
            Q(snapshot__is_superuser=True)
            | Q(snapshot__can_grant=True)
            | Q(snapshot__can_escalate=True)
        )


class Account(models.Model):
    """An account (user, role, login, group or PUBLIC) as the instance reports it.

    Its identity is (kind, name, host), three separate values, unique per instance: a MySQL
    user ``'k'@'h'`` and a role named ``k@h`` are two accounts.
    """

    instance = models.ForeignKey(
        Instance,
        on_delete=models.PROTECT,  # history is permanent: retire instances instead
        related_name="accounts",
        verbose_name=_("instance"),
    )
    name = models.CharField(
        _("name"),
        max_length=255,
        blank=True,
        help_text=_("User, role or login name; empty for a MySQL/MariaDB anonymous account."),
    )
    host = models.CharField(
        _("host"),
        max_length=255,
        blank=True,
        help_text=_("MySQL/MariaDB host part of the account."),
    )
    kind = models.CharField(_("kind"), max_length=10, choices=AccountKind.choices)
    first_seen_at = models.DateTimeField(_("first seen"))
    last_seen_at = models.DateTimeField(_("last seen"))
    removed_at = models.DateTimeField(
        _("removed at"),
        null=True,
        blank=True,
        help_text=_("When a sync last found it gone; empty while it exists."),
    )

    objects = AccountQuerySet.as_manager()

    class Meta:
        ordering = ["instance", "name", "host"]
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        permissions = [("access_review", _("Can produce the access review report"))]
        constraints = [
            models.UniqueConstraint(
                fields=["instance", "kind", "name", "host"],
                name="accounts_account_identity_unique",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=AccountKind.values), name="accounts_account_kind_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["instance", "removed_at"], name="accounts_account_active_idx"),
            models.Index(fields=["name"], name="accounts_account_name_idx"),
        ]

    def __str__(self) -> str:
        return self.identity

    @property
    def identity(self) -> str:
        """How people read the account (:func:`account_identity`)."""
        return account_identity(self.name, self.host)

    @property
    def key(self) -> tuple[str, str, str]:
        """The identity an engine reports the account under (``AccountRecord.key``)."""
        return (self.kind, self.name, self.host)


class PrivilegeSnapshot(models.Model):
    """The current canonical privileges of one account, and the facts derived from them."""

    # One snapshot per account: the one-to-one field is a unique constraint in the database.
    account = models.OneToOneField(
        Account, on_delete=models.CASCADE, related_name="snapshot", verbose_name=_("account")
    )
    privileges = models.JSONField(_("privileges"), help_text=_("Canonical privilege set."))
    facts = models.JSONField(_("facts"), help_text=_("Capabilities, roles and grants."))
    fingerprint = models.CharField(_("fingerprint"), max_length=64)
    effective_fingerprint = models.CharField(
        _("effective fingerprint"),
        max_length=64,
        blank=True,
        help_text=_("SHA-256 of what the account can effectively do; empty until computed."),
    )
    format = models.PositiveSmallIntegerField(
        _("format"),
        default=FORMAT,
        help_text=_("Version of the canonical form the privileges were written in."),
    )
    # Flags of the effective capabilities (through roles and PUBLIC), for filtering.
    is_superuser = models.BooleanField(_("superuser"), default=False, db_index=True)
    is_locked = models.BooleanField(_("locked"), default=False, db_index=True)
    can_grant = models.BooleanField(_("can grant"), default=False, db_index=True)
    can_escalate = models.BooleanField(
        _("can escalate"),
        default=False,
        db_index=True,
        help_text=_("Can gain privileges it does not hold (grant tables, CREATEROLE, …)."),
    )
    is_anonymous = models.BooleanField(_("anonymous"), default=False)
    no_password = models.BooleanField(_("no password"), default=False)
    collected_at = models.DateTimeField(_("collected at"))
    changed_at = models.DateTimeField(
        _("changed at"), help_text=_("When the privileges last changed.")
    )

    class Meta:
        verbose_name = _("privilege snapshot")
        verbose_name_plural = _("privilege snapshots")

    def __str__(self) -> str:
        return f"{self.account} ({self.fingerprint[:12]})"


class ChangeType(models.TextChoices):
    CREATED = "created", pgettext_lazy("account change", "Created")
    PRIVILEGES_CHANGED = "privileges_changed", _("Privileges changed")
    ATTRIBUTES_CHANGED = "attributes_changed", _("Attributes changed")
    REMOVED = "removed", _("Removed")
    RESTORED = "restored", _("Restored")
    EFFECTIVE_CHANGED = "effective_changed", _("Effective privileges changed")


class ImmutableRow(Exception):
    """Change history rows are written once."""


class AccountChangeQuerySet(models.QuerySet):
    def feed_after(self, position: tuple[int, int]) -> "AccountChangeQuerySet":
        """Changes after ``position`` — a (transaction, id) pair, (0, 0) for the beginning —
        in commit order, and only those no concurrent sync can still precede: polling from
        the last position read never skips a change nor returns one twice."""
        transaction, pk = position
        # The first position after (transaction, pk), as ">=": PostgreSQL estimates a row
        # comparison from its first column alone, and "txid > t" looks empty for the newest
        # transaction however many changes it wrote, so the rows' joins were planned for
        # one row and sorted the whole rest of the table; "txid >= t" is estimated right
        # and the (txid, id) index is read in order, up to the page's LIMIT.
        if pk < MAX_BIGINT:
            start = (transaction, pk + 1)
        elif transaction < MAX_BIGINT:
            start = (transaction + 1, 0)
        else:
            return self.none()
        return committed_before(
            self.filter(TupleGreaterThanOrEqual(Tuple(F("txid"), F("id")), start))
        ).order_by("txid", "id")


class AccountChange(models.Model):
    """One detected change of an account's privileges; immutable."""

    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="changes", verbose_name=_("account")
    )
    instance = models.ForeignKey(
        Instance,
        on_delete=models.PROTECT,
        related_name="account_changes",
        verbose_name=_("instance"),
    )
    engine = models.CharField(_("engine"), max_length=20, choices=Engine.choices)
    # A plain value, not a foreign key: runs are purged by retention, history is not.
    run_id = models.BigIntegerField(_("run"), null=True, blank=True, db_index=True)
    detected_at = models.DateTimeField(_("detected at"))
    change_type = models.CharField(_("change"), max_length=20, choices=ChangeType.choices)
    summary = models.CharField(_("summary"), max_length=500)
    diff = models.JSONField(_("diff"))
    privileged = models.BooleanField(
        _("privileged"),
        default=False,
        help_text=_(
            "The account is or became a superuser, grant admin or able to escalate "
            "(effective capabilities)."
        ),
    )
    # Written by the database: the feed orders by it (see AccountChangeQuerySet.feed_after).
    txid = models.BigIntegerField(
        _("transaction"), db_default=CurrentTransactionId(), editable=False
    )

    objects = AccountChangeQuerySet.as_manager()

    class Meta:
        ordering = ["-detected_at", "-id"]
        verbose_name = _("account change")
        verbose_name_plural = _("account changes")
        constraints = [
            models.CheckConstraint(
                condition=Q(change_type__in=ChangeType.values),
                name="accounts_accountchange_type_valid",
            )
        ]
        indexes = [
            models.Index(fields=["account", "detected_at"], name="accounts_change_account_idx"),
            models.Index(fields=["instance", "-detected_at"], name="accounts_change_instance_idx"),
            models.Index(fields=["change_type", "-detected_at"], name="accounts_change_type_idx"),
            models.Index(fields=["engine", "-detected_at"], name="accounts_change_engine_idx"),
            models.Index(
                fields=["-detected_at"],
                condition=Q(privileged=True),
                name="accounts_change_privileged_idx",
            ),
            models.Index(fields=["-detected_at", "-id"], name="accounts_change_recent_idx"),
            models.Index(fields=["txid", "id"], name="accounts_change_feed_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account}: {self.get_change_type_display()} ({self.summary})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableRow("account changes are never modified")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableRow("account changes are never deleted")

"""Instances, the credentials they connect with, and the tags that group them."""

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from guardian.shortcuts import get_objects_for_user

from inventory import crypto
from inventory.engines import guard
from whalefall.models import TimestampedModel


class Engine(models.TextChoices):
    MYSQL = "mysql", _("MySQL / MariaDB")
    POSTGRESQL = "postgresql", _("PostgreSQL")
    SQLSERVER = "sqlserver", _("SQL Server")
    ORACLE = "oracle", _("Oracle")


DEFAULT_PORTS = {
    Engine.MYSQL: 3306,
    Engine.POSTGRESQL: 5432,
    Engine.SQLSERVER: 1433,
    Engine.ORACLE: 1521,
}


class TlsMode(models.TextChoices):
    DISABLED = "disabled", _("Disabled")
    PREFERRED = "preferred", _("Preferred (encrypt when the server offers it)")
    REQUIRED = "required", _("Required (encrypt, do not verify the certificate)")
    VERIFY = "verify", _("Verify (encrypt and verify certificate and host name)")


class TagCategory(models.TextChoices):
    ENVIRONMENT = "environment", _("Environment")
    LOCATION = "location", _("Location")
    TEAM = "team", _("Team")
    APPLICATION = "application", _("Application")
    OTHER = "other", _("Other")


class Tag(TimestampedModel):
    """A label for grouping instances (environment, location, team …)."""

    slug = models.SlugField(
        _("slug"), max_length=64, unique=True, help_text=_("Stable identifier, e.g. prod-eu.")
    )
    name = models.CharField(_("name"), max_length=100, help_text=_("Name shown in lists."))
    category = models.CharField(
        _("category"),
        max_length=20,
        choices=TagCategory.choices,
        default=TagCategory.OTHER,
        help_text=_("What kind of grouping this tag expresses."),
    )
    colour = models.CharField(
        _("colour"),
        max_length=7,
        default="#6b7280",
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", _("Use a hex colour like #1f77b4."))],
        help_text=_("Hex colour of the tag badge."),
    )

    class Meta:
        ordering = ["category", "name"]
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        constraints = [
            models.CheckConstraint(
                condition=Q(category__in=TagCategory.values), name="inventory_tag_category_valid"
            ),
            models.CheckConstraint(
                condition=Q(colour__regex=r"^#[0-9a-fA-F]{6}$"), name="inventory_tag_colour_hex"
            ),
        ]

    def __str__(self) -> str:
        return self.name


# The permissions a credential is used, shown, edited or deleted under.
USE_CREDENTIAL = "inventory.use_credential"
VIEW_CREDENTIAL = "inventory.view_credential"
CHANGE_CREDENTIAL = "inventory.change_credential"
DELETE_CREDENTIAL = "inventory.delete_credential"
CREDENTIAL_PERMISSIONS = (VIEW_CREDENTIAL, CHANGE_CREDENTIAL, DELETE_CREDENTIAL, USE_CREDENTIAL)

# A user holding a credential permission on the model sees every credential only when they
# also hold this instance permission on the model: otherwise they are scoped to instances.
_UNSCOPED_WITH = {
    VIEW_CREDENTIAL: "inventory.view_instance",
    CHANGE_CREDENTIAL: "inventory.change_instance",
    DELETE_CREDENTIAL: "inventory.change_instance",
    USE_CREDENTIAL: "inventory.change_instance",
}


class CredentialQuerySet(models.QuerySet):
    def visible_to(self, user, perm: str = VIEW_CREDENTIAL) -> "CredentialQuerySet":
        """Credentials ``user`` holds ``perm`` on (view, change, delete or use): the one
        decision of who sees, picks, tests and edits a credential.

        * Unscoped users (the credential permission and the matching instance permission on
          the models, e.g. Administrators) hold it on every credential.
        * Otherwise a credential permission on the model is a capability that the instance
          scope narrows: view and use reach the credentials of the instances the user may
          change; change and delete only those used by such instances and by no other
          instance (a shared credential is not edited from one of its instances).
        * Object permissions granted on a credential (django-guardian, to the user or one
          of their groups) add that credential; any of them lets the user see it.
        """
        if perm not in _UNSCOPED_WITH:
            raise ValueError(f"not a credential permission: {perm!r}")
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if user.has_perm(perm) and user.has_perm(_UNSCOPED_WITH[perm]):
            return self
        granted = get_objects_for_user(
            user,
            list(CREDENTIAL_PERMISSIONS) if perm == VIEW_CREDENTIAL else [perm],
            klass=Credential,
            any_perm=True,
            accept_global_perms=False,
            with_superuser=False,
        )
        allowed = Q(pk__in=granted.values("pk"))
        if user.has_perm(perm):
            changeable = Instance.objects.visible_to(user, "inventory.change_instance")
            derived = Q(pk__in=changeable.filter(credential__isnull=False).values("credential"))
            if perm in (CHANGE_CREDENTIAL, DELETE_CREDENTIAL):
                others = Instance.objects.exclude(pk__in=changeable.values("pk"))
                derived &= ~Q(pk__in=others.filter(credential__isnull=False).values("credential"))
            allowed |= derived
        return self.filter(allowed)


class Credential(TimestampedModel):
    """The login of a read-only monitoring account; its secret is stored encrypted."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    username = models.CharField(
        _("username"), max_length=128, help_text=_("Login name of the monitoring account.")
    )
    secret_ciphertext = models.TextField(
        _("secret (encrypted)"),
        editable=False,
        help_text=_("Fernet token; the clear text is never stored or shown."),
    )
    secret_changed_at = models.DateTimeField(
        _("secret changed at"),
        null=True,
        editable=False,
        help_text=_("Last time the secret was set."),
    )
    engine = models.CharField(
        _("engine"),
        max_length=20,
        choices=Engine.choices,
        blank=True,
        help_text=_("Optional: the engine this account exists on."),
    )
    description = models.TextField(_("description"), blank=True)

    objects = CredentialQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = _("credential")
        verbose_name_plural = _("credentials")
        permissions = [
            ("use_credential", _("Can connect instances with a credential")),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(engine="") | Q(engine__in=Engine.values),
                name="inventory_credential_engine_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Credential {self.pk}: {self.name}>"

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_ciphertext)

    def set_secret(self, plaintext: str) -> None:
        """Encrypt and store a new secret (saved with the next ``save()``)."""
        if not plaintext:
            raise ValidationError({"secret": _("The secret cannot be empty.")})
        self.secret_ciphertext = crypto.encrypt(plaintext)
        self.secret_changed_at = timezone.now()

    def decrypt_secret(self) -> str:
        """The clear-text secret. Called only where a connection is opened (engines.base)."""
        if not self.secret_ciphertext:
            raise crypto.SecretUnavailable(
                _("Credential %(name)s has no secret.") % {"name": self.name}
            )
        try:
            return crypto.decrypt(self.secret_ciphertext)
        except crypto.SecretUnavailable as exc:
            raise crypto.SecretUnavailable(
                _(
                    "The secret of credential %(name)s cannot be decrypted with the configured "
                    "keys (WHALEFALL_CREDENTIAL_KEYS); re-enter it or restore the old key."
                )
                % {"name": self.name}
            ) from exc


class InstanceQuerySet(models.QuerySet):
    def visible_to(self, user, perm: str = "inventory.view_instance") -> "InstanceQuerySet":
        """Instances ``user`` holds ``perm`` on: every one with the model permission, else
        those granted through guardian object permissions (to the user or a group)."""
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if user.has_perm(perm):
            return self
        return self.filter(
            pk__in=get_objects_for_user(
                user, perm, klass=Instance, accept_global_perms=False, with_superuser=False
            ).values("pk")
        )

    def current(self) -> "InstanceQuerySet":
        """Instances that are not retired."""
        return self.filter(retired_at__isnull=True)

    def syncable(self) -> "InstanceQuerySet":
        """Instances work may run against: active and not retired."""
        return self.current().filter(is_active=True)


class Instance(TimestampedModel):
    """A database server WhaleFall connects to with a monitoring credential."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    engine = models.CharField(_("engine"), max_length=20, choices=Engine.choices)
    host = models.CharField(_("host"), max_length=255, help_text=_("Host name or IP address."))
    port = models.PositiveIntegerField(
        _("port"),
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(65535)],
        help_text=_("Leave empty for the engine's default port."),
    )
    database_name = models.CharField(
        _("database / service"),
        max_length=128,
        blank=True,
        help_text=_(
            "Database to connect to (MySQL: none needed; PostgreSQL: postgres; "
            "SQL Server: master); for Oracle, the service name."
        ),
    )
    credential = models.ForeignKey(
        Credential,
        on_delete=models.PROTECT,
        related_name="instances",
        null=True,
        blank=True,
        verbose_name=_("credential"),
        help_text=_("Monitoring account used to connect."),
    )
    tls_mode = models.CharField(
        _("TLS"),
        max_length=20,
        choices=TlsMode.choices,
        default=TlsMode.PREFERRED,
        help_text=_("Encryption of the connection to this instance."),
    )
    allow_md5_auth = models.BooleanField(
        _("allow md5 authentication"),
        default=False,
        help_text=_(
            "PostgreSQL: also answer a server that asks for md5 password authentication. "
            "Off, only SCRAM-SHA-256 is answered, which never reveals the password; an md5 "
            "answer can be attacked offline by whoever receives it. Cleartext password "
            "authentication is refused either way."
        ),
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="instances", verbose_name=_("tags"))
    environment = models.CharField(
        _("environment"), max_length=50, blank=True, help_text=_("e.g. production, staging.")
    )
    owner = models.CharField(
        _("owner / team"), max_length=100, blank=True, help_text=_("Who answers for it.")
    )
    description = models.TextField(_("description"), blank=True)
    is_active = models.BooleanField(
        _("active"), default=True, help_text=_("Inactive instances are kept but never synced.")
    )
    deep_privileges = models.BooleanField(
        _("deep privileges"),
        default=False,
        help_text=_("Also collect schema- and object-level grants (slower on large catalogs)."),
    )
    retired_at = models.DateTimeField(
        _("retired at"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("Retired instances are hidden from syncs; restoring brings them back."),
    )
    version_raw = models.CharField(
        _("version (as reported)"), max_length=500, blank=True, editable=False
    )
    version_major_minor = models.CharField(_("version"), max_length=20, blank=True, editable=False)
    version_full = models.CharField(_("full version"), max_length=50, blank=True, editable=False)
    last_checked_at = models.DateTimeField(
        _("last connection attempt"), null=True, blank=True, editable=False
    )
    last_connected_at = models.DateTimeField(
        _("last successful connection"), null=True, blank=True, editable=False
    )
    last_connection_ok = models.BooleanField(
        _("last connection succeeded"), null=True, editable=False
    )
    last_connection_error = models.TextField(_("last connection error"), blank=True, editable=False)

    objects = InstanceQuerySet.as_manager()

    # Where and how the instance connects: changing any of these sends its credential
    # somewhere new, which needs the right to use that credential.
    CONNECTION_FIELDS = ("engine", "host", "port", "credential_id", "tls_mode", "allow_md5_auth")

    class Meta:
        ordering = ["name"]
        verbose_name = _("instance")
        verbose_name_plural = _("instances")
        permissions = [
            ("test_connection", _("Can test the connection of an instance")),
            ("sync", _("Can run syncs of an instance")),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(engine__in=Engine.values), name="inventory_instance_engine_valid"
            ),
            models.CheckConstraint(
                condition=Q(port__gte=1, port__lte=65535), name="inventory_instance_port_range"
            ),
            models.CheckConstraint(
                condition=Q(tls_mode__in=TlsMode.values), name="inventory_instance_tls_mode_valid"
            ),
            models.CheckConstraint(condition=~Q(host=""), name="inventory_instance_host_not_blank"),
        ]
        indexes = [
            models.Index(fields=["engine", "name"], name="inventory_instance_engine_idx"),
            models.Index(fields=["host"], name="inventory_instance_host_idx"),
            models.Index(fields=["retired_at", "is_active"], name="inventory_instance_state_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_retired(self) -> bool:
        return self.retired_at is not None

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def clean(self) -> None:
        super().clean()
        if self.engine and not self.port:
            self.port = DEFAULT_PORTS.get(self.engine)
        if (
            self.credential_id
            and self.credential.engine
            and self.engine
            and self.credential.engine != self.engine
        ):
            raise ValidationError({"credential": _("This credential is meant for another engine.")})
        if self.host:
            # The outbound guard's decision now, resolving the name; it is taken again at
            # every connection (inventory.engines.base.target_for).
            try:
                guard.ensure_allowed(self.host, self.port)
            except guard.TargetNotAllowed as exc:
                raise ValidationError({"host": str(exc)}) from None
            self.host = guard.canonical_host(self.host)

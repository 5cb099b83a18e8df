"""Writes to the inventory and remote connection tests.

Remote work (connecting to instances) happens outside any transaction and in worker
threads that never touch the ORM; results are written afterwards by the caller's thread.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import structlog
import tablib
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from guardian.shortcuts import assign_perm
from import_export import fields, resources, widgets

from inventory.engines.base import (
    ConnectionTarget,
    EngineError,
    VersionInfo,
    engine_class,
    target_for,
)
from inventory.models import (
    CREDENTIAL_PERMISSIONS,
    USE_CREDENTIAL,
    VIEW_CREDENTIAL,
    Credential,
    Instance,
    Tag,
)

log = structlog.get_logger(__name__)

# Connection tests run in parallel, but never more than this many at once.
MAX_PARALLEL_CONNECTION_TESTS = 8


# --- Connection tests -------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionCheck:
    """Outcome of one connection test."""

    instance_id: int
    ok: bool
    kind: str = ""
    message: str = ""
    version: VersionInfo | None = None


def _probe(instance_id: int, target: ConnectionTarget) -> ConnectionCheck:
    """Connect and read the version (remote only: no ORM in this function)."""
    try:
        with engine_class(target.engine)(target) as engine:
            version = engine.server_version()
    except EngineError as exc:
        return ConnectionCheck(instance_id, ok=False, kind=exc.kind, message=str(exc))
    return ConnectionCheck(instance_id, ok=True, version=version)


def _record(check: ConnectionCheck) -> None:
    now = timezone.now()
    changes: dict = {"last_checked_at": now, "last_connection_ok": check.ok}
    if check.ok and check.version is not None:
        changes |= {
            "last_connected_at": now,
            "last_connection_error": "",
            "version_raw": check.version.raw,
            "version_major_minor": check.version.major_minor,
            "version_full": check.version.full,
        }
    else:
        changes["last_connection_error"] = check.message[:2000]
    # update(): a connection test is not a configuration change for the audit log.
    Instance.objects.filter(pk=check.instance_id).update(**changes)
    if check.ok:
        log.info(
            "instance_connection_ok", instance_id=check.instance_id, version=check.version.full
        )
    else:
        log.warning(
            "instance_connection_failed",
            instance_id=check.instance_id,
            kind=check.kind,
            error=check.message,
        )


def instance_test_connections(*, instances: Iterable[Instance], user=None) -> list[ConnectionCheck]:
    """Connect to each instance, read and store its version, record success or the error.

    With ``user``, an instance whose credential that user may not use is not connected to
    (and nothing is recorded on it): testing sends the credential's secret to the instance.
    """
    instances = list(instances)
    refused: list[ConnectionCheck] = []
    if user is not None:
        usable = set(
            Credential.objects.visible_to(user, USE_CREDENTIAL)
            .filter(pk__in={i.credential_id for i in instances if i.credential_id})
            .values_list("pk", flat=True)
        )
        refused = [
            ConnectionCheck(
                instance.pk,
                ok=False,
                kind="not_allowed",
                message=_("Not tested: you may not use the credential of this instance."),
            )
            for instance in instances
            if instance.credential_id and instance.credential_id not in usable
        ]
        refused_ids = {check.instance_id for check in refused}
        instances = [instance for instance in instances if instance.pk not in refused_ids]
    checks: list[ConnectionCheck] = []
    probes: dict[int, ConnectionTarget] = {}
    for instance in instances:
        try:
            probes[instance.pk] = target_for(instance)
        except EngineError as exc:
            checks.append(ConnectionCheck(instance.pk, ok=False, kind=exc.kind, message=str(exc)))
    if probes:
        workers = min(MAX_PARALLEL_CONNECTION_TESTS, len(probes))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="conntest") as pool:
            checks.extend(pool.map(_probe, probes.keys(), probes.values()))
    for check in checks:
        _record(check)
    return refused + checks


def instance_test_connection(*, instance: Instance, user=None) -> ConnectionCheck:
    """Connection test of one instance."""
    return instance_test_connections(instances=[instance], user=user)[0]


# --- Credentials: who may use them --------------------------------------------------------


def instance_connection_check(*, user, instance: Instance) -> None:
    """Refuse to save ``instance`` (as it is about to be saved) when it would connect with a
    credential ``user`` may not use: a new instance with a credential, or a change of its
    credential or of where and how it connects (``Instance.CONNECTION_FIELDS``).

    The one check behind the instance form, the import and any other writer: pointing an
    instance at a host of one's choice and testing it hands the credential's secret to that
    host. Raises ``ValidationError`` on the credential field.
    """
    if instance.credential_id is None:
        return
    if instance.pk is not None:
        before = Instance.objects.filter(pk=instance.pk).values(*Instance.CONNECTION_FIELDS).first()
        if before is not None and all(
            before[name] == getattr(instance, name) for name in Instance.CONNECTION_FIELDS
        ):
            return
    usable = Credential.objects.visible_to(user, USE_CREDENTIAL)
    if not usable.filter(pk=instance.credential_id).exists():
        raise ValidationError(
            {
                "credential": _(
                    "You may not use this credential: connecting an instance with it, or "
                    "changing where or how an instance that uses it connects, needs the "
                    "right to use it."
                )
            }
        )


def credential_grant_to_creator(*, credential: Credential, user) -> list[str]:
    """Give the person who created ``credential`` the credential permissions they hold on
    the model but would not reach it with (a new credential is used by no instance yet, so
    a member scoped to instances would not see it). Returns the permissions granted."""
    granted = []
    for permission in CREDENTIAL_PERMISSIONS:
        if not user.has_perm(permission):
            continue
        if Credential.objects.visible_to(user, permission).filter(pk=credential.pk).exists():
            continue
        assign_perm(permission, user, credential)
        granted.append(permission)
    if granted:
        log.info(
            "credential_granted_to_creator",
            credential_id=credential.pk,
            user_id=user.pk,
            permissions=granted,
        )
    return granted


# --- Lifecycle, tags, permissions -------------------------------------------------------


def instance_retire(*, instances: QuerySet[Instance]) -> int:
    """Retire (soft-delete) instances: kept with their history, never synced."""
    now = timezone.now()
    with transaction.atomic():
        retired = list(instances.filter(retired_at__isnull=True).select_for_update(of=("self",)))
        for instance in retired:  # one save each: every retirement is an audit entry
            instance.retired_at = now
            instance.save(update_fields=["retired_at", "updated_at"])
    log.info("instances_retired", instance_ids=[i.pk for i in retired])
    return len(retired)


def instance_restore(*, instances: QuerySet[Instance]) -> int:
    """Bring retired instances back."""
    with transaction.atomic():
        restored = list(instances.filter(retired_at__isnull=False).select_for_update(of=("self",)))
        for instance in restored:
            instance.retired_at = None
            instance.save(update_fields=["retired_at", "updated_at"])
    log.info("instances_restored", instance_ids=[i.pk for i in restored])
    return len(restored)


def instance_add_tags(*, instances: QuerySet[Instance], tags: Iterable[Tag]) -> int:
    """Add tags to instances (tags they already carry are left alone)."""
    tags = list(tags)
    with transaction.atomic():
        selected = list(instances)
        for instance in selected:  # through tags.add: each change reaches the audit log
            instance.tags.add(*tags)
    return len(selected)


def instance_permissions_grant(*, group, permissions: Iterable[str], tags: Iterable[Tag]) -> int:
    """Grant ``group`` object permissions on every instance carrying one of ``tags``.

    Returns the number of instances. Grants already held stay as they are.
    """
    instances = list(Instance.objects.filter(tags__in=list(tags)).distinct())
    permissions = list(permissions)
    with transaction.atomic():
        for instance in instances:  # one row per grant: each is an audit entry
            for permission in permissions:
                assign_perm(permission, group, instance)
    log.info(
        "instance_permissions_granted",
        group=group.name,
        permissions=permissions,
        instance_ids=[i.pk for i in instances],
    )
    return len(instances)


# --- Import and export ------------------------------------------------------------------

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")


def formula_safe(value):
    """Neutralise a cell a spreadsheet would run as a formula (prefix it with ')."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def looks_like_formula(value) -> bool:
    return (
        isinstance(value, str)
        and value.lstrip(" ").startswith(FORMULA_PREFIXES)
        and not _NUMBER.match(value.strip())
    )


class CredentialByName(widgets.ForeignKeyWidget):
    def __init__(self):
        super().__init__(Credential, field="name")

    def get_queryset(self, value, row, *args, **kwargs):
        # A credential outside the importing user's scope reads as unknown: an import must
        # not tell which credential names exist elsewhere.
        user = kwargs.get("user")
        if user is None:
            return super().get_queryset(value, row, *args, **kwargs)
        return Credential.objects.visible_to(user, VIEW_CREDENTIAL)

    def clean(self, value, row=None, **kwargs):
        if not value:
            return None
        try:
            return super().clean(value, row, **kwargs)
        except Credential.DoesNotExist:
            raise ValueError(_("no credential named %(name)s") % {"name": value}) from None


class TagsBySlug(widgets.ManyToManyWidget):
    def __init__(self):
        super().__init__(Tag, field="slug", separator=",")

    def clean(self, value, row=None, **kwargs):
        slugs = {s.strip() for s in str(value or "").split(",") if s.strip()}
        tags = list(Tag.objects.filter(slug__in=slugs))
        unknown = slugs - {tag.slug for tag in tags}
        if unknown:
            raise ValueError(_("unknown tag(s): %(slugs)s") % {"slugs": ", ".join(sorted(unknown))})
        return tags


class InstanceResource(resources.ModelResource):
    """Instances as rows of a CSV/XLSX sheet; ``name`` identifies the instance."""

    credential = fields.Field(
        attribute="credential", column_name="credential", widget=CredentialByName()
    )
    tags = fields.Field(attribute="tags", column_name="tags", widget=TagsBySlug())
    version = fields.Field(attribute="version_full", column_name="version", readonly=True)
    last_connected_at = fields.Field(
        attribute="last_connected_at", column_name="last_connected_at", readonly=True
    )
    status = fields.Field(column_name="status", readonly=True)

    class Meta:
        model = Instance
        import_id_fields = ["name"]
        fields = [
            "name",
            "engine",
            "host",
            "port",
            "database_name",
            "credential",
            "tls_mode",
            "tags",
            "environment",
            "owner",
            "description",
            "is_active",
            "deep_privileges",
            "version",
            "last_connected_at",
            "status",
        ]
        export_order = fields
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True
        use_transactions = True

    def __init__(self, user=None, **kwargs):
        super().__init__(**kwargs)
        self.user = user

    def dehydrate_status(self, instance: Instance) -> str:
        if instance.is_retired:
            return "retired"
        return "active" if instance.is_active else "inactive"

    def before_import(self, dataset, **kwargs):
        self.user = kwargs.get("user", self.user)
        headers = [h.strip() for h in dataset.headers or []]
        missing = {"name", "engine", "host"} - set(headers)
        if missing:
            raise ValidationError(
                _("Missing column(s): %(columns)s") % {"columns": ", ".join(sorted(missing))}
            )
        names = [str(n).strip() for n in dataset["name"]]
        self._duplicates = {name for name, count in Counter(names).items() if name and count > 1}
        existing = set(Instance.objects.filter(name__in=names).values_list("name", flat=True))
        changeable = existing
        if self.user is not None:
            changeable = set(
                Instance.objects.visible_to(self.user, "inventory.change_instance")
                .filter(name__in=names)
                .values_list("name", flat=True)
            )
        self._existing, self._changeable = existing, changeable
        self._may_add = self.user is None or self.user.has_perm("inventory.add_instance")

    def before_import_row(self, row, **kwargs):
        errors: dict[str, list[str]] = {}
        for column, value in row.items():
            if looks_like_formula(value):
                errors.setdefault(column, []).append(
                    _("starts with %(char)r, which a spreadsheet would run as a formula")
                    % {"char": value.lstrip(" ")[0]}
                )
        name = str(row.get("name") or "").strip()
        if name in self._duplicates:
            errors.setdefault("name", []).append(_("appears more than once in the file"))
        if name in self._existing and name not in self._changeable:
            errors.setdefault("name", []).append(_("you may not change this instance"))
        if name and name not in self._existing and not self._may_add:
            errors.setdefault("name", []).append(_("you may not add instances"))
        if errors:
            raise ValidationError(errors)

    def export_field(self, field, instance, **kwargs):
        return formula_safe(super().export_field(field, instance, **kwargs))

    def before_save_instance(self, instance, row, **kwargs):
        # An import changes hosts and credentials like the form does: same check. Without a
        # user (a management command) the caller is trusted, as in before_import.
        if self.user is not None:
            instance_connection_check(user=self.user, instance=instance)


def instance_import(*, data: bytes | str, file_format: str, user, dry_run: bool):
    """Import instances from CSV/XLSX: all rows or none; an existing name updates that row.

    Returns import-export's result; ``result.has_errors()`` or
    ``result.has_validation_errors()`` means nothing was written.
    """
    dataset = tablib.Dataset().load(data, format=file_format)
    resource = InstanceResource(user=user)
    result = resource.import_data(
        dataset,
        dry_run=dry_run,
        use_transactions=True,
        rollback_on_validation_errors=True,
        user=user,
    )
    log.info(
        "instances_imported",
        dry_run=dry_run,
        rows=len(dataset),
        errors=result.has_errors() or result.has_validation_errors(),
        totals=dict(result.totals),
    )
    return result


def instance_export(*, queryset: QuerySet[Instance], file_format: str) -> bytes | str:
    """The instances of ``queryset`` as a CSV or XLSX document, formula-safe."""
    dataset = InstanceResource().export(
        queryset.select_related("credential").prefetch_related("tags")
    )
    return dataset.export(file_format)

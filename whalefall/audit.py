"""What django-auditlog records for models outside the inventory app, and which entries a
person limited to some instances may read."""

from collections.abc import Callable, Iterable
from datetime import UTC
from typing import Any

from auditlog.registry import auditlog
from auditlog.render import get_field_verbose_name
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.db.models import DateTimeField, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from guardian.models import GroupObjectPermission, UserObjectPermission

from whalefall import scope
from whalefall.models import ApiToken, SingleSignOnIdentity
from whalefall.moments import moment

MASK = "********"


def mask_secret(_value: str) -> str:
    """Audit entries show that a secret changed, never any part of it."""
    return MASK


def register() -> None:
    auditlog.register(
        get_user_model(),
        exclude_fields=["last_login"],
        mask_fields=["password"],
        mask_callable="whalefall.audit.mask_secret",
        m2m_fields={"groups", "user_permissions"},
    )
    auditlog.register(Group, m2m_fields={"permissions"})
    auditlog.register(UserObjectPermission)
    # Two-factor devices: who enrolled, confirmed, reset; never the key or the codes.
    for device in (TOTPDevice, StaticDevice):
        auditlog.register(device, include_fields=["user", "name", "confirmed"])
    auditlog.register(SingleSignOnIdentity)
    # Creation, revocation and deletion of API tokens; never the digest, nor each use.
    auditlog.register(ApiToken, exclude_fields=["digest", "last_used_at", "last_used_ip"])
    auditlog.register(GroupObjectPermission)
    # Beat stamps every run on the task row; only staff edits are configuration changes.
    auditlog.register(
        PeriodicTask, exclude_fields=["last_run_at", "total_run_count", "date_changed"]
    )
    for schedule in (CrontabSchedule, IntervalSchedule, SolarSchedule, ClockedSchedule):
        auditlog.register(schedule)


# --- Who reads which entries ------------------------------------------------------------
#
# Whoever sees every instance reads every entry. A person limited to some instances reads
# the entries about objects of those instances and about shared configuration they may
# view (tags, classifications, rules); entries about users, groups, object permissions and
# schedules, about objects of other instances, and about any model nobody registered here
# are not theirs to read. The apps owning the audited models contribute these rules.

# (request, visible instance ids) -> the pks of the objects of one model the user may see.
VisibleObjects = Callable[[HttpRequest, set[int]], Iterable[int] | QuerySet]

_instance_bound: dict[str, VisibleObjects] = {}
# The key of ``LogEntry.additional_data`` naming the instance an entry's object hangs off.
INSTANCE_KEY = "instance_id"
_shared: set[str] = set()


def scope_by_instance(model_label: str, visible: VisibleObjects) -> None:
    """Entries about ``model_label`` objects are read where ``visible`` lists the object."""
    _instance_bound[model_label.lower()] = visible


def scope_shared(model_label: str) -> None:
    """Entries about ``model_label`` objects are read by whoever may view that model."""
    _shared.add(model_label.lower())


def _content_type(label: str) -> ContentType:
    return ContentType.objects.get_for_model(apps.get_model(label))


def _readable_shared(request: HttpRequest) -> list[str]:
    user = request.user
    readable = []
    for label in sorted(_shared):
        app_label, model = label.split(".")
        if user.has_perm(f"{app_label}.view_{model}"):
            readable.append(label)
    return readable


def readable_content_types(request: HttpRequest) -> list[ContentType] | None:
    """The models whose entries the request may read; None means every model."""
    if scope.sees_whole_estate(request):
        return None
    labels = sorted(_instance_bound) + _readable_shared(request)
    return [_content_type(label) for label in labels]


def entries_visible_to(request: HttpRequest, entries: QuerySet) -> QuerySet:
    """The audit entries of ``entries`` the request's user may read (see above)."""
    ids = scope.visible_instance_ids(request)
    if ids is None:
        return entries
    readable = Q(pk__in=[])
    for label, visible in sorted(_instance_bound.items()):
        objects = visible(request, ids)
        content_type = _content_type(label)
        readable |= Q(content_type=content_type, object_id__in=objects)
        # An entry that names its instance (INSTANCE_KEY) stays readable once its object
        # is gone, e.g. the removal of a manual assignment.
        readable |= Q(content_type=content_type, **{f"additional_data__{INSTANCE_KEY}__in": ids})
    for label in _readable_shared(request):
        readable |= Q(content_type=_content_type(label))
    return entries.filter(readable)


# --- How entries read -------------------------------------------------------------------
#
# django-auditlog stores every value as text: a foreign key as the related object's id, a
# reverse relation of a created or deleted object as its manager's name
# ("accounts.AccountChange.None"), a moment with microseconds. The audit log's pages show
# them as people read them.


def _model_field(model, name: str):
    try:
        return model._meta.get_field(name) if model is not None else None
    except FieldDoesNotExist:
        return None


def _is_reverse_relation(field) -> bool:
    return field is not None and field.is_relation and field.auto_created and not field.concrete


def _is_foreign_key(field) -> bool:
    return field is not None and bool(field.many_to_one or field.one_to_one) and field.concrete


def _blank(value) -> bool:
    return value in (None, "", "None")


def _related_objects(field, values) -> dict[str, Any]:
    """The objects a foreign key's stored ids name, by stored id (one query per field)."""
    ids = {}
    for value in values:
        if _blank(value):
            continue
        try:
            ids[str(value)] = field.target_field.to_python(value)
        except (ValidationError, TypeError, ValueError):
            continue
    if not ids:
        return {}
    found = field.related_model._default_manager.in_bulk(list(ids.values()))
    return {stored: found[pk] for stored, pk in ids.items() if pk in found}


def _object_link(request: HttpRequest | None, obj) -> str:
    """The object's name, a link to its page where the reader may open it."""
    model_admin = admin.site._registry.get(type(obj))
    if request is not None and model_admin is not None:
        try:
            allowed = model_admin.has_view_permission(request, obj)
        except PermissionDenied:
            allowed = False
        if allowed:
            opts = obj._meta
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
            return format_html('<a href="{}">{}</a>', url, str(obj))
    return str(obj)


def _moment_text(value) -> str:
    parsed = parse_datetime(str(value)) if not _blank(value) else None
    if parsed is None:
        return str(value)
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    return moment(parsed)


def _shown(field, value, related: dict[str, Any], request) -> str:
    if _blank(value):
        return "—"
    if _is_foreign_key(field):
        obj = related.get(str(value))
        if obj is None:
            return _("#%(id)s (deleted)") % {"id": value}
        return _object_link(request, obj)
    if isinstance(field, DateTimeField):
        return _moment_text(value)
    return str(value)


def changes_html(entry, request: HttpRequest | None = None) -> str:
    """The changes of an audit entry as a table: field names, foreign keys by the name of
    their object (a link where ``request``'s user may open it), moments to the second with
    their zone; reverse relations, which are no value of the object, left out."""
    model = entry.content_type.model_class()
    rows = []
    for name, change in sorted(entry.changes_dict.items()):
        field = _model_field(model, name)
        if _is_reverse_relation(field):
            continue
        label = get_field_verbose_name(entry, name)
        if isinstance(change, dict) and change.get("type") == "m2m":
            objects = format_html_join(mark_safe("<br>"), "{}", ((o,) for o in change["objects"]))
            rows.append((label, change.get("operation", ""), objects))
            continue
        if name in MASKED_FIELDS:
            rows.append((label, MASK, MASK))
            continue
        values = list(change) if isinstance(change, list | tuple) else [change, change]
        related = {}
        if _is_foreign_key(field):
            related = _related_objects(field, values)
        old, new = (_shown(field, value, related, request) for value in values[:2])
        rows.append((label, old, new))
    if not rows:
        return "—"
    header = format_html(
        "<tr><th>{}</th><th>{}</th><th>{}</th></tr>", _("Field"), _("From"), _("To")
    )
    body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", rows)
    return format_html('<table class="wf-audit-changes">{}{}</table>', header, body)


# Fields whose values an entry never shows, whatever was stored (secrets).
MASKED_FIELDS = frozenset({"password", "secret_ciphertext", "digest"})


def content_types_named(term: str) -> list[int]:
    """Ids of the content types a search term names: the model's name, its verbose name
    or its plural, in any case (\"credential\", \"Credentials\")."""
    wanted = term.strip().lower()
    if not wanted:
        return []
    found = []
    for content_type in ContentType.objects.all():
        model = content_type.model_class()
        names = {content_type.model, f"{content_type.app_label}.{content_type.model}"}
        if model is not None:
            names |= {str(model._meta.verbose_name), str(model._meta.verbose_name_plural)}
        if wanted in {name.lower() for name in names}:
            found.append(content_type.pk)
    return found

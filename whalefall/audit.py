"""What django-auditlog records for models outside the inventory app, and which entries a
person limited to some instances may read."""

from collections.abc import Callable, Iterable

from auditlog.registry import auditlog
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q, QuerySet
from django.http import HttpRequest
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

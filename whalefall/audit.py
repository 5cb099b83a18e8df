"""What django-auditlog records for models outside the inventory app."""

from auditlog.registry import auditlog
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from guardian.models import GroupObjectPermission, UserObjectPermission

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
    auditlog.register(GroupObjectPermission)
    # Beat stamps every run on the task row; only staff edits are configuration changes.
    auditlog.register(
        PeriodicTask, exclude_fields=["last_run_at", "total_run_count", "date_changed"]
    )
    for schedule in (CrontabSchedule, IntervalSchedule, SolarSchedule, ClockedSchedule):
        auditlog.register(schedule)

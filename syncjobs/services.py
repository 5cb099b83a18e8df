"""Services of the sync machinery: roles, the default schedule, the first administrator."""

import json
import secrets
from dataclasses import dataclass

import structlog
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from whalefall.roles import ADMINISTRATORS, ALL_PERMISSIONS, all_role_definitions

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ScheduledJob:
    """One entry of the default schedule: a cron time or an interval in seconds."""

    name: str
    task: str
    description: str
    crontab: str = ""  # "minute hour" (daily)
    every_seconds: int = 0
    kwargs: dict | None = None


DEFAULT_SCHEDULE: tuple[ScheduledJob, ...] = (
    ScheduledJob(
        name="Beat heartbeat",
        task="whalefall.beat_heartbeat",
        description="Proves beat and a worker are alive; /health/ready checks its age.",
        every_seconds=60,
    ),
)


class RoleDefinitionError(Exception):
    """A role names a permission that no installed model defines."""


def _resolve_permissions(spec: dict[str, tuple[str, ...]]) -> list[Permission]:
    wanted: set[tuple[str, str]] = set()
    for label, actions in spec.items():
        app_label, model = label.split(".")
        for action in actions:
            codename = (
                f"{action}_{model}" if action in {"view", "add", "change", "delete"} else action
            )
            wanted.add((app_label, codename))
    found = {
        (p.content_type.app_label, p.codename): p
        for p in Permission.objects.select_related("content_type").filter(
            content_type__app_label__in={app for app, _ in wanted},
            codename__in={code for _, code in wanted},
        )
    }
    missing = sorted(wanted - found.keys())
    if missing:
        raise RoleDefinitionError(
            "Unknown permissions in role definitions: "
            + ", ".join(f"{app}.{code}" for app, code in missing)
        )
    return [found[key] for key in sorted(wanted)]


@transaction.atomic
def roles_install() -> dict[str, int]:
    """Create the role groups and add the permissions they lack; returns permissions added."""
    added: dict[str, int] = {}
    for role, spec in all_role_definitions().items():
        group, _ = Group.objects.get_or_create(name=role)
        if spec == ALL_PERMISSIONS:
            permissions = list(Permission.objects.all())
        else:
            permissions = _resolve_permissions(spec)
        held = set(group.permissions.values_list("pk", flat=True))
        new = [p for p in permissions if p.pk not in held]
        group.permissions.add(*new)
        added[role] = len(new)
    log.info("roles_installed", added=added)
    return added


@transaction.atomic
def schedule_install_defaults() -> list[str]:
    """Create the default periodic tasks that do not exist yet; never touch existing ones."""
    existing = set(
        PeriodicTask.objects.filter(name__in=[job.name for job in DEFAULT_SCHEDULE]).values_list(
            "name", flat=True
        )
    )
    created = []
    for job in DEFAULT_SCHEDULE:
        if job.name in existing:
            continue
        schedule: dict = {}
        if job.every_seconds:
            schedule["interval"], _ = IntervalSchedule.objects.get_or_create(
                every=job.every_seconds, period=IntervalSchedule.SECONDS
            )
        else:
            minute, hour = job.crontab.split()
            schedule["crontab"], _ = CrontabSchedule.objects.get_or_create(
                minute=minute,
                hour=hour,
                day_of_week="*",
                day_of_month="*",
                month_of_year="*",
                timezone=settings.TIME_ZONE,
            )
        PeriodicTask.objects.create(
            name=job.name,
            task=job.task,
            description=job.description,
            kwargs=json.dumps(job.kwargs or {}),
            **schedule,
        )
        created.append(job.name)
    log.info("schedule_installed", created=created)
    return created


@transaction.atomic
def admin_user_ensure(*, username: str, email: str = "") -> tuple[object, str | None]:
    """Create the first administrator; returns the user and its generated password, if new."""
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is not None:
        return user, None
    password = secrets.token_urlsafe(18)
    user = User.objects.create_superuser(username=username, email=email, password=password)
    user.groups.add(Group.objects.get(name=ADMINISTRATORS))
    log.info("administrator_created", username=username)
    return user, password

"""Presentation of privilege sets, and the access-review report (SPEC §5.4)."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time

import tablib
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Account, AccountChange
from inventory.services import formula_safe

SCOPE_LABELS = {
    "global": _("Global"),
    "server": _("Server"),
    "database": _("Database"),
    "schema": _("Schema"),
    "tablespace": _("Tablespace"),
    "table": _("Table, view or routine"),
    "column": _("Column"),
}


PEOPLE_HEADERS = [
    "instance",
    "engine",
    "account",
    "kind",
    "superuser",
    "grant_admin",
    "locked",
    "roles",
    "grants",
    "first_seen",
    "last_seen",
]


@dataclass(frozen=True)
class GrantGroup:
    scope: str
    label: str
    grants: list[dict]


def group_grants(grants: Iterable[dict]) -> list[GrantGroup]:
    """Grants grouped by scope, in the order people read them (widest first)."""
    by_scope: dict[str, list[dict]] = {}
    for grant in grants:
        by_scope.setdefault(grant["scope"], []).append(grant)
    return [
        GrantGroup(
            scope, str(label), sorted(by_scope[scope], key=lambda g: (g["object"], g["privilege"]))
        )
        for scope, label in SCOPE_LABELS.items()
        if scope in by_scope
    ]


def _grant_text(grant: dict) -> str:
    where = f" ON {grant['object']}" if grant["object"] else ""
    option = f" ({grant['option']})" if grant["option"] else ""
    return f"{grant['scope']}: {grant['privilege']}{where}{option}"


def privileged_accounts(accounts: QuerySet[Account]) -> QuerySet[Account]:
    """Superusers and grant admins among ``accounts`` (present ones)."""
    return (
        accounts.active()
        .privileged()
        .select_related("instance", "snapshot")
        .order_by("instance__name", "name", "host")
    )


def access_review(*, accounts: QuerySet[Account], start: date, end: date) -> tablib.Databook:
    """Every privileged account — who, what it can do — and every change in the period."""
    tz = timezone.get_current_timezone()
    since = datetime.combine(start, time.min, tzinfo=tz)
    until = datetime.combine(end, time.max, tzinfo=tz)
    privileged = list(privileged_accounts(accounts))

    people = tablib.Dataset(
        headers=PEOPLE_HEADERS,
        title="Privileged accounts",
    )
    for account in privileged:
        snapshot = account.snapshot
        people.append(
            [
                formula_safe(account.instance.name),
                account.instance.engine,
                formula_safe(account.identity),
                account.kind,
                snapshot.is_superuser,
                snapshot.can_grant,
                snapshot.is_locked,
                formula_safe(", ".join(snapshot.privileges["roles"])),
                formula_safe("; ".join(_grant_text(g) for g in snapshot.privileges["grants"])),
                account.first_seen_at.isoformat(),
                account.last_seen_at.isoformat(),
            ]
        )

    changes = tablib.Dataset(
        headers=["detected_at", "instance", "account", "change", "summary", "privileged"],
        title="Changes",
    )
    history = (
        AccountChange.objects.filter(account__in=accounts, detected_at__range=(since, until))
        .filter(Q(account__in=[a.pk for a in privileged]) | Q(privileged=True))
        .select_related("account", "instance")
        .order_by("detected_at", "id")
    )
    for change in history:
        changes.append(
            [
                change.detected_at.isoformat(),
                formula_safe(change.instance.name),
                formula_safe(change.account.identity),
                change.change_type,
                formula_safe(change.summary),
                change.privileged,
            ]
        )
    return tablib.Databook([people, changes])

"""Presentation of privilege sets, and the access-review report (SPEC §5.4)."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time

import tablib
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.effective import everything_held, held
from accounts.facts import stored_capabilities
from accounts.models import Account, AccountChange, AccountKind
from inventory.services import formula_safe

PRIVILEGED_CAPABILITIES = ("SUPERUSER", "GRANT_ADMIN", "ESCALATION")

SCOPE_LABELS = {
    "global": _("Global"),
    "server": _("Server"),
    "database": _("Database"),
    "schema": _("Schema"),
    "tablespace": _("Tablespace"),
    "table": _("Table or view"),
    "column": _("Column"),
    "procedure": _("Procedure"),
    "function": _("Function"),
    "package": _("Package"),
    "default": _("Default privileges (future objects)"),
}


PEOPLE_HEADERS = [
    "instance",
    "engine",
    "account",
    "kind",
    "privileged_because",
    "capabilities",
    "superuser",
    "grant_admin",
    "escalation",
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


def provenance(grant: dict) -> str:
    """Where an effective grant comes from: "direct", "via r1 → r2", "via PUBLIC", with
    "(SET ROLE)" when it has to be taken on first."""
    if not grant.get("via"):
        return str(_("direct"))
    text = _("via %(path)s") % {"path": " → ".join(grant["via"])}
    return f"{text} ({_('SET ROLE')})" if grant.get("set_role") else str(text)


def _grant_text(grant: dict) -> str:
    where = f" ON {grant['object']}" if grant["object"] else ""
    option = f" ({grant['option']})" if grant["option"] else ""
    return f"{grant['scope']}: {grant['privilege']}{where}{option} [{provenance(grant)}]"


def effective_grants(snapshot, public_grants: list[dict] | None = None) -> list[dict]:
    """What an account can do, each grant with its provenance: its own grants (direct), those
    it holds through roles as the last sync resolved them, and PUBLIC's."""
    grants = held(snapshot.privileges["grants"], (snapshot.facts or {}).get("effective"))
    for grant in public_grants or ():  # already marked "via PUBLIC"
        key = (grant["scope"], grant["object"], grant["privilege"], grant["option"])
        grants.setdefault(key, grant)
    return list(grants.values())


def public_grants_by_instance(instance_ids) -> dict[int, list[dict]]:
    """What PUBLIC can do on each instance — its own grants and those of the roles granted to
    it — which every account of that instance can do too (one query for all instances)."""
    rows = Account.objects.filter(
        instance_id__in=instance_ids, kind=AccountKind.PUBLIC, removed_at__isnull=True
    ).values_list("instance_id", "snapshot__facts")
    result = {}
    for instance_id, facts in rows:
        grants, _roles = everything_held(facts or {})
        result[instance_id] = [{**g, "via": ["PUBLIC", *g.get("via", ())]} for g in grants]
    return result


def privileged_accounts(
    accounts: QuerySet[Account], classified: QuerySet | None = None
) -> QuerySet[Account]:
    """Present accounts among ``accounts`` with an effective SUPERUSER, GRANT_ADMIN or
    ESCALATION capability, or among ``classified`` (ids of accounts that a classification
    of high risk matched)."""
    privileged = accounts.active().privileged()
    if classified is not None:
        privileged = accounts.active().filter(
            Q(pk__in=privileged.values("pk")) | Q(pk__in=classified)
        )
    return privileged.select_related("instance", "snapshot").order_by(
        "instance__name", "kind", "name", "host"
    )


def access_review(
    *,
    accounts: QuerySet[Account],
    start: date,
    end: date,
    classified: QuerySet | None = None,
    classification_names: dict[int, list[str]] | None = None,
) -> tablib.Databook:
    """Every privileged account — who, why, what it can do and through what — and every
    change in the period. ``classified`` holds the ids of accounts matched by a
    classification of risk level 1 or 2; ``classification_names`` their names by account."""
    tz = timezone.get_current_timezone()
    since = datetime.combine(start, time.min, tzinfo=tz)
    until = datetime.combine(end, time.max, tzinfo=tz)
    privileged = list(privileged_accounts(accounts, classified))
    public = public_grants_by_instance({a.instance_id for a in privileged})
    classification_names = classification_names or {}

    people = tablib.Dataset(
        headers=PEOPLE_HEADERS,
        title="Privileged accounts",
    )
    for account in privileged:
        snapshot = account.snapshot
        capabilities = stored_capabilities(snapshot.facts)
        reasons = [c for c in capabilities if c in PRIVILEGED_CAPABILITIES]
        reasons += classification_names.get(account.pk, [])
        effective = (snapshot.facts or {}).get("effective") or {}
        roles = effective.get("roles", snapshot.privileges["roles"])
        grants = effective_grants(
            snapshot,
            None if account.kind == AccountKind.PUBLIC else public.get(account.instance_id),
        )
        people.append(
            [
                formula_safe(account.instance.name),
                account.instance.engine,
                formula_safe(account.identity),
                account.kind,
                formula_safe(", ".join(reasons)),
                ", ".join(capabilities),
                snapshot.is_superuser,
                snapshot.can_grant,
                snapshot.can_escalate,
                snapshot.is_locked,
                formula_safe(", ".join(roles)),
                formula_safe("; ".join(_grant_text(g) for g in grants)),
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

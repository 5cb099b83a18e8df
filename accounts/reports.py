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
from inventory.services import export_cell

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


CHANGE_HEADERS = ["detected_at", "instance", "account", "change", "summary", "privileged"]


@dataclass(frozen=True)
class EffectiveView:
    """What an account can do, as its page shows it: every grant with its provenance, the
    effective and the direct capabilities, the roles it reaches by which path, and PUBLIC."""

    grants: list[dict]
    capabilities: list[str]
    direct_capabilities: list[str]
    roles: list[str]
    role_paths: list[dict]
    resolved: bool
    public_account: Account | None


def effective_view(account: Account, snapshot) -> EffectiveView:
    """The effective privileges of ``account`` (with its ``snapshot``): its own grants, those
    of the roles it reaches as the last sync resolved them, and PUBLIC's (two queries)."""
    public = None
    public_grants: list[dict] = []
    if account.kind != AccountKind.PUBLIC:
        public = (
            Account.objects.filter(
                instance_id=account.instance_id, kind=AccountKind.PUBLIC, removed_at=None
            )
            .only("pk")
            .first()
        )
        public_grants = public_grants_by_instance([account.instance_id]).get(
            account.instance_id, []
        )
    effective = (snapshot.facts or {}).get("effective") or {}
    return EffectiveView(
        grants=effective_grants(snapshot, public_grants),
        capabilities=stored_capabilities(snapshot.facts),
        # Of the literal facts, the capabilities (true attributes are in the privileges).
        direct_capabilities=[c for c in snapshot.facts["capabilities"] if c.isupper()],
        roles=list(effective.get("roles", snapshot.privileges["roles"])),
        role_paths=effective.get("role_paths", []),
        resolved=bool(effective),
        public_account=public,
    )


@dataclass(frozen=True)
class AccessReview:
    """The rows of the access review: the privileged accounts and the period's changes, each
    a dict of the report's columns (``PEOPLE_HEADERS``, ``CHANGE_HEADERS``) plus the ids of
    what it is about. The workbook has the columns only."""

    accounts: list[dict]
    changes: list[dict]

    def databook(self, *, native: bool = False) -> tablib.Databook:
        """Two sheets, privileged accounts and changes, with the cells every export writes
        (``inventory.services.export_cell``): typed for XLSX (``native``), text with the
        formula guard for CSV."""
        people = tablib.Dataset(headers=PEOPLE_HEADERS, title=str(_("Privileged accounts")))
        for row in self.accounts:
            people.append([export_cell(row[column], native=native) for column in PEOPLE_HEADERS])
        changes = tablib.Dataset(headers=CHANGE_HEADERS, title=str(_("Changes")))
        for row in self.changes:
            changes.append([export_cell(row[column], native=native) for column in CHANGE_HEADERS])
        return tablib.Databook([people, changes])


def access_review_rows(
    *,
    accounts: QuerySet[Account],
    start: date,
    end: date,
    classified: QuerySet | None = None,
    classification_names: dict[int, list[str]] | None = None,
) -> AccessReview:
    """Every privileged account — who, why, what it can do and through what — and every
    change in the period. ``classified`` holds the ids of accounts matched by a
    classification of risk level 1 or 2; ``classification_names`` their names by account."""
    tz = timezone.get_current_timezone()
    since = datetime.combine(start, time.min, tzinfo=tz)
    until = datetime.combine(end, time.max, tzinfo=tz)
    privileged = list(privileged_accounts(accounts, classified))
    public = public_grants_by_instance({a.instance_id for a in privileged})
    classification_names = classification_names or {}

    people = []
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
            {
                "account_id": account.pk,
                "instance_id": account.instance_id,
                "instance": account.instance.name,
                "engine": account.instance.engine,
                "account": account.identity,
                "kind": account.kind,
                "privileged_because": ", ".join(reasons),
                "capabilities": ", ".join(capabilities),
                "superuser": snapshot.is_superuser,
                "grant_admin": snapshot.can_grant,
                "escalation": snapshot.can_escalate,
                "locked": snapshot.is_locked,
                "roles": ", ".join(roles),
                "grants": "; ".join(_grant_text(g) for g in grants),
                "first_seen": account.first_seen_at.isoformat(),
                "last_seen": account.last_seen_at.isoformat(),
            }
        )

    history = (
        AccountChange.objects.filter(account__in=accounts, detected_at__range=(since, until))
        .filter(Q(account__in=[a.pk for a in privileged]) | Q(privileged=True))
        .select_related("account", "instance")
        .order_by("detected_at", "id")
    )
    changes = [
        {
            "change_id": change.pk,
            "account_id": change.account_id,
            "instance_id": change.instance_id,
            "detected_at": change.detected_at.isoformat(),
            "instance": change.instance.name,
            "account": change.account.identity,
            "change": change.change_type,
            "summary": change.summary,
            "privileged": change.privileged,
        }
        for change in history
    ]
    return AccessReview(accounts=people, changes=changes)


def access_review(**kwargs) -> tablib.Databook:
    """The access review (:func:`access_review_rows`) as a workbook of two sheets."""
    return access_review_rows(**kwargs).databook()

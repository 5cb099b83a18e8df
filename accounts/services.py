"""Account sync (SPEC §5.2): read everything remote first, then write what changed.

Per instance: connect, list accounts, collect their privileges in bulk, close the
connection; then compare with what is stored in memory and write the differences in one
short transaction of set-based statements. A listing that fails, or comes back empty where
accounts existed, fails the sync and removes nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts import effective as eff
from accounts.canonical import FORMAT, canonical_fingerprint_json, same_in_format_1
from accounts.diff import diff_canonical, summarize
from accounts.facts import (
    ANONYMOUS,
    ESCALATION,
    GRANT_ADMIN,
    LOCKED,
    NO_PASSWORD,
    SUPERUSER,
    facts_of_canonical,
    stored_capabilities,
)
from accounts.models import (
    Account,
    AccountChange,
    ChangeType,
    PrivilegeSnapshot,
    account_identity,
)
from inventory.engines.base import PUBLIC_ACCOUNT, AccountKey, AccountRecord, connect
from inventory.models import Instance
from whalefall import alerts
from whalefall.db import JsonText, insert_rows, update_rows

log = structlog.get_logger(__name__)

BATCH = 2000


class SyncRefused(Exception):
    """The sync would act on an incomplete listing; nothing was written."""

    fail_closed = True


@dataclass
class SyncOutcome:
    """What one account sync of one instance did."""

    created: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    restored: int = 0
    remote_queries: int = 0
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Collected:
    """One account as read from the instance, already canonical, with its effective set."""

    record: AccountRecord
    privileges: dict[str, Any]
    fingerprint: str
    facts: dict[str, Any]  # literal facts, and "effective" (grants with provenance)
    privileges_json: str  # the canonical JSON the fingerprint was computed from
    effective_fingerprint: str


def _collect(instance: Instance) -> tuple[list[Collected], int]:
    """All remote work: list accounts and collect their privileges, then disconnect; then
    resolve what every account can effectively do through the role graph and PUBLIC."""
    with connect(instance) as engine:
        records = engine.run(engine.list_accounts)
        raw = engine.run(engine.collect_privileges, records, deep=instance.deep_privileges)
        queries = engine.queries
    missing = [r.key for r in records if r.key not in raw]
    if missing:
        raise SyncRefused(
            f"privileges missing for {len(missing)} listed account(s), e.g. {missing[0]!r}"
        )
    canonical = {r.key: canonical_fingerprint_json(raw[r.key]) for r in records}
    nodes = {
        key: eff.node_from_raw(key, value, canonical[key][0] if key in canonical else None)
        for key, value in raw.items()
    }
    public = PUBLIC_ACCOUNT.key if PUBLIC_ACCOUNT.key in nodes else None
    effective = eff.resolve(instance.engine, nodes, list(canonical), public)
    collected = []
    for record in records:
        privileges, fingerprint, text = canonical[record.key]
        facts = facts_of_canonical(privileges)
        facts["effective"] = effective[record.key]
        collected.append(
            Collected(
                record,
                privileges,
                fingerprint,
                facts,
                text,
                eff.effective_fingerprint(effective[record.key]),
            )
        )
    return collected, queries


def _flags(facts: dict[str, Any]) -> dict[str, bool]:
    capabilities = set(stored_capabilities(facts))
    return {
        "is_superuser": SUPERUSER in capabilities,
        "is_locked": LOCKED in capabilities,
        "can_grant": GRANT_ADMIN in capabilities,
        "can_escalate": ESCALATION in capabilities,
        "is_anonymous": ANONYMOUS in capabilities,
        "no_password": NO_PASSWORD in capabilities,
    }


PRIVILEGED = frozenset({SUPERUSER, GRANT_ADMIN, ESCALATION})


def _privileged(*facts: dict[str, Any] | None) -> bool:
    return any(PRIVILEGED.intersection(stored_capabilities(f)) for f in facts)


def _change_type(diff: dict[str, Any]) -> ChangeType:
    if any(diff[k] for k in ("grants_added", "grants_removed", "roles_added", "roles_removed")):
        return ChangeType.PRIVILEGES_CHANGED
    return ChangeType.ATTRIBUTES_CHANGED


def account_sync_instance(*, instance: Instance, run_id: int | None = None) -> SyncOutcome:
    """Sync the accounts and privileges of one instance (the accounts run's handler)."""
    log.info("account_sync_started", instance_id=instance.pk, run_id=run_id)
    collected, queries = _collect(instance)
    now = timezone.now()
    outcome = _write(instance=instance, collected=collected, run_id=run_id, now=now)
    outcome.remote_queries = queries
    log.info(
        "account_sync_finished",
        instance_id=instance.pk,
        run_id=run_id,
        created=outcome.created,
        changed=outcome.changed,
        removed=outcome.removed,
        restored=outcome.restored,
        unchanged=outcome.unchanged,
        remote_queries=queries,
    )
    return outcome


def _change_row(instance, account_id, change_type, before, after, run_id, now):
    """One AccountChange row (as insert_rows values) between two canonical sets."""
    diff = diff_canonical(before and before[0], after and after[0])
    privileged = _privileged(before and before[1], after and after[1])
    # A new or vanished account's summary counts grants and roles; its attribute values
    # are in the diff, not worth a "— → value" each on one line.
    if change_type in (ChangeType.CREATED, ChangeType.REMOVED):
        summary = summarize({**diff, "attributes": {}})
    else:
        summary = summarize(diff)
    return (
        account_id,
        instance.pk,
        instance.engine,
        run_id,
        now,
        change_type,
        summary[:500],
        diff,
        privileged,
    )


CHANGE_FIELDS = (
    "account",
    "instance",
    "engine",
    "run_id",
    "detected_at",
    "change_type",
    "summary",
    "diff",
    "privileged",
)
FLAG_FIELDS = ("is_superuser", "is_locked", "can_grant", "can_escalate", "is_anonymous",
               "no_password")  # fmt: skip
SNAPSHOT_FIELDS = (
    "account",
    "privileges",
    "facts",
    "fingerprint",
    "effective_fingerprint",
    "format",
    *FLAG_FIELDS,
    "collected_at",
    "changed_at",
)


def _snapshot_values(item: Collected, now: datetime) -> tuple:
    """Privileges through collected_at of a snapshot row (SNAPSHOT_FIELDS[1:-1])."""
    flags = _flags(item.facts)
    return (
        JsonText(item.privileges_json),
        item.facts,
        item.fingerprint,
        item.effective_fingerprint,
        FORMAT,
        *(flags[name] for name in FLAG_FIELDS),
        now,
    )


def _snapshot_row(account_id: int, item: Collected, now: datetime) -> tuple:
    return (account_id, *_snapshot_values(item, now), now)


def _effective_row(instance, account_id, old_facts, item: Collected, run_id, now, own_diff):
    """The "effective privileges changed" row of an account whose reach through roles or
    PUBLIC changed, or None when its own change row already tells the whole story."""
    diff = eff.diff_effective(
        old_facts.get("effective"),
        item.facts["effective"],
        old_facts.get("grants", ()),
        item.facts["grants"],
    )
    # Grants the account gained or lost itself are in its own change row.
    diff["effective_added"] = [g for g in diff["effective_added"] if g.get("via")]
    diff["effective_removed"] = [g for g in diff["effective_removed"] if g.get("via")]
    if own_diff is not None and not (
        diff["effective_added"]
        or diff["effective_removed"]
        or diff["roles_reached_added"]
        or diff["roles_reached_removed"]
    ):
        return None  # only the account's own grants changed: its own row says so
    if eff.is_empty(diff):
        return None
    return (
        account_id,
        instance.pk,
        instance.engine,
        run_id,
        now,
        ChangeType.EFFECTIVE_CHANGED,
        eff.summarize(diff)[:500],
        diff,
        _privileged(old_facts, item.facts),
    )


def _match(stored: dict[AccountKey, tuple], collected: list[Collected]):
    """Pair what the instance listed with the stored accounts: by identity, and for an
    account that turned from user to role or back (PostgreSQL LOGIN, MySQL 8 roles, which are
    users) by name and host, as long as no stored account has its new identity."""
    pairs: list[tuple[Collected, AccountKey | None]] = []
    taken: set[AccountKey] = set()
    pending: list[Collected] = []
    for item in collected:
        key = item.record.key
        if key in stored:
            pairs.append((item, key))
            taken.add(key)
        else:
            pending.append(item)
    by_name: dict[tuple[str, str], list[AccountKey]] = {}
    for key in stored:
        if key not in taken and key[0] in SWITCHABLE_KINDS:
            by_name.setdefault((key[1], key[2]), []).append(key)
    for item in pending:
        kind, name, host = item.record.key
        candidates = by_name.get((name, host), []) if kind in SWITCHABLE_KINDS else []
        if candidates:
            key = candidates.pop()
            pairs.append((item, key))
            taken.add(key)
        else:
            pairs.append((item, None))
    return pairs, taken


SWITCHABLE_KINDS = frozenset({"user", "role"})
SNAPSHOT_UPDATE_FIELDS = SNAPSHOT_FIELDS[1:]  # all but the account
EFFECTIVE_UPDATE_FIELDS = [
    "facts", "effective_fingerprint", "format", *FLAG_FIELDS, "collected_at"
]  # fmt: skip


INSECURE = frozenset({ANONYMOUS, NO_PASSWORD})


def _emit_alerts(instance: Instance, changes: list[tuple], facts: dict[int, tuple]) -> None:
    """Alert events of a sync's change rows, in its transaction: accounts that became
    privileged, privileged accounts that changed, anonymous or password-less accounts that
    appeared. One event per account and kind; a flood is summarised by the alerts app."""
    became, changed, insecure = {}, {}, {}
    # One reverse() for all (it costs more than the rest of an event).
    account_path = reverse("admin:accounts_account_change", args=[0]).replace("/0/", "/{}/")
    for row in changes:
        account_id, change_type, summary, privileged = row[0], row[5], row[6], row[8]
        old, new, name = facts.get(account_id, (None, None, ""))
        old_caps, new_caps = set(stored_capabilities(old)), set(stored_capabilities(new))
        gained = PRIVILEGED & new_caps
        appeared = (INSECURE & new_caps) - old_caps
        if not (gained or privileged or appeared):
            continue
        base = {
            "instance": instance.name,
            "account": name,
            "account_id": account_id,
            "path": account_path.format(account_id),
        }
        if gained and not PRIVILEGED & old_caps:
            became[account_id] = {
                "instance": instance,
                "payload": {**base, "capabilities": sorted(gained), "change_type": change_type},
                "dedup_key": f"account:{account_id}:privileged:{','.join(sorted(gained))}",
            }
        elif privileged and account_id not in became:
            payload = {**base, "change": summary[:300], "change_type": change_type}
            digest = hashlib.sha256(summary.encode()).hexdigest()[:16]
            changed.setdefault(
                account_id,
                {
                    "instance": instance,
                    "payload": payload,
                    "dedup_key": f"account:{account_id}:{change_type}:{digest}",
                },
            )
        if appeared:
            insecure[account_id] = {
                "instance": instance,
                "payload": {
                    **base,
                    "anonymous": ANONYMOUS in new_caps,
                    "no_password": NO_PASSWORD in new_caps,
                },
                "dedup_key": f"account:{account_id}:insecure:{','.join(sorted(appeared))}",
            }
    for kind, events in (
        ("account_privileged", became),
        ("privileged_changed", changed),
        ("account_insecure", insecure),
    ):
        if events:
            alerts.emit_many(kind, events.values())


def _write(
    *, instance: Instance, collected: list[Collected], run_id: int | None, now: datetime
) -> SyncOutcome:
    """Compare with what is stored and write the differences in one transaction.

    Only ids, kinds and fingerprints of stored accounts are loaded; the stored privileges
    are read only for accounts that changed or disappeared (their diff needs them).
    """
    outcome = SyncOutcome()
    with transaction.atomic():
        rows = Account.objects.filter(instance=instance).values_list(
            "pk", "kind", "name", "host", "removed_at", "snapshot__pk",
            "snapshot__fingerprint", "snapshot__effective_fingerprint", "snapshot__format",
        )  # fmt: skip
        stored = {(kind, name, host): (pk, kind, removed, *rest) for pk, kind, name, host,
                  removed, *rest in rows}  # fmt: skip
        active_before = sum(1 for row in stored.values() if row[2] is None)
        if not collected and active_before:
            raise SyncRefused(
                f"the instance listed no accounts where {active_before} existed; "
                "nothing was marked removed"
            )

        pairs, seen = _match(stored, collected)
        to_create: list[Collected] = []
        without_snapshot: list[tuple[int, Collected]] = []
        # account, snapshot, item, change type ("" = decide from the diff), stored format
        to_update: list[tuple[int, int, Collected, str, int]] = []
        effective_only: list[tuple[int, int, Collected, str]] = []  # + stored effective fp
        kinds: dict[int, str] = {}
        restored_ids: list[int] = []
        for item, key in pairs:
            if key is None:
                to_create.append(item)
                continue
            pk, kind, removed_at, snapshot_id, fingerprint, effective_fp, written = stored[key]
            if kind != item.record.kind:
                kinds[pk] = item.record.kind
            if removed_at is not None:
                restored_ids.append(pk)
            if snapshot_id is None:
                without_snapshot.append((pk, item))
            elif removed_at is not None:
                to_update.append((pk, snapshot_id, item, ChangeType.RESTORED, written))
            elif fingerprint != item.fingerprint:
                to_update.append((pk, snapshot_id, item, "", written))
            elif effective_fp != item.effective_fingerprint:
                effective_only.append((pk, snapshot_id, item, effective_fp))
            else:
                outcome.unchanged += 1
        gone = [
            (row[0], row[3]) for key, row in stored.items() if key not in seen and row[2] is None
        ]

        before_ids = [u[1] for u in to_update] + [u[1] for u in effective_only]
        before_ids += [s for _, s in gone if s]
        before = {
            pk: (privileges, facts)
            for pk, privileges, facts in PrivilegeSnapshot.objects.filter(
                pk__in=before_ids
            ).values_list("pk", "privileges", "facts")
        }

        changes: list[tuple] = []
        insert_rows(
            Account,
            ("instance", "name", "host", "kind", "first_seen_at", "last_seen_at"),
            (
                (instance.pk, i.record.name, i.record.host, i.record.kind, now, now)
                for i in to_create
            ),
        )
        # The rows this transaction just created are the instance's accounts first seen now.
        new_ids = {
            (kind, name, host): pk
            for pk, kind, name, host in Account.objects.filter(
                instance=instance, first_seen_at=now
            ).values_list("pk", "kind", "name", "host")
        }
        fresh = [(new_ids[item.record.key], item) for item in to_create]
        fresh += without_snapshot
        insert_rows(
            PrivilegeSnapshot, SNAPSHOT_FIELDS, (_snapshot_row(pk, i, now) for pk, i in fresh)
        )
        # account -> (facts before, facts after, name) of each account with a change row
        alert_facts: dict[int, tuple] = {}
        for pk, item in fresh:
            alert_facts[pk] = (
                None,
                item.facts,
                account_identity(item.record.name, item.record.host),
            )
            after = (item.privileges, item.facts)
            changes.append(_change_row(instance, pk, ChangeType.CREATED, None, after, run_id, now))
        outcome.created = len(fresh)

        # Full rewrites; rewrites into the current format of unchanged sets (changed_at
        # stays); and effective-only updates (the account's own set is the same).
        updates, reformatted, effective_updates = [], [], []
        for pk, snapshot_id, item, change_type, written in to_update:
            old = before[snapshot_id]
            after = (item.privileges, item.facts)
            changed_at = now
            alert_facts[pk] = (
                old[1],
                item.facts,
                account_identity(item.record.name, item.record.host),
            )
            if written < FORMAT and not change_type and same_in_format_1(old[0], item.privileges):
                # Written before the upgrade and the same on the server: the new format
                # replaces the old one without a change row.
                changed_at = None
                outcome.unchanged += 1
            else:
                own_diff = diff_canonical(old[0], item.privileges)
                if not change_type:
                    change_type = _change_type(own_diff)
                changes.append(_change_row(instance, pk, change_type, old, after, run_id, now))
                if change_type == ChangeType.RESTORED:
                    outcome.restored += 1
                else:
                    outcome.changed += 1
                if change_type != ChangeType.RESTORED and old[1] and "effective" in old[1]:
                    row = _effective_row(instance, pk, old[1], item, run_id, now, own_diff)
                    if row is not None:
                        changes.append(row)
            values = (snapshot_id, *_snapshot_values(item, now))
            if changed_at:
                updates.append((*values, changed_at))
            else:
                reformatted.append(values)
        for pk, snapshot_id, item, effective_fp in effective_only:
            old_facts = before[snapshot_id][1] or {}
            if effective_fp and "effective" in old_facts:
                name = account_identity(item.record.name, item.record.host)
                alert_facts[pk] = (old_facts, item.facts, name)
                row = _effective_row(instance, pk, old_facts, item, run_id, now, None)
                if row is not None:
                    changes.append(row)
                    outcome.changed += 1
                else:
                    outcome.unchanged += 1
            else:
                outcome.unchanged += 1  # first effective resolution after the upgrade
            flags = _flags(item.facts)
            # The same set in either format: from now on it is marked as the current one.
            effective_updates.append(
                (snapshot_id, item.facts, item.effective_fingerprint, FORMAT,
                 *(flags[name] for name in FLAG_FIELDS), now)
            )  # fmt: skip
        update_rows(PrivilegeSnapshot, SNAPSHOT_UPDATE_FIELDS, updates)
        update_rows(PrivilegeSnapshot, SNAPSHOT_UPDATE_FIELDS[:-1], reformatted)
        update_rows(PrivilegeSnapshot, EFFECTIVE_UPDATE_FIELDS, effective_updates)
        for kind in set(kinds.values()):
            Account.objects.filter(pk__in=[pk for pk, k in kinds.items() if k == kind]).update(
                kind=kind
            )
        if restored_ids:
            Account.objects.filter(pk__in=restored_ids).update(removed_at=None)

        # Accounts gone from the instance: removed, carrying their last known grants.
        gone_ids = {pk for pk, _ in gone}
        gone_names = {
            row[0]: account_identity(key[1], key[2])
            for key, row in stored.items()
            if row[0] in gone_ids
        }
        for pk, snapshot_id in gone:
            old = before.get(snapshot_id)
            alert_facts[pk] = (old and old[1], None, gone_names[pk])
            changes.append(_change_row(instance, pk, ChangeType.REMOVED, old, None, run_id, now))
        if gone:
            Account.objects.filter(pk__in=[pk for pk, _ in gone]).update(removed_at=now)
        outcome.removed = len(gone)

        # Everything present: one statement moves last_seen_at for the whole instance.
        Account.objects.filter(
            instance=instance, removed_at__isnull=True, last_seen_at__lt=now
        ).update(last_seen_at=now)
        insert_rows(AccountChange, CHANGE_FIELDS, changes)
        _emit_alerts(instance, changes, alert_facts)
    outcome.detail = {"accounts": len(collected), "changes": len(changes)}
    return outcome

"""Account sync (SPEC §5.2): read everything remote first, then write what changed.

Per instance: connect, list accounts, collect their privileges in bulk, close the
connection; then compare with what is stored in memory and write the differences in one
short transaction of set-based statements. A listing that fails, or comes back empty where
accounts existed, fails the sync and removes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from django.db import transaction
from django.utils import timezone

from accounts.canonical import canonical_fingerprint_json
from accounts.diff import diff_canonical, summarize
from accounts.facts import GRANT_ADMIN, LOCKED, SUPERUSER, facts_of_canonical
from accounts.models import Account, AccountChange, ChangeType, PrivilegeSnapshot
from inventory.engines.base import AccountRecord, connect
from inventory.models import Instance
from whalefall.db import JsonText, insert_rows

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
    """One account as read from the instance, already canonical."""

    record: AccountRecord
    privileges: dict[str, Any]
    fingerprint: str
    facts: dict[str, Any]
    privileges_json: str  # the canonical JSON the fingerprint was computed from


def _collect(instance: Instance) -> tuple[list[Collected], int]:
    """All remote work: list accounts and collect their privileges, then disconnect."""
    with connect(instance) as engine:
        records = engine.run(engine.list_accounts)
        raw = engine.run(engine.collect_privileges, records, deep=instance.deep_privileges)
        queries = engine.queries
    missing = [r.key for r in records if r.key not in raw]
    if missing:
        raise SyncRefused(
            f"privileges missing for {len(missing)} listed account(s), e.g. {missing[0]!r}"
        )
    collected = []
    for record in records:
        canonical, fingerprint, text = canonical_fingerprint_json(raw[record.key])
        facts = facts_of_canonical(canonical)
        collected.append(Collected(record, canonical, fingerprint, facts, text))
    return collected, queries


def _flags(facts: dict[str, Any]) -> dict[str, bool]:
    capabilities = set(facts["capabilities"])
    return {
        "is_superuser": SUPERUSER in capabilities,
        "is_locked": LOCKED in capabilities,
        "can_grant": GRANT_ADMIN in capabilities,
    }


def _privileged(*facts: dict[str, Any] | None) -> bool:
    return any(f and {SUPERUSER, GRANT_ADMIN} & set(f["capabilities"]) for f in facts)


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
SNAPSHOT_FIELDS = (
    "account",
    "privileges",
    "facts",
    "fingerprint",
    "is_superuser",
    "is_locked",
    "can_grant",
    "collected_at",
    "changed_at",
)


def _snapshot_row(account_id: int, item: Collected, now: datetime) -> tuple:
    flags = _flags(item.facts)
    return (
        account_id,
        JsonText(item.privileges_json),
        item.facts,
        item.fingerprint,
        flags["is_superuser"],
        flags["is_locked"],
        flags["can_grant"],
        now,
        now,
    )


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
            "pk", "name", "host", "kind", "removed_at", "snapshot__pk", "snapshot__fingerprint"
        )
        stored = {
            (f"{name}@{host}" if host else name): (pk, kind, removed_at, snapshot_id, fingerprint)
            for pk, name, host, kind, removed_at, snapshot_id, fingerprint in rows
        }
        active_before = sum(1 for row in stored.values() if row[2] is None)
        if not collected and active_before:
            raise SyncRefused(
                f"the instance listed no accounts where {active_before} existed; "
                "nothing was marked removed"
            )

        seen: set[str] = set()
        to_create: list[Collected] = []
        without_snapshot: list[tuple[int, Collected]] = []
        to_update: list[tuple[int, int, Collected, str]] = []  # account, snapshot, item, type
        kinds: dict[int, str] = {}
        restored_ids: list[int] = []
        for item in collected:
            key = item.record.key
            seen.add(key)
            row = stored.get(key)
            if row is None:
                to_create.append(item)
                continue
            pk, kind, removed_at, snapshot_id, fingerprint = row
            if kind != item.record.kind:
                kinds[pk] = item.record.kind
            if removed_at is not None:
                restored_ids.append(pk)
            if snapshot_id is None:
                without_snapshot.append((pk, item))
            elif removed_at is not None:
                to_update.append((pk, snapshot_id, item, ChangeType.RESTORED))
            elif fingerprint != item.fingerprint:
                to_update.append((pk, snapshot_id, item, ""))
            else:
                outcome.unchanged += 1
        gone = [
            (row[0], row[3]) for key, row in stored.items() if key not in seen and row[2] is None
        ]

        before_ids = [snapshot for _, snapshot, _, _ in to_update] + [s for _, s in gone if s]
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
            (f"{name}@{host}" if host else name): pk
            for pk, name, host in Account.objects.filter(
                instance=instance, first_seen_at=now
            ).values_list("pk", "name", "host")
        }
        fresh = [(new_ids[item.record.key], item) for item in to_create]
        fresh += without_snapshot
        insert_rows(
            PrivilegeSnapshot, SNAPSHOT_FIELDS, (_snapshot_row(pk, i, now) for pk, i in fresh)
        )
        for pk, item in fresh:
            after = (item.privileges, item.facts)
            changes.append(_change_row(instance, pk, ChangeType.CREATED, None, after, run_id, now))
        outcome.created = len(fresh)

        updates = []
        for pk, snapshot_id, item, change_type in to_update:
            old = before[snapshot_id]
            after = (item.privileges, item.facts)
            if not change_type:
                diff = diff_canonical(old[0], item.privileges)
                change_type = _change_type(diff)
            changes.append(_change_row(instance, pk, change_type, old, after, run_id, now))
            if change_type == ChangeType.RESTORED:
                outcome.restored += 1
            else:
                outcome.changed += 1
            if old[0] != item.privileges:
                updates.append(
                    PrivilegeSnapshot(
                        pk=snapshot_id,
                        privileges=item.privileges,
                        facts=item.facts,
                        fingerprint=item.fingerprint,
                        collected_at=now,
                        changed_at=now,
                        **_flags(item.facts),
                    )
                )
        PrivilegeSnapshot.objects.bulk_update(
            updates,
            ["privileges", "facts", "fingerprint", "is_superuser", "is_locked", "can_grant",
             "collected_at", "changed_at"],
            batch_size=500,
        )  # fmt: skip
        for kind in set(kinds.values()):
            Account.objects.filter(pk__in=[pk for pk, k in kinds.items() if k == kind]).update(
                kind=kind
            )
        if restored_ids:
            Account.objects.filter(pk__in=restored_ids).update(removed_at=None)

        # Accounts gone from the instance: removed, carrying their last known grants.
        for pk, snapshot_id in gone:
            old = before.get(snapshot_id)
            changes.append(_change_row(instance, pk, ChangeType.REMOVED, old, None, run_id, now))
        if gone:
            Account.objects.filter(pk__in=[pk for pk, _ in gone]).update(removed_at=now)
        outcome.removed = len(gone)

        # Everything present: one statement moves last_seen_at for the whole instance.
        Account.objects.filter(
            instance=instance, removed_at__isnull=True, last_seen_at__lt=now
        ).update(last_seen_at=now)
        insert_rows(AccountChange, CHANGE_FIELDS, changes)
    outcome.detail = {"accounts": len(collected), "changes": len(changes)}
    return outcome

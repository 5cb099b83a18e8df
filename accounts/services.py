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

from accounts.canonical import canonical_with_fingerprint
from accounts.diff import diff_privileges, summarize
from accounts.facts import GRANT_ADMIN, LOCKED, SUPERUSER, facts_of_canonical
from accounts.models import Account, AccountChange, ChangeType, PrivilegeSnapshot
from inventory.engines.base import AccountRecord, connect
from inventory.models import Instance

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
        canonical, fingerprint = canonical_with_fingerprint(raw[record.key])
        collected.append(Collected(record, canonical, fingerprint, facts_of_canonical(canonical)))
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


def _change_type(diff: dict[str, Any]) -> str:
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


def _write(
    *, instance: Instance, collected: list[Collected], run_id: int | None, now: datetime
) -> SyncOutcome:
    outcome = SyncOutcome()
    with transaction.atomic():
        existing = {
            account.key: account
            for account in Account.objects.filter(instance=instance).select_related("snapshot")
        }
        active_before = sum(1 for a in existing.values() if a.removed_at is None)
        if not collected and active_before:
            raise SyncRefused(
                f"the instance listed no accounts where {active_before} existed; "
                "nothing was marked removed"
            )

        seen: set[str] = set()
        new_accounts: list[Account] = []
        new_collected: list[Collected] = []
        snapshot_updates: list[PrivilegeSnapshot] = []
        kind_updates: list[Account] = []
        restored_ids: list[int] = []
        changes: list[AccountChange] = []

        def change(account, change_type, before, after, before_facts, after_facts):
            diff = diff_privileges(before, after)
            changes.append(
                AccountChange(
                    account=account,
                    instance=instance,
                    engine=instance.engine,
                    run_id=run_id,
                    detected_at=now,
                    change_type=change_type,
                    summary=summarize(diff)[:500],
                    diff=diff,
                    privileged=_privileged(before_facts, after_facts),
                )
            )

        for item in collected:
            key = item.record.key
            seen.add(key)
            account = existing.get(key)
            if account is None:
                new_accounts.append(
                    Account(
                        instance=instance,
                        name=item.record.name,
                        host=item.record.host,
                        kind=item.record.kind,
                        first_seen_at=now,
                        last_seen_at=now,
                    )
                )
                new_collected.append(item)
                continue
            if account.kind != item.record.kind:
                account.kind = item.record.kind
                kind_updates.append(account)
            snapshot = getattr(account, "snapshot", None)
            was_removed = account.removed_at is not None
            if was_removed:
                restored_ids.append(account.pk)
            if snapshot is None:
                snapshot = PrivilegeSnapshot(account=account, changed_at=now)
                new_collected.append(item)  # an account row without snapshot: treat as new
                new_accounts.append(account)
                continue
            if snapshot.fingerprint == item.fingerprint and not was_removed:
                outcome.unchanged += 1
                continue
            before, before_facts = snapshot.privileges, snapshot.facts
            if was_removed:
                change(
                    account, ChangeType.RESTORED, before, item.privileges, before_facts, item.facts
                )
                outcome.restored += 1
            else:
                diff_type = _change_type(diff_privileges(before, item.privileges))
                change(account, diff_type, before, item.privileges, before_facts, item.facts)
                outcome.changed += 1
            if snapshot.fingerprint != item.fingerprint:
                snapshot.privileges = item.privileges
                snapshot.facts = item.facts
                snapshot.fingerprint = item.fingerprint
                snapshot.collected_at = now
                snapshot.changed_at = now
                for name, value in _flags(item.facts).items():
                    setattr(snapshot, name, value)
                snapshot_updates.append(snapshot)

        # New accounts (and existing rows that never got a snapshot).
        fresh = [a for a in new_accounts if a.pk is None]
        Account.objects.bulk_create(fresh, batch_size=BATCH)
        snapshots = []
        for account, item in zip(new_accounts, new_collected, strict=True):
            snapshots.append(
                PrivilegeSnapshot(
                    account=account,
                    privileges=item.privileges,
                    facts=item.facts,
                    fingerprint=item.fingerprint,
                    collected_at=now,
                    changed_at=now,
                    **_flags(item.facts),
                )
            )
            change(account, ChangeType.CREATED, None, item.privileges, None, item.facts)
        PrivilegeSnapshot.objects.bulk_create(snapshots, batch_size=BATCH)
        outcome.created = len(snapshots)

        PrivilegeSnapshot.objects.bulk_update(
            snapshot_updates,
            [
                "privileges",
                "facts",
                "fingerprint",
                "is_superuser",
                "is_locked",
                "can_grant",
                "collected_at",
                "changed_at",
            ],
            batch_size=BATCH,
        )
        if kind_updates:
            Account.objects.bulk_update(kind_updates, ["kind"], batch_size=BATCH)
        if restored_ids:
            Account.objects.filter(pk__in=restored_ids).update(removed_at=None)

        # Accounts gone from the instance: removed, carrying their last known grants.
        gone = [a for key, a in existing.items() if key not in seen and a.removed_at is None]
        for account in gone:
            snapshot = getattr(account, "snapshot", None)
            before = snapshot.privileges if snapshot else None
            before_facts = snapshot.facts if snapshot else None
            change(account, ChangeType.REMOVED, before, None, before_facts, None)
        if gone:
            Account.objects.filter(pk__in=[a.pk for a in gone]).update(removed_at=now)
        outcome.removed = len(gone)

        # Everything present: one statement moves last_seen_at for the whole instance.
        Account.objects.filter(instance=instance, removed_at__isnull=True).update(last_seen_at=now)
        AccountChange.objects.bulk_create(changes, batch_size=BATCH)
    outcome.detail = {"accounts": len(collected), "changes": len(changes)}
    return outcome

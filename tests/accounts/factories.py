"""Accounts with snapshots and changes, built through the real canonical/facts code."""

from django.utils import timezone

from accounts.canonical import canonical_with_fingerprint
from accounts.diff import diff_privileges, summarize
from accounts.facts import ESCALATION, GRANT_ADMIN, LOCKED, SUPERUSER, facts_of_canonical
from accounts.models import Account, AccountChange, PrivilegeSnapshot


def make_account(
    instance, name, *, host="", grants=(), roles=(), attributes=None, kind="user", effective=None
):
    """An account of ``instance`` with its snapshot and a ``created`` change; ``effective``
    (grants with ``via``, ``roles``, ``role_paths``, ``capabilities``) is what the sync's
    resolver would have stored, and decides the flags."""
    now = timezone.now()
    raw = {
        "engine": instance.engine,
        "attributes": attributes or {},
        "roles": list(roles),
        "grants": list(grants),
    }
    privileges, fingerprint = canonical_with_fingerprint(raw)
    facts = facts_of_canonical(privileges)
    if effective is not None:
        facts["effective"] = {"roles": [], "role_paths": [], "capabilities": [], **effective}
    account = Account.objects.create(
        instance=instance, name=name, host=host, kind=kind, first_seen_at=now, last_seen_at=now
    )
    capabilities = set((facts.get("effective") or facts)["capabilities"])
    PrivilegeSnapshot.objects.create(
        account=account,
        privileges=privileges,
        facts=facts,
        fingerprint=fingerprint,
        is_superuser=SUPERUSER in capabilities,
        is_locked=LOCKED in capabilities,
        can_grant=GRANT_ADMIN in capabilities,
        can_escalate=ESCALATION in capabilities,
        collected_at=now,
        changed_at=now,
    )
    diff = diff_privileges(None, privileges)
    AccountChange.objects.create(
        account=account,
        instance=instance,
        engine=instance.engine,
        detected_at=now,
        change_type="created",
        summary=summarize(diff),
        diff=diff,
        privileged=bool({SUPERUSER, GRANT_ADMIN, ESCALATION} & capabilities),
    )
    return account

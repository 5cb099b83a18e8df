"""Accounts with snapshots and changes, built through the real canonical/facts code."""

from django.utils import timezone

from accounts.canonical import canonical_with_fingerprint
from accounts.diff import diff_privileges, summarize
from accounts.facts import GRANT_ADMIN, LOCKED, SUPERUSER, facts_of_canonical
from accounts.models import Account, AccountChange, PrivilegeSnapshot


def make_account(instance, name, *, host="", grants=(), roles=(), attributes=None, kind="user"):
    """An account of ``instance`` with its snapshot and a ``created`` change."""
    now = timezone.now()
    raw = {
        "engine": instance.engine,
        "attributes": attributes or {},
        "roles": list(roles),
        "grants": list(grants),
    }
    privileges, fingerprint = canonical_with_fingerprint(raw)
    facts = facts_of_canonical(privileges)
    account = Account.objects.create(
        instance=instance, name=name, host=host, kind=kind, first_seen_at=now, last_seen_at=now
    )
    capabilities = set(facts["capabilities"])
    PrivilegeSnapshot.objects.create(
        account=account,
        privileges=privileges,
        facts=facts,
        fingerprint=fingerprint,
        is_superuser=SUPERUSER in capabilities,
        is_locked=LOCKED in capabilities,
        can_grant=GRANT_ADMIN in capabilities,
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
        privileged=bool({SUPERUSER, GRANT_ADMIN} & capabilities),
    )
    return account

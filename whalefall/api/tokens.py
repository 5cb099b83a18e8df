"""Personal API tokens: how they are made, stored (a digest only) and revoked."""

import hashlib
import secrets
from datetime import datetime, timedelta

import structlog
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from whalefall.models import ApiToken

log = structlog.get_logger(__name__)

TOKEN_PREFIX = "wf_"  # noqa: S105 (a marker, not a secret)
# 32 random bytes: a guess is hopeless, so a fast digest is enough to store and look up.
_TOKEN_BYTES = 32
_SHOWN_PREFIX = 10


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_token_issue(row: ApiToken) -> str:
    """Save the new token ``row`` (owner, name, write, expiry set) with a fresh secret and
    return the token: the only time it exists in clear text."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
    row.prefix = token[:_SHOWN_PREFIX]
    row.digest = token_digest(token)
    row.save()
    log.info("api_token_created", token_id=row.pk, owner_id=row.user_id, can_write=row.can_write)
    return token


def api_token_create(
    *, user, name: str, can_write: bool = False, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Create a token for ``user``; returns the row and the token, which is never stored."""
    row = ApiToken(user=user, name=name, can_write=can_write, expires_at=expires_at)
    return row, api_token_issue(row)


def api_token_revoke(*, tokens) -> int:
    """Revoke the given tokens (a queryset); each revocation is saved, hence audited."""
    revoked = 0
    with transaction.atomic():
        for row in tokens.select_for_update().filter(revoked_at__isnull=True):
            row.revoked_at = timezone.now()
            row.save(update_fields=["revoked_at"])
            log.info("api_token_revoked", token_id=row.pk, owner_id=row.user_id)
            revoked += 1
    return revoked


def api_token_authenticate(token: str) -> ApiToken | None:
    """The usable token ``token`` is, with its active owner; None when there is none."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = (
        ApiToken.objects.usable()
        .select_related("user")
        .filter(digest=token_digest(token), user__is_active=True)
        .first()
    )
    return row


def api_token_touch(row: ApiToken, *, ip: str | None) -> None:
    """Record when and from where a token was used, at most once a minute per token: a
    busy script should not turn every read into a write."""
    now = timezone.now()
    every = timedelta(seconds=settings.WHALEFALL_API_TOKEN_TOUCH_SECONDS)
    if row.last_used_at and now - row.last_used_at < every and row.last_used_ip == ip:
        return
    # update(), not save(): usage is not a configuration change for the audit log.
    ApiToken.objects.filter(pk=row.pk).update(last_used_at=now, last_used_ip=ip)
    row.last_used_at, row.last_used_ip = now, ip

"""Encryption of credential secrets: Fernet through MultiFernet over the configured keys.

The first key of ``WHALEFALL_CREDENTIAL_KEYS`` encrypts; every key decrypts, so keys can be
rotated without downtime (add a new first key, run ``rotate_credential_keys``, then drop the
old one). Without configured keys (development, test) one key is generated once into
``WHALEFALL_CREDENTIAL_KEY_FILE`` (mode 0600) and reused; it is never logged.
"""

import os
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver


class SecretUnavailable(Exception):
    """A stored secret cannot be decrypted (no key opens it) or is missing."""


def _key_file_key(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    key = Fernet.generate_key()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


@lru_cache(maxsize=4)
def _multifernet(keys: tuple[bytes, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def _keys() -> tuple[bytes, ...]:
    configured = tuple(k.encode() for k in settings.WHALEFALL_CREDENTIAL_KEYS)
    if configured:
        return configured
    path = Path(settings.WHALEFALL_CREDENTIAL_KEY_FILE)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return (_key_file_key(path),)


def encrypt(plaintext: str) -> str:
    """Encrypt with the primary key; returns the Fernet token as text."""
    return _multifernet(_keys()).encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypt with whichever configured key opens the token."""
    try:
        return _multifernet(_keys()).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnavailable("no configured key decrypts this secret") from exc


def is_current(token: str) -> bool:
    """True when the primary key alone opens the token (nothing to rotate)."""
    try:
        Fernet(_keys()[0]).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def rotate(token: str) -> str:
    """Re-encrypt a token under the primary key."""
    try:
        return _multifernet(_keys()).rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnavailable("no configured key decrypts this secret") from exc


@receiver(setting_changed)
def _forget_keys(*, setting: str, **_kwargs) -> None:
    if setting.startswith("WHALEFALL_CREDENTIAL_KEY"):
        _multifernet.cache_clear()

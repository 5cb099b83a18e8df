"""Credential secrets at rest: Fernet tokens, key rotation, clear errors (SPEC §4)."""

import io
import stat

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from inventory import crypto
from inventory.engines.base import CredentialUnavailable, target_for
from inventory.models import Credential
from tests.inventory.factories import CredentialFactory, InstanceFactory

pytestmark = pytest.mark.django_db

PLAINTEXT = "Plain-Text-Secret-4711"


def stored_ciphertext(credential: Credential) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT secret_ciphertext FROM inventory_credential WHERE id = %s", [credential.pk]
        )
        return cursor.fetchone()[0]


def rotate() -> tuple[str, int]:
    out = io.StringIO()
    try:
        call_command("rotate_credential_keys", stdout=out, stderr=out)
    except SystemExit as exc:
        return out.getvalue(), exc.code
    return out.getvalue(), 0


def test_the_column_holds_a_fernet_token_not_the_secret():
    credential = CredentialFactory(secret=PLAINTEXT)
    raw = stored_ciphertext(credential)
    assert PLAINTEXT not in raw
    assert raw.startswith("gAAAAA")  # Fernet version byte, base64
    assert Credential.objects.get(pk=credential.pk).decrypt_secret() == PLAINTEXT


def test_equal_secrets_give_different_tokens():
    first, second = CredentialFactory(secret=PLAINTEXT), CredentialFactory(secret=PLAINTEXT)
    assert stored_ciphertext(first) != stored_ciphertext(second)


def test_rotation_reencrypts_under_the_new_key_and_old_rows_decrypt_meanwhile(settings):
    old_key = settings.WHALEFALL_CREDENTIAL_KEYS[0]
    credential = CredentialFactory(secret=PLAINTEXT)
    before = stored_ciphertext(credential)

    new_key = Fernet.generate_key().decode()
    settings.WHALEFALL_CREDENTIAL_KEYS = [new_key, old_key]
    assert Credential.objects.get(pk=credential.pk).decrypt_secret() == PLAINTEXT

    output, code = rotate()
    assert code == 0
    assert "Re-encrypted 1 secret(s); 0 already under the primary key" in output
    after = stored_ciphertext(credential)
    assert after != before
    Fernet(new_key.encode()).decrypt(after.encode())  # the new key alone opens it

    settings.WHALEFALL_CREDENTIAL_KEYS = [new_key]
    assert Credential.objects.get(pk=credential.pk).decrypt_secret() == PLAINTEXT


def test_rotation_is_safe_to_rerun(settings):
    CredentialFactory.create_batch(3, secret=PLAINTEXT)
    settings.WHALEFALL_CREDENTIAL_KEYS = [
        Fernet.generate_key().decode(),
        *settings.WHALEFALL_CREDENTIAL_KEYS,
    ]
    assert "Re-encrypted 3" in rotate()[0]
    output, code = rotate()
    assert code == 0
    assert "Re-encrypted 0 secret(s); 3 already under the primary key" in output


def test_rotation_names_secrets_no_key_opens_and_fails(settings):
    lost = CredentialFactory(name="lost-key", secret=PLAINTEXT)
    settings.WHALEFALL_CREDENTIAL_KEYS = [Fernet.generate_key().decode()]
    CredentialFactory(name="fine", secret="other")
    output, code = rotate()
    assert code == 1
    assert "1 could not be decrypted" in output
    assert "lost-key" in output
    assert stored_ciphertext(lost)  # left untouched, never blanked


def test_a_ciphertext_no_key_opens_is_a_clear_error_never_an_empty_password(settings):
    credential = CredentialFactory(name="orphaned", secret=PLAINTEXT)
    settings.WHALEFALL_CREDENTIAL_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.SecretUnavailable, match="orphaned cannot be decrypted"):
        credential.decrypt_secret()
    instance = InstanceFactory(credential=credential)
    with pytest.raises(CredentialUnavailable, match="orphaned cannot be decrypted"):
        target_for(instance)


def test_an_empty_secret_is_refused():
    credential = Credential(name="x", username="u")
    with pytest.raises(Exception, match="cannot be empty"):
        credential.set_secret("")


def test_the_secret_shows_in_no_repr_or_str():
    credential = CredentialFactory(secret=PLAINTEXT)
    instance = InstanceFactory(credential=credential)
    target = target_for(instance)
    for text in (repr(credential), str(credential), repr(target), str(target)):
        assert PLAINTEXT not in text
        assert stored_ciphertext(credential) not in text


def test_development_key_file_is_generated_once_with_mode_0600(settings, tmp_path):
    settings.WHALEFALL_CREDENTIAL_KEYS = []
    settings.WHALEFALL_CREDENTIAL_KEY_FILE = tmp_path / "keys" / "credential.key"
    token = crypto.encrypt(PLAINTEXT)
    key_file = settings.WHALEFALL_CREDENTIAL_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    first_key = key_file.read_bytes()
    assert crypto.decrypt(crypto.encrypt("again")) == "again"
    assert key_file.read_bytes() == first_key
    assert crypto.decrypt(token) == PLAINTEXT

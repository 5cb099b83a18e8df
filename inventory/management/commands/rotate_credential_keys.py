"""``manage.py rotate_credential_keys``: re-encrypt every secret with the primary key."""

from django.core.management.base import BaseCommand
from django.db import transaction

from inventory import crypto
from inventory.models import Credential


class Command(BaseCommand):
    help = (
        "Re-encrypt every credential secret with the first key of WHALEFALL_CREDENTIAL_KEYS, "
        "in batches. Safe to re-run: secrets already under the first key are left as they are. "
        "Remove an old key from the setting only after this reports no failures."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size", type=int, default=500, help="Credentials per transaction."
        )

    def handle(self, *args, batch_size: int, **options):
        rotated = current = 0
        failed: list[str] = []
        last_pk = 0
        while True:
            with transaction.atomic():
                batch = list(
                    Credential.objects.select_for_update()
                    .filter(pk__gt=last_pk)
                    .exclude(secret_ciphertext="")
                    .order_by("pk")[:batch_size]
                )
                if not batch:
                    break
                changed = []
                for credential in batch:
                    if crypto.is_current(credential.secret_ciphertext):
                        current += 1
                        continue
                    try:
                        credential.secret_ciphertext = crypto.rotate(credential.secret_ciphertext)
                    except crypto.SecretUnavailable:
                        failed.append(credential.name)
                        continue
                    changed.append(credential)
                # bulk_update: re-encryption is not a configuration change for the audit log.
                Credential.objects.bulk_update(changed, ["secret_ciphertext"])
                rotated += len(changed)
                last_pk = batch[-1].pk
        self.stdout.write(
            f"Re-encrypted {rotated} secret(s); {current} already under the primary key; "
            f"{len(failed)} could not be decrypted with any configured key."
        )
        if failed:
            self.stderr.write("Not rotated (re-enter their secrets): " + ", ".join(failed))
            raise SystemExit(1)

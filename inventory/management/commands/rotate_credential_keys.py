"""``manage.py rotate_credential_keys``: re-encrypt every secret with the primary key."""

from django.core.management.base import BaseCommand
from django.db import transaction

from inventory import crypto
from inventory.models import Credential
from whalefall.alerts.services import channels_rotate_keys


class Command(BaseCommand):
    help = (
        "Re-encrypt every credential secret, and every alert channel's URL and signing "
        "secret, with the first key of WHALEFALL_CREDENTIAL_KEYS, "
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
        # Alert channels keep their webhook/chat URLs and signing secrets under the same keys.
        channel_rotated, channel_current, channel_failed = channels_rotate_keys()
        self.stdout.write(
            f"Alert channels: re-encrypted {channel_rotated} value(s); {channel_current} "
            f"already under the primary key; {len(channel_failed)} channel(s) could not be "
            "decrypted with any configured key."
        )
        if failed:
            self.stderr.write("Not rotated (re-enter their secrets): " + ", ".join(failed))
        if channel_failed:
            self.stderr.write(
                "Alert channels not rotated (enter their URL and secret again): "
                + ", ".join(channel_failed)
            )
        if failed or channel_failed:
            raise SystemExit(1)

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InventoryConfig(AppConfig):
    """Instances, credentials, tags and the engine layer."""

    name = "inventory"
    verbose_name = _("Inventory")

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from inventory.models import Credential, Instance, Tag

        auditlog.register(Tag)
        # The ciphertext is masked entirely: an entry shows that the secret changed.
        auditlog.register(
            Credential,
            mask_fields=["secret_ciphertext"],
            mask_callable="whalefall.audit.mask_secret",
            exclude_fields=["updated_at"],
        )
        # Connection-test results are not configuration; they are written without save().
        auditlog.register(Instance, m2m_fields={"tags"}, exclude_fields=["updated_at"])

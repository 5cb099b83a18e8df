from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InventoryConfig(AppConfig):
    """Instances, credentials, tags and the engine layer."""

    name = "inventory"
    verbose_name = _("Inventory")

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CapacityConfig(AppConfig):
    """Database inventory, daily sizes, aggregates and forecasts."""

    name = "capacity"
    verbose_name = _("Capacity")

    def ready(self) -> None:
        from capacity.partitions import partition_status
        from whalefall.health import register_detail

        register_detail("partitions")(partition_status)

        from capacity import dashboard  # noqa: F401  (registers the dashboard panels)

"""Application config of alerts: channels, rules, events, the outbox and delivery."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AlertsConfig(AppConfig):
    """Alerts (SPEC §13): the apps emit events, rules route them to channels."""

    name = "whalefall.alerts"
    label = "alerts"
    verbose_name = _("Alerts")

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from whalefall.alerts.models import Channel, Rule

        # Configuration changes are audited; the encrypted secrets never are.
        auditlog.register(
            Channel, exclude_fields=["secret_ciphertext", "url_ciphertext", "secret_changed_at"]
        )
        auditlog.register(Rule, m2m_fields={"channels", "tags"})

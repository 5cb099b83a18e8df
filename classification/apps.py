from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ClassificationConfig(AppConfig):
    """Account classifications, versioned rules and assignments."""

    name = "classification"
    verbose_name = _("Classification")

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from classification.models import Classification, Rule

        auditlog.register(Classification, exclude_fields=["updated_at"])
        auditlog.register(Rule, exclude_fields=["updated_at"])
        # Assignments are not registered: automatic ones are results, written in bulk.
        # Manual ones are audited explicitly by the services that make and remove them.

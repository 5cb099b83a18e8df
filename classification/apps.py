from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def _visible_assignments(request, instance_ids):
    from classification.models import Assignment

    return Assignment.objects.filter(account__instance_id__in=instance_ids).values("pk")


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

        from whalefall import audit

        audit.scope_shared("classification.classification")
        audit.scope_shared("classification.rule")
        audit.scope_by_instance("classification.assignment", _visible_assignments)

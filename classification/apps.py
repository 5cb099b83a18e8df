from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ClassificationConfig(AppConfig):
    """Account classifications, versioned rules and assignments."""

    name = "classification"
    verbose_name = _("Classification")

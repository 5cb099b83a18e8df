from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    """External database accounts, privilege snapshots and change history."""

    name = "accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        from accounts import dashboard  # noqa: F401  (registers the dashboard panel)

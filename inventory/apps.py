from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def _visible_instance_ids(request, perm):
    from inventory.admin import visible_instance_ids

    return visible_instance_ids(request, perm)


def _visible_credentials(request, _instance_ids):
    from inventory.models import Credential

    # The credential scope's own decision, as on the credential pages.
    return Credential.objects.visible_to(request.user).values("pk")


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

        from whalefall import audit, scope

        # The project package's pages (audit log, event log, health) follow this scope.
        scope.provide(_visible_instance_ids)
        audit.scope_by_instance("inventory.instance", lambda _request, ids: ids)
        audit.scope_by_instance("inventory.credential", _visible_credentials)
        audit.scope_shared("inventory.tag")

        from inventory import dashboard  # noqa: F401  (registers the dashboard panel)

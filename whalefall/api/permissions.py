"""Who may call what: the admin's rules. Model permissions of the role groups decide the
verbs; the instance scope (:func:`whalefall.scope.visible_instance_ids`, the admin's single
choke point) decides the rows; a token without "write" only reads."""

from django.utils.translation import gettext_lazy as _
from rest_framework import permissions
from rest_framework.settings import api_settings

from whalefall.models import ApiToken
from whalefall.scope import VIEW_INSTANCE, visible_instance_ids

CHANGE_INSTANCE = "inventory.change_instance"


class TokenScope(permissions.BasePermission):
    """A read-only token may only read; a session (CSRF-checked) may do what its user may."""

    message = "This token is read-only; create a token with “write” to make changes."

    def has_permission(self, request, view) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        token = request.auth
        return not isinstance(token, ApiToken) or token.can_write


class ModelPermissions(permissions.DjangoModelPermissions):
    """The model permission the admin asks for each verb (view for reads).

    A view may name the permissions of a custom action in ``action_permissions``
    (``{"sync": ["inventory.sync"]}``). For views of the instance-scoped model itself
    (``instance_scoped = True``) a permission held on at least one instance is enough, as in
    the admin: the queryset then narrows the rows to those instances.
    """

    perms_map = {
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
        "POST": ["%(app_label)s.add_%(model_name)s"],
        "PUT": ["%(app_label)s.change_%(model_name)s"],
        "PATCH": ["%(app_label)s.change_%(model_name)s"],
        "DELETE": ["%(app_label)s.delete_%(model_name)s"],
    }

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not user or not user.is_authenticated or not user.is_active:
            return False
        action_perms = getattr(view, "action_permissions", {}).get(getattr(view, "action", None))
        if action_perms is not None:
            perms = list(action_perms)
        else:
            if getattr(view, "_ignore_model_permissions", False):
                return True
            perms = self.get_required_permissions(request.method, self._queryset(view).model)
        if getattr(view, "instance_scoped", False):
            return all(
                sees_some_instance(request, perm)
                if perm.startswith("inventory.")
                else user.has_perm(perm)
                for perm in perms
            )
        return user.has_perms(perms)


def sees_some_instance(request, perm: str = VIEW_INSTANCE) -> bool:
    """Whether the user holds ``perm`` on at least one instance (or on all of them)."""
    ids = visible_instance_ids(request, perm)
    return ids is None or bool(ids)


class OnSomeInstance(permissions.BasePermission):
    """As the admin's pages of rows hanging off instances: a user who may see no instance
    at all is refused, not shown an empty list."""

    message = _("You may not see any instance.")

    def has_permission(self, request, view) -> bool:
        return sees_some_instance(request)


def on_some_instance() -> list:
    """The default permission classes, and :class:`OnSomeInstance`."""
    return [*api_settings.DEFAULT_PERMISSION_CLASSES, OnSomeInstance]


class InstanceScopedMixin:
    """Rows that hang off an instance (``instance_field``; ``"pk"`` for instances): those of
    the instances the user holds ``read_permission`` on for reads and ``write_permission``
    on for changes — the same decision, through the same function, as the admin's."""

    instance_field = "instance"
    read_permission = VIEW_INSTANCE
    write_permission = CHANGE_INSTANCE

    def scope_permission(self) -> str:
        if self.request.method in permissions.SAFE_METHODS:
            return self.read_permission
        return self.write_permission

    def scope_ids(self, perm: str | None = None) -> set[int] | None:
        """Ids of the instances in scope for ``perm`` (default: this request's); None: all."""
        return visible_instance_ids(self.request, perm or self.scope_permission())

    def get_queryset(self):
        queryset = super().get_queryset()
        ids = self.scope_ids()
        if ids is None:
            return queryset
        return queryset.filter(**{f"{self.instance_field}__in": ids})

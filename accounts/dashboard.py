"""The accounts dashboard panel: privileged accounts and the last week's privileged changes."""

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts.models import AccountChange, PrivilegeSnapshot
from whalefall.dashboard import capped_count, changelist_url, since, timestamp_param
from whalefall.scope import visible_instance_ids
from whalefall.sites import DashboardPanel

PANEL_ROWS = 10
CHANGE_WINDOW_HOURS = 7 * 24

# (snapshot flag, label): each a boolean filter of the account list.
FLAGS = (
    ("is_superuser", _("Superusers")),
    ("can_grant", _("Can grant")),
    ("can_escalate", _("Can escalate")),
)


def _scoped(queryset, ids):
    return queryset if ids is None else queryset.filter(instance_id__in=ids)


@admin.site.register_panel
def privileged_panel(request: HttpRequest) -> DashboardPanel | None:
    """Present privileged accounts by kind of power, and privileged changes of the last
    seven days, on the visible instances."""
    user = request.user
    see_accounts = user.has_perm("accounts.view_account")
    see_changes = user.has_perm("accounts.view_accountchange")
    ids = visible_instance_ids(request)
    if not (see_accounts or see_changes) or (ids is not None and not ids):
        return None
    context = {}
    if see_accounts:
        # Each flag from its own index, counted up to a cap: the privileged few, not
        # every account.
        present = PrivilegeSnapshot.objects.filter(account__removed_at__isnull=True)
        if ids is not None:
            present = present.filter(account__instance_id__in=ids)
        counts = {flag: capped_count(present.filter(**{flag: True})) for flag, _label in FLAGS}
        context["accounts"] = [
            {
                "label": label,
                "count": counts[flag],
                "url": changelist_url(
                    "accounts.account", presence="present", **{f"snapshot__{flag}__exact": 1}
                ),
            }
            for flag, label in FLAGS
        ]
    if see_changes:
        start = since(CHANGE_WINDOW_HOURS)
        changes = _scoped(
            AccountChange.objects.filter(privileged=True, detected_at__gte=start), ids
        )
        context["changes_count"] = capped_count(changes)
        context["changes_url"] = changelist_url(
            "accounts.accountchange", privileged="yes", detected_at__gte=timestamp_param(start)
        )
        context["changes"] = list(
            changes.select_related("account", "instance").order_by("-detected_at", "-id")[
                :PANEL_ROWS
            ]
        )
    return DashboardPanel(
        title=_("Privileged accounts"),
        template="admin/panels/privileged.html",
        context=context,
        order=20,
    )

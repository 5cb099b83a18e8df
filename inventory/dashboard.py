"""The inventory's dashboard panel: the visible estate by engine and status."""

from django.contrib import admin
from django.db.models import Count, Q
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from inventory.models import Engine, Instance
from whalefall.dashboard import changelist_url
from whalefall.scope import visible_instance_ids
from whalefall.sites import DashboardPanel

# The instance list's status filter values, in the order of the panel's columns.
STATUSES = ("active", "inactive", "retired", "failing")


def _instances_url(**params: str) -> str:
    return changelist_url("inventory.instance", **params)


@admin.site.register_panel
def estate_panel(request: HttpRequest) -> DashboardPanel | None:
    """Instances of the visible estate by engine and status, each figure a link to them."""
    ids = visible_instance_ids(request)
    if ids is not None and not ids:
        return None
    instances = Instance.objects.all() if ids is None else Instance.objects.filter(pk__in=ids)
    live = Q(retired_at__isnull=True)
    figures = {
        "total": Count("pk"),
        "active": Count("pk", filter=live & Q(is_active=True)),
        "inactive": Count("pk", filter=live & Q(is_active=False)),
        "retired": Count("pk", filter=Q(retired_at__isnull=False)),
        "failing": Count("pk", filter=live & Q(last_connection_ok=False)),
    }
    labels = dict(Engine.choices)
    rows = []
    totals = dict.fromkeys(figures, 0)
    for row in instances.order_by().values("engine").annotate(**figures).order_by("engine"):
        engine = row["engine"]
        cells = [(row["total"], _instances_url(engine__exact=engine))]
        cells += [(row[s], _instances_url(engine__exact=engine, status=s)) for s in STATUSES]
        rows.append({"label": labels.get(engine, engine), "cells": cells})
        for key in figures:
            totals[key] += row[key]
    footer = [(totals["total"], _instances_url())]
    footer += [(totals[s], _instances_url(status=s)) for s in STATUSES]
    return DashboardPanel(
        title=_("Estate"),
        template="admin/panels/estate.html",
        context={
            "columns": [
                _("Instances"),
                _("Active"),
                _("Inactive"),
                _("Retired"),
                _("Last connection failed"),
            ],
            "rows": rows,
            "footer": footer,
        },
        order=5,
    )

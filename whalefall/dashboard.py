"""Small helpers the apps' dashboard panels share: links to filtered admin lists and the
time windows the panels and those links agree on."""

from datetime import datetime, timedelta

from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode


def changelist_url(model: str, **params: str | int) -> str:
    """The admin list of ``app_label.model_name`` filtered by ``params``."""
    app_label, model_name = model.split(".")
    url = reverse(f"admin:{app_label}_{model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def since(hours: int) -> datetime:
    """The start of the last ``hours`` hours, to the second, so that the panel and the list
    its links open count the same rows."""
    return (timezone.now() - timedelta(hours=hours)).replace(microsecond=0)


def timestamp_param(moment: datetime) -> str:
    """A moment written as a list filter's value (an ISO 8601 time with its offset)."""
    return moment.isoformat()


# A dashboard figure over a table that grows without bound is counted up to this many rows;
# past it the panel says "1000+" and the linked list pages through them.
COUNT_CAP = 1000


class CappedCount(int):
    """A count that stopped at :data:`COUNT_CAP`; shown as ``1000+`` once over it."""

    def __str__(self) -> str:
        return f"{COUNT_CAP}+" if self > COUNT_CAP else super().__str__()


def capped_count(queryset) -> CappedCount:
    """The rows of ``queryset``, counted up to one past :data:`COUNT_CAP` (a LIMIT, never a
    scan of every matching row)."""
    return CappedCount(queryset.order_by()[: COUNT_CAP + 1].count())

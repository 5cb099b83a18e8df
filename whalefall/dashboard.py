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

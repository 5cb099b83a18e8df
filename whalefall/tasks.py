"""Tasks of the project package."""

from celery import shared_task
from django.utils import timezone

from whalefall.events import events_purge
from whalefall.models import Heartbeat

BEAT_HEARTBEAT = "beat"


@shared_task(name="whalefall.beat_heartbeat", ignore_result=True, time_limit=30, soft_time_limit=20)
def beat_heartbeat() -> None:
    """Record that beat scheduled this and a worker ran it."""
    Heartbeat.objects.update_or_create(name=BEAT_HEARTBEAT, defaults={"beat_at": timezone.now()})


@shared_task(
    name="whalefall.purge_events", ignore_result=True, time_limit=1800, soft_time_limit=1700
)
def purge_events() -> None:
    """Delete application events older than WHALEFALL_EVENT_RETENTION_DAYS, in batches."""
    events_purge()

"""Tasks of the project package."""

from celery import shared_task
from django.utils import timezone

from whalefall.models import Heartbeat

BEAT_HEARTBEAT = "beat"


@shared_task(name="whalefall.beat_heartbeat", ignore_result=True, time_limit=30, soft_time_limit=20)
def beat_heartbeat() -> None:
    """Record that beat scheduled this and a worker ran it."""
    Heartbeat.objects.update_or_create(name=BEAT_HEARTBEAT, defaults={"beat_at": timezone.now()})

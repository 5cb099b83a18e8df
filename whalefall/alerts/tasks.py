"""Celery tasks of alerts: thin, ids in, one service call each."""

from celery import shared_task

from whalefall.alerts import services


@shared_task(
    name="alerts.dispatch_events",
    ignore_result=True,
    acks_late=True,
    time_limit=600,
    soft_time_limit=540,
)
def dispatch_events() -> None:
    """Route pending events to rules and queue their deliveries (also the beat sweep)."""
    services.events_dispatch()


@shared_task(
    name="alerts.send_delivery",
    bind=True,
    ignore_result=True,
    acks_late=True,
    max_retries=None,  # the service counts attempts against WHALEFALL_ALERT_MAX_ATTEMPTS
    time_limit=120,
    soft_time_limit=100,
)
def send_delivery(self, delivery_id: int) -> None:
    """Send one delivery; retried with exponential backoff while the service asks."""
    outcome = services.delivery_send(delivery_id=delivery_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)


@shared_task(
    name="alerts.send_digests",
    ignore_result=True,
    acks_late=True,
    time_limit=600,
    soft_time_limit=540,
)
def send_digests() -> None:
    """Send the daily digests that fell due, and route events a lost message left pending."""
    services.events_dispatch()
    services.digests_send()


@shared_task(
    name="alerts.purge",
    ignore_result=True,
    acks_late=True,
    time_limit=1800,
    soft_time_limit=1700,
)
def purge() -> None:
    """Delete alert events and deliveries older than WHALEFALL_EVENT_RETENTION_DAYS."""
    services.alerts_purge()

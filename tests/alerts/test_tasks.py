"""The alert tasks: stable names, thin, and a delivery retried with the service's delay."""

from unittest import mock

import pytest
from celery.exceptions import Retry

from whalefall.alerts import services, tasks
from whalefall.celery import app as celery_app


def test_tasks_are_registered_under_stable_names():
    celery_app.loader.import_default_modules()
    for name in (
        "alerts.dispatch_events",
        "alerts.send_delivery",
        "alerts.send_digests",
        "alerts.purge",
    ):
        assert name in celery_app.tasks, name


def test_a_delivery_asking_for_a_retry_is_retried_after_its_delay(monkeypatch):
    monkeypatch.setattr(
        services, "delivery_send", lambda *, delivery_id: services.SendOutcome("retrying", 120)
    )
    with (
        mock.patch.object(tasks.send_delivery, "retry", side_effect=Retry()) as retry,
        pytest.raises(Retry),
    ):
        tasks.send_delivery.run(7)
    retry.assert_called_once_with(countdown=120)


def test_a_settled_delivery_is_not_retried(monkeypatch):
    monkeypatch.setattr(
        services, "delivery_send", lambda *, delivery_id: services.SendOutcome("sent")
    )
    with mock.patch.object(tasks.send_delivery, "retry") as retry:
        tasks.send_delivery.run(7)
    retry.assert_not_called()

"""The application event log (SPEC §8): what is kept, with secrets masked, outside the
transaction that logged it; retention in batches; read by Administrators and Auditors only."""

import logging
from datetime import timedelta

import pytest
import structlog
from django.db import transaction
from django.utils import timezone

from whalefall import events
from whalefall.models import EventLogEntry

# Transactional: entries are committed through their own connection, which a test wrapped
# in a transaction would not see.
pytestmark = pytest.mark.django_db(databases=["default", "events"], transaction=True)

log = structlog.get_logger("whalefall.tests")


@pytest.fixture(autouse=True)
def _not_paused(monkeypatch):
    """Tests without database access fail their writes, which pauses the log a while."""
    monkeypatch.setattr(events, "_paused_until", 0.0)


def kept() -> list[EventLogEntry]:
    return list(EventLogEntry.objects.order_by("pk"))


def test_a_warning_is_kept_with_its_ids_and_its_secrets_masked():
    structlog.contextvars.bind_contextvars(request_id="req-1", run_id=7)
    try:
        log.warning("remote_refused", instance_id=3, password="hunter2", url="pg://u:pw@h/db")
    finally:
        structlog.contextvars.clear_contextvars()
    [entry] = kept()
    assert (entry.level, entry.event, entry.logger) == ("warning", "remote_refused", log.name)
    assert (entry.request_id, entry.run_id, entry.instance_id) == ("req-1", 7, 3)
    assert entry.context["password"] == "***"
    assert entry.context["url"] == "pg://u:***@h/db"
    assert "hunter2" not in str(entry.context)


def test_errors_and_job_events_are_kept_chatter_is_not():
    log.info("account_sync_started", instance_id=1)
    log.info("run_finished", run_id=5, status="succeeded")
    log.error("run_item_crashed", item_id=9)
    assert [(e.level, e.event) for e in kept()] == [
        ("info", "run_finished"),
        ("error", "run_item_crashed"),
    ]


def test_per_request_4xx_warnings_are_not_kept_but_server_errors_are():
    request_log = logging.getLogger("django.request")
    request_log.warning("Not Found: /wp-login.php")
    request_log.error("Internal Server Error: /admin/")
    assert [(e.level, e.event) for e in kept()] == [("error", "Internal Server Error: /admin/")]


def test_an_error_in_a_transaction_that_rolls_back_is_kept():
    def work():
        with transaction.atomic():
            log.error("collection_write_failed", instance_id=4)
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        work()
    assert [e.event for e in kept()] == ["collection_write_failed"]


def test_a_failing_event_log_never_breaks_the_code_that_logs(monkeypatch):
    def broken(fields):
        raise ConnectionError("database gone")

    monkeypatch.setattr(events, "_store", broken)
    log.error("something_failed")  # must not raise
    assert kept() == []


def test_old_events_are_purged_in_batches():
    now = timezone.now()
    for age in (100, 95, 91, 91, 91, 10):
        EventLogEntry.objects.using("events").create(
            created_at=now - timedelta(days=age), level="warning", event=f"old_{age}", logger="t"
        )
    assert events.events_purge(older_than_days=90, batch_size=2) == 5
    remaining = [e.event for e in kept()]
    assert "old_10" in remaining
    assert not [name for name in remaining if name.startswith("old_9") or name == "old_100"]
    assert "events_purged" in remaining  # the purge is a job event itself


ROLES_ALLOWED = {"Administrators": 200, "Auditors": 200}


@pytest.mark.parametrize(
    "role", ["Administrators", "Auditors", "DBAs", "Schedulers", "Viewers", "Auditors (scoped)"]
)
def test_only_administrators_and_auditors_read_the_event_log(client, user_with_role, role):
    EventLogEntry.objects.using("events").create(
        created_at=timezone.now(), level="error", event="=cmd|calc", logger="t"
    )
    entry = EventLogEntry.objects.get(event="=cmd|calc")
    client.force_login(user_with_role(role))
    expected = ROLES_ALLOWED.get(role, 403)
    assert client.get("/admin/whalefall/eventlogentry/").status_code == expected
    assert client.get(f"/admin/whalefall/eventlogentry/{entry.pk}/change/").status_code == expected
    # Nobody writes it.
    assert client.get("/admin/whalefall/eventlogentry/add/").status_code == 403
    assert client.post(f"/admin/whalefall/eventlogentry/{entry.pk}/delete/").status_code == 403
    export = client.post(
        "/admin/whalefall/eventlogentry/export/",
        {"format": "0", "resource": "0", "eventlogresource_event": "on"},
    )
    assert export.status_code == expected
    if expected == 200:
        assert export["Content-Type"].startswith("text/csv")
        assert "'=cmd|calc" in export.content.decode()  # never a spreadsheet formula


def test_the_purge_is_scheduled_daily_and_runs_the_retention(monkeypatch, settings):
    from django_celery_beat.models import PeriodicTask

    from syncjobs.services import schedule_install_defaults
    from whalefall import tasks

    schedule_install_defaults()
    task = PeriodicTask.objects.get(task="whalefall.purge_events")
    assert (task.crontab.minute, task.crontab.hour) == ("10", "5")

    settings.WHALEFALL_EVENT_RETENTION_DAYS = 30
    EventLogEntry.objects.using("events").create(
        created_at=timezone.now() - timedelta(days=31), level="error", event="stale", logger="t"
    )
    tasks.purge_events.apply()
    assert not EventLogEntry.objects.filter(event="stale").exists()


def test_on_sqlite_an_entry_logged_in_a_transaction_waits_for_its_commit(monkeypatch):
    from django.db import connections

    # SQLite's one writer would be the transaction itself: the entry follows the commit.
    monkeypatch.setattr(connections["default"], "vendor", "sqlite")
    with transaction.atomic():
        log.error("inside_committed")
        assert kept() == []
    assert [e.event for e in kept()] == ["inside_committed"]

    def rolled_back():
        with transaction.atomic():
            log.error("inside_rolled_back")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        rolled_back()
    assert [e.event for e in kept()] == ["inside_committed"]


def test_after_a_failed_write_the_log_pauses_instead_of_waiting_on_a_dead_database(
    monkeypatch,
):
    from whalefall import models

    real_manager = models.EventLogEntry.objects

    class Down:
        def using(self, alias):
            raise ConnectionError("database down")

    monkeypatch.setattr(models.EventLogEntry, "objects", Down())
    log.error("first_failure")  # tried once, failed, stays on stdout
    monkeypatch.setattr(models.EventLogEntry, "objects", real_manager)
    log.error("while_paused")
    assert kept() == []
    assert events._paused_until > 0

    monkeypatch.setattr(events, "_paused_until", 0.0)  # the pause is over
    log.error("after_the_pause")
    assert [e.event for e in kept()] == ["after_the_pause"]

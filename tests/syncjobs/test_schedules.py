"""The schedule page as people read and edit it (issue 16): schedules in words with their
zone, next and last run, the time edited in place, the runs a task made, run now."""

import json
from datetime import UTC, datetime, time
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask
from django_celery_beat.tzcrontab import TzAwareCrontab

from syncjobs import schedules, tasks
from syncjobs.models import Run
from tests.factories import UserFactory
from tests.inventory.factories import InstanceFactory
from whalefall.celery import app as celery_app

LIST = "/admin/django_celery_beat/periodictask/"
SHANGHAI = "Asia/Shanghai"


def cron(minute="0", hour="1", dom="*", month="*", dow="*", zone=SHANGHAI):
    return schedules.crontab_text(
        minute=minute,
        hour=hour,
        day_of_month=dom,
        month_of_year=month,
        day_of_week=dow,
        timezone=zone,
    )


# --- In words (pure) --------------------------------------------------------------------


def test_a_daily_crontab_reads_as_a_time_of_day_with_its_zone():
    assert cron() == "daily at 01:00 (Asia/Shanghai)"
    assert cron(minute="30", hour="0", zone="UTC") == "daily at 00:30 (UTC)"


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"minute": "30", "hour": "2", "dow": "1"}, "every Monday at 02:30 (Asia/Shanghai)"),
        ({"minute": "15", "hour": "*"}, "hourly at minute 15"),
        ({"minute": "*/5", "hour": "*"}, "every 5 minutes"),
        ({"minute": "*", "hour": "*"}, "every minute"),
        ({"minute": "0", "hour": "1", "dom": "1"}, "cron “0 1 1 * *” (Asia/Shanghai)"),
        ({"minute": "99", "hour": "1"}, "cron “99 1 * * *” (Asia/Shanghai)"),
    ],
)
def test_other_crontabs_in_words_or_as_cron_with_the_zone(fields, text):
    assert cron(**fields) == text


@pytest.mark.parametrize(
    ("every", "period", "text"),
    [
        (60, "seconds", "every minute"),
        (300, "seconds", "every 5 minutes"),
        (2, "hours", "every 2 hours"),
        (1, "days", "every day"),
        (45, "seconds", "every 45 seconds"),
    ],
)
def test_intervals_in_the_largest_whole_unit(every, period, text):
    assert schedules.interval_text(every=every, period=period) == text


NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)  # 20:00 in Shanghai


class At(TzAwareCrontab):
    """A crontab whose clock stands at ``NOW``."""

    def nowfunc(self):
        return NOW.astimezone(self.tz)


@pytest.mark.parametrize(
    "last_run_at", [None, datetime(2026, 12, 4, 17, 0, 3, tzinfo=UTC)], ids=["never", "last night"]
)
def test_the_next_run_of_a_daily_crontab_is_the_next_time_of_day_in_its_zone(last_run_at):
    zone = ZoneInfo(SHANGHAI)
    schedule = At(minute="0", hour="1", tz=zone)
    due = schedules.next_run(schedule, last_run_at=last_run_at, now=NOW)
    assert due == datetime(2026, 12, 6, 1, 0, tzinfo=zone)


def test_an_overdue_task_is_due_now_not_in_the_past():
    now = NOW
    schedule = At(minute="0", hour="1", tz=ZoneInfo("UTC"))
    long_ago = datetime(2026, 11, 1, 1, 0, tzinfo=UTC)
    assert schedules.next_run(schedule, last_run_at=long_ago, now=now) == now


# --- The page ---------------------------------------------------------------------------


@pytest.fixture
def scheduler(client, user_with_role):
    user = user_with_role("Schedulers", username="sam")
    client.force_login(user)
    return user


@pytest.fixture
def one_am(db):
    return CrontabSchedule.objects.create(minute="0", hour="1", timezone=SHANGHAI)


@pytest.fixture
def account_sync(one_am):
    return PeriodicTask.objects.create(
        name="Account sync", task="syncjobs.sync_accounts_all", crontab=one_am
    )


@pytest.mark.django_db
def test_the_list_reads_the_schedule_next_and_last_run(client, scheduler, account_sync):
    PeriodicTask.objects.filter(pk=account_sync.pk).update(
        last_run_at=datetime(2026, 12, 4, 17, 0, 5, tzinfo=UTC)
    )
    content = client.get(LIST).content.decode()
    assert "daily at 01:00 (Asia/Shanghai)" in content
    assert "m/h/dM/MY/d" not in content
    # The last run to the second with its zone, and the runs it made behind a link.
    assert "2026-12-04 17:00:05 UTC" in content
    assert 'href="/admin/syncjobs/run/?kind=accounts"' in content
    changelist = client.get(LIST).context["cl"]
    row = changelist.result_list[0]
    due = changelist.model_admin.next_run(row)
    assert due.endswith("UTC")
    assert due[:10] >= timezone.now().date().isoformat()


@pytest.mark.django_db
def test_the_runs_link_lists_the_runs_of_the_tasks_kind(client, scheduler, account_sync):
    from tests.syncjobs.factories import RunFactory

    mine = RunFactory(kind="accounts")
    RunFactory(kind="capacity")
    response = client.get("/admin/syncjobs/run/?kind=accounts")
    assert [run.pk for run in response.context["cl"].result_list] == [mine.pk]


@pytest.mark.django_db
def test_a_disabled_task_has_no_next_run(client, scheduler, account_sync):
    PeriodicTask.objects.filter(pk=account_sync.pk).update(enabled=False)
    assert "— (disabled)" in client.get(LIST).content.decode()


@pytest.mark.django_db
def test_the_change_page_shows_the_task_and_the_time_in_place(client, scheduler, account_sync):
    response = client.get(f"{LIST}{account_sync.pk}/change/")
    form = response.context["adminform"].form
    assert form.initial["task"] == "syncjobs.sync_accounts_all"
    assert (form.initial["repeat"], form.initial["at"]) == ("daily", time(1, 0))
    content = response.content.decode()
    assert '<option value="syncjobs.sync_accounts_all" selected>' in content
    assert 'name="crontab"' not in content  # no crontab popup
    assert "Asia/Shanghai" in content


def change_form(task, **fields):
    return {
        "name": task.name,
        "task": task.task,
        "enabled": "on",
        "description": "",
        "repeat": "daily",
        "at": "01:00",
        "every_minutes": "",
        "cron": "",
        "kwargs": task.kwargs,
        **fields,
    }


@pytest.mark.django_db
def test_changing_the_time_in_place_leaves_shared_crontabs_alone(
    client, scheduler, account_sync, one_am
):
    other = PeriodicTask.objects.create(
        name="Classification statistics",
        task="syncjobs.classification_statistics",
        crontab=one_am,
    )
    response = client.post(
        f"{LIST}{account_sync.pk}/change/", change_form(account_sync, at="02:30")
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    account_sync.refresh_from_db()
    assert (account_sync.crontab.hour, account_sync.crontab.minute) == ("2", "30")
    assert str(account_sync.crontab.timezone) == SHANGHAI
    other.refresh_from_db()
    assert other.crontab_id == one_am.pk
    one_am.refresh_from_db()
    assert (one_am.hour, one_am.minute) == ("1", "0")


@pytest.mark.django_db
def test_an_existing_schedule_is_reused(client, scheduler, account_sync):
    half_past_two = CrontabSchedule.objects.create(minute="30", hour="2", timezone=SHANGHAI)
    count = CrontabSchedule.objects.count()
    client.post(f"{LIST}{account_sync.pk}/change/", change_form(account_sync, at="02:30"))
    account_sync.refresh_from_db()
    assert account_sync.crontab_id == half_past_two.pk
    assert CrontabSchedule.objects.count() == count


@pytest.mark.django_db
def test_every_few_minutes_and_cron_replace_the_other_schedule(client, scheduler, account_sync):
    client.post(
        f"{LIST}{account_sync.pk}/change/",
        change_form(account_sync, repeat="interval", every_minutes="5"),
    )
    account_sync.refresh_from_db()
    assert account_sync.crontab_id is None
    assert (account_sync.interval.every, account_sync.interval.period) == (
        300,
        IntervalSchedule.SECONDS,
    )
    client.post(
        f"{LIST}{account_sync.pk}/change/",
        change_form(account_sync, repeat="cron", cron="30 2 * * 1"),
    )
    account_sync.refresh_from_db()
    assert account_sync.interval_id is None
    assert account_sync.crontab.day_of_week == "1"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"at": ""}, "at"),
        ({"at": "25:00"}, "at"),
        ({"repeat": "interval", "every_minutes": "0"}, "every_minutes"),
        ({"repeat": "cron", "cron": "1 2 3"}, "cron"),
        ({"repeat": "cron", "cron": "99 2 * * *"}, "cron"),
        ({"repeat": "cron", "cron": "* * * * *\x00"}, "cron"),
    ],
)
def test_an_impossible_schedule_is_refused_on_its_field(
    client, scheduler, account_sync, fields, field
):
    response = client.post(f"{LIST}{account_sync.pk}/change/", change_form(account_sync, **fields))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    account_sync.refresh_from_db()
    assert (account_sync.crontab.hour, account_sync.crontab.minute) == ("1", "0")


@pytest.mark.django_db
def test_a_reader_sees_the_schedule_but_cannot_change_it(client, account_sync):
    reader = UserFactory(username="reader", is_staff=True)
    reader.user_permissions.add(Permission.objects.get(codename="view_periodictask"))
    client.force_login(reader)
    response = client.get(f"{LIST}{account_sync.pk}/change/")
    assert response.status_code == 200
    assert 'name="at"' not in response.content.decode()
    assert "daily at 01:00 (Asia/Shanghai)" in response.content.decode()
    assert "Repeats" not in response.content.decode()
    assert "daily at 01:00" in client.get(LIST).content.decode()
    response = client.post(
        f"{LIST}{account_sync.pk}/change/", change_form(account_sync, at="02:30")
    )
    assert response.status_code == 403


# --- Run now ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_run_now_names_the_manual_run_and_links_to_it(
    client, scheduler, account_sync, django_capture_on_commit_callbacks
):
    InstanceFactory()
    with (
        mock.patch.object(celery_app, "send_task") as send_task,
        mock.patch.object(tasks.run_item, "apply_async"),
    ):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                LIST,
                {"action": "run_tasks", ACTION_CHECKBOX_NAME: [account_sync.pk], "index": 0},
                follow=True,
            )
        ((name,), call) = send_task.call_args
        assert name == "syncjobs.sync_accounts_all"
        task_id = call["task_id"]
        # The worker receives the task under the id the message links to.
        tasks.sync_accounts_all.apply(kwargs=call["kwargs"], task_id=task_id)
    message = str(next(iter(response.context["messages"])))
    assert "Account sync was sent to the workers as a manual run by sam" in message
    assert f'href="/admin/syncjobs/run/?task_id={task_id}"' in message
    run = Run.objects.get()
    assert (run.task_id, run.trigger, run.requested_by) == (task_id, "manual", scheduler)
    listed = client.get(f"/admin/syncjobs/run/?task_id={task_id}").context["cl"].result_list
    assert [r.pk for r in listed] == [run.pk]
    assert json.loads(account_sync.kwargs or "{}") == {}

"""Periodic tasks as a hostile Scheduler edits and runs them: no task outside WhaleFall's
schedulable ones, no argument that destroys history or forges who asked (issue 12, item 4)."""

import json
from datetime import timedelta
from unittest import mock

import pytest
from auditlog.models import LogEntry
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from syncjobs import services, tasks
from syncjobs.models import Run, RunStatus
from tests.factories import UserFactory
from tests.inventory.factories import InstanceFactory
from tests.syncjobs.factories import RunFactory
from whalefall.celery import app as celery_app

pytestmark = pytest.mark.django_db

LIST = "/admin/django_celery_beat/periodictask/"


@pytest.fixture
def every_minute():
    return IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)


@pytest.fixture
def scheduler(client, user_with_role):
    user = user_with_role("Schedulers", username="sam")
    client.force_login(user)
    return user


@pytest.fixture
def sent():
    """What "Run selected tasks" hands to the broker."""
    with mock.patch.object(celery_app, "send_task") as send_task:
        yield send_task


def add_form(every_minute, **fields):
    """The schedule page's form, running the task every ``every_minute`` interval."""
    return {
        "name": "hostile",
        "task": "",
        "enabled": "on",
        "description": "",
        "repeat": "interval",
        "every_minutes": every_minute.every // 60,
        "kwargs": "{}",
        **fields,
    }


def post_action(client, action, tasks_):
    return client.post(
        LIST, {"action": action, ACTION_CHECKBOX_NAME: [t.pk for t in tasks_], "index": 0}
    )


# --- Storing ----------------------------------------------------------------------------


HOSTILE = {
    "purge everything": ("syncjobs.purge_runs", {"older_than_days": 0}),
    "purge negative": ("syncjobs.purge_runs", {"older_than_days": -5}),
    "purge as text": ("syncjobs.purge_runs", {"older_than_days": "0"}),
    "forged requester": ("syncjobs.sync_accounts_all", {"user_id": 1}),
    "forged run-now requester": ("syncjobs.collect_capacity_all", {"requested_by_id": 1}),
    "internal task": ("syncjobs.run_item", {"item_id": 1}),
    "celery internals": ("celery.chord_unlock", {}),
    "not ours": ("os.system", {}),
    "unknown argument": ("syncjobs.reap_runs", {"minutes": 0}),
    "ids as text": ("syncjobs.sync_accounts_instance", {"instance_ids": "1,2"}),
    "missing ids": ("syncjobs.collect_capacity_instances", {}),
    "bad day": ("syncjobs.classification_statistics", {"day": "2024-02-30"}),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_no_path_stores_a_hostile_periodic_task(every_minute, case):
    task, kwargs = HOSTILE[case]
    with pytest.raises(ValidationError):
        PeriodicTask.objects.create(
            name=case, task=task, kwargs=json.dumps(kwargs), interval=every_minute
        )
    assert not PeriodicTask.objects.filter(name=case).exists()


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_the_admin_form_refuses_a_hostile_periodic_task(client, scheduler, every_minute, case):
    task, kwargs = HOSTILE[case]
    response = client.post(
        f"{LIST}add/", add_form(every_minute, task=task, kwargs=json.dumps(kwargs))
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert not PeriodicTask.objects.filter(name="hostile").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("args", "[0]"), ("headers", '{"user_id": 1}'), ("kwargs", "[1]"), ("kwargs", "x" * 70000)],
)
def test_positional_arguments_headers_and_oversized_json_are_refused(every_minute, field, value):
    with pytest.raises(ValidationError):
        PeriodicTask.objects.create(
            name="odd", task="syncjobs.reap_runs", interval=every_minute, **{field: value}
        )


def test_deeply_nested_json_is_a_clear_refusal(every_minute):
    with pytest.raises(ValidationError):
        PeriodicTask.objects.create(
            name="deep",
            task="syncjobs.sync_accounts_instance",
            kwargs='{"instance_ids": ' + "[" * 30000 + "]" * 30000 + "}",
            interval=every_minute,
        )


def test_a_schedulers_valid_task_is_stored(client, scheduler, every_minute):
    response = client.post(
        f"{LIST}add/",
        add_form(every_minute, task="syncjobs.purge_runs", kwargs='{"older_than_days": 90}'),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    task = PeriodicTask.objects.get(name="hostile")
    assert (task.task, json.loads(task.kwargs)) == ("syncjobs.purge_runs", {"older_than_days": 90})
    assert LogEntry.objects.get_for_object(task).get().actor == scheduler


def test_the_task_choices_are_the_schedulable_tasks(client, scheduler):
    content = client.get(f"{LIST}add/").content.decode()
    assert 'value="syncjobs.purge_runs"' in content
    assert 'value="syncjobs.run_item"' not in content


# --- The floor holds whoever purges -----------------------------------------------------


def test_no_purge_deletes_runs_younger_than_the_floor(settings):
    recent = RunFactory(status=RunStatus.SUCCEEDED, finished_at=timezone.now() - timedelta(days=2))
    Run.objects.filter(pk=recent.pk).update(created_at=timezone.now() - timedelta(days=2))
    with pytest.raises(ValueError, match="WHALEFALL_RUN_RETENTION_MIN_DAYS"):
        services.runs_purge(older_than_days=0)
    with pytest.raises(ValueError, match="refusing to purge"):
        tasks.purge_runs.apply(kwargs={"older_than_days": 1}, throw=True)
    assert Run.objects.filter(pk=recent.pk).exists()


# --- "Run selected tasks" ---------------------------------------------------------------


@pytest.fixture
def account_sync(every_minute):
    return PeriodicTask.objects.create(
        name="Account sync now and then", task="syncjobs.sync_accounts_all", interval=every_minute
    )


def test_run_now_records_the_person_who_pressed_it(
    client, scheduler, account_sync, sent, django_capture_on_commit_callbacks
):
    instances = InstanceFactory.create_batch(2)
    with mock.patch.object(tasks.run_item, "apply_async"):
        with django_capture_on_commit_callbacks(execute=True):
            response = post_action(client, "run_tasks", [account_sync])
        assert response.status_code == 302
        ((name,), call) = sent.call_args
        assert name == "syncjobs.sync_accounts_all"
        assert call["kwargs"] == {"requested_by_id": scheduler.pk}
        # What the worker then does with it:
        tasks.sync_accounts_all.apply(kwargs=call["kwargs"])
    run = Run.objects.get()
    assert (run.trigger, run.requested_by) == ("manual", scheduler)
    # The job keeps the schedule's scope, not the presser's (a Scheduler sees no instance).
    assert set(run.items.values_list("instance_id", flat=True)) == {i.pk for i in instances}
    entry = LogEntry.objects.get_for_object(account_sync).filter(action=LogEntry.Action.ACCESS)
    assert entry.get().actor == scheduler
    assert entry.get().changes_dict["run_now"] == ["", "sam"]


def test_a_stored_user_id_cannot_forge_the_requester(
    client, scheduler, account_sync, sent, django_capture_on_commit_callbacks
):
    """A row written before the rules (or behind the ORM's back) names an administrator."""
    admin = UserFactory(username="root", is_superuser=True)
    PeriodicTask.objects.filter(pk=account_sync.pk).update(kwargs=json.dumps({"user_id": admin.pk}))
    with django_capture_on_commit_callbacks(execute=True):
        post_action(client, "run_tasks", [account_sync])
    sent.assert_not_called()
    assert not Run.objects.exists()
    assert not LogEntry.objects.filter(actor=scheduler, action=LogEntry.Action.ACCESS).exists()


def test_a_stored_destructive_purge_is_not_run_now(
    client, scheduler, every_minute, sent, django_capture_on_commit_callbacks
):
    purge = PeriodicTask.objects.create(
        name="purge", task="syncjobs.purge_runs", interval=every_minute
    )
    PeriodicTask.objects.filter(pk=purge.pk).update(kwargs='{"older_than_days": 0}')
    with django_capture_on_commit_callbacks(execute=True):
        post_action(client, "run_tasks", [purge])
    sent.assert_not_called()


def test_running_or_toggling_needs_the_change_permission(
    client, account_sync, sent, django_capture_on_commit_callbacks
):
    reader = UserFactory(username="reader")
    reader.user_permissions.add(Permission.objects.get(codename="view_periodictask"))
    client.force_login(reader)
    with django_capture_on_commit_callbacks(execute=True):
        for action in ("run_tasks", "disable_tasks", "toggle_tasks"):
            post_action(client, action, [account_sync])
    sent.assert_not_called()
    assert PeriodicTask.objects.get(pk=account_sync.pk).enabled


def test_enabling_and_disabling_are_audited(client, scheduler, account_sync):
    post_action(client, "disable_tasks", [account_sync])
    assert not PeriodicTask.objects.get(pk=account_sync.pk).enabled
    post_action(client, "toggle_tasks", [account_sync])
    assert PeriodicTask.objects.get(pk=account_sync.pk).enabled
    changes = [
        e.changes_dict.get("enabled")
        for e in LogEntry.objects.get_for_object(account_sync).order_by("pk")
    ]
    assert changes[-2:] == [["True", "False"], ["False", "True"]]


def test_an_unschedulable_task_is_disabled_but_never_enabled(client, scheduler, account_sync):
    PeriodicTask.objects.filter(pk=account_sync.pk).update(kwargs='{"user_id": 1}')
    post_action(client, "disable_tasks", [account_sync])
    assert not PeriodicTask.objects.get(pk=account_sync.pk).enabled
    post_action(client, "enable_tasks", [account_sync])
    assert not PeriodicTask.objects.get(pk=account_sync.pk).enabled


# --- Beat and bootstrap -----------------------------------------------------------------


def test_beat_never_sends_an_unschedulable_task(account_sync):
    from django.conf import settings
    from kombu.utils import symbol_by_name

    PeriodicTask.objects.filter(pk=account_sync.pk).update(kwargs='{"user_id": 1}')
    scheduler_class = symbol_by_name(settings.CELERY_BEAT_SCHEDULER)
    with mock.patch.object(scheduler_class, "setup_schedule"):
        beat = scheduler_class(app=celery_app, lazy=True)
    assert account_sync.name not in beat.all_as_schedule()
    assert not PeriodicTask.objects.get(pk=account_sync.pk).enabled


def test_bootstrap_disables_unschedulable_tasks_and_keeps_the_rest(account_sync, every_minute):
    from django.core.management import call_command

    forged = PeriodicTask.objects.create(
        name="forged", task="syncjobs.collect_capacity_all", interval=every_minute
    )
    PeriodicTask.objects.filter(pk=forged.pk).update(kwargs='{"user_id": 1}')
    call_command("bootstrap", stdout=mock.MagicMock())
    assert not PeriodicTask.objects.get(pk=forged.pk).enabled
    assert PeriodicTask.objects.get(pk=account_sync.pk).enabled
    assert LogEntry.objects.get_for_object(forged).filter(action=LogEntry.Action.UPDATE).exists()

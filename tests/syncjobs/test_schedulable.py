"""The schedulable tasks and their argument rules (``syncjobs.schedulable``)."""

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from hypothesis import given, settings
from hypothesis import strategies as st

from syncjobs import tasks
from syncjobs.schedulable import SCHEDULABLE, problems
from syncjobs.services import DEFAULT_SCHEDULE, schedule_install_defaults
from whalefall.celery import app as celery_app


def ok(task, **kwargs) -> bool:
    return problems(task=task, args="[]", kwargs=json.dumps(kwargs)) == {}


def test_every_schedulable_task_exists_under_its_name():
    celery_app.loader.import_default_modules()
    for name in SCHEDULABLE:
        assert name in celery_app.tasks, name


def test_every_task_that_records_the_requester_takes_it():
    import inspect

    celery_app.loader.import_default_modules()
    for name, spec in SCHEDULABLE.items():
        if spec.records_requester:
            task = celery_app.tasks[name]
            assert "requested_by_id" in inspect.signature(task.run).parameters, name


def test_the_task_signatures_take_every_schedulable_argument():
    import inspect

    celery_app.loader.import_default_modules()
    for name, spec in SCHEDULABLE.items():
        parameters = inspect.signature(celery_app.tasks[name].run).parameters
        assert set(spec.arguments) <= set(parameters), name


def test_the_default_schedule_is_schedulable():
    for job in DEFAULT_SCHEDULE:
        assert problems(task=job.task, args="[]", kwargs=json.dumps(job.kwargs or {})) == {}


@pytest.mark.django_db
def test_bootstrap_stores_the_default_schedule():
    assert len(schedule_install_defaults()) == len(DEFAULT_SCHEDULE)


@pytest.mark.django_db
def test_beat_does_not_install_backend_cleanup():
    """WhaleFall keeps no task results: beat's result-cleaning entry is neither created nor
    accepted (the schedule page lists only WhaleFall's jobs)."""
    from syncjobs.beat import Scheduler

    scheduler = Scheduler(app=celery_app, lazy=True)
    scheduler.install_default_entries({})
    assert not PeriodicTask.objects.filter(task="celery.backend_cleanup").exists()
    assert "task" in problems(task="celery.backend_cleanup", args="[]", kwargs="{}")


@pytest.mark.parametrize(
    ("task", "kwargs"),
    [
        ("syncjobs.purge_runs", {"older_than_days": 30}),
        ("syncjobs.purge_runs", {}),
        ("syncjobs.sync_accounts_instance", {"instance_ids": [1, 2, 3]}),
        ("syncjobs.classify_instances", {}),
        ("syncjobs.aggregate_capacity", {"current": True, "day": "2024-05-22"}),
        ("syncjobs.classification_statistics", {"day": "2024-02-29"}),
    ],
)
def test_valid_arguments_pass(task, kwargs):
    assert ok(task, **kwargs)


@pytest.mark.parametrize(
    ("task", "kwargs"),
    [
        ("syncjobs.purge_runs", {"older_than_days": 29}),
        ("syncjobs.purge_runs", {"older_than_days": True}),
        ("syncjobs.purge_runs", {"older_than_days": 30.0}),
        ("syncjobs.purge_runs", {"older_than_days": 10**9}),
        ("syncjobs.sync_accounts_instance", {"instance_ids": []}),
        ("syncjobs.sync_accounts_instance", {"instance_ids": [1, 1]}),
        ("syncjobs.sync_accounts_instance", {"instance_ids": [0]}),
        ("syncjobs.sync_accounts_instance", {"instance_ids": [True]}),
        ("syncjobs.sync_accounts_instance", {"instance_ids": list(range(1, 1002))}),
        ("syncjobs.aggregate_capacity", {"current": "yes"}),
        ("syncjobs.aggregate_capacity", {"day": "20240522"}),
        ("syncjobs.aggregate_capacity", {"day": "1999-12-31"}),
        ("syncjobs.aggregate_capacity", {"day": "2024-W21-3"}),
        ("syncjobs.aggregate_capacity", {"user_id": 1}),
        ("syncjobs.reap_runs", {"requested_by_id": 1}),
    ],
)
def test_invalid_arguments_are_refused(task, kwargs):
    assert not ok(task, **kwargs)


def test_the_floor_comes_from_the_settings(settings):
    settings.WHALEFALL_RUN_RETENTION_MIN_DAYS = 90
    assert not ok("syncjobs.purge_runs", older_than_days=60)
    assert (
        "90"
        in problems(task="syncjobs.purge_runs", args="[]", kwargs='{"older_than_days": 60}')[
            "kwargs"
        ][0]
    )


def test_a_day_in_the_future_is_refused():
    later = (timezone.localdate() + timedelta(days=3)).isoformat()
    assert not ok("syncjobs.classification_statistics", day=later)


def test_a_duplicated_name_is_refused_not_read_as_the_last_one():
    found = problems(
        task="syncjobs.purge_runs",
        args="[]",
        kwargs='{"older_than_days": 90, "older_than_days": 0}',
    )
    assert "kwargs" in found


def test_the_messages_say_what_is_wrong():
    found = problems(task="os.system", args="[1]", kwargs='{"user_id": 1}', headers='{"a": 1}')
    assert set(found) == {"task", "args", "kwargs", "headers"}
    assert "Run selected tasks" in found["kwargs"][0]


def test_the_purge_task_runs_at_the_floor(monkeypatch):
    calls = []
    monkeypatch.setattr(tasks.services, "runs_purge", lambda **kw: calls.append(kw))
    tasks.purge_runs.apply(kwargs={"older_than_days": 30})
    assert calls == [{"older_than_days": 30}]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5)
    ),
    max_leaves=20,
)
KWARGS = st.dictionaries(
    st.sampled_from(
        sorted({name for spec in SCHEDULABLE.values() for name in spec.arguments} | {"user_id"})
    )
    | st.text(max_size=15),
    JSON,
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(task=st.sampled_from(sorted(SCHEDULABLE)) | st.text(max_size=30), kwargs=KWARGS)
def test_any_json_gives_problems_or_arguments_the_task_takes(task, kwargs):
    started = time.perf_counter()
    found = problems(task=task, args="[]", kwargs=json.dumps(kwargs))
    assert time.perf_counter() - started < 1
    if not found:
        spec = SCHEDULABLE[task]
        assert set(kwargs) <= set(spec.arguments)
        assert spec.required <= set(kwargs)
        assert all(spec.arguments[name](value) is None for name, value in kwargs.items())


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_any_text_in_any_field_is_a_finding_or_fine_never_an_error(text):
    for field in ("args", "kwargs", "headers"):
        fields = {"args": "[]", "kwargs": "{}", "headers": "{}", field: text}
        problems(task="syncjobs.reap_runs", **fields)

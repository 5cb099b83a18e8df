"""Redis stopped or frozen: the admin keeps working and signed-in people stay signed in,
and an action that needs the task queue says so and leaves no run, item or lock behind."""

import time
import uuid

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.utils import timezone

from syncjobs import services
from syncjobs.models import ItemStatus, Run, RunItem, RunStatus, WorkLock
from tests import workers
from tests.factories import PASSWORD
from tests.inventory.factories import InstanceFactory
from tests.syncjobs.factories import RunFactory, RunItemFactory
from whalefall.celery import app as celery_app

pytestmark = pytest.mark.django_db(databases=["default", "events"], transaction=True)

UNAVAILABLE = "The task queue is unavailable; nothing was started."


def sign_in(client, user) -> None:
    response = client.post(
        "/admin/login/?next=/admin/", {"username": user.username, "password": PASSWORD}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == "/admin/"


def start_action(client, action, *instances):
    return client.post(
        "/admin/inventory/instance/",
        {"action": action, ACTION_CHECKBOX_NAME: [i.pk for i in instances], "index": 0},
        follow=True,
    )


def nothing_started() -> None:
    assert not Run.objects.exists()
    assert not RunItem.objects.exists()
    assert not WorkLock.objects.exists()


def test_the_admin_keeps_working_and_sessions_survive_while_redis_is_down(
    client, admin_user, redis
):
    sign_in(client, admin_user)
    instance = InstanceFactory(name="still-listed")
    redis.stop()

    assert client.get("/admin/").status_code == 200
    page = client.get("/admin/inventory/instance/")
    assert page.status_code == 200
    assert "still-listed" in page.content.decode()
    detailed = client.get("/health/detailed")
    assert detailed.status_code == 200
    assert detailed.json()["checks"]["broker"]["ok"] is False

    # Signing in works too, and the session outlives the outage.
    other = client.__class__()
    sign_in(other, admin_user)
    redis.start()
    for person in (client, other):
        assert person.get("/admin/").status_code == 200
    assert instance.pk


@pytest.mark.parametrize("action", ["sync_accounts_now", "collect_capacity_now",
                                    "classify_accounts_now"])  # fmt: skip
def test_an_action_needing_the_queue_starts_nothing_while_redis_is_stopped(
    client, admin_user, redis, action
):
    instance = InstanceFactory()
    sign_in(client, admin_user)
    redis.stop()
    response = start_action(client, action, instance)
    assert response.status_code == 200
    assert UNAVAILABLE in response.content.decode()
    nothing_started()


def test_an_action_answers_quickly_and_starts_nothing_while_redis_is_frozen(
    client, admin_user, redis
):
    instance = InstanceFactory()
    sign_in(client, admin_user)
    redis.freeze()
    started = time.monotonic()
    response = start_action(client, "sync_accounts_now", instance)
    assert time.monotonic() - started < 3
    assert UNAVAILABLE in response.content.decode()
    nothing_started()
    redis.thaw()


def test_run_again_and_run_now_start_nothing_while_redis_is_stopped(client, admin_user, redis):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    failed = RunFactory(status=RunStatus.FAILED, finished_at=timezone.now())
    RunItemFactory(run=failed, status=ItemStatus.FAILED, finished_at=timezone.now())
    every = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS)
    task = PeriodicTask.objects.create(
        name="hourly sync", task="syncjobs.sync_accounts_all", interval=every
    )
    sign_in(client, admin_user)
    redis.stop()

    response = client.post(f"/admin/syncjobs/run/{failed.pk}/rerun/", follow=True)
    assert UNAVAILABLE in response.content.decode()
    assert list(Run.objects.values_list("pk", flat=True)) == [failed.pk]

    response = client.post(
        "/admin/django_celery_beat/periodictask/",
        {"action": "run_tasks", ACTION_CHECKBOX_NAME: [task.pk], "index": 0},
        follow=True,
    )
    assert UNAVAILABLE in response.content.decode()
    assert list(Run.objects.values_list("pk", flat=True)) == [failed.pk]
    assert not WorkLock.objects.exists()


def test_a_broker_lost_between_the_check_and_the_send_fails_the_run_with_the_reason(
    client, admin_user, redis, monkeypatch
):
    instances = InstanceFactory.create_batch(2)
    sign_in(client, admin_user)
    monkeypatch.setattr(services, "queue_check", lambda: None)  # it answered a moment ago
    redis.stop()

    response = start_action(client, "sync_accounts_now", *instances)

    run = Run.objects.get()
    assert f"Run #{run.pk} could not be queued and has failed." in response.content.decode()
    assert run.status == RunStatus.FAILED
    items = list(run.items.all())
    assert {item.status for item in items} == {ItemStatus.FAILED}
    assert all(item.error.startswith("could not be queued: ") for item in items)
    assert not WorkLock.objects.exists()


@pytest.fixture
def private_queue(settings):
    """What this process sends goes to a queue of the test's own (no task is routed)."""
    settings.WHALEFALL_TASK_QUEUES = {}
    settings.WHALEFALL_RUN_KIND_QUEUES = {}
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = f"fault-runs-{uuid.uuid4().hex[:8]}"
    yield celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = previous


def test_once_redis_is_back_a_real_worker_runs_what_is_started(
    client, admin_user, redis, private_queue, tmp_path
):
    queue = private_queue
    instances = InstanceFactory.create_batch(2)
    sign_in(client, admin_user)
    redis.stop()
    assert UNAVAILABLE in start_action(client, "sync_accounts_now", *instances).content.decode()
    nothing_started()

    redis.start()
    with workers.worker(
        "tests.syncjobs.worker_app", queue, tmp_path / "worker.log", REDIS_URL=f"{redis.url}/0"
    ) as log:
        response = start_action(client, "sync_accounts_now", *instances)
        assert "queued" in response.content.decode()
        deadline = time.monotonic() + 60
        run = Run.objects.get()
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if run.status == RunStatus.SUCCEEDED:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the run did not finish:\n" + log.read_text()[-4000:])
    assert Run.objects.count() == 1
    assert run.items_succeeded == 2
    assert not WorkLock.objects.exists()

"""Queues: every task is routed by name to its queue; a run's items follow the run's kind;
beat's entries, workers in compose and the local worker agree with the routes."""

from pathlib import Path
from unittest import mock

import pytest
import yaml
from celery import shared_task
from django.conf import settings
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from syncjobs import services
from syncjobs.beat import Scheduler
from syncjobs.management.commands.run_local import Command as RunLocal
from syncjobs.models import RunKind
from tests.inventory.factories import InstanceFactory
from whalefall.celery import app as celery_app

BASE_DIR = Path(__file__).resolve().parents[2]

EXPECTED = {
    "accounts": {
        "syncjobs.sync_accounts_all",
        "syncjobs.sync_accounts_instance",
        "syncjobs.classify_instances",
        "syncjobs.run_item",
        "syncjobs.run_items_send",
    },
    "capacity": {
        "syncjobs.collect_capacity_all",
        "syncjobs.collect_capacity_instances",
        "syncjobs.aggregate_capacity",
        "syncjobs.maintain_partitions",
    },
    "maintenance": {
        "syncjobs.classification_statistics",
        "syncjobs.reap_runs",
        "syncjobs.purge_runs",
        "whalefall.beat_heartbeat",
        "whalefall.purge_events",
        "alerts.dispatch_events",
        "alerts.send_delivery",
        "alerts.send_digests",
        "alerts.purge",
        "celery.backend_cleanup",
    },
}


def queue_of(name: str, kwargs: dict | None = None, options: dict | None = None) -> str:
    """The queue Celery sends ``name`` to, as the producer decides it."""
    routed = celery_app.amqp.router.route(dict(options or {}), name, (), kwargs or {})
    return routed["queue"].name


def project_tasks() -> set[str]:
    """Every task the workers know, but Celery's own (save the one beat installs)."""
    celery_app.loader.import_default_modules()
    return {
        name
        for name in celery_app.tasks
        if not name.startswith("celery.") or name == "celery.backend_cleanup"
    }


def unrouted(names) -> set[str]:
    return {name for name in names if name not in settings.WHALEFALL_TASK_QUEUES}


def test_every_task_is_routed_by_name_to_its_queue():
    names = project_tasks()
    assert names == set().union(*EXPECTED.values()), "a task was added or removed: route it"
    assert not unrouted(names)
    for queue, tasks in EXPECTED.items():
        for name in tasks:
            assert queue_of(name) == queue, name


def test_a_new_task_without_a_route_is_caught():
    @shared_task(name="syncjobs.brand_new_task")
    def brand_new_task():
        return None

    try:
        assert unrouted(project_tasks()) == {"syncjobs.brand_new_task"}
        # Without the check it would run wherever the default queue is consumed.
        assert queue_of("syncjobs.brand_new_task") == settings.CELERY_TASK_DEFAULT_QUEUE
    finally:
        celery_app.tasks.pop("syncjobs.brand_new_task", None)


def test_only_the_three_queues_are_used():
    assert set(settings.WHALEFALL_QUEUES) == set(EXPECTED)
    assert set(settings.WHALEFALL_TASK_QUEUES.values()) <= set(settings.WHALEFALL_QUEUES)
    assert set(settings.WHALEFALL_RUN_KIND_QUEUES.values()) <= set(settings.WHALEFALL_QUEUES)
    assert settings.CELERY_TASK_DEFAULT_QUEUE in settings.WHALEFALL_QUEUES


def test_every_run_kind_has_a_queue_for_its_items():
    assert set(settings.WHALEFALL_RUN_KIND_QUEUES) == set(RunKind.values)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "queue"),
    [
        (RunKind.ACCOUNTS, "accounts"),
        (RunKind.CLASSIFICATION, "accounts"),
        (RunKind.CAPACITY, "capacity"),
    ],
)
def test_the_items_of_a_run_go_to_the_queue_of_its_kind(
    kind, queue, unsent_items, django_capture_on_commit_callbacks
):
    instances = InstanceFactory.create_batch(2)
    with django_capture_on_commit_callbacks(execute=True):
        run = services.run_create(
            kind=kind, trigger="manual", instance_ids=[i.pk for i in instances]
        )
    sent = [call.kwargs["kwargs"] for call in unsent_items.call_args_list]
    assert len(sent) == 2
    assert {item["run_id"] for item in sent} == {run.pk}
    assert {queue_of("syncjobs.run_item", kwargs=item) for item in sent} == {queue}


@pytest.mark.parametrize(
    ("kind", "queue"),
    [("accounts", "accounts"), ("classification", "accounts"), ("capacity", "capacity")],
)
def test_the_chunks_of_a_large_run_go_to_the_queue_of_its_kind(kind, queue):
    chunk = {"run_id": 1, "kind": kind, "items": [[1, 2]]}
    assert queue_of("syncjobs.run_items_send", kwargs=chunk) == queue


def test_an_item_sent_without_its_kind_goes_to_the_accounts_queue():
    assert queue_of("syncjobs.run_item", kwargs={"item_id": 1}) == "accounts"


def test_an_explicit_queue_wins_over_the_route():
    assert queue_of("syncjobs.collect_capacity_all", options={"queue": "elsewhere"}) == "elsewhere"


@pytest.mark.django_db
def test_beat_sends_every_default_entry_to_its_queue():
    call_command("bootstrap", verbosity=0)
    # The entries beat's scheduler builds from the stored tasks, with their send options.
    entries = [
        Scheduler.Entry(task, app=celery_app) for task in PeriodicTask.objects.filter(enabled=True)
    ]
    assert {entry.task for entry in entries} == {job.task for job in services.DEFAULT_SCHEDULE}
    for entry in entries:
        expected = next(q for q, tasks in EXPECTED.items() if entry.task in tasks)
        assert queue_of(entry.task, entry.kwargs, entry.options) == expected, entry.task
    assert queue_of("syncjobs.sync_accounts_all") != queue_of("syncjobs.collect_capacity_all")


@pytest.mark.django_db
def test_run_now_of_a_scheduled_job_follows_the_route(admin_user):
    call_command("bootstrap", verbosity=0)
    with (
        mock.patch.object(services, "queue_check"),
        mock.patch.object(celery_app, "send_task") as send_task,
        mock.patch("django.db.transaction.on_commit", side_effect=lambda f, **_kw: f()),
    ):
        services.periodic_tasks_run_now(
            periodic_tasks=PeriodicTask.objects.filter(task="syncjobs.collect_capacity_all"),
            user=admin_user,
        )
    (call,) = send_task.call_args_list
    assert call.args == ("syncjobs.collect_capacity_all",)
    assert queue_of(call.args[0], call.kwargs["kwargs"], {"queue": call.kwargs["queue"]}) == (
        "capacity"
    )


def test_compose_runs_one_scalable_worker_service_per_queue():
    compose = yaml.safe_load((BASE_DIR / "compose.yaml").read_text())
    consumed = {}
    for name, service in compose["services"].items():
        command = service.get("command") or []
        if command[:4] == ["celery", "-A", "whalefall", "worker"]:
            queues = command[command.index("-Q") + 1].split(",")
            assert "container_name" not in service, f"{name} could not be scaled"
            for queue in queues:
                consumed.setdefault(queue, []).append(name)
    assert consumed == {q: [f"worker-{q}"] for q in settings.WHALEFALL_QUEUES}


def test_web_and_workers_share_the_metrics_directory():
    compose = yaml.safe_load((BASE_DIR / "compose.yaml").read_text())
    for name in ("web", *(f"worker-{q}" for q in settings.WHALEFALL_QUEUES)):
        service = compose["services"][name]
        directory = service["environment"]["PROMETHEUS_MULTIPROC_DIR"]
        assert f"metrics:{directory}" in service["volumes"], name


def test_the_local_worker_consumes_every_queue(tmp_path, settings):
    settings.PROMETHEUS_MULTIPROC_DIR = str(tmp_path / "metrics")
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "counter_old-1.db").write_bytes(b"stale")
    commands, env = RunLocal.commands(addr="127.0.0.1:8000", concurrency=2)
    worker = commands["worker"]
    assert worker[worker.index("--queues") + 1].split(",") == list(settings.WHALEFALL_QUEUES)
    assert env["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path / "metrics")
    assert not list((tmp_path / "metrics").iterdir()), "a previous run's files are removed"

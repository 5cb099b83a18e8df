"""Run items under faults, with a real worker: the database going away while an item
writes, task messages the broker lost, and a worker killed mid-item.

Each test starts its own redis-server (the broker) and worker, and for the database outage
its own PostgreSQL cluster holding a copy of the test database; the timeouts the reaper
uses are shrunk to seconds.
"""

import os
import signal
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import psycopg
import pytest
from django.db import connection

from syncjobs import services
from syncjobs.models import ItemStatus, Run, RunItem, RunStatus, WorkLock
from tests import workers
from tests.faults import servers
from tests.inventory.factories import InstanceFactory
from whalefall.celery import app as celery_app

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases="__all__")]

WAIT = 30.0
QUEUE = f"faults-items-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def broker():
    with servers.redis() as redis:
        yield redis


@pytest.fixture
def gate(tmp_path):
    path = tmp_path / "gate"
    path.mkdir()
    return path


@contextmanager
def worker(log: Path, *, broker, gate: Path, **env: str):
    """A worker of ``run_items_worker`` on ``broker``; killed (SIGKILL) when done."""
    settings_env = workers.process_env(
        WHALEFALL_E2E_QUEUE=QUEUE,
        WHALEFALL_FAULT_GATE=str(gate),
        REDIS_URL=broker.url,
        WHALEFALL_ITEM_HEARTBEAT_INTERVAL="1",
        WHALEFALL_RUN_RETRY_DELAY="1",
    )
    settings_env.update(env)
    process = workers.start_celery(
        ["-A", "tests.faults.run_items_worker", "worker", "--loglevel", "INFO",
         "--concurrency", "1", "--queues", QUEUE, "--without-gossip", "--without-mingle"],
        settings_env,
        log,
    )  # fmt: skip
    try:
        yield process
    finally:
        kill(process)


def kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def new_run(*instances) -> Run:
    """A run whose items' messages are sent by the test (or lost)."""
    with mock.patch.object(services, "_items_enqueue"):
        return services.run_create(
            kind=Run.Kind.ACCOUNTS,
            trigger=Run.Trigger.MANUAL,
            instance_ids=[i.pk for i in instances],
        )


def send(item: RunItem, broker) -> None:
    with celery_app.connection_for_write(broker.url) as conn:
        celery_app.send_task(
            "syncjobs.run_item",
            kwargs={"item_id": item.pk, "run_id": item.run_id, "instance_id": item.instance_id},
            queue=QUEUE,
            connection=conn,
        )


def wait_until(condition, what: str, log: Path, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.1)
    pytest.fail(f"{what} within {timeout}s:\n" + log.read_text()[-4000:])


def files(gate: Path, prefix: str) -> list[Path]:
    return sorted(gate.glob(f"{prefix}-*"))


# --- Database outage during the write phase ------------------------------------------


@pytest.fixture
def own_database(tmp_path):
    """A PostgreSQL cluster of this test's own."""
    with servers.postgres() as server:
        yield server


def copy_test_database(server) -> str:
    db = connection.settings_dict
    name = "wf_copy"
    server.psql(f"CREATE DATABASE {name}")
    dump = subprocess.run(
        [servers.postgres_bin("pg_dump"), "-h", db["HOST"], "-p", str(db["PORT"]), "-U",
         db["USER"], "--no-owner", "--no-privileges", db["NAME"]],
        capture_output=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    subprocess.run(
        [servers.postgres_bin("psql"), "-h", "127.0.0.1", "-p", str(server.port), "-U",
         "postgres", "-d", name, "-X", "-q", "-v", "ON_ERROR_STOP=1"],
        input=dump, capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    return name


def rows(url: str, sql: str, *params) -> list[tuple]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        return conn.execute(sql, params).fetchall()


def test_a_database_outage_while_an_item_writes_is_retried_once_the_database_is_back(
    broker, gate, own_database, tmp_path
):
    server = own_database
    instance = InstanceFactory()
    item = new_run(instance).items.get()
    database = copy_test_database(server)
    log = tmp_path / "worker.log"
    url = f"postgres://postgres@127.0.0.1:{server.port}/{database}"
    with worker(log, broker=broker, gate=gate, DATABASE_URL=url, WHALEFALL_RUN_ITEM_RETRIES="5"):
        send(item, broker)
        wait_until(lambda: files(gate, "started"), "the item did not start", log)

        # The remote reading is done; the database goes away before the item writes.
        server.stop()
        (gate / "go").touch()
        wait_until(lambda: "Retry in" in log.read_text(), "no retry", log)
        server.start()

        def finished():
            found = rows(url, "SELECT status FROM syncjobs_run WHERE id = %s", item.run_id)
            return found and found[0][0] not in {"queued", "running"}

        wait_until(finished, "the run did not finish", log)

    [[status, attempts, error, created, unchanged]] = rows(
        url,
        "SELECT status, attempts, error, created_count, unchanged_count "
        "FROM syncjobs_runitem WHERE id = %s",
        item.pk,
    )
    assert (status, error, created, unchanged) == ("succeeded", "", 2, 5)
    assert attempts >= 2
    assert rows(
        url, "SELECT status, items_succeeded FROM syncjobs_run WHERE id = %s", item.run_id
    ) == [("succeeded", 1)]
    assert rows(url, "SELECT count(*) FROM syncjobs_worklock") == [(0,)]
    assert files(gate, "written")  # the work was done again, once the database was back
    assert "run_item_not_pending" not in log.read_text()


def test_a_database_outage_on_the_last_attempt_fails_the_item_with_its_reason(
    broker, gate, own_database, tmp_path
):
    server = own_database
    item = new_run(InstanceFactory()).items.get()
    database = copy_test_database(server)
    log = tmp_path / "worker.log"
    url = f"postgres://postgres@127.0.0.1:{server.port}/{database}"
    with worker(log, broker=broker, gate=gate, DATABASE_URL=url, WHALEFALL_RUN_ITEM_RETRIES="0"):
        send(item, broker)
        wait_until(lambda: files(gate, "started"), "the item did not start", log)
        server.stop()
        (gate / "go").touch()
        wait_until(lambda: "run_item_write_retried" in log.read_text(), "no write retried", log)
        server.start()

        def finished():
            found = rows(url, "SELECT status FROM syncjobs_run WHERE id = %s", item.run_id)
            return found and found[0][0] not in {"queued", "running"}

        wait_until(finished, "the run did not finish", log)

    [[status, error]] = rows(
        url, "SELECT status, error FROM syncjobs_runitem WHERE id = %s", item.pk
    )
    assert status == "failed"
    assert error.startswith(("OperationalError", "InterfaceError")), error
    assert rows(url, "SELECT status FROM syncjobs_run WHERE id = %s", item.run_id) == [("failed",)]
    assert rows(url, "SELECT count(*) FROM syncjobs_worklock") == [(0,)]
    assert not files(gate, "written")


# --- Lost task messages -------------------------------------------------------------


def test_pending_items_whose_message_was_lost_are_failed_and_the_run_closed(
    broker, gate, tmp_path, settings
):
    settings.WHALEFALL_PENDING_ITEM_TIMEOUT = 2
    sent_to, lost_to = InstanceFactory.create_batch(2)
    run = new_run(sent_to, lost_to)
    items = {item.instance_id: item for item in run.items.all()}
    (gate / "go").touch()
    log = tmp_path / "worker.log"
    with worker(log, broker=broker, gate=gate):
        send(items[sent_to.pk], broker)  # the other item's message is lost
        wait_until(
            lambda: RunItem.objects.filter(
                pk=items[sent_to.pk].pk, status=ItemStatus.SUCCEEDED
            ).exists(),
            "the sent item did not run",
            log,
        )
        # The workers just worked: a message may still be on its way.
        assert services.runs_reap() == 0
        time.sleep(2.2)
        assert services.runs_reap() == 1

    lost = RunItem.objects.get(pk=items[lost_to.pk].pk)
    assert lost.status == ItemStatus.FAILED
    assert lost.error.startswith("its task message never reached a worker")
    done = RunItem.objects.get(pk=items[sent_to.pk].pk)
    assert (done.status, done.created_count, done.unchanged_count) == (ItemStatus.SUCCEEDED, 2, 5)
    run.refresh_from_db()
    assert run.status == RunStatus.PARTIALLY_FAILED
    assert (run.items_succeeded, run.items_failed, run.removed_count) == (1, 1, 0)
    assert not WorkLock.objects.exists()


# --- Worker killed mid-item ----------------------------------------------------------


def test_an_item_whose_worker_was_killed_is_failed_within_the_heartbeat_timeout(
    broker, gate, tmp_path, settings
):
    settings.WHALEFALL_ITEM_HEARTBEAT_TIMEOUT = 3
    instance = InstanceFactory()
    item = new_run(instance).items.get()
    log = tmp_path / "worker.log"
    with worker(log, broker=broker, gate=gate) as process:
        send(item, broker)
        wait_until(lambda: files(gate, "started"), "the item did not start", log)
        first = RunItem.objects.get(pk=item.pk).heartbeat_at
        # It proves it is alive while it works (the gate never opens), so it is not reaped.
        wait_until(
            lambda: RunItem.objects.get(pk=item.pk).heartbeat_at > first, "no heartbeat", log
        )
        time.sleep(3.5)
        assert services.runs_reap() == 0
        assert WorkLock.objects.filter(holder_id=item.pk).exists()
        kill(process)
        killed_at = time.monotonic()

    def reaped():
        return services.runs_reap()

    wait_until(reaped, "the dead item was not reaped", log, timeout=10)
    assert time.monotonic() - killed_at < 10
    item.refresh_from_db()
    assert item.status == ItemStatus.FAILED
    assert item.error == "worker stopped responding (no heartbeat for 3 seconds)"
    assert (item.created_count, item.removed_count) == (0, 0)
    assert not WorkLock.objects.exists()
    run = Run.objects.get(pk=item.run_id)
    assert run.status == RunStatus.FAILED
    assert not files(gate, "written")

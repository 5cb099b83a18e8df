"""Estate-scale simulation (SPEC §11, "Run of 10 000 instances").

Registers N instances (default 10 000) served by a fake engine — 50 accounts and 20
databases each, every remote round trip (connect included) sleeping 50 ms — and measures a
scheduled account sync and a capacity collection of the whole estate with 1, 2 and 4 real
Celery worker processes on the local Redis:

* run creation and enqueue time (``run_start``, what the scheduled task calls);
* per item, from hooks in the workers: time in the engine (connect and queries), time in the
  write (the rest of the handler: canonical forms, diff and the set-based writes), and the
  orchestration overhead (the task's time outside the handler: claim, lock, heartbeat,
  counters, alerts, finalising the run); main-database statements per item, split the same
  way;
* end-to-end time (run created → run finished) and the peak number of connections to the
  main database (``pg_stat_activity`` sampled every 100 ms).

The fake engine is the real engine interface (``inventory.engines.base.Engine``): the
benchmark and its worker processes point the ``mysql`` entry of the engine registry at it,
so nothing in the product's code paths changes and every instance still goes through the
outbound guard, the credential decryption, ``connect()`` and ``Engine.run``.

Usage::

    .venv/bin/python benchmarks/estate.py [--instances 10000] [--workers 1,2,4]
        [--threads 24] [--latency 0.05]
    .venv/bin/python benchmarks/estate.py --drop

It uses its own main database ``whalefall_estate`` on the local PostgreSQL (created and
migrated when missing) and Redis database 12 (``--redis-db``) as the broker, which it
empties before each measured run; ``--drop`` removes the database. Instances beyond
``--instances`` are made inactive, so one estate serves every size.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATABASE = "whalefall_estate"
DEFAULT_REDIS_DB = 12
ACCOUNTS_PER_INSTANCE = 50
DATABASES_PER_INSTANCE = 20
STATS_DIR = (
    Path(os.environ.get("WHALEFALL_ESTATE_STATS", tempfile.gettempdir())) / "whalefall-estate"
)


def _environment(redis_db: int, latency: float) -> None:
    sys.path.insert(0, str(BASE_DIR))
    os.environ.update(
        DJANGO_ENV="test",
        WHALEFALL_ENV_FILE="",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
        REDIS_URL=f"redis://127.0.0.1:6379/{redis_db}",
        DJANGO_SETTINGS_MODULE="whalefall.settings",
        WHALEFALL_ESTATE_LATENCY=str(latency),
    )
    os.environ.setdefault("LOG_LEVEL", "WARNING")


# --- The fake engine --------------------------------------------------------------------


def fake_engine_register() -> None:
    """Serve every ``mysql`` instance with :class:`EstateEngine`, in this process only."""
    from inventory.engines import base

    base.ENGINE_CLASSES["mysql"] = "estate.EstateEngine"


def _engine_class():
    from inventory.engines.base import (
        AccountRecord,
        DatabaseRecord,
        DatabaseSize,
        Engine,
        EngineFailure,
        VersionInfo,
        parse_version,
    )

    latency = float(os.environ.get("WHALEFALL_ESTATE_LATENCY", "0.05"))

    class EstateEngine(Engine):
        """A MySQL-shaped server at the other end of a slow network: every round trip
        (connecting too) takes ``latency`` seconds; its accounts and databases are fixed."""

        name = "mysql"

        def _round_trip(self) -> None:
            started = time.perf_counter()
            time.sleep(latency)
            ENGINE_SECONDS.add(time.perf_counter() - started)

        def open(self) -> None:
            self._round_trip()

        def close(self) -> None:
            pass

        def fetch_version(self) -> str:
            with self.remote():
                self._round_trip()
            return "8.0.36-estate"

        @classmethod
        def parse_version(cls, raw: str) -> VersionInfo:
            return parse_version(raw, r"(\d+)\.(\d+)(?:\.(\d+))?", 3)

        def classify(self, exc: BaseException):
            return EngineFailure

        def list_accounts(self) -> list[AccountRecord]:
            with self.remote():
                self._round_trip()
            return [
                AccountRecord(name=f"app{n:02d}", host="%") for n in range(ACCOUNTS_PER_INSTANCE)
            ]

        def collect_privileges(self, accounts, *, deep: bool = False) -> dict:
            with self.remote():
                self._round_trip()
            return {
                account.key: {
                    "engine": "mysql",
                    "attributes": {"plugin": "caching_sha2_password", "locked": False},
                    "roles": [],
                    "grants": [
                        {
                            "scope": "database",
                            "object": f"shop{n % 4}",
                            "privilege": p,
                            "option": "",
                        }
                        for p in ("SELECT", "INSERT", "UPDATE")
                    ]
                    + [{"scope": "global", "object": "", "privilege": "USAGE", "option": ""}],
                }
                for n, account in enumerate(accounts)
            }

        def list_databases(self) -> list[DatabaseRecord]:
            with self.remote():
                self._round_trip()
            return [DatabaseRecord(name=f"shop{n:02d}") for n in range(DATABASES_PER_INSTANCE)]

        def database_sizes(self, names) -> list[DatabaseSize]:
            with self.remote():
                self._round_trip()
            return [
                DatabaseSize(name=name, data_bytes=(n + 1) * 10_000_000, log_bytes=0)
                for n, name in enumerate(names)
            ]

    return EstateEngine


class _ThreadSeconds(threading.local):
    """Seconds spent in the engine by the task running on this thread."""

    value = 0.0

    def add(self, seconds: float) -> None:
        self.value += seconds


ENGINE_SECONDS = _ThreadSeconds()


def __getattr__(name: str):
    # ``estate.EstateEngine`` is built on first use, once Django is set up.
    if name == "EstateEngine":
        engine = _engine_class()
        globals()["EstateEngine"] = engine
        return engine
    raise AttributeError(name)


# --- Worker side ------------------------------------------------------------------------


def worker_main(name: str, threads: int, queues: str) -> None:
    """A Celery worker with the fake engine and per-item instrumentation."""
    import django

    django.setup()
    fake_engine_register()
    _instrument_worker(name)
    from whalefall.celery import app

    app.worker_main(
        [
            "worker",
            "--loglevel",
            "WARNING",
            "--pool",
            "threads",
            "--concurrency",
            str(threads),
            "--queues",
            queues,
            "--hostname",
            f"{name}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )


def _instrument_worker(name: str) -> None:
    """Time every run item (task, handler, engine) and count its main-database statements,
    appending one JSON line per item to the worker's stats file."""
    from importlib import import_module

    from celery import signals
    from django.db import connection

    from syncjobs import services

    STATS_DIR.mkdir(parents=True, exist_ok=True)
    out = (STATS_DIR / f"{name}.jsonl").open("a", buffering=1)
    lock = threading.Lock()
    state = threading.local()

    def counting(execute, sql, params, many, context):
        if getattr(state, "in_handler", False):
            state.handler_statements += 1
        else:
            state.other_statements += 1
        return execute(sql, params, many, context)

    def timed(handler):
        def wrapper(**kwargs):
            state.in_handler = True
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                return handler(**kwargs)
            finally:
                state.handler_seconds += time.perf_counter() - started
                state.handler_cpu += time.thread_time() - cpu
                state.in_handler = False

        return wrapper

    for path in {services.RUN_HANDLERS[k] for k in ("accounts", "capacity")}:
        module_name, attribute = path.rsplit(".", 1)
        module = import_module(module_name)
        setattr(module, attribute, timed(getattr(module, attribute)))

    @signals.task_prerun.connect(weak=False)
    def _started(task=None, kwargs=None, **_kw):
        if task is None or task.name != "syncjobs.run_item":
            return
        state.started, state.cpu = time.perf_counter(), time.thread_time()
        state.handler_seconds = state.handler_cpu = 0.0
        state.handler_statements = state.other_statements = 0
        state.in_handler = False
        ENGINE_SECONDS.value = 0.0
        connection.execute_wrappers.append(counting)

    @signals.task_postrun.connect(weak=False)
    def _finished(task=None, kwargs=None, **_kw):
        if task is None or task.name != "syncjobs.run_item" or not hasattr(state, "started"):
            return
        if counting in connection.execute_wrappers:
            connection.execute_wrappers.remove(counting)
        total = time.perf_counter() - state.started
        cpu = time.thread_time() - state.cpu
        engine = ENGINE_SECONDS.value
        line = {
            "kind": (kwargs or {}).get("kind"),
            "run_id": (kwargs or {}).get("run_id"),
            "total": total,
            "engine": engine,
            "write": state.handler_seconds - engine,
            "orchestration": total - state.handler_seconds,
            # CPU time of this thread alone: the wall figure also holds waits for the GIL
            # and for the database while other threads of the process run.
            "orchestration_cpu": cpu - state.handler_cpu,
            "handler_statements": state.handler_statements,
            "other_statements": state.other_statements,
        }
        with lock:
            out.write(json.dumps(line) + "\n")
        del state.started


# --- Benchmark side ---------------------------------------------------------------------


def database_ready(*, drop: bool = False) -> None:
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True
    ) as c:
        exists = c.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone()
        if drop:
            c.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
            return
        if not exists:
            c.execute(f"CREATE DATABASE {DATABASE}")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def estate_ensure(count: int) -> float:
    """Exactly ``count`` active instances of the fake engine (created set-based once)."""
    from inventory.models import Credential, Instance

    started = time.perf_counter()
    credential = Credential.objects.filter(name="estate-monitor").first()
    if credential is None:
        credential = Credential(name="estate-monitor", username="monitor", engine="mysql")
        credential.set_secret("estate-monitor-secret-1")
        credential.save()
    have = Instance.objects.filter(name__startswith="estate-").count()
    Instance.objects.bulk_create(
        [
            Instance(
                name=f"estate-{n:05d}",
                engine="mysql",
                host="127.0.0.1",
                port=3306,
                credential=credential,
            )
            for n in range(have, count)
        ],
        batch_size=2000,
    )
    names = [f"estate-{n:05d}" for n in range(count)]
    Instance.objects.filter(name__startswith="estate-").exclude(name__in=names).update(
        is_active=False
    )
    Instance.objects.filter(name__in=names).update(is_active=True)
    Instance.objects.exclude(name__startswith="estate-").update(is_active=False)
    return time.perf_counter() - started


def leftovers_clear() -> int:
    """Close what an interrupted benchmark left behind in its own database: runs still
    active (cancelled) and the work locks their items held, which would make the next run
    skip those instances."""
    from django.utils import timezone

    from syncjobs.models import ItemStatus, Run, RunItem, RunStatus, WorkLock

    active = Run.objects.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
    now = timezone.now()
    RunItem.objects.filter(
        run__in=active, status__in=[ItemStatus.PENDING, ItemStatus.RUNNING]
    ).update(status=ItemStatus.CANCELLED, finished_at=now)
    closed = active.update(status=RunStatus.CANCELLED, finished_at=now)
    WorkLock.objects.all().delete()
    return closed


def _queues() -> str:
    from django.conf import settings

    names = set(getattr(settings, "WHALEFALL_QUEUES", ()))
    names.add(getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", None) or "celery")
    return ",".join(sorted(names))


def _broker_flush() -> None:
    """Empty this benchmark's own Redis database (never the default one)."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    db = client.connection_pool.connection_kwargs.get("db", 0)
    if db == 0:
        raise SystemExit("refusing to flush Redis database 0")
    client.flushdb()


class ConnectionSampler(threading.Thread):
    """The peak number of sessions on the benchmark database, sampled every 100 ms."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres") as conn:
            conn.autocommit = True
            while not self.stop.wait(0.1):
                (count,) = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [DATABASE]
                ).fetchone()
                self.peak = max(self.peak, count)


def _start_workers(count: int, threads: int, tag: str, latency: float, redis_db: int):
    logs = STATS_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    processes = []
    for n in range(count):
        name = f"{tag}-w{n}"
        processes.append(
            subprocess.Popen(  # noqa: S603  this very script, with our own arguments
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    name,
                    "--threads",
                    str(threads),
                    "--latency",
                    str(latency),
                    "--redis-db",
                    str(redis_db),
                ],
                cwd=BASE_DIR,
                stdout=(logs / f"{name}.log").open("w"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    from whalefall.celery import app

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0) or []
        if len(replies) >= count:
            return processes
    _stop_workers(processes)
    raise SystemExit(f"workers did not start; see {logs}")


def _stop_workers(processes) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _item_stats(run_id: int) -> list[dict]:
    rows = []
    for path in STATS_DIR.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row["run_id"] == run_id:
                rows.append(row)
    return rows


def measure_run(kind: str, *, workers: int, threads: int, latency: float, redis_db: int) -> dict:
    """One whole-estate run of ``kind`` with ``workers`` worker processes."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from syncjobs import services
    from syncjobs.models import RunStatus

    _broker_flush()
    processes = _start_workers(
        workers, threads, f"{kind}-{workers}-{time.time_ns()}", latency, redis_db
    )
    sampler = ConnectionSampler()
    sampler.start()
    try:
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as creation:
            run = services.run_start(kind=kind, trigger="scheduled")
        created = time.perf_counter() - started
        terminal = {
            RunStatus.SUCCEEDED,
            RunStatus.PARTIALLY_FAILED,
            RunStatus.FAILED,
            RunStatus.CANCELLED,
        }
        while True:
            time.sleep(0.2)
            run.refresh_from_db()
            if run.status in terminal:
                break
        end_to_end = time.perf_counter() - started
    finally:
        sampler.stop.set()
        sampler.join()
        _stop_workers(processes)
    items = _item_stats(run.pk)
    return {
        "kind": kind,
        "workers": workers,
        "threads": threads,
        "items": run.items_total,
        "status": run.status,
        "succeeded": run.items_succeeded,
        "create_enqueue_s": created,
        "creation_statements": len(creation.captured_queries),
        "end_to_end_s": end_to_end,
        "items_per_s": run.items_total / end_to_end if end_to_end else 0.0,
        "engine_ms": _mean(items, "engine") * 1000,
        "write_ms": _mean(items, "write") * 1000,
        "orchestration_ms": _mean(items, "orchestration") * 1000,
        "orchestration_p95_ms": _p95(items, "orchestration") * 1000,
        "orchestration_cpu_ms": _mean(items, "orchestration_cpu") * 1000,
        "statements_handler": _mean(items, "handler_statements"),
        "statements_orchestration": _mean(items, "other_statements"),
        "peak_connections": sampler.peak,
        "measured_items": len(items),
    }


def measure_enqueue(kind: str) -> dict:
    """Create and enqueue a run with no worker listening, then throw it away."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from syncjobs import services
    from syncjobs.models import Run

    _broker_flush()
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as creation:
        run = services.run_start(kind=kind, trigger="scheduled")
    created = time.perf_counter() - started
    items = run.items_total
    Run.objects.filter(pk=run.pk).delete()
    _broker_flush()
    return {
        "kind": kind,
        "items": items,
        "create_enqueue_s": created,
        "statements": len(creation.captured_queries),
    }


def _mean(rows: list[dict], key: str) -> float:
    return statistics.fmean(r[key] for r in rows) if rows else float("nan")


def _p95(rows: list[dict], key: str) -> float:
    values = sorted(r[key] for r in rows)
    return values[int(0.95 * (len(values) - 1))] if values else float("nan")


def _print_runs(results: list[dict]) -> None:
    header = (
        f"{'run':<9}{'workers':>8}{'items':>7}{'create+enq s':>13}{'end-to-end s':>13}"
        f"{'items/s':>9}{'engine ms':>10}{'write ms':>9}{'orch ms':>8}{'orch p95':>9}"
        f"{'orch cpu':>9}{'stmts h/o':>11}{'peak conn':>10}  status"
    )
    print(header)
    for r in results:
        print(
            f"{r['kind']:<9}{r['workers']:>8}{r['items']:>7}{r['create_enqueue_s']:>13.2f}"
            f"{r['end_to_end_s']:>13.1f}{r['items_per_s']:>9.1f}{r['engine_ms']:>10.1f}"
            f"{r['write_ms']:>9.1f}{r['orchestration_ms']:>8.1f}"
            f"{r['orchestration_p95_ms']:>9.1f}{r['orchestration_cpu_ms']:>9.1f}"
            f"{r['statements_handler']:>6.1f}/{r['statements_orchestration']:<4.1f}"
            f"{r['peak_connections']:>10}  {r['status']} ({r['succeeded']} ok,"
            f" {r['measured_items']} timed)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--workers", default="1,2,4", help="worker process counts to measure")
    parser.add_argument("--threads", type=int, default=24, help="threads per worker process")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per round trip")
    parser.add_argument("--redis-db", type=int, default=DEFAULT_REDIS_DB)
    parser.add_argument("--kinds", default="accounts,capacity")
    parser.add_argument(
        "--enqueue-only",
        action="store_true",
        help="measure run creation and enqueueing only (no workers)",
    )
    parser.add_argument("--drop", action="store_true", help="drop the benchmark database")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.redis_db == 0:
        parser.error("--redis-db must not be 0, the shared default database")
    _environment(args.redis_db, args.latency)
    if args.worker:
        import django

        django.setup()
        worker_main(args.worker, args.threads, _queues())
        return
    database_ready(drop=args.drop)
    if args.drop:
        print(f"dropped {DATABASE}")
        return
    fake_engine_register()
    if closed := leftovers_clear():
        print(f"cancelled {closed} run(s) an interrupted benchmark left open")
    kinds = args.kinds.split(",")
    seconds = estate_ensure(args.instances)
    print(
        f"estate: {args.instances} active instances ({seconds:.1f} s to prepare), "
        f"{args.latency * 1000:.0f} ms per round trip, broker redis db {args.redis_db}"
    )

    print("\nrun creation and enqueue (budget < 5 s for 10 000 items):")
    for kind in kinds:
        r = measure_enqueue(kind)
        print(
            f"  {kind:<9} {r['items']:>6} items  {r['create_enqueue_s']:6.2f} s"
            f"  {r['statements']} statements"
        )
    if args.enqueue_only:
        return

    for path in STATS_DIR.glob("*.jsonl"):
        path.unlink()
    counts = [int(n) for n in args.workers.split(",")]
    from inventory.models import Instance

    # What a kind's first sync creates; an instance without it has not been synced yet.
    created_by = {"accounts": "accounts", "capacity": "databases"}
    estate = Instance.objects.filter(name__startswith="estate-", is_active=True)
    unsynced = [
        kind for kind in kinds if estate.filter(**{f"{created_by[kind]}__isnull": True}).exists()
    ]
    if unsynced:
        # The measured runs must all be re-syncs: a first sync also creates every account.
        print(f"\nfirst sync (creates the accounts and databases), {max(counts)} workers:")
        first = [
            measure_run(
                kind,
                workers=max(counts),
                threads=args.threads,
                latency=args.latency,
                redis_db=args.redis_db,
            )
            for kind in unsynced
        ]
        _print_runs(first)
    print("\nscheduled runs, nothing changed on the instances:")
    results = []
    for workers in counts:
        for kind in kinds:
            results.append(
                measure_run(
                    kind,
                    workers=workers,
                    threads=args.threads,
                    latency=args.latency,
                    redis_db=args.redis_db,
                )
            )
            _print_runs(results[-1:])
    print()
    _print_runs(results)
    print("\nspeed-up over 1 worker (end-to-end):")
    for kind in kinds:
        runs = {r["workers"]: r["end_to_end_s"] for r in results if r["kind"] == kind}
        base = runs.get(min(runs))
        print(
            "  "
            + kind
            + ": "
            + ", ".join(f"{w} → {base / s:.2f}x" for w, s in sorted(runs.items()))
        )
    print("\norchestration overhead per item (budget < 10 ms), mean of each run:")
    for r in results:
        print(
            f"  {r['kind']:<9} {r['workers']} workers of {r['threads']} threads,"
            f" {r['items']} items: {r['orchestration_cpu_ms']:.1f} ms CPU,"
            f" {r['orchestration_ms']:.1f} ms wall"
        )
    print(
        "  CPU is what an item's orchestration costs a worker (and so its throughput);\n"
        "  wall adds the main database's round trips and, with more threads than cores,\n"
        "  the wait for a core."
    )


if __name__ == "__main__":
    # The engine registry imports "estate.EstateEngine": let it find this very module.
    sys.modules.setdefault("estate", sys.modules[__name__])
    main()

"""Capacity benchmark: 10 000 databases x 1 000 days of samples (SPEC §7, §11).

Builds, once, an estate of 200 instances x 50 databases (names ``wfcap-…``) with one size
sample per database and per instance per day for 1 000 days (10⁷ database samples), written
server-side into the monthly partitions (``INSERT … SELECT … FROM generate_series``, one
statement per month); the databases' latest sizes and the instance capacities match the last
day. Later runs reuse it, topping it up to today when days have passed. Then it measures:

a. the database ledger page (``/admin/capacity/database/``) as a superuser through the full
   middleware stack: server time, SQL time and query count; also page 2, the sort by size
   and one instance; for reference, a deep page and a changelist of a dozen rows (the
   admin's fixed cost on the machine, in the same run);
b. the naive "latest sample per database" queries over the sample table (GROUP BY/max join,
   DISTINCT ON, window function), side by side with the ledger's SQL;
c. the aggregation of one quarter (and, for reference, a week and a month);
d. the 90-day trend chart page of one instance with 50 databases;
e. writing one day's samples for 10 000 databases with ``samples_upsert`` (a new day, then
   overwriting an existing day);
f. a collection of the local MariaDB and PostgreSQL, each with 200 extra small databases
   (``wfcapb_…``, kept for re-runs): first run and re-run.

Usage::

    DJANGO_ENV=test .venv/bin/python benchmarks/capacity.py [--repeat 30] [--skip-naive]
        [--skip-collect] [--explain]
    DJANGO_ENV=test .venv/bin/python benchmarks/capacity.py --drop

``--drop`` removes everything the benchmark created: the ``wfcapb_…`` databases and the
``wfcapb_monitor`` account on MariaDB, the ``wfcapb_…`` databases on PostgreSQL, and the
``wfcap-…``/``wfcapb-…`` instances, credentials, databases, samples and aggregates and the
``wfcap-admin`` user in ``whalefall_bench``.

It uses its own main database ``whalefall_bench`` on the local PostgreSQL (created and
migrated when missing). The generated history (1 000 days) is longer than the default
retention (24 months): do not run the partition maintenance job against ``whalefall_bench``,
it would drop the oldest months.
"""

import argparse
import statistics
import time
from datetime import UTC, date, datetime, timedelta

import MySQLdb
import psycopg
from admin_pages import measure_pages, ms, print_statements, short_sql, timed_sql
from bench_db import django_ready

PREFIX = "wfcap-"  # generated instances and their credential
ADMIN_USER = "wfcap-admin"
REMOTE_PREFIX = "wfcapb_"  # databases created on the local MariaDB and PostgreSQL
COLLECT_PREFIX = "wfcapb-"  # the instances and credentials pointing at them
MONITOR = "wfcapb_monitor"
MONITOR_PASSWORD = "wfcapb-monitor-pass-1"
# Local PostgreSQL trusts 127.0.0.1, so the password is never asked for; a credential
# cannot be saved without a secret (Credential.set_secret refuses an empty one).
POSTGRES_DUMMY_SECRET = "unused-trust-authentication"
ENGINES = ["mysql", "postgresql", "sqlserver", "oracle"]
PORTS = {"mysql": 3306, "postgresql": 5432, "sqlserver": 1433, "oracle": 1521}
EPOCH = date(2020, 1, 1)  # sizes are a function of (database id, days since EPOCH)

# Budgets of SPEC §11, in milliseconds.
LEDGER_PAGE_MS = 50
LEDGER_SQL_MS = 5
CHART_SQL_MS = 30
QUARTER_MS = 2000
WRITE_DAY_MS = 1000

SAMPLES = "capacity_databasesizesample"
INSTANCE_SAMPLES = "capacity_instancesizesample"


# --- Set-up -----------------------------------------------------------------------------


def mariadb():
    return MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)


def postgres():
    return psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True)


def months(start: date, end: date) -> list[tuple[date, date]]:
    """(first, last) day of each calendar month overlapping [start, end], clipped to it."""
    chunks = []
    first = start
    while first <= end:
        following = (first.replace(day=1) + timedelta(days=32)).replace(day=1)
        last = min(end, following - timedelta(days=1))
        chunks.append((first, last))
        first = following
    return chunks


# Size in bytes of database ``x.id`` on day ``x.day``: a per-database base (10 MiB to 20 GiB),
# a per-database daily growth (-320 KiB to +2.2 MiB, so some shrink) and some noise.
_SIZE = """GREATEST(
    1048576,
    10485760 + (x.id * 7919 %% 5000) * 4194304
    + ((x.id * 104729 %% 41) - 5) * 65536 * x.n
    + ((x.id * 31 + x.n * 17) %% 101) * 65536
)"""

_INSERT_DATABASE_SAMPLES = f"""
INSERT INTO {SAMPLES} (database_id, day, total_bytes, data_bytes, log_bytes, collected_at)
SELECT x.id, x.day, v.total,
       CASE WHEN x.engine = 'sqlserver' THEN v.total - v.total / 8 ELSE v.total END,
       CASE WHEN x.engine = 'sqlserver' THEN v.total / 8 END,
       (x.day + TIME '02:00') AT TIME ZONE 'UTC'
FROM (
    SELECT d.id, i.engine, g.day::date AS day, (g.day::date - DATE '{EPOCH}')::bigint AS n
    FROM generate_series(%(start)s::timestamp, %(end)s::timestamp, INTERVAL '1 day') AS g(day)
    CROSS JOIN capacity_database d
    JOIN inventory_instance i ON i.id = d.instance_id
    WHERE d.instance_id = ANY(%(instances)s)
) x
CROSS JOIN LATERAL (SELECT {_SIZE}::bigint AS total) v
ORDER BY x.day, x.id
"""

_INSERT_INSTANCE_SAMPLES = f"""
INSERT INTO {INSTANCE_SAMPLES} (instance_id, day, total_bytes, database_count, collected_at)
SELECT d.instance_id, s.day, SUM(s.total_bytes), COUNT(*), MAX(s.collected_at)
FROM {SAMPLES} s JOIN capacity_database d ON d.id = s.database_id
WHERE s.day BETWEEN %(start)s AND %(end)s AND d.instance_id = ANY(%(instances)s)
GROUP BY d.instance_id, s.day
ORDER BY s.day, d.instance_id
"""

# The latest sizes on the rows, as a collection of the last day would leave them; every
# tenth database and fifth instance gets a capacity limit so the forecast has work to do.
_LATEST_DATABASES = f"""
UPDATE capacity_database d
SET total_bytes = s.total_bytes, data_bytes = s.data_bytes, log_bytes = s.log_bytes,
    collected_at = s.collected_at, last_seen_at = GREATEST(d.first_seen_at, s.collected_at),
    capacity_limit_bytes = CASE WHEN d.id %% 10 = 0 THEN s.total_bytes * 2 END
FROM {SAMPLES} s
WHERE s.database_id = d.id AND s.day = %(end)s AND d.instance_id = ANY(%(instances)s)
"""

_LATEST_INSTANCES = f"""
INSERT INTO capacity_instancecapacity
    (instance_id, total_bytes, database_count, collected_at, capacity_limit_bytes)
SELECT instance_id, total_bytes, database_count, collected_at,
       CASE WHEN instance_id %% 5 = 0 THEN total_bytes * 3 / 2 END
FROM {INSTANCE_SAMPLES}
WHERE day = %(end)s AND instance_id = ANY(%(instances)s)
ON CONFLICT (instance_id) DO UPDATE SET
    total_bytes = EXCLUDED.total_bytes,
    database_count = EXCLUDED.database_count,
    collected_at = EXCLUDED.collected_at,
    capacity_limit_bytes = EXCLUDED.capacity_limit_bytes
"""


def delete_capacity_rows(instance_ids: list[int]) -> None:
    """Every capacity row of these instances, set-based (the ORM cascade would load them)."""
    from django.db import connection

    if not instance_ids:
        return
    databases = "SELECT id FROM capacity_database WHERE instance_id = ANY(%(ids)s)"
    with connection.cursor() as cursor:
        for table in (
            SAMPLES,
            "capacity_databasesizeaggregate",
            "capacity_tablesizesnapshot",
        ):
            cursor.execute(
                f"DELETE FROM {table} WHERE database_id IN ({databases})", {"ids": instance_ids}
            )
        for table in (
            INSTANCE_SAMPLES,
            "capacity_instancesizeaggregate",
            "capacity_instancecapacity",
            "capacity_database",
        ):
            cursor.execute(
                f"DELETE FROM {table} WHERE instance_id = ANY(%(ids)s)", {"ids": instance_ids}
            )


def vacuum_samples() -> None:
    """Hand the space of deleted samples back (truncating emptied partitions), so that
    regenerated data is as compact as daily inserts would leave it."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in (SAMPLES, INSTANCE_SAMPLES):
            cursor.execute(f"VACUUM (FULL) {table}")


def generate_days(instance_ids: list[int], start: date, end: date, expected: int) -> None:
    """Samples of every database and instance for [start, end], one month per statement."""
    from django.db import connection, transaction

    from capacity.partitions import partition_ensure

    params = {"instances": instance_ids}
    for first, last in months(start, end):
        began = time.perf_counter()
        partition_ensure(first)  # before the transaction: it takes a lock on the parent
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_INSERT_DATABASE_SAMPLES, {**params, "start": first, "end": last})
            rows = cursor.rowcount
            cursor.execute(_INSERT_INSTANCE_SAMPLES, {**params, "start": first, "end": last})
        print(
            f"  {first:%Y-%m}: {rows:>9,} database samples in {time.perf_counter() - began:5.1f} s",
            flush=True,
        )
        if rows != expected * ((last - first).days + 1):
            raise RuntimeError(f"{first:%Y-%m}: {rows} samples written, expected more")


def refresh_latest(instance_ids: list[int], end: date) -> None:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        params = {"instances": instance_ids, "end": end}
        cursor.execute(_LATEST_DATABASES, params)
        cursor.execute(_LATEST_INSTANCES, params)
    # As every collection does: the 30-day growth the ledger shows, stored on the rows.
    from capacity.services import database_growth_refresh

    database_growth_refresh(instance_ids=instance_ids, today=end)


def vacuum_analyze() -> None:
    """As autovacuum would eventually leave it: statistics and visibility map up to date."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in (SAMPLES, INSTANCE_SAMPLES, "capacity_database", "inventory_instance"):
            cursor.execute(f"VACUUM (ANALYZE) {table}")
        cursor.execute("ANALYZE capacity_instancecapacity")


def dataset_state(instance_ids: list[int], databases: int) -> tuple[date | None, date | None, bool]:
    """First and last day of the instance samples and whether every day is complete."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT MIN(day), MAX(day), COUNT(*), COALESCE(SUM(database_count), 0)
            FROM {INSTANCE_SAMPLES} WHERE instance_id = ANY(%s)
            """,
            [instance_ids],
        )
        first, last, count, sampled = cursor.fetchone()
    if first is None:
        return None, None, False
    days = (last - first).days + 1
    return first, last, count == days * len(instance_ids) and sampled == days * databases


def ensure_dataset(instances: int, per_instance: int, days: int) -> list[int]:
    """Build (or top up to today) the estate; returns the instance ids."""
    from django.db import connection
    from django.utils import timezone

    from capacity.models import Database
    from inventory.models import Credential, Instance

    today = timezone.localdate()
    wanted_first = today - timedelta(days=days - 1)
    total = instances * per_instance
    ids = list(
        Instance.objects.filter(name__startswith=PREFIX).order_by("pk").values_list("pk", flat=True)
    )
    databases = Database.objects.filter(instance_id__in=ids).count()
    first = last = None
    complete = False
    if len(ids) == instances and databases == total:
        first, last, complete = dataset_state(ids, total)
        if complete:
            with connection.cursor() as cursor:
                # Every database has its sample on the first and last days.
                cursor.execute(
                    f"""
                    SELECT COUNT(*) FROM {SAMPLES} s JOIN capacity_database d
                      ON d.id = s.database_id
                    WHERE s.day = ANY(%s) AND d.instance_id = ANY(%s)
                    """,
                    [[first, last], ids],
                )
                complete = cursor.fetchone()[0] == 2 * total
    if complete and first <= wanted_first and last >= today:
        print(f"reusing {total:,} databases, {first} … {last}")
        return ids

    started = time.perf_counter()
    if complete and first <= wanted_first + timedelta(days=1) and last < today:
        # Days have passed since the last run: add them and trim the oldest.
        print(f"topping up {last + timedelta(days=1)} … {today} …", flush=True)
        generate_days(ids, last + timedelta(days=1), today, total)
        with connection.cursor() as cursor:
            cursor.execute(
                f"""DELETE FROM {SAMPLES} WHERE day < %(first)s AND database_id IN (
                        SELECT id FROM capacity_database WHERE instance_id = ANY(%(ids)s))""",
                {"first": wanted_first, "ids": ids},
            )
            cursor.execute(
                f"DELETE FROM {INSTANCE_SAMPLES} WHERE day < %(first)s "
                "AND instance_id = ANY(%(ids)s)",
                {"first": wanted_first, "ids": ids},
            )
        refresh_latest(ids, today)
        vacuum_analyze()
        print(f"topped up in {time.perf_counter() - started:.1f} s")
        return ids

    print(
        f"generating {instances} instances x {per_instance} databases x {days} days "
        f"({total * days:,} samples; one-time) …",
        flush=True,
    )
    if ids:
        delete_capacity_rows(ids)
        vacuum_samples()
    Instance.objects.filter(pk__in=ids).delete()
    credential, _ = Credential.objects.get_or_create(
        name=f"{PREFIX}bench", defaults={"username": "monitor"}
    )
    if not credential.has_secret:
        credential.set_secret("never-used")
        credential.save()
    Instance.objects.bulk_create(
        [
            Instance(
                name=f"{PREFIX}{n:03d}",
                engine=ENGINES[n % len(ENGINES)],
                host=f"10.77.{n // 250}.{n % 250 + 1}",
                port=PORTS[ENGINES[n % len(ENGINES)]],
                credential=credential,
                environment="production" if n % 3 else "staging",
            )
            for n in range(instances)
        ]
    )
    ids = list(
        Instance.objects.filter(name__startswith=PREFIX).order_by("pk").values_list("pk", flat=True)
    )
    first_seen = datetime.combine(wanted_first, datetime.min.time(), UTC) + timedelta(hours=2)
    Database.objects.bulk_create(
        [
            Database(
                instance_id=pk,
                name=f"app_{n:03d}_db{j:02d}",
                first_seen_at=first_seen,
                last_seen_at=first_seen,
            )
            for n, pk in enumerate(ids)
            for j in range(per_instance)
        ],
        batch_size=5000,
    )
    generate_days(ids, wanted_first, today, total)
    refresh_latest(ids, today)
    analyse_started = time.perf_counter()
    vacuum_analyze()
    print(f"  VACUUM ANALYZE in {time.perf_counter() - analyse_started:.1f} s")
    print(f"generated in {time.perf_counter() - started:.1f} s")
    return ids


# --- Measuring --------------------------------------------------------------------------


def capacity_statement(m: dict):
    """The slowest statement of a page that reads a capacity table."""
    candidates = [q for q in m["statements"] if '"capacity_' in q[1]]
    return max(candidates or m["statements"], key=lambda q: q[0])


def explain(sql: str, params) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        return "\n".join(f"      {row[0]}" for row in cursor.fetchall())


def median_seconds(func, repeat: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        func()
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


NAIVE_LATEST = {
    "GROUP BY max(day) + join": f"""
        SELECT s.database_id, s.day, s.total_bytes
        FROM {SAMPLES} s
        JOIN (SELECT database_id, MAX(day) AS day FROM {SAMPLES} GROUP BY database_id) m
          ON m.database_id = s.database_id AND m.day = s.day
    """,
    "DISTINCT ON (database_id)": f"""
        SELECT DISTINCT ON (database_id) database_id, day, total_bytes
        FROM {SAMPLES} ORDER BY database_id, day DESC
    """,
    "row_number() window": f"""
        SELECT database_id, day, total_bytes FROM (
            SELECT database_id, day, total_bytes,
                   row_number() OVER (PARTITION BY database_id ORDER BY day DESC) AS rn
            FROM {SAMPLES}
        ) t WHERE rn = 1
    """,
}


# --- Collection against the local MariaDB and PostgreSQL --------------------------------


def ensure_remote_databases(count: int) -> None:
    """``count`` small databases on the local MariaDB and PostgreSQL, and the monitor."""
    conn = mariadb()
    cur = conn.cursor()
    cur.execute(f"CREATE USER IF NOT EXISTS '{MONITOR}'@'%' IDENTIFIED BY '{MONITOR_PASSWORD}'")
    cur.execute(f"ALTER USER '{MONITOR}'@'%' IDENTIFIED BY '{MONITOR_PASSWORD}'")
    cur.execute(f"GRANT SHOW VIEW ON *.* TO '{MONITOR}'@'%'")
    cur.execute(f"GRANT SELECT ON mysql.* TO '{MONITOR}'@'%'")
    cur.execute(
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE %s",
        (REMOTE_PREFIX.replace("_", "\\_") + "%",),
    )
    existing = {row[0] for row in cur.fetchall()}
    missing = [f"{REMOTE_PREFIX}{i:03d}" for i in range(count)]
    missing = [name for name in missing if name not in existing]
    if missing:
        print(f"creating {len(missing)} databases on MariaDB (one-time) …", flush=True)
    for name in missing:
        i = int(name[len(REMOTE_PREFIX) :])
        cur.execute(f"CREATE DATABASE `{name}`")
        cur.execute(f"CREATE TABLE `{name}`.items (id INT PRIMARY KEY, note VARCHAR(200))")
        rows = [(n, "x" * (n % 200)) for n in range(i * 5)]
        if rows:
            cur.executemany(f"INSERT INTO `{name}`.items VALUES (%s, %s)", rows)
    conn.close()

    with postgres() as pg:
        existing = {
            row[0]
            for row in pg.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s",
                (REMOTE_PREFIX.replace("_", "\\_") + "%",),
            ).fetchall()
        }
        missing = [f"{REMOTE_PREFIX}{i:03d}" for i in range(count)]
        missing = [name for name in missing if name not in existing]
        if missing:
            print(f"creating {len(missing)} databases on PostgreSQL (one-time) …", flush=True)
        for name in missing:
            pg.execute(f'CREATE DATABASE "{name}"')


def collection_instances():
    """The two instances pointing at the local servers, with no capacity data yet."""
    from inventory.models import Credential, Instance

    specs = [
        ("mariadb", "mysql", 3306, MONITOR, MONITOR_PASSWORD),
        ("postgresql", "postgresql", 5432, "postgres", POSTGRES_DUMMY_SECRET),
    ]
    instances = []
    for label, engine, port, username, secret in specs:
        credential, _ = Credential.objects.get_or_create(
            name=f"{COLLECT_PREFIX}{label}", defaults={"username": username, "engine": engine}
        )
        credential.username = username
        credential.set_secret(secret)
        credential.save()
        instance, _ = Instance.objects.update_or_create(
            name=f"{COLLECT_PREFIX}{label}",
            defaults={
                "engine": engine,
                "host": "127.0.0.1",
                "port": port,
                "credential": credential,
                "is_active": True,
            },
        )
        instances.append(instance)
    delete_capacity_rows([i.pk for i in instances])  # so the first run is a first run
    return instances


def measure_collection(instance, repeat: int) -> dict:
    from capacity.services import _read_sizes, capacity_collect_instance

    first, first_wall, first_timer = timed_sql(capacity_collect_instance, instance=instance)
    again = []
    for _ in range(repeat):
        outcome, wall, timer = timed_sql(capacity_collect_instance, instance=instance)
        again.append((wall, timer, outcome))
    again.sort(key=lambda run: run[0])
    wall, timer, outcome = again[len(again) // 2]
    remote = median_seconds(lambda: _read_sizes(instance), repeat, warmup=0)
    return {
        "first": (first_wall, first_timer, first),
        "again": (wall, timer, outcome),
        "remote": remote,
    }


# --- Drop ---------------------------------------------------------------------------------


def drop_everything() -> None:
    from django.contrib.auth import get_user_model

    from inventory.models import Credential, Instance

    conn = mariadb()
    cur = conn.cursor()
    cur.execute(
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE %s",
        (REMOTE_PREFIX.replace("_", "\\_") + "%",),
    )
    names = [row[0] for row in cur.fetchall()]
    for name in names:
        cur.execute(f"DROP DATABASE `{name}`")
    cur.execute(f"DROP USER IF EXISTS '{MONITOR}'@'%'")
    conn.close()
    print(f"MariaDB: dropped {len(names)} databases and the user {MONITOR}")

    with postgres() as pg:
        names = [
            row[0]
            for row in pg.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s",
                (REMOTE_PREFIX.replace("_", "\\_") + "%",),
            ).fetchall()
        ]
        for name in names:
            pg.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"PostgreSQL: dropped {len(names)} databases")

    instances = Instance.objects.filter(name__startswith=PREFIX) | Instance.objects.filter(
        name__startswith=COLLECT_PREFIX
    )
    ids = list(instances.values_list("pk", flat=True))
    started = time.perf_counter()
    delete_capacity_rows(ids)
    vacuum_samples()
    Instance.objects.filter(pk__in=ids).delete()
    credentials = Credential.objects.filter(name__startswith=PREFIX) | Credential.objects.filter(
        name__startswith=COLLECT_PREFIX
    )
    credentials.delete()
    get_user_model().objects.filter(username=ADMIN_USER).delete()
    print(
        f"whalefall_bench: removed {len(ids)} instances with their capacity data "
        f"in {time.perf_counter() - started:.1f} s"
    )


# --- Main ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--databases-per-instance", type=int, default=50)
    parser.add_argument("--days", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=30, help="Timed runs per page.")
    parser.add_argument("--naive-repeat", type=int, default=3)
    parser.add_argument("--collect-databases", type=int, default=200)
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--skip-collect", action="store_true")
    parser.add_argument(
        "--explain", action="store_true", help="EXPLAIN ANALYZE the slowest query of a miss."
    )
    parser.add_argument(
        "--drop", action="store_true", help="Drop everything the benchmark created, then stop."
    )
    args = parser.parse_args()

    django_ready()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    if args.drop:
        drop_everything()
        return

    from capacity.models import (
        Database,
        DatabaseSizeAggregate,
        DatabaseSizeSample,
        InstanceSizeAggregate,
    )
    from capacity.partitions import partition_ensure, samples_upsert
    from capacity.periods import previous_window
    from capacity.services import aggregates_compute

    started = time.perf_counter()
    ids = ensure_dataset(args.instances, args.databases_per_instance, args.days)
    setup_seconds = time.perf_counter() - started
    total = args.instances * args.databases_per_instance
    today = timezone.localdate()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_size_pretty(SUM(pg_total_relation_size(i.inhrelid))), COUNT(*), "
            "SUM(c.reltuples)::bigint FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [SAMPLES],
        )
        size, partitions, estimate = cursor.fetchone()
    print(
        f"{len(ids)} instances, {total:,} databases, {args.days} days up to {today}: "
        f"sample table {size} in {partitions} partitions (~{estimate:,} rows)"
    )
    results: list[tuple[str, float, float | None, str]] = []  # label, ms, budget ms, unit note

    # a. The ledger and (d) the trend chart, through the full middleware stack.
    user, _ = get_user_model().objects.get_or_create(
        username=ADMIN_USER, defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    # Budgeted: the pages a person lands on. References: a deep page (its OFFSET grows with
    # the page number) and the short crontab schedule changelist, the admin's own fixed cost
    # on this machine in this run.
    pages = {
        "ledger, first page": ("/admin/capacity/database/", True),
        "ledger, page 2": ("/admin/capacity/database/?p=2", True),
        "ledger, sorted by size": ("/admin/capacity/database/?o=4", True),
        "ledger, one instance": (f"/admin/capacity/database/?instance={ids[0]}", True),
        "ledger, page 100 (OFFSET 4 950)": ("/admin/capacity/database/?p=100", False),
        "admin floor: crontab schedules": ("/admin/django_celery_beat/crontabschedule/", False),
    }
    chart_url = f"/admin/capacity/instancecapacity/{ids[0]}/change/"
    measured = measure_pages(
        client, {label: url for label, (url, _) in pages.items()} | {"chart": chart_url},
        args.repeat,
    )  # fmt: skip
    chart = measured.pop("chart")

    print()
    print(f"a. database ledger ({total:,} databases), median of {args.repeat} after a warm-up")
    print(
        f"   {'page':34} {'server ms':>9} {'(best)':>9} {'templates':>9} {'SQL ms':>9} "
        f"{'queries':>7}   budget < {LEDGER_PAGE_MS} ms page, < {LEDGER_SQL_MS} ms SQL"
    )
    for label, m in measured.items():
        budgeted = pages[label][1]
        print(
            f"   {label:34} {ms(m['wall'])} {ms(m['best'])} {ms(m['render'])} {ms(m['sql'])} "
            f"{m['queries']:7d}{'' if budgeted else '   (reference)'}"
        )
        note = "" if budgeted else " (reference)"
        page_budget, sql_budget = (LEDGER_PAGE_MS, LEDGER_SQL_MS) if budgeted else (None, None)
        results.append((f"{label}: server time{note}", m["wall"] * 1000, page_budget, ""))
        results.append((f"{label}: SQL{note}", m["sql"] * 1000, sql_budget, ""))
    print("   statements of the first page (median each):")
    print_statements(measured["ledger, first page"])
    for label, m in measured.items():
        if (
            label.startswith("ledger, ")
            and label != "ledger, first page"
            and m["sql"] * 1000 >= LEDGER_SQL_MS
        ):
            seconds, sql, params = capacity_statement(m)
            print(f"   slowest capacity statement of '{label}': {seconds * 1000:.2f} ms")
            print(f"      {short_sql(sql)}")
    if args.explain:
        for label, m in measured.items():
            if label.startswith("ledger") and m["sql"] * 1000 >= LEDGER_SQL_MS:
                seconds, sql, params = capacity_statement(m)
                print(f"   EXPLAIN ANALYZE, slowest capacity statement of '{label}':")
                print(explain(sql, params))

    # b. The naive way: the latest sample of every database from the sample table.
    if not args.skip_naive:
        print()
        print(f"b. naive 'latest sample per database' over the sample table (median of "
              f"{args.naive_repeat} after a warm-up) vs the ledger's SQL")  # fmt: skip
        ledger_sql = measured["ledger, first page"]["sql"]
        print(f"   {'query':34} {'ms':>9} {'rows':>7}   vs ledger SQL")
        print(f"   {'ledger first page (all its SQL)':34} {ms(ledger_sql)}")
        for label, sql in NAIVE_LATEST.items():
            rows = []

            def run(sql=sql, rows=rows):
                with connection.cursor() as cursor:
                    cursor.execute(sql)
                    rows[:] = [len(cursor.fetchall())]

            seconds = median_seconds(run, args.naive_repeat)
            print(f"   {label:34} {ms(seconds)} {rows[0]:7d}   {seconds / ledger_sql:8.0f}x")
            results.append((f"naive latest, {label} (no budget)", seconds * 1000, None, ""))

    # c. Aggregation: the last complete quarter (and week, month) before today.
    print()
    print("c. aggregation (capacity.services.aggregates_compute), last complete period")
    for period in ("quarter", "month", "week"):
        start, end = previous_window(period, today)
        DatabaseSizeAggregate.objects.filter(period_type=period, period_start=start).delete()
        InstanceSizeAggregate.objects.filter(period_type=period, period_start=start).delete()
        result, first_wall, _ = timed_sql(aggregates_compute, period=period, day=today)
        _, again_wall, _ = timed_sql(aggregates_compute, period=period, day=today)
        samples = DatabaseSizeSample.objects.filter(day__range=(start, end)).count()
        print(
            f"   {period:8} {start} … {end}: {samples:>9,} samples, "
            f"{result['databases']:,} + {result['instances']} rows; "
            f"first {first_wall * 1000:7.1f} ms, re-run (update) {again_wall * 1000:7.1f} ms"
            + (f"   budget < {QUARTER_MS} ms" if period == "quarter" else "")
        )
        budget = QUARTER_MS if period == "quarter" else None
        note = "" if budget else " (reference)"
        results.append((f"aggregate {period}, first{note}", first_wall * 1000, budget, ""))
        results.append((f"aggregate {period}, re-run{note}", again_wall * 1000, budget, ""))

    # d. The 90-day trend chart of one instance with 50 databases.
    print()
    print(f"d. instance capacity page with its 90-day chart ({args.databases_per_instance} "
          f"databases), median of {args.repeat}")  # fmt: skip
    print(
        f"   server {chart['wall'] * 1000:.1f} ms (templates {chart['render'] * 1000:.1f} ms), "
        f"SQL {chart['sql'] * 1000:.1f} ms, "
        f"{chart['queries']} queries   budget < {CHART_SQL_MS} ms SQL"
    )
    print_statements(chart)
    if args.explain and chart["sql"] * 1000 >= CHART_SQL_MS:
        print(explain(*capacity_statement(chart)[1:]))
    results.append(("trend chart page: SQL", chart["sql"] * 1000, CHART_SQL_MS, ""))
    results.append(("trend chart page: server time (no budget)", chart["wall"] * 1000, None, ""))

    # e. One day's samples for every database: a new day, then overwriting one.
    print()
    print(f"e. samples_upsert of one day for {total:,} databases (median of 3 after a warm-up)")
    latest = list(
        Database.objects.filter(instance_id__in=ids).values_list(
            "pk", "total_bytes", "data_bytes", "log_bytes"
        )
    )
    now = timezone.now()

    def day_samples(day, grow: int = 0):
        return [
            DatabaseSizeSample(
                database_id=pk,
                day=day,
                total_bytes=total_bytes + grow,
                data_bytes=None if data is None else data + grow,
                log_bytes=log,
                collected_at=now,
            )
            for pk, total_bytes, data, log in latest
        ]

    new_day = today + timedelta(days=1)
    partition_ensure(new_day)

    def clear_new_day():
        DatabaseSizeSample.objects.filter(day=new_day, database__instance_id__in=ids).delete()

    build_started = time.perf_counter()
    day_samples(new_day, grow=4096)
    build_seconds = time.perf_counter() - build_started
    insert_runs = []  # (wall, SQL seconds, statements); the first run is the warm-up
    for _ in range(4):
        clear_new_day()
        fresh = day_samples(new_day, grow=4096)
        _, wall, timer = timed_sql(samples_upsert, fresh)
        insert_runs.append((wall, timer.seconds, len(timer.queries)))
    clear_new_day()
    insert_seconds, insert_sql, insert_statements = sorted(insert_runs[1:])[1]
    existing = dict(
        DatabaseSizeSample.objects.filter(day=today, database__instance_id__in=ids).values_list(
            "database_id", "collected_at"
        )
    )
    same = day_samples(today)  # today's values again: the data set stays as it was
    for sample in same:
        sample.collected_at = existing[sample.database_id]
    overwrite_runs = []
    for _ in range(4):
        _, wall, timer = timed_sql(samples_upsert, same)
        overwrite_runs.append((wall, timer.seconds, len(timer.queries)))
    overwrite_seconds, overwrite_sql, overwrite_statements = sorted(overwrite_runs[1:])[1]
    print(f"   {'':44} {'wall ms':>8} {'SQL ms':>8} {'statements':>10}")
    print(f"   {'building the model objects (not timed)':44} {ms(build_seconds)}")
    print(
        f"   {f'new day {new_day} (INSERT)':44} {ms(insert_seconds)} {ms(insert_sql)} "
        f"{insert_statements:10d}   budget < {WRITE_DAY_MS} ms"
    )
    print(
        f"   {f'existing day {today} (ON CONFLICT UPDATE)':44} {ms(overwrite_seconds)} "
        f"{ms(overwrite_sql)} {overwrite_statements:10d}   budget < {WRITE_DAY_MS} ms"
    )
    results.append(("write one day, new day", insert_seconds * 1000, WRITE_DAY_MS, ""))
    results.append(("write one day, overwrite", overwrite_seconds * 1000, WRITE_DAY_MS, ""))

    # f. Collections of the local MariaDB and PostgreSQL.
    if not args.skip_collect:
        print()
        ensure_remote_databases(args.collect_databases)
        print(
            f"f. capacity_collect_instance on the local servers, {args.collect_databases} "
            f"{REMOTE_PREFIX}… databases each (re-run: median of 3)"
        )
        print(
            f"   {'instance':22} {'run':8} {'wall ms':>9} {'remote q':>8} {'main SQL ms':>11} "
            f"{'main q':>6} {'listed':>6}  outcome"
        )
        for instance in collection_instances():
            m = measure_collection(instance, 3)
            for label in ("first", "again"):
                wall, timer, outcome = m[label]
                run = "first" if label == "first" else "re-run"
                print(
                    f"   {instance.name:22} {run:8} "
                    f"{ms(wall)} {outcome.remote_queries:8d} {ms(timer.seconds):>11} "
                    f"{len(timer.queries):6d} {outcome.detail['databases']:6d}  "
                    f"created {outcome.created}, changed {outcome.changed}, "
                    f"unchanged {outcome.unchanged}, removed {outcome.removed}"
                )
                results.append(
                    (f"collect {instance.name}, {run} (no budget)", wall * 1000, None, "")
                )
            print(f"   {instance.name:22} {'remote read only (median of 3)':35} {ms(m['remote'])}")

    # Summary.
    print()
    print(f"summary (set-up {setup_seconds:.1f} s)")
    misses = 0
    for label, value, budget, _note in results:
        if budget is None:
            verdict, budget_text = "", ""
        else:
            ok = value < budget
            misses += not ok
            verdict, budget_text = ("PASS" if ok else "FAIL"), f"< {budget} ms"
        print(f"  {label:58} {value:10.1f} ms  {budget_text:>10}  {verdict}")
    print(f"  {misses} budget(s) missed")


if __name__ == "__main__":
    main()

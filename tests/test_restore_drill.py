"""The restore drill (deploy/restore.sh) against the local PostgreSQL: dump → restore →
compare, then a damaged copy that the comparison must catch."""

import gzip
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

BASE_DIR = Path(__file__).resolve().parents[1]
RESTORE = BASE_DIR / "deploy" / "restore.sh"
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}

# Rows in several tables through the ORM and the capacity services, so that the samples
# land in monthly partitions created the way production creates them.
LOAD = """
import datetime
from django.contrib.auth.models import Group, User
from django.utils import timezone
from capacity.models import Database, DatabaseSizeSample
from capacity.partitions import samples_upsert
from inventory.models import Credential, Instance

for n in range(3):
    Group.objects.create(name=f"drill-group-{n}")
for n in range(4):
    User.objects.create_user(username=f"drill-user-{n}")
credential = Credential(name="drill", username="monitor", engine="postgresql")
credential.set_secret("drill-secret-1")
credential.save()
now = timezone.now()
samples = []
for n in range(2):
    instance = Instance.objects.create(
        name=f"drill-{n}", engine="postgresql", host="127.0.0.1", port=5432,
        credential=credential,
    )
    for d in range(5):
        database = Database.objects.create(
            instance=instance, name=f"db{d}", first_seen_at=now, last_seen_at=now
        )
        for day in range(0, 95, 3):
            samples.append(DatabaseSizeSample(
                database=database, day=datetime.date(2025, 1, 1) + datetime.timedelta(days=day),
                total_bytes=1000 * (d + 1) + day, collected_at=now,
            ))
samples_upsert(samples)
"""


def _admin():
    return psycopg.connect(**PG, dbname="postgres", autocommit=True)


def _drop(name: str) -> None:
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _manage(database: str, *args: str) -> None:
    env = dict(
        os.environ,
        DJANGO_ENV="test",
        WHALEFALL_ENV_FILE="",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{database}",
        LOG_LEVEL="WARNING",
    )
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, check=True, timeout=300
    )


def _restore(backup: Path, source: str, scratch: str, *extra: str):
    env = dict(os.environ, PGHOST="127.0.0.1", PGPORT="5432", PGUSER="postgres")
    env.pop("PGDATABASE", None)
    return subprocess.run(
        ["bash", str(RESTORE), "--source", source, "--scratch", scratch, *extra, str(backup)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _restore_compare(source: str, scratch: str):
    env = dict(os.environ, PGHOST="127.0.0.1", PGPORT="5432", PGUSER="postgres")
    return subprocess.run(
        ["bash", str(RESTORE), "--source", source, "--scratch", scratch, "--compare-only"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _count(database: str, sql: str) -> int:
    with psycopg.connect(**PG, dbname=database) as conn:
        return conn.execute(sql).fetchone()[0]


@pytest.fixture
def source_backup(tmp_path):
    """A migrated database with rows (samples in three monthly partitions) and its backup,
    written with the backup service's pg_dump options; dropped afterwards."""
    suffix = uuid.uuid4().hex[:8]
    source, scratch = f"wf_drill_src_{suffix}", f"wf_drill_scratch_{suffix}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{source}"')
    try:
        _manage(source, "migrate", "--noinput", "-v0")
        _manage(source, "shell", "-c", LOAD)
        backup = tmp_path / "whalefall-20250101-023000.sql.gz"
        dump = subprocess.run(
            ["pg_dump", "--no-owner", "--no-privileges", "-h", "127.0.0.1", "-U", "postgres",
             "-d", source],
            capture_output=True, check=True, timeout=300,
        )  # fmt: skip
        backup.write_bytes(gzip.compress(dump.stdout, compresslevel=9))
        yield backup, source, scratch
    finally:
        _drop(scratch)
        _drop(source)


def test_restore_drill_matches_then_catches_missing_rows(source_backup):
    backup, source, scratch = source_backup
    samples = "SELECT count(*) FROM capacity_databasesizesample"
    assert _count(source, samples) == 2 * 5 * 32

    result = _restore(backup, source, scratch, "--keep")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "restore took" in out
    assert "restore drill passed" in out
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines() if " OK" in line}
    # Every table is listed with its exact count, each partition apart and the parent whole.
    assert lines["public.capacity_databasesizesample"] == ["320", "320", "OK"]
    months = {
        k: v for k, v in lines.items() if k.startswith("public.capacity_databasesizesample_p2025_")
    }
    assert sorted(months) == [
        f"public.capacity_databasesizesample_p2025_{m:02d}" for m in (1, 2, 3, 4)
    ]
    assert sum(int(v[0]) for v in months.values()) == 320
    assert lines["public.inventory_instance"] == ["2", "2", "OK"]
    assert lines["public.auth_user"] == ["4", "4", "OK"]
    assert lines["public.django_migrations"][2] == "OK"
    assert _count(scratch, samples) == 320

    # Damage the restored copy: the comparison of the kept copy must catch it, partition
    # by partition.
    january = months["public.capacity_databasesizesample_p2025_01"][0]
    with psycopg.connect(**PG, dbname=scratch, autocommit=True) as conn:
        deleted = conn.execute(
            "DELETE FROM capacity_databasesizesample WHERE day < '2025-01-10'"
        ).rowcount
        conn.execute("DELETE FROM auth_group WHERE name = 'drill-group-0'")
    assert deleted == 10 * 3
    failed = _restore_compare(source, scratch)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    differs = [line.split() for line in failed.stdout.splitlines() if line.endswith("DIFFERS")]
    assert {row[0]: row[1:3] for row in differs} == {
        "public.auth_group": ["3", "2"],
        "public.capacity_databasesizesample": ["320", "290"],
        "public.capacity_databasesizesample_p2025_01": [january, str(int(january) - 30)],
    }
    assert "restore drill FAILED: 3 of" in failed.stderr

    # A fresh drill restores afresh over its own earlier copy, and drops it afterwards.
    again = _restore(backup, source, scratch)
    assert again.returncode == 0, again.stdout + again.stderr
    with _admin() as conn:
        assert not conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [scratch]
        ).fetchone()


def test_restore_drill_refuses_a_damaged_backup_and_a_foreign_database(tmp_path):
    suffix = uuid.uuid4().hex[:8]
    source, scratch = f"wf_drill_src_{suffix}", f"wf_drill_other_{suffix}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{source}"')
        conn.execute(f'CREATE DATABASE "{scratch}"')
    try:
        with psycopg.connect(**PG, dbname=scratch, autocommit=True) as conn:
            conn.execute("CREATE TABLE precious (id int)")
        backup = tmp_path / "whalefall.sql.gz"
        backup.write_bytes(gzip.compress(b"CREATE TABLE t (id int);\n")[:-8])
        # A database the drill did not create is never dropped or restored into.
        refused = _restore(backup, source, scratch)
        assert refused.returncode == 64
        assert "not created by a restore drill" in refused.stderr
        assert _count(scratch, "SELECT count(*) FROM precious") == 0
        # A truncated backup fails the drill before anything is restored.
        _drop(scratch)
        broken = _restore(backup, source, scratch)
        assert broken.returncode == 2
        assert "not a valid gzip file" in broken.stderr
        # SQL that fails to apply fails the drill too, and the scratch copy is dropped.
        backup.write_bytes(
            gzip.compress(b"CREATE TABLE t (id int);\nINSERT INTO missing VALUES (1);\n")
        )
        failed = _restore(backup, source, scratch)
        assert failed.returncode == 2
        assert "restore FAILED" in failed.stderr
        with _admin() as conn:
            assert not conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [scratch]
            ).fetchone()
        # The scratch database can never be the source.
        same = _restore(backup, source, source)
        assert same.returncode == 64
    finally:
        _drop(scratch)
        _drop(source)

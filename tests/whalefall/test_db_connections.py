"""Database connections per settings: persistent with health checks by default, psycopg's
pool when sized, PgBouncer's transaction pooling, SQLite for ``make run``.

Settings are read once per process, so every case reads them in a fresh interpreter.
"""

import json
import re
from pathlib import Path

import pytest
from django.db import connection

from tests.whalefall.test_settings import production_env, run

BASE_DIR = Path(__file__).resolve().parents[2]

PROBE = """
import json, os
os.environ["DJANGO_SETTINGS_MODULE"] = "whalefall.settings"
from django.conf import settings
def plain(value):
    if callable(value):
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value
print(json.dumps({alias: plain(db) for alias, db in settings.DATABASES.items()}, default=str))
"""


def databases(env: dict[str, str]) -> dict:
    result = run(["-c", PROBE], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_by_default_connections_persist_and_are_checked_before_reuse():
    default = databases(production_env())["default"]
    assert default["CONN_MAX_AGE"] == 60
    assert default["CONN_HEALTH_CHECKS"] is True
    assert "pool" not in default["OPTIONS"]
    assert not default.get("DISABLE_SERVER_SIDE_CURSORS")
    assert (
        databases(production_env(WHALEFALL_DB_CONN_MAX_AGE="300"))["default"]["CONN_MAX_AGE"] == 300
    )


def test_a_sized_pool_becomes_the_pool_option():
    env = production_env(
        WHALEFALL_DB_POOL_MIN="2", WHALEFALL_DB_POOL_MAX="8", WHALEFALL_DB_POOL_TIMEOUT="4"
    )
    found = databases(env)
    default = found["default"]
    assert default["OPTIONS"]["pool"] == {"min_size": 2, "max_size": 8, "timeout": 4.0}
    # Django refuses persistent connections with a pool: each goes back to it instead, and
    # with health checks on Django has the pool check a connection as it hands it out.
    assert default["CONN_MAX_AGE"] == 0
    assert default["CONN_HEALTH_CHECKS"] is True
    assert default["OPTIONS"]["connect_timeout"] == 5
    assert found["events"]["OPTIONS"]["pool"]["max_size"] == 2
    assert found["events"]["OPTIONS"]["pool"]["min_size"] == 0


def test_a_pool_smaller_than_its_minimum_is_refused():
    env = production_env(WHALEFALL_DB_POOL_MIN="9", WHALEFALL_DB_POOL_MAX="4")
    result = run(["-c", PROBE], env)
    assert result.returncode != 0
    assert "WHALEFALL_DB_POOL_MIN must be from 0 to WHALEFALL_DB_POOL_MAX" in result.stderr


def test_behind_pgbouncer_server_side_cursors_are_off():
    default = databases(production_env(WHALEFALL_DB_PGBOUNCER="true"))["default"]
    assert default["DISABLE_SERVER_SIDE_CURSORS"] is True


def test_make_run_keeps_sqlite_whatever_the_pool_settings(tmp_path):
    env = production_env(
        DJANGO_ENV="development",
        DATABASE_URL="",
        REDIS_URL="",
        WHALEFALL_DB_POOL_MAX="8",
        WHALEFALL_DB_PGBOUNCER="true",
    )
    default = databases(env)["default"]
    assert default["ENGINE"] == "django.db.backends.sqlite3"
    assert "pool" not in default["OPTIONS"]
    assert "DISABLE_SERVER_SIDE_CURSORS" not in default


def test_only_transaction_scoped_advisory_locks_and_no_session_state():
    """What PgBouncer's transaction pooling forbids: a session-level advisory lock, a
    session SET, LISTEN, a prepared statement, a temporary table outliving a transaction."""
    forbidden = re.compile(
        r"pg_advisory_lock|pg_try_advisory_lock\(|pg_advisory_unlock|"
        r"\bSET\s+(SESSION\s+)?(search_path|statement_timeout|lock_timeout)\b|"
        r"\bLISTEN\b|\bPREPARE\b|CREATE\s+TEMP(ORARY)?\s+TABLE(?!.*ON COMMIT DROP)|"
        r"server_side_binding",
        re.IGNORECASE,
    )
    offenders = []
    for app in ("whalefall", "inventory", "accounts", "classification", "capacity", "syncjobs"):
        for path in (BASE_DIR / app).rglob("*.py"):
            if "migrations" in path.parts or path.parts[-3:-1] == ("inventory", "engines"):
                continue  # engines speak to the monitored servers, not to WhaleFall's database
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if forbidden.search(line):
                    offenders.append(f"{path.relative_to(BASE_DIR)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
    advisory = (BASE_DIR / "capacity" / "partitions.py").read_text()
    assert "pg_advisory_xact_lock" in advisory


@pytest.mark.django_db
def test_the_running_suite_uses_the_settings_connection_options():
    settings_dict = connection.settings_dict
    assert settings_dict["CONN_HEALTH_CHECKS"] is True  # checked before reuse, pooled or not
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"

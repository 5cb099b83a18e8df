"""Settings per DJANGO_ENV: production fails fast, development falls back and says so.

Settings are read once per process, so every case runs in a fresh interpreter.
"""

import json
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection

from tests.factories import PASSWORD, UserFactory

BASE_DIR = Path(__file__).resolve().parents[2]
REQUIRED = ["SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS", "WHALEFALL_CREDENTIAL_KEYS"]


def production_env(**overrides: str | None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "WHALEFALL_", "DATABASE_", "REDIS_"))
        and key not in {"SECRET_KEY", "ALLOWED_HOSTS", "DEBUG"}
    }
    env.update(
        DJANGO_ENV="production",
        WHALEFALL_ENV_FILE="",
        DJANGO_SETTINGS_MODULE="whalefall.settings",
        SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/whalefall",
        REDIS_URL="redis://127.0.0.1:6379/15",
        ALLOWED_HOSTS="whalefall.example.test",
        WHALEFALL_CREDENTIAL_KEYS=Fernet.generate_key().decode(),
    )
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=BASE_DIR, capture_output=True, text=True, timeout=60
    )


def import_settings(env: dict[str, str]) -> subprocess.CompletedProcess:
    return run(["-c", "import whalefall.settings"], env)


def test_production_starts_with_every_required_variable():
    result = import_settings(production_env())
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", REQUIRED)
def test_production_refuses_to_start_without(name):
    result = import_settings(production_env(**{name: None}))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"{name} is required in production" in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DATABASE_URL", "sqlite:////tmp/x.sqlite3", "DATABASE_URL must be a PostgreSQL URL"),
        ("REDIS_URL", "http://127.0.0.1:6379", "REDIS_URL must be a redis://"),
        ("WHALEFALL_CREDENTIAL_KEYS", "not-a-fernet-key", "WHALEFALL_CREDENTIAL_KEYS: key #1"),
        ("SECRET_KEY", "short", "SECRET_KEY must be at least 50 characters"),
    ],
)
def test_production_names_the_invalid_variable(name, value, message):
    result = import_settings(production_env(**{name: value}))
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SECRET_KEY", "change-me-to-50-or-more-random-characters-" + "x" * 20),
        ("DATABASE_URL", "postgres://whalefall:change-me@postgres:5432/whalefall"),
        ("REDIS_URL", "redis://:change-me@redis:6379/0"),
    ],
)
def test_production_refuses_the_placeholders_of_the_example_env_file(name, value):
    result = import_settings(production_env(**{name: value}))
    assert result.returncode != 0
    assert f"{name} still holds the placeholder from .env.example" in result.stderr


def test_second_invalid_credential_key_is_named():
    keys = f"{Fernet.generate_key().decode()},garbage"
    result = import_settings(production_env(WHALEFALL_CREDENTIAL_KEYS=keys))
    assert result.returncode != 0
    assert "WHALEFALL_CREDENTIAL_KEYS: key #2" in result.stderr


def test_production_lists_every_problem_at_once():
    result = import_settings(production_env(**dict.fromkeys(REQUIRED)))
    assert result.returncode != 0
    for name in REQUIRED:
        assert name in result.stderr


def test_unknown_django_env_is_refused():
    result = import_settings(production_env(DJANGO_ENV="staging"))
    assert result.returncode != 0
    assert "DJANGO_ENV must be development, production or test" in result.stderr


def test_development_falls_back_to_embedded_default_and_says_so():
    env = production_env(**dict.fromkeys(REQUIRED))
    env["DJANGO_ENV"] = "development"
    env["LOG_FORMAT"] = "json"
    result = run(
        [
            "-c",
            "import django; django.setup(); from django.conf import settings as s;"
            "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, "
            "s.CACHES['default']['BACKEND'])",
        ],
        env,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == (
        "django.db.backends.sqlite3 filesystem://localhost// "
        "django.core.cache.backends.locmem.LocMemCache"
    )
    events = [json.loads(line) for line in lines if line.startswith("{")]
    notice = next(e for e in events if e["event"] == "embedded_defaults_in_use")
    assert any(c.startswith("database: SQLite") for c in notice["components"])
    assert any(c.startswith("broker: kombu filesystem") for c in notice["components"])


def test_the_embedded_broker_starts_without_a_warning(caplog, tmp_path):
    """kombu warns "No hostname was supplied" for a URL without a host, and every warning
    becomes an application event: the embedded broker's URL names one."""
    from kombu import Connection

    caplog.set_level(logging.WARNING, logger="kombu")
    folders = {"data_folder_in": str(tmp_path), "data_folder_out": str(tmp_path)}
    with Connection("filesystem://localhost//", transport_options=folders) as connection:
        connection.connect()
    assert [r.getMessage() for r in caplog.records if r.name.startswith("kombu")] == []


def test_check_deploy_reports_nothing_under_production_settings():
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


COOKIE_PROBE = """
import django
django.setup()
from django.test import Client
client = Client(HTTP_HOST="whalefall.example.test")
page = client.get("/admin/login/", secure=True)
csrf = page.cookies["csrftoken"]
done = client.post(
    "/admin/login/?next=/admin/",
    {"username": %r, "password": %r, "next": "/admin/"},
    secure=True,
)
session = done.cookies["sessionid"]
print(done.status_code, bool(csrf["secure"]), bool(csrf["httponly"]),
      bool(session["secure"]), bool(session["httponly"]))
"""


@pytest.mark.django_db(transaction=True)
def test_production_cookies_are_secure_and_httponly(tmp_path):
    # Production accepts only its own hashers, not the fast one the test settings use.
    # Production throttles logins in Redis, which outlives this test: a fresh name each run.
    username = f"probe-{secrets.token_hex(4)}"
    user = UserFactory(username=username)
    hasher = PBKDF2PasswordHasher()
    user.password = hasher.encode(PASSWORD, hasher.salt())
    user.save(update_fields=["password"])
    database = connection.settings_dict["NAME"]
    env = production_env(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{database}",
        WHALEFALL_STATIC_ROOT=str(tmp_path),
    )
    collected = run(["manage.py", "collectstatic", "--noinput", "-v0"], env)
    assert collected.returncode == 0, collected.stderr
    result = run(["-c", COOKIE_PROBE % (username, PASSWORD)], env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert result.stdout.strip().splitlines()[-1] == "302 True True True True"

"""Deployment files: no Docker engine runs here, so their content is checked instead."""

import re
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet
from django.core.management import get_commands

BASE_DIR = Path(__file__).resolve().parents[1]
WORKERS = {"worker-accounts", "worker-capacity", "worker-maintenance"}
APP_SERVICES = {"migrate", "web", "beat"} | WORKERS


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((BASE_DIR / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (BASE_DIR / "Dockerfile").read_text()


def test_compose_has_every_service(compose):
    assert set(compose["services"]) == APP_SERVICES | {"preflight", "postgres", "redis", "backup"}


def test_every_service_waits_for_the_password_preflight(compose):
    for name, service in compose["services"].items():
        if name in {"preflight", "backup"}:
            continue  # the backup waits for PostgreSQL, which waits for the preflight
        assert service["depends_on"]["preflight"] == {
            "condition": "service_completed_successfully"
        }, name


@pytest.mark.parametrize(
    ("postgres", "redis", "refused"),
    [
        ("change-me", "change-me", True),
        ("a-change-me-suffix-of-length", "Zq8vN2kR7tLp4XwY", True),
        ("short", "Zq8vN2kR7tLp4XwY", True),
        ("Zq8vN2kR7tLp4XwY3", "mYv9Tq2LsX8kRz4N", False),
    ],
)
def test_compose_refuses_placeholder_and_short_passwords(compose, postgres, redis, refused):
    """The preflight's script, run as compose runs it (``$$`` is compose's escaped ``$``)."""
    import subprocess

    script = compose["services"]["preflight"]["command"][0].replace("$$", "$")
    result = subprocess.run(
        ["bash", "-c", script],
        env={"POSTGRES_PASSWORD": postgres, "REDIS_PASSWORD": redis, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert (result.returncode != 0) is refused, result.stderr


def test_only_the_web_port_is_published_and_only_on_loopback(compose):
    published = {name: svc["ports"] for name, svc in compose["services"].items() if "ports" in svc}
    assert list(published) == ["web"]
    assert all(port.startswith("127.0.0.1:") for port in published["web"])


def test_app_services_take_secrets_from_the_env_file(compose):
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert service["env_file"] == ".env", name
        assert service["environment"]["DJANGO_ENV"] == "production"
        for value in service["environment"].values():
            assert "change-me" not in value


def test_no_literal_secret_in_compose(compose):
    text = (BASE_DIR / "compose.yaml").read_text()
    for match in re.finditer(r"^\s*\w*PASSWORD:\s*(\S+)", text, re.MULTILINE):
        assert match.group(1).startswith("${"), match.group(0)


def test_redis_requires_a_password_and_its_healthcheck_authenticates(compose):
    redis = compose["services"]["redis"]
    assert "--requirepass" in " ".join(redis["command"])
    assert "REDISCLI_AUTH" in " ".join(redis["healthcheck"]["test"])


def test_postgres_keeps_data_in_a_volume_and_reports_health(compose):
    postgres = compose["services"]["postgres"]
    assert any(v.startswith("pgdata:") for v in postgres["volumes"])
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_app_services_wait_for_healthy_dependencies_and_migrations(compose):
    for name in ("web", "beat", *WORKERS):
        depends = compose["services"][name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"


def test_migrate_step_runs_commands_that_exist(compose):
    command = " ".join(compose["services"]["migrate"]["command"])
    assert "manage.py migrate" in command
    assert "manage.py bootstrap" in command
    assert {"migrate", "bootstrap"} <= set(get_commands())


def test_backup_dumps_compresses_verifies_and_expires(compose):
    backup = compose["services"]["backup"]
    script = " ".join(backup["command"])
    assert "pg_dump" in script
    assert "gzip -t" in script
    assert "-mtime" in script
    assert backup["environment"]["BACKUP_RETENTION_DAYS"] == "${BACKUP_RETENTION_DAYS:-30}"
    assert any(v.startswith("backups:") for v in backup["volumes"])


def test_dockerfile_is_multi_stage_and_runs_as_a_non_root_user(dockerfile):
    assert len(re.findall(r"^FROM ", dockerfile, re.MULTILINE)) >= 2
    users = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert users
    assert users[-1] not in {"root", "0"}


def test_dockerfile_serves_with_gunicorn_and_checks_readiness(dockerfile):
    assert "/health/ready" in re.search(r"^HEALTHCHECK.*(?:\n\s+.*)*", dockerfile, re.M).group(0)
    assert '"gunicorn", "whalefall.wsgi:application"' in dockerfile
    assert "gunicorn==" in (BASE_DIR / "requirements" / "prod.txt").read_text()
    assert "collectstatic" in dockerfile


def test_dockerfile_build_time_key_is_a_valid_fernet_key(dockerfile):
    key = re.search(r"WHALEFALL_CREDENTIAL_KEYS=(\S+)", dockerfile).group(1)
    Fernet(key.encode())


def test_wsgi_application_is_importable():
    from whalefall.wsgi import application

    assert callable(application)


def test_the_image_never_receives_local_secrets():
    ignored = (BASE_DIR / ".dockerignore").read_text().split()
    assert {".env", ".data", ".venv", ".git"} <= set(ignored)


def test_env_example_documents_every_variable_the_settings_read():
    settings_source = (BASE_DIR / "whalefall" / "settings.py").read_text()
    read = set(re.findall(r'(?:env\.\w+|_required)\(\s*"([A-Z][A-Z0-9_]+)"', settings_source))
    example = (BASE_DIR / ".env.example").read_text()
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    assert read, "no variables found in settings.py"
    assert read <= documented, sorted(read - documented)

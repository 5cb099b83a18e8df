"""Structured logs: request ids, task ids and redaction (SPEC §8)."""

import io
import json
import logging

import pytest
import structlog

from tests.factories import UserFactory
from whalefall.celery import app as celery_app
from whalefall.logging import REDACTED, build_formatter, redact

log = structlog.get_logger("tests.logging")


@pytest.fixture
def log_lines():
    """Every record that reaches the root logger, rendered by the real pipeline as JSON."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(build_formatter(use_json=True))
    root = logging.getLogger()
    root.addHandler(handler)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines() if line]

    yield lines
    root.removeHandler(handler)


def test_request_id_is_echoed(client, db):
    response = client.get("/admin/login/", HTTP_X_REQUEST_ID="req-42.abc")
    assert response["X-Request-ID"] == "req-42.abc"


def test_request_id_is_generated_when_missing_or_unsafe(client, db):
    generated = client.get("/admin/login/")["X-Request-ID"]
    assert len(generated) == 32
    unsafe = client.get("/admin/login/", HTTP_X_REQUEST_ID="x\nInjected: yes")["X-Request-ID"]
    assert unsafe != "x\nInjected: yes"
    assert len(unsafe) == 32


def test_every_log_line_of_a_request_carries_its_id(client, db, log_lines):
    UserFactory(username="alice")
    client.post(
        "/admin/login/", {"username": "alice", "password": "wrong"}, HTTP_X_REQUEST_ID="rid-7"
    )
    lines = [line for line in log_lines() if line.get("request_id") == "rid-7"]
    events = {line["event"] for line in lines}
    assert {"login_failed", "request_finished"} <= events
    assert all(line["request_id"] == "rid-7" for line in log_lines() if "request_id" in line)


def test_request_context_does_not_leak_into_later_logs(client, db, log_lines):
    client.get("/admin/login/", HTTP_X_REQUEST_ID="rid-8")
    log.info("after_request")
    after = next(line for line in log_lines() if line["event"] == "after_request")
    assert "request_id" not in after


def test_celery_tasks_bind_their_task_id(log_lines):
    @celery_app.task(name="tests.logging.emit")
    def emit():
        log.info("inside_task")

    result = emit.apply()
    line = next(line for line in log_lines() if line["event"] == "inside_task")
    assert line["task_id"] == result.id
    assert line["task_name"] == "tests.logging.emit"


def test_redaction_masks_a_password_nested_in_a_dict():
    event = {
        "config": {"instance": {"host": "db1", "password": "hunter2"}},
        "items": [{"token": "t"}],
    }
    assert redact(event) == {
        "config": {"instance": {"host": "db1", "password": REDACTED}},
        "items": [{"token": REDACTED}],
    }


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "db_password",
        "secret",
        "api_key",
        "secret_key",
        "Authorization",
        "cookie",
        "Set-Cookie",
        "accessToken",
        "credentials",
        "dsn",
        "x-csrf-token",
    ],
)
def test_redaction_covers_sensitive_key_names(key):
    assert redact({key: "value"}) == {key: REDACTED}


@pytest.mark.parametrize("key", ["host", "port", "username", "event", "monkey"])
def test_redaction_leaves_ordinary_keys(key):
    assert redact({key: "value"}) == {key: "value"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgres://monitor:hunter2@db1:5432/app", "postgres://monitor:***@db1:5432/app"),
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("connect to mysql://u:p%40ss@h/db failed", "connect to mysql://u:***@h/db failed"),
        ("host=db1 user=m password='x y' dbname=a", "host=db1 user=m password=*** dbname=a"),
        ("SERVER=s;UID=m;PWD=hunter2;", "SERVER=s;UID=m;PWD=***;"),
        ("https://example.test/path?q=1", "https://example.test/path?q=1"),
    ],
)
def test_redaction_masks_credentials_inside_urls_and_dsns(text, expected):
    assert redact(text) == expected


def test_pipeline_redacts_everything_it_renders(log_lines):
    log.warning(
        "connect_failed",
        url="postgres://monitor:hunter2@db1/app",
        options={"nested": [{"password": "hunter2"}]},
    )
    logging.getLogger("tests.stdlib").warning("dsn is %s", "mysql://root:hunter2@h/db")
    rendered = json.dumps(log_lines())
    assert "hunter2" not in rendered
    assert "postgres://monitor:***@db1/app" in rendered
    assert "mysql://root:***@h/db" in rendered

"""The heartbeat settings must let a live item beat at least twice within each timeout."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]


def import_settings(**env: str) -> subprocess.CompletedProcess:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("WHALEFALL_")}
    environ.update(DJANGO_ENV="test", WHALEFALL_ENV_FILE="", **env)
    return subprocess.run(
        [sys.executable, "-c", "import whalefall.settings"],
        env=environ,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_defaults_are_consistent():
    assert import_settings().returncode == 0


@pytest.mark.parametrize(
    "env",
    [
        {"WHALEFALL_ITEM_HEARTBEAT_INTERVAL": "0"},
        {"WHALEFALL_ITEM_HEARTBEAT_INTERVAL": "100"},  # above half the heartbeat timeout
        {"WHALEFALL_PENDING_ITEM_TIMEOUT": "40"},  # a busy worker would look idle
    ],
)
def test_a_timeout_shorter_than_two_heartbeats_is_refused(env):
    result = import_settings(**env)
    assert result.returncode != 0
    assert "at least twice WHALEFALL_ITEM_HEARTBEAT_INTERVAL" in result.stderr

"""/metrics: names and labels, access control, request latency by URL name, login
failures, scrape-time sections, and several processes adding up in one directory."""

import importlib.util
import json
import re
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
import yaml
from django.contrib.auth import authenticate
from django.test import RequestFactory
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tests.whalefall.test_settings import import_settings, production_env, run
from whalefall import metrics
from whalefall.alerts.models import Channel, ChannelKind, Delivery, DeliveryStatus
from whalefall.health import READINESS_CHECKS
from whalefall.models import Heartbeat
from whalefall.tasks import BEAT_HEARTBEAT

BASE_DIR = Path(__file__).resolve().parents[2]
TOKEN = "t0k3n-" + "x" * 40

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def patient_readiness(settings):
    """The broker and the database answer these scrapes even on a busy machine."""
    settings.WHALEFALL_BROKER_CHECK_TIMEOUT = 5.0
    settings.WHALEFALL_READY_TIMEOUT = 10.0


def scrape(client, **extra) -> dict[str, dict[tuple, float]]:
    """The families of a scrape: name -> {sorted label pairs: value} for every sample."""
    response = client.get("/metrics", **{"REMOTE_ADDR": "127.0.0.1", **extra})
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/plain; version=")
    return parse(response.content.decode())


def parse(text: str) -> dict[str, dict[tuple, float]]:
    found: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- Names and labels -------------------------------------------------------------------


def test_a_scrape_names_every_metric_with_its_labels(client):
    Heartbeat.objects.create(name=BEAT_HEARTBEAT, beat_at=timezone.now() - timedelta(seconds=30))
    metrics.run_finished(kind="accounts", status="succeeded")
    metrics.items_finished(kind="capacity", status="failed", count=2)
    metrics.item_duration(kind="capacity", engine="mysql", seconds=1.5)
    metrics.login_failed()

    found = scrape(client)

    assert (
        found["whalefall_runs_finished_total"][(("kind", "accounts"), ("status", "succeeded"))] >= 1
    )
    assert (
        found["whalefall_run_items_finished_total"][(("kind", "capacity"), ("status", "failed"))]
        >= 2
    )
    assert (
        found["whalefall_run_item_duration_seconds_count"][
            (("engine", "mysql"), ("kind", "capacity"))
        ]
        >= 1
    )
    assert ("le", "+Inf") in {
        pair for labels in found["whalefall_run_item_duration_seconds_bucket"] for pair in labels
    }
    assert found["whalefall_login_failures_total"][()] >= 1
    assert {labels for labels in found["whalefall_ready_check_up"]} == {
        (("check", name),) for name in ("database", "migrations", "broker", "beat_heartbeat")
    }
    assert found["whalefall_ready_check_up"][(("check", "database"),)] == 1
    assert 29 <= found["whalefall_beat_heartbeat_age_seconds"][()] < 120
    assert set(found["whalefall_queue_depth"]) == {
        (("queue", q),) for q in ("accounts", "capacity", "maintenance")
    }
    assert {labels for labels in found["whalefall_runs_active"]} >= {
        (("kind", "accounts"), ("status", "queued")),
        (("kind", "capacity"), ("status", "running")),
    }
    assert found["whalefall_capacity_partitions_ahead"], "one series per sample table"
    assert set(found["whalefall_scrape_section_error"]) == {
        (("section", s),) for s in ("readiness", "alert_deliveries", "runs", "partitions")
    }
    assert set(found["whalefall_scrape_section_error"].values()) == {0.0}
    assert not any(name.endswith("_created") for name in found)


def test_alert_deliveries_are_counted_by_channel_kind_and_status(client):
    email = Channel.objects.create(name="mail", kind=ChannelKind.EMAIL, recipients="a@b.test")
    hook = Channel.objects.create(name="hook", kind=ChannelKind.WEBHOOK)
    for channel, status in [
        (email, DeliveryStatus.SENT),
        (email, DeliveryStatus.SENT),
        (email, DeliveryStatus.FAILED),
        (hook, DeliveryStatus.RETRYING),
    ]:
        Delivery.objects.create(channel=channel, status=status)
    old = Delivery.objects.create(channel=hook, status=DeliveryStatus.FAILED)
    Delivery.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))

    deliveries = scrape(client)["whalefall_alert_deliveries"]

    def count(kind, status):
        return deliveries[(("channel_kind", kind), ("status", status))]

    assert count("email", "sent") == 2
    assert count("email", "failed") == 1
    assert count("webhook", "retrying") == 1
    assert count("webhook", "failed") == 0, "older than WHALEFALL_METRICS_DELIVERY_HOURS"
    assert count("apprise", "pending") == 0
    assert len(deliveries) == len(ChannelKind.values) * len(DeliveryStatus.values)


def test_a_failing_section_is_reported_and_hides_no_other(client, monkeypatch):
    def broken():
        raise RuntimeError("no")

    monkeypatch.setitem(metrics._SECTIONS, "broken", broken)
    found = scrape(client)
    assert found["whalefall_scrape_section_error"][(("section", "broken"),)] == 1
    assert found["whalefall_scrape_section_error"][(("section", "runs"),)] == 0
    assert "whalefall_runs_active" in found


def test_a_slow_section_query_is_cut_short_by_the_statement_timeout(client, monkeypatch, settings):
    from django.db import connection

    settings.WHALEFALL_METRICS_QUERY_TIMEOUT = 0.2

    def slow():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(5)")
        return []

    monkeypatch.setitem(metrics._SECTIONS, "slow", slow)
    found = scrape(client)
    assert found["whalefall_scrape_section_error"][(("section", "slow"),)] == 1
    assert found["whalefall_scrape_section_error"][(("section", "runs"),)] == 0
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "0", "the timeout does not outlive the scrape"


# --- Access -----------------------------------------------------------------------------


def test_an_allowed_address_may_scrape_and_others_may_not(client, settings):
    settings.WHALEFALL_METRICS_ALLOWED = ["10.1.0.0/16", "2001:db8::/32"]
    settings.WHALEFALL_METRICS_TOKEN = ""
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="2001:db8::7").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::ffff:10.1.9.9").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.2.0.1").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    denied = client.get("/metrics", REMOTE_ADDR="192.0.2.1")
    assert b"whalefall_" not in denied.content


def test_a_forwarded_address_counts_only_behind_a_trusted_proxy(client, settings):
    settings.WHALEFALL_METRICS_ALLOWED = ["10.1.0.0/16"]
    settings.WHALEFALL_METRICS_TOKEN = ""
    settings.WHALEFALL_TRUSTED_PROXIES = []
    spoofed = {"REMOTE_ADDR": "192.0.2.5", "HTTP_X_FORWARDED_FOR": "10.1.2.3"}
    assert client.get("/metrics", **spoofed).status_code == 403
    settings.WHALEFALL_TRUSTED_PROXIES = ["192.0.2.0/24"]
    assert client.get("/metrics", **spoofed).status_code == 200


def test_the_bearer_token_opens_it_from_anywhere(client, settings):
    settings.WHALEFALL_METRICS_ALLOWED = []
    settings.WHALEFALL_METRICS_TOKEN = TOKEN
    elsewhere = {"REMOTE_ADDR": "198.51.100.7"}
    assert client.get(
        "/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **elsewhere
    ).status_code == (200)
    assert client.get(
        "/metrics", HTTP_AUTHORIZATION=f"bearer {TOKEN}", **elsewhere
    ).status_code == (200)
    for header in ("", f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", f"Basic {TOKEN}", "Bearer "):
        response = client.get("/metrics", HTTP_AUTHORIZATION=header, **elsewhere)
        assert response.status_code == 403, header


def test_with_neither_addresses_nor_token_it_does_not_exist(client, settings):
    settings.WHALEFALL_METRICS_ALLOWED = []
    settings.WHALEFALL_METRICS_TOKEN = ""
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 404
    assert client.get(
        "/metrics", HTTP_AUTHORIZATION="Bearer ", REMOTE_ADDR="127.0.0.1"
    ).status_code == (404)


def test_it_answers_whatever_host_name_the_scraper_uses(client, settings):
    settings.WHALEFALL_METRICS_ALLOWED = ["172.18.0.0/16"]
    response = client.get("/metrics", REMOTE_ADDR="172.18.0.9", HTTP_HOST="web:8000")
    assert response.status_code == 200
    assert client.post("/metrics", REMOTE_ADDR="172.18.0.9").status_code != 200


def test_production_keeps_it_closed_unless_configured():
    probe = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'whalefall.settings';"
        "from django.conf import settings;"
        "print(settings.WHALEFALL_METRICS_ALLOWED, repr(settings.WHALEFALL_METRICS_TOKEN))"
    )
    closed = run(["-c", probe], production_env())
    assert closed.returncode == 0, closed.stderr
    assert closed.stdout.strip() == "[] ''"
    opened = run(
        ["-c", probe],
        production_env(WHALEFALL_METRICS_ALLOWED="10.0.0.0/8", WHALEFALL_METRICS_TOKEN=TOKEN),
    )
    assert opened.stdout.strip() == f"['10.0.0.0/8'] '{TOKEN}'"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WHALEFALL_METRICS_TOKEN", "short"),
        ("WHALEFALL_METRICS_TOKEN", "change-me" + "x" * 40),
        ("WHALEFALL_METRICS_ALLOWED", "10.0.0.0/33"),
    ],
)
def test_production_refuses_a_weak_token_or_a_bad_address(name, value):
    result = import_settings(production_env(**{name: value}))
    assert result.returncode != 0
    assert name in result.stderr


# --- Counted in the processes -----------------------------------------------------------


def test_request_latency_is_labelled_by_url_name(client, admin_user):
    labels = {"view": "admin:login", "method": "GET", "status": "2xx"}
    before = value("whalefall_http_request_duration_seconds_count", **labels)
    assert client.get("/admin/login/").status_code == 200
    assert value("whalefall_http_request_duration_seconds_count", **labels) == before + 1

    unmatched = {"view": metrics.UNMATCHED, "method": "GET", "status": "4xx"}
    before = value("whalefall_http_request_duration_seconds_count", **unmatched)
    client.get("/no/such/page-1")
    client.get("/no/such/page-2")
    assert value("whalefall_http_request_duration_seconds_count", **unmatched) == before + 2

    odd = {"view": metrics.UNMATCHED, "method": "other", "status": "4xx"}
    before = value("whalefall_http_request_duration_seconds_count", **odd)
    client.generic("BREW", "/no/such/pot")
    assert value("whalefall_http_request_duration_seconds_count", **odd) == before + 1


def test_a_failed_sign_in_is_counted():
    before = value("whalefall_login_failures_total")
    request = RequestFactory().post("/admin/login/", {"username": "nobody"})
    request.META["REMOTE_ADDR"] = "192.0.2.10"
    assert authenticate(request, username="nobody", password="wrong") is None
    assert value("whalefall_login_failures_total") == before + 1


WRITER = textwrap.dedent(
    """
    import sys
    import django
    django.setup()
    from whalefall import metrics
    for _ in range(int(sys.argv[1])):
        metrics.run_finished(kind="accounts", status="succeeded")
        metrics.item_duration(kind="capacity", engine="postgresql", seconds=0.3)
    print(metrics.process_id())
    """
)


def test_processes_sharing_a_directory_are_added_up(client, settings, tmp_path):
    directory = tmp_path / "metrics"
    directory.mkdir()
    env = {**production_env(), "DJANGO_ENV": "test", "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    ids = []
    for count in (2, 3):
        result = subprocess.run(
            [sys.executable, "-c", WRITER, str(count)],
            env=env,
            cwd=BASE_DIR,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        ids.append(result.stdout.strip().splitlines()[-1])
    assert ids[0] != ids[1]
    assert all(any(i in f.name for f in directory.iterdir()) for i in ids)

    found = parse(metrics.exposition(path=str(directory)).decode())
    assert (
        found["whalefall_runs_finished_total"][(("kind", "accounts"), ("status", "succeeded"))] == 5
    )
    assert (
        found["whalefall_run_item_duration_seconds_count"][
            (("engine", "postgresql"), ("kind", "capacity"))
        ]
        == 5
    )
    assert (
        found["whalefall_run_item_duration_seconds_bucket"][
            (("engine", "postgresql"), ("kind", "capacity"), ("le", "0.25"))
        ]
        == 0
    )
    assert (
        found["whalefall_run_item_duration_seconds_bucket"][
            (("engine", "postgresql"), ("kind", "capacity"), ("le", "0.5"))
        ]
        == 5
    )
    assert "whalefall_ready_check_up" in found, "the scrape-time figures come too"

    settings.PROMETHEUS_MULTIPROC_DIR = str(directory)
    served = scrape(client)
    assert (
        served["whalefall_runs_finished_total"][(("kind", "accounts"), ("status", "succeeded"))]
        == 5
    )

    # Each process wrote a file of counters and one of histograms.
    assert metrics.clear_host_files(str(directory)) == 4
    assert not list(directory.glob("*.db"))
    assert "whalefall_runs_finished_total" not in parse(
        metrics.exposition(path=str(directory)).decode()
    )


def test_clearing_keeps_the_files_of_other_hosts(tmp_path):
    mine = tmp_path / f"counter_{metrics.process_id(41)}.db"
    other_host = tmp_path / "counter_otherhost-41.db"
    for path in (mine, other_host):
        path.write_bytes(b"")
    assert metrics.clear_host_files(str(tmp_path)) == 1
    assert not mine.exists()
    assert other_host.exists()


# --- Dashboard and alert rules ------------------------------------------------------------


def exposed_names(client) -> set[str]:
    """Every sample name a scrape of a busy deployment shows."""
    from syncjobs.models import RunKind, RunStatus
    from tests.syncjobs.factories import RunFactory

    now = timezone.now()
    Heartbeat.objects.create(name=BEAT_HEARTBEAT, beat_at=now)
    RunFactory(kind=RunKind.ACCOUNTS, status=RunStatus.SUCCEEDED, finished_at=now)
    RunFactory(kind=RunKind.CAPACITY, status=RunStatus.RUNNING, started_at=now)
    metrics.run_finished(kind="accounts", status="succeeded")
    metrics.items_finished(kind="accounts", status="failed")
    metrics.item_duration(kind="accounts", engine="mysql", seconds=1)
    client.get("/admin/login/")
    return set(scrape(client))


def promql_names(expr: str) -> set[str]:
    return set(re.findall(r"\bwhalefall_[a-z_]+\b", expr))


def test_every_alert_rule_reads_metrics_that_exist(client):
    names = exposed_names(client)
    rules = yaml.safe_load((BASE_DIR / "deploy" / "prometheus-rules.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert all(rule.get("alert") for group in rules["groups"] for rule in group["rules"])
    used = set().union(*(promql_names(expr) for expr in exprs))
    assert used <= names, sorted(used - names)
    # Every condition /health/ready checks has its alert.
    for check in READINESS_CHECKS:
        assert any(f'check="{check}"' in expr for expr in exprs), check


def test_the_dashboard_charts_metrics_that_exist(client):
    names = exposed_names(client)
    dashboard = json.loads((BASE_DIR / "deploy" / "grafana-dashboard.json").read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    used = set()
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            used |= promql_names(target["expr"])
    assert used <= names, sorted(used - names)
    # Every family WhaleFall exports is on the dashboard.
    families = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in names}
    charted = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in used}
    assert {f for f in families if f.startswith("whalefall_")} == charted


# --- gunicorn ---------------------------------------------------------------------------


def load_gunicorn_config():
    spec = importlib.util.spec_from_file_location(
        "gunicorn_conf", BASE_DIR / "deploy" / "gunicorn.conf.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gunicorn_starts_with_its_hosts_old_files_removed_and_buries_its_workers(
    settings, tmp_path
):
    assert '"--config", "deploy/gunicorn.conf.py"' in (BASE_DIR / "Dockerfile").read_text()
    settings.PROMETHEUS_MULTIPROC_DIR = str(tmp_path)
    config = load_gunicorn_config()
    stale = tmp_path / f"counter_{metrics.process_id(7)}.db"
    live_gauge = tmp_path / f"gauge_livesum_{metrics.process_id(8)}.db"
    other_host = tmp_path / "counter_elsewhere-7.db"
    for path in (stale, other_host):
        path.write_bytes(b"")

    server = mock.Mock()
    config.on_starting(server)
    assert not stale.exists()
    assert other_host.exists()
    server.log.info.assert_called_once()

    live_gauge.write_bytes(b"")
    kept = tmp_path / f"counter_{metrics.process_id(8)}.db"
    kept.write_bytes(b"")
    config.child_exit(server, mock.Mock(pid=8))
    assert not live_gauge.exists(), "a dead worker's live gauges go"
    assert kept.exists(), "its counts stay in the sums"

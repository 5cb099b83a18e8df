"""Latency of /health/live and /health/ready through the full middleware stack (SPEC §11).

Usage::

    DJANGO_ENV=test .venv/bin/python benchmarks/health.py [--requests 300]

Runs against the local PostgreSQL (database ``whalefall_bench``, created and migrated when
missing) and the local Redis broker, with a fresh beat heartbeat, so every check passes.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_ENV", "test")
os.environ.setdefault("WHALEFALL_ENV_FILE", "")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/whalefall_bench")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "whalefall.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import psycopg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with psycopg.connect(
        host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        if not conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = 'whalefall_bench'"
        ).fetchone():
            conn.execute("CREATE DATABASE whalefall_bench")

    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    from whalefall.models import Heartbeat
    from whalefall.tasks import BEAT_HEARTBEAT

    call_command("migrate", verbosity=0)
    Heartbeat.objects.update_or_create(name=BEAT_HEARTBEAT, defaults={"beat_at": timezone.now()})
    client = Client(HTTP_HOST="127.0.0.1")
    print(f"{'endpoint':16} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  (status)")
    for url in ("/health/live", "/health/ready"):
        client.get(url)  # warm up: connections, migration state
        samples, status = [], None
        for _ in range(args.requests):
            started = time.perf_counter()
            response = client.get(url)
            samples.append((time.perf_counter() - started) * 1000)
            status = response.status_code
        samples.sort()
        p95 = samples[int(len(samples) * 0.95) - 1]
        print(
            f"{url:16} {statistics.median(samples):8.2f} {p95:8.2f} {samples[-1]:8.2f}  ({status})"
        )
    print("\nBudgets (SPEC §10, §11): /health/live < 5 ms, /health/ready < 50 ms.")


if __name__ == "__main__":
    main()

"""Latency of /health/live and /health/ready through the full middleware stack (SPEC §11).

Usage::

    DJANGO_ENV=test .venv/bin/python benchmarks/health.py [--requests 300]

Runs against the local PostgreSQL (database ``whalefall_bench``, created and migrated when
missing) and the local Redis broker, with a fresh beat heartbeat, so every check passes.
"""

import argparse
import statistics
import time

from bench_db import django_ready


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    django_ready()
    from django.test import Client
    from django.utils import timezone

    from whalefall.models import Heartbeat
    from whalefall.tasks import BEAT_HEARTBEAT

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

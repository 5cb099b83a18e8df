"""API v1 at 10⁶ rows (SPEC §11): a page of 100 from the accounts, account changes and
daily size samples lists in < 50 ms server time, with the same statements on page 1 and
page 1 000 (keyset pagination); the change feed streamed from cursor 0 to the end at
≥ 20 000 changes/s. Beside each, the naive way: OFFSET pagination of the same query.

Data: the 10⁶ accounts and 10⁶ changes of ``benchmarks/changelists.py`` and 10⁶ daily
samples (20 instances, 50 databases each, 1 000 days) of ``benchmarks/capacity.py``, built
once in ``whalefall_bench``. Requests go through the full middleware stack with a
personal token of a superuser (rate limit lifted for the run).

Usage::

    .venv/bin/python benchmarks/api.py [--repeat 10]
"""

import argparse
import os
import statistics
import time

os.environ["WHALEFALL_API_RATE"] = "100000000/min"
# A token's use is recorded once a minute (one UPDATE); not inside the measured pages.
os.environ["WHALEFALL_API_TOKEN_TOUCH_SECONDS"] = "86400"

from admin_pages import ms, timed_sql
from bench_db import django_ready

PAGE_BUDGET_MS = 50
FEED_BUDGET = 20_000
DEEP_PAGES = (1, 10, 100, 1000)
LISTS = {
    "accounts": "/api/v1/accounts/?limit=100",
    "account changes": "/api/v1/account-changes/?limit=100",
    "database samples": "/api/v1/capacity/database-samples/?limit=100",
}


def client_for_superuser():
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    from whalefall.api.tokens import api_token_create

    user, _ = get_user_model().objects.get_or_create(
        username="wfapi-admin", defaults={"is_superuser": True, "is_staff": True}
    )
    _row, token = api_token_create(user=user, name="benchmark")
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {token}", SERVER_NAME="localhost")


def deep_pages(client, url: str, repeat: int) -> dict[int, dict]:
    """Follow ``next`` from the first page; time each page of DEEP_PAGES ``repeat`` times."""
    client.get(url)  # warm-up: the token's first use, caches
    measured, page, number = {}, url, 1
    while page and number <= max(DEEP_PAGES):
        if number in DEEP_PAGES:
            walls, cpus, counts = [], [], []
            for _ in range(repeat):
                cpu = time.process_time()
                response, wall, timer = timed_sql(client.get, page)
                cpus.append(time.process_time() - cpu)
                if response.status_code != 200:
                    raise RuntimeError(f"GET {page}: HTTP {response.status_code}")
                walls.append(wall)
                counts.append(len(timer.queries))
            measured[number] = {
                "wall": statistics.median(walls),
                "cpu": statistics.median(cpus),
                "sql": timer.seconds,
                "queries": max(counts),
                "rows": len(response.json()["results"]),
            }
        else:
            response = client.get(page)
        if response.status_code != 200:
            raise RuntimeError(f"GET {page}: HTTP {response.status_code} {response.content[:200]}")
        page, number = response.json().get("next"), number + 1
    return measured


def naive_offset(label: str, page: int) -> float:
    """The same list's page by OFFSET through the ORM (no serialisation): the naive way."""
    from accounts.models import Account, AccountChange
    from capacity.models import DatabaseSizeSample

    queryset = {
        "accounts": Account.objects.order_by("-pk"),
        "account changes": AccountChange.objects.order_by("-pk"),
        "database samples": DatabaseSizeSample.objects.order_by("-database_id", "-day"),
    }[label]
    offset = (page - 1) * 100
    started = time.perf_counter()
    list(queryset[offset : offset + 100].values_list("pk", flat=True))
    return time.perf_counter() - started


def stream_feed(client, limit: int) -> tuple[int, float, int]:
    """Read the change feed from cursor 0 to its end, parsing every answer as a client would:
    (changes, wall seconds, CPU seconds of this process — server and client —, calls)."""
    since, total, calls = "0", 0, 0
    started, cpu = time.perf_counter(), time.process_time()
    while True:
        response = client.get(f"/api/v1/account-changes/?since={since}&limit={limit}")
        if response.status_code != 200:
            raise RuntimeError(f"feed: HTTP {response.status_code} {response.content[:200]}")
        body = response.json()
        total += len(body["results"])
        calls += 1
        since = body["next_since"]
        if not body["has_more"]:
            break
    return total, time.perf_counter() - started, time.process_time() - cpu, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="Timed GETs per measured page.")
    parser.add_argument("--feed-limit", type=int, default=5000, help="Changes per feed call.")
    args = parser.parse_args()
    django_ready()

    import changelists

    capacity_bench = _load_capacity_benchmark()
    changelists.ensure_dataset()
    capacity_bench.ensure_dataset(instances=20, per_instance=50, days=1000)
    from whalefall.collector import collector_tune

    collector_tune()  # as a web worker does once it has loaded the application
    client = client_for_superuser()

    print(f"\nlists, page of 100 (budget {PAGE_BUDGET_MS} ms; median of {args.repeat})")
    print(
        f"  {'list':18} {'page':>6} {'server ms':>10} {'CPU ms':>8} {'SQL ms':>8} "
        f"{'queries':>8} {'OFFSET ms':>10}"
    )
    verdicts = []
    for label, url in LISTS.items():
        pages = deep_pages(client, url, args.repeat)
        for number, m in pages.items():
            naive = naive_offset(label, number)
            print(
                f"  {label:18} {number:>6} {ms(m['wall'])[-10:]} {ms(m['cpu'])[1:]} "
                f"{ms(m['sql'])[1:]} {m['queries']:>8} {ms(naive)[-10:]}"
            )
        counts = {m["queries"] for m in pages.values()}
        slowest = max(m["wall"] for m in pages.values())
        verdicts.append(
            (label, slowest * 1000 < PAGE_BUDGET_MS and len(counts) == 1, slowest, counts)
        )

    total, seconds, cpu, calls = stream_feed(client, args.feed_limit)
    rate = total / seconds if seconds else 0
    print(
        f"\nchange feed from cursor 0: {total:,} changes in {seconds:.1f} s ({cpu:.1f} s CPU "
        f"of server and client), {calls} calls of ≤ {args.feed_limit} → {rate:,.0f} changes/s "
        f"(budget ≥ {FEED_BUDGET:,})"
    )

    print("\nverdict")
    for label, ok, slowest, counts in verdicts:
        print(
            f"  {label:18} slowest page {slowest * 1000:.1f} ms, queries per page "
            f"{sorted(counts)}: {'within budget' if ok else 'OVER BUDGET'}"
        )
    print(
        f"  {'change feed':18} {rate:,.0f} changes/s: "
        f"{'within budget' if rate >= FEED_BUDGET else 'OVER BUDGET'}"
    )


def _load_capacity_benchmark():
    """benchmarks/capacity.py, whose module name the capacity app takes."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).with_name("capacity.py")
    spec = importlib.util.spec_from_file_location("capacity_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    main()

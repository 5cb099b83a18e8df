"""Admin changelists at 10⁶ rows (SPEC §11): < 300 ms, query count independent of the page,
no full COUNT(*) on big tables.

Builds, once, in the benchmark database ``whalefall_bench`` (shared with
``benchmarks/capacity.py``): 200 instances ``wfcl-…`` with 5 000 accounts each (10⁶
accounts, each with its privilege snapshot, one change and one classification), 10⁶ audit
log entries, 5 000 runs of 200 items (10⁶ run items), 10⁶ login events and 10⁶ application
events, all written server-side (``INSERT … SELECT … generate_series``). Then, as a
superuser through the full middleware stack, it measures each big table's changelist: the
first page, page 2, a filter and a search, and reports every page's statements with any
``COUNT(*)`` that is not capped.

Usage::

    DJANGO_ENV=test .venv/bin/python benchmarks/changelists.py [--repeat 20]
    DJANGO_ENV=test .venv/bin/python benchmarks/changelists.py --drop
"""

import argparse
import time

from admin_pages import measure_pages, ms, print_statements
from bench_db import django_ready

PREFIX = "wfcl-"
ADMIN_USER = "wfcl-admin"
INSTANCES = 200
PER_INSTANCE = 5000
ROWS = INSTANCES * PER_INSTANCE
RUNS = 5000
PAGE_MS = 300
MARK = "wfcl"  # tags the generated rows of tables without an instance


GENERATE = [
    (
        "accounts",
        """
        INSERT INTO accounts_account (name, host, kind, first_seen_at, last_seen_at, instance_id)
        SELECT 'user_' || g, '%%', 'user', now() - interval '400 days', now(), i.id
        FROM inventory_instance i CROSS JOIN generate_series(1, %(per)s) g
        WHERE i.name LIKE 'wfcl-%%'
        """,
    ),
    (
        "privilege snapshots",
        """
        INSERT INTO accounts_privilegesnapshot (privileges, facts, fingerprint, is_superuser,
            is_locked, can_grant, can_escalate, is_anonymous, no_password,
            effective_fingerprint, format, collected_at, changed_at, account_id)
        SELECT '{"grants": [], "roles": [], "attributes": {}}'::jsonb,
               '{"capabilities": [], "roles": [], "privileges": []}'::jsonb, md5(a.id::text),
               a.id %% 97 = 0, a.id %% 89 = 0, a.id %% 53 = 0, a.id %% 211 = 0, false,
               a.id %% 101 = 0, '', 2, now(), now() - (a.id %% 365) * interval '1 day', a.id
        FROM accounts_account a JOIN inventory_instance i ON i.id = a.instance_id
        WHERE i.name LIKE 'wfcl-%%'
        """,
    ),
    (
        "account changes",
        """
        INSERT INTO accounts_accountchange (engine, run_id, detected_at, change_type, summary,
            diff, privileged, account_id, instance_id)
        SELECT i.engine, NULL, now() - (a.id %% 365) * interval '1 day',
               (ARRAY['created', 'privileges_changed', 'attributes_changed', 'removed'])
                   [1 + a.id %% 4],
               '+1 grant', '{}'::jsonb, a.id %% 97 = 0, a.id, i.id
        FROM accounts_account a JOIN inventory_instance i ON i.id = a.instance_id
        WHERE i.name LIKE 'wfcl-%%'
        """,
    ),
    (
        "classification assignments",
        """
        INSERT INTO classification_assignment (source, assigned_at, note, account_id,
            classification_id, rule_id)
        SELECT 'manual', now(), '', a.id,
               (SELECT id FROM classification_classification ORDER BY id
                OFFSET a.id %% (SELECT COUNT(*) FROM classification_classification) LIMIT 1),
               NULL
        FROM accounts_account a JOIN inventory_instance i ON i.id = a.instance_id
        WHERE i.name LIKE 'wfcl-%%'
        """,
    ),
    (
        "audit log entries",
        """
        INSERT INTO auditlog_logentry (object_pk, object_id, object_repr, action, changes_text,
            changes, timestamp, content_type_id, cid, additional_data)
        SELECT (g %% 1000)::text, g %% 1000, 'wfcl object ' || (g %% 1000), g %% 3, '',
               '{"name": ["a", "b"]}'::jsonb, now() - (g %% 720) * interval '1 hour',
               (SELECT id FROM django_content_type
                WHERE app_label = 'inventory' AND model = 'instance'),
               'wfcl', NULL
        FROM generate_series(1, %(rows)s) g
        """,
    ),
    (
        "runs",
        """
        INSERT INTO syncjobs_run (kind, trigger, status, task_id, created_at, started_at,
            finished_at, items_total, items_succeeded, items_failed, items_skipped,
            items_cancelled, created_count, changed_count, removed_count, restored_count,
            unchanged_count, summary, error, cancel_requested)
        SELECT 'accounts', 'scheduled', 'succeeded', 'wfcl-' || g,
               now() - g * interval '1 hour', now() - g * interval '1 hour',
               now() - g * interval '1 hour' + interval '5 minutes', %(instances)s,
               %(instances)s, 0, 0, 0, 0, 0, 0, 0, 0, '{}'::jsonb, '', false
        FROM generate_series(1, %(runs)s) g
        """,
    ),
    (
        "run items",
        """
        INSERT INTO syncjobs_runitem (status, created_count, changed_count, removed_count,
            restored_count, unchanged_count, attempts, error, skip_reason, detail,
            instance_id, run_id, started_at, finished_at, heartbeat_at, task_id, task_retries)
        SELECT CASE WHEN (r.id + i.id) %% 50 = 0 THEN 'failed' ELSE 'succeeded' END,
               0, 0, 0, 0, 5000, 1,
               CASE WHEN (r.id + i.id) %% 50 = 0 THEN 'Unreachable: timed out' ELSE '' END,
               '', '{}'::jsonb, i.id, r.id, r.started_at, r.finished_at, r.finished_at, '', 0
        FROM syncjobs_run r CROSS JOIN inventory_instance i
        WHERE r.task_id LIKE 'wfcl-%%' AND i.name LIKE 'wfcl-%%'
        """,
    ),
    (
        "login events",
        """
        INSERT INTO whalefall_loginevent (created_at, kind, username, user_agent, request_id,
            ip_address)
        SELECT now() - (g %% 720) * interval '1 hour',
               (ARRAY['succeeded', 'failed', 'rate_limited'])[1 + g %% 3],
               'wfcl-user' || (g %% 500), 'bench', 'wfcl-' || g, '10.0.0.1'
        FROM generate_series(1, %(rows)s) g
        """,
    ),
    (
        "application events",
        """
        INSERT INTO whalefall_eventlogentry (created_at, level, event, logger, request_id,
            run_id, instance_id, context)
        SELECT now() - (g %% 720) * interval '1 hour',
               (ARRAY['info', 'warning', 'error'])[1 + g %% 3],
               (ARRAY['run_finished', 'run_item_failed', 'wfcl_event'])[1 + g %% 3],
               'syncjobs.services', 'wfcl-' || g, g %% 5000, NULL, '{"bench": true}'::jsonb
        FROM generate_series(1, %(rows)s) g
        """,
    ),
]


def instance_ids() -> list[int]:
    from inventory.models import Instance

    return list(Instance.objects.filter(name__startswith=PREFIX).values_list("pk", flat=True))


def ensure_dataset() -> None:
    from django.db import connection

    from accounts.models import Account, AccountChange
    from inventory.models import Instance
    from syncjobs.services import roles_install

    if (
        len(instance_ids()) == INSTANCES
        and Account.objects.filter(instance__name__startswith=PREFIX).count() == ROWS
        and AccountChange.objects.filter(instance__name__startswith=PREFIX).count() == ROWS
    ):
        return
    drop_everything()
    roles_install()
    started = time.perf_counter()
    print(f"generating 10⁶ rows in each big table ({INSTANCES} instances; one-time) …")
    Instance.objects.bulk_create(
        [
            Instance(
                name=f"{PREFIX}{n:03d}",
                engine="mysql",
                port=3306,
                host=f"10.1.{n // 250}.{n % 250}",
            )
            for n in range(INSTANCES)
        ]
    )
    params = {"per": PER_INSTANCE, "rows": ROWS, "runs": RUNS, "instances": INSTANCES}
    with connection.cursor() as cursor:
        for label, sql in GENERATE:
            step = time.perf_counter()
            cursor.execute(sql, params)
            print(f"  {label:28} {cursor.rowcount:>9,} rows in {time.perf_counter() - step:5.1f} s")
        cursor.execute("VACUUM ANALYZE")  # fresh visibility map, no dead index entries
    print(f"generated in {time.perf_counter() - started:.1f} s")


def drop_everything() -> None:
    from django.db import connection

    ids = instance_ids()
    with connection.cursor() as cursor:
        for sql in (
            "DELETE FROM whalefall_eventlogentry WHERE request_id LIKE 'wfcl-%%'",
            "DELETE FROM whalefall_loginevent WHERE request_id LIKE 'wfcl-%%'",
            "DELETE FROM syncjobs_runitem WHERE run_id IN "
            "(SELECT id FROM syncjobs_run WHERE task_id LIKE 'wfcl-%%')",
            "DELETE FROM syncjobs_run WHERE task_id LIKE 'wfcl-%%'",
            "DELETE FROM auditlog_logentry WHERE cid = 'wfcl'",
        ):
            cursor.execute(sql)
        if ids:
            for sql in (
                "DELETE FROM classification_assignment WHERE account_id IN "
                "(SELECT id FROM accounts_account WHERE instance_id = ANY(%s))",
                "DELETE FROM accounts_accountchange WHERE instance_id = ANY(%s)",
                "DELETE FROM accounts_privilegesnapshot WHERE account_id IN "
                "(SELECT id FROM accounts_account WHERE instance_id = ANY(%s))",
                "DELETE FROM accounts_account WHERE instance_id = ANY(%s)",
                "DELETE FROM inventory_instance WHERE id = ANY(%s)",
            ):
                cursor.execute(sql, [ids])


# The tables filled with 10⁶ rows (runs have 5 000): a count over one of them must be capped.
BIG_TABLES = (
    "accounts_account", "accounts_privilegesnapshot", "accounts_accountchange",
    "classification_assignment", "auditlog_logentry", "syncjobs_runitem",
    "whalefall_loginevent", "whalefall_eventlogentry",
)  # fmt: skip


def uncapped_counts(m: dict) -> list[str]:
    """COUNT statements of a page that read a big table and are not capped by a LIMIT
    (counts over the instances, one day's runs or the databases are bounded by design)."""
    return [
        sql
        for _s, sql, _p in m["statements"]
        if "COUNT(" in sql
        and "LIMIT" not in sql
        and any(f'"{table}"' in sql for table in BIG_TABLES)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="Timed runs per page.")
    parser.add_argument("--drop", action="store_true", help="Remove the generated rows.")
    parser.add_argument("--only", help="Measure only the pages whose label contains this text.")
    parser.add_argument("--statements", action="store_true", help="Print every page's statements.")
    args = parser.parse_args()

    django_ready()
    from django.contrib.auth import get_user_model
    from django.test import Client

    if args.drop:
        drop_everything()
        print("removed the generated rows")
        return
    ensure_dataset()
    instance = instance_ids()[0]
    user, _ = get_user_model().objects.get_or_create(
        username=ADMIN_USER, defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)

    pages = {
        "dashboard": "/admin/",
        "accounts": "/admin/accounts/account/",
        "accounts, page 2": "/admin/accounts/account/?p=2",
        "accounts, one instance": f"/admin/accounts/account/?instance={instance}",
        "accounts, search 'user_42'": "/admin/accounts/account/?q=user_42",
        "accounts, search a rare name": "/admin/accounts/account/?q=nobody_by_this_name",
        "accounts, search 'user_' (all)": "/admin/accounts/account/?q=user_",
        "account changes": "/admin/accounts/accountchange/",
        "account changes, page 2": "/admin/accounts/accountchange/?p=2",
        "account changes, privileged": "/admin/accounts/accountchange/?privileged=yes",
        "account changes, search a rare name": "/admin/accounts/accountchange/?q=nobody_here",
        "assignments, search a rare name": "/admin/classification/assignment/?q=nobody_here",
        "assignments": "/admin/classification/assignment/",
        "audit log": "/admin/auditlog/logentry/",
        "audit log, page 2": "/admin/auditlog/logentry/?p=2",
        "audit log, updates": "/admin/auditlog/logentry/?action__exact=1",
        "runs": "/admin/syncjobs/run/",
        "run items": "/admin/syncjobs/runitem/",
        "run items, failed": "/admin/syncjobs/runitem/?status__exact=failed",
        "login events": "/admin/whalefall/loginevent/",
        "login events, failed": "/admin/whalefall/loginevent/?kind__exact=failed",
        "application events": "/admin/whalefall/eventlogentry/",
        "application events, errors": "/admin/whalefall/eventlogentry/?level__exact=error",
    }
    if args.only:
        pages = {label: url for label, url in pages.items() if args.only in label}
    measured = measure_pages(client, pages, args.repeat)

    print()
    print(f"changelists at 10⁶ rows, median of {args.repeat} after a warm-up "
          f"(budget < {PAGE_MS} ms, no uncapped COUNT)")  # fmt: skip
    print(f"   {'page':38} {'server ms':>9} {'(best)':>9} {'SQL ms':>9} {'queries':>7}  counts")
    missed = 0
    for label, m in measured.items():
        uncapped = uncapped_counts(m)
        ok = m["wall"] * 1000 < PAGE_MS and not uncapped
        missed += not ok
        print(
            f"   {label:38} {ms(m['wall'])} {ms(m['best'])} {ms(m['sql'])} {m['queries']:7d}  "
            f"{'UNCAPPED' if uncapped else 'capped'}  {'PASS' if ok else 'FAIL'}"
        )
    for label, m in measured.items():
        if args.statements or uncapped_counts(m) or m["wall"] * 1000 >= PAGE_MS:
            print(f"   statements of '{label}':")
            print_statements(m)
    pairs = [(a, f"{a}, page 2") for a in ("accounts", "account changes", "audit log")]
    pairs = [(a, b) for a, b in pairs if a in measured and b in measured]
    same = all(measured[a]["queries"] == measured[b]["queries"] for a, b in pairs)
    print(f"   query count the same on page 1 and page 2: {'yes' if same else 'NO'}")
    print(f"{missed} budget(s) missed")


if __name__ == "__main__":
    main()

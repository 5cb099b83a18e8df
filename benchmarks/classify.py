"""Auto-classification benchmark: 100 000 accounts x 50 rules (SPEC §11, issue budgets).

Builds, once, an estate of instances whose accounts carry realistic facts (MySQL and
PostgreSQL grants, roles, superusers, locked accounts) and 50 rules of every DSL function,
then measures in the same run:

* loading the facts of every active account;
* evaluation of every rule against every account with compiled rules (what the service
  does) against the naive way (``dsl.evaluate`` per account and rule, parsing and
  validating the expression every time), the latter on a sample and extrapolated;
* the swap: first classification (all inserts), a re-run with nothing changed (no writes),
  a re-run after one rule's new version (rows move to it), and the predecessor's way
  (delete every automatic assignment, insert them all again).

Usage::

    DJANGO_ENV=test .venv/bin/python benchmarks/classify.py [--accounts 100000] [--rules 50]

It uses its own main database ``whalefall_bench`` on the local PostgreSQL (created and
migrated when missing); the generated estate is kept for the next run.
"""

import argparse
import random
import time

from bench_db import django_ready

PREFIX = "wfc-"
ACCOUNTS_PER_INSTANCE = 5000


def account_privileges(engine: str, rng: random.Random, i: int) -> dict:
    """A varied raw privilege set: most accounts are plain, a few are powerful."""
    grants, roles, attributes = [], [], {}
    databases = [f"app{n}" for n in range(20)]
    if engine == "mysql":
        attributes = {"superuser": i % 500 == 0, "locked": i % 40 == 0}
        if i % 500 == 0:
            grants.append(("global", "", "SUPER", "GRANT"))
        if i % 97 == 0:
            grants.append(("global", "", "ALL PRIVILEGES", ""))
        if i % 7 == 0:
            grants.append(("global", "", "PROCESS", ""))
        for db in rng.sample(databases, 3):
            for privilege in rng.sample(["SELECT", "INSERT", "UPDATE", "DELETE"], 2):
                grants.append(("database", db, privilege, ""))
        grants.append(("table", f"{databases[i % 20]}.orders", "SELECT", ""))
        if i % 5 == 0:
            roles.append(f"role{i % 8}")
    else:
        attributes = {
            "superuser": i % 400 == 0,
            "create_role": i % 150 == 0,
            "create_db": i % 60 == 0,
            "locked": i % 50 == 0,
        }
        for db in rng.sample(databases, 3):
            grants.append(("database", db, "CONNECT", ""))
            if rng.random() < 0.3:
                grants.append(("database", db, "CREATE", ""))
        grants.append(("schema", f"{databases[i % 20]}.public", "USAGE", ""))
        if i % 3 == 0:
            roles.append(f"pg_role{i % 6}")
        if i % 90 == 0:
            roles.append("pg_read_all_data")
    return {"engine": engine, "attributes": attributes, "roles": roles, "grants": grants}


def ensure_estate(accounts: int):
    from django.utils import timezone

    from accounts.canonical import canonical_with_fingerprint
    from accounts.facts import GRANT_ADMIN, LOCKED, SUPERUSER, facts_of_canonical
    from accounts.models import Account, PrivilegeSnapshot
    from inventory.models import Credential, Instance

    instances_needed = max(1, accounts // ACCOUNTS_PER_INSTANCE)
    existing = Account.objects.filter(instance__name__startswith=PREFIX).count()
    if existing == instances_needed * ACCOUNTS_PER_INSTANCE:
        return list(Instance.objects.filter(name__startswith=PREFIX).order_by("pk"))
    print(f"building {instances_needed * ACCOUNTS_PER_INSTANCE} accounts (one-time) …", flush=True)
    from classification.models import Assignment

    Assignment.objects.filter(account__instance__name__startswith=PREFIX).delete()
    PrivilegeSnapshot.objects.filter(account__instance__name__startswith=PREFIX).delete()
    Account.objects.filter(instance__name__startswith=PREFIX).delete()
    Instance.objects.filter(name__startswith=PREFIX).delete()
    credential, _ = Credential.objects.get_or_create(name="wfc-bench", defaults={"username": "x"})
    rng = random.Random(7)
    now = timezone.now()
    instances = []
    for n in range(instances_needed):
        engine = "mysql" if n % 2 == 0 else "postgresql"
        instance = Instance.objects.create(
            name=f"{PREFIX}{n:02d}",
            engine=engine,
            host=f"10.0.0.{n + 1}",
            port=3306 if engine == "mysql" else 5432,
            credential=credential,
        )
        instances.append(instance)
        rows = Account.objects.bulk_create(
            [
                Account(
                    instance=instance,
                    name=f"user{i:05d}",
                    host="%" if engine == "mysql" else "",
                    kind="user",
                    first_seen_at=now,
                    last_seen_at=now,
                )
                for i in range(ACCOUNTS_PER_INSTANCE)
            ],
            batch_size=5000,
        )
        snapshots = []
        for i, account in enumerate(rows):
            privileges, fingerprint = canonical_with_fingerprint(
                account_privileges(engine, rng, i + n * ACCOUNTS_PER_INSTANCE)
            )
            facts = facts_of_canonical(privileges)
            capabilities = set(facts["capabilities"])
            snapshots.append(
                PrivilegeSnapshot(
                    account=account,
                    privileges=privileges,
                    facts=facts,
                    fingerprint=fingerprint,
                    is_superuser=SUPERUSER in capabilities,
                    is_locked=LOCKED in capabilities,
                    can_grant=GRANT_ADMIN in capabilities,
                    collected_at=now,
                    changed_at=now,
                )
            )
        PrivilegeSnapshot.objects.bulk_create(snapshots, batch_size=5000)
    return instances


def fn(function, /, **args):
    return {"fn": function, "args": args} if args else {"fn": function}


def rule_expressions(count: int) -> list[tuple[str, str, dict]]:
    """``count`` rules (classification code, engine, expression) using every function."""
    superuser, locked = fn("is_superuser"), fn("is_locked")
    grant_admin = fn("has_capability", name="GRANT_ADMIN")
    mysql = fn("db_type_in", types=["mysql"])

    def shape(n: int) -> tuple[str, str, dict]:
        db = f"app{n % 20}"
        global_super = {
            "op": "OR",
            "args": [
                fn("has_privilege", name="SUPER", scope="global"),
                fn("has_privilege", name="ALL PRIVILEGES", scope="global"),
            ],
        }
        return [
            ("super", "", {"op": "OR", "args": [superuser, grant_admin]}),
            ("super", "mysql", {"op": "AND", "args": [mysql, global_super]}),
            ("highly_privileged", "mysql", fn("has_privilege", name="PROCESS", scope="global")),
            ("sensitive", "", fn("has_privilege", name="DELETE", scope="database", object=db)),
            ("medium", "", fn("has_privilege", name="UPDATE", scope="database", database=db)),
            ("low", "", fn("has_role", name=f"role{n % 8}")),
            ("low", "postgresql", fn("has_privilege", name="CREATE", scope="database", object=db)),
            ("public", "", {"op": "AND", "args": [locked, {"op": "NOT", "args": [superuser]}]}),
            ("highly_privileged", "postgresql", fn("has_role", name="pg_read_all_data")),
            ("medium", "postgresql", fn("has_capability", name="create_db")),
        ][n % 10]  # fmt: skip

    return [
        (code, engine, {"version": 4, "expr": expr})
        for code, engine, expr in (shape(n) for n in range(count))
    ]


def ensure_rules(count: int):
    from classification.models import Classification, Rule
    from classification.services import rule_create

    classifications = {c.code: c for c in Classification.objects.all()}
    Rule.objects.filter(name__startswith="bench ").update(is_active=False)
    for n, (code, engine, expression) in enumerate(rule_expressions(count)):
        name = f"bench {n:02d}"
        rule = Rule.objects.current().filter(name=name).first()
        if rule is None:
            rule_create(
                classification=classifications[code],
                name=name,
                engine=engine,
                expression=expression,
            )
        else:
            Rule.objects.filter(pk=rule.pk).update(is_active=True)


def timed(label: str, func, *args, **kwargs):
    started = time.perf_counter()
    result = func(*args, **kwargs)
    seconds = time.perf_counter() - started
    print(f"  {label:<58} {seconds:8.3f} s", flush=True)
    return result, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--naive-sample", type=int, default=5_000)
    options = parser.parse_args()

    django_ready()
    from django.db import transaction

    from classification import dsl
    from classification.models import Assignment, AssignmentSource, Rule
    from classification.services import (
        _active_facts,
        assignments_swap,
        matches_compute,
        rule_update,
        ruleset_load,
    )

    instances = ensure_estate(options.accounts)
    ensure_rules(options.rules)
    Assignment.objects.filter(account__instance__in=instances).delete()
    total = len(instances) * ACCOUNTS_PER_INSTANCE
    print(f"{total} accounts on {len(instances)} instances, {options.rules} rules")

    ruleset, _ = timed("compile the rules", ruleset_load)
    facts, load_s = timed(
        "load the facts of every account",
        lambda: {i.pk: list(_active_facts([i.pk])) for i in instances},
    )

    def evaluate_all():
        return {
            instance.pk: matches_compute(ruleset.for_engine(instance.engine), facts[instance.pk])
            for instance in instances
        }

    matched, eval_s = timed("evaluate: compiled rules x every account", evaluate_all)
    pairs = sum(len(m) for m in matched.values())
    evaluations = sum(len(facts[i.pk]) * len(ruleset.for_engine(i.engine)) for i in instances)
    print(f"    {evaluations} rule evaluations, {pairs} assignments")

    # Naive: dsl.evaluate (parse + validate + evaluate) for every account and rule.
    rules = list(Rule.objects.runnable())
    sample = [(i, f) for i in instances[:2] for f in facts[i.pk][: options.naive_sample // 2]]
    started = time.perf_counter()
    naive_evaluations = 0
    for instance, (_, account_facts) in sample:
        for rule in rules:
            if rule.engine in ("", instance.engine):
                dsl.evaluate(rule.expression, account_facts)
                naive_evaluations += 1
    naive_s = (time.perf_counter() - started) * evaluations / max(naive_evaluations, 1)
    print(f"  {'evaluate: naive dsl.evaluate per pair (extrapolated)':<58} {naive_s:8.3f} s")

    def swap_all(run_id):
        outcomes = [
            assignments_swap(
                instance=i,
                matched=matched[i.pk],
                frozen_classifications=ruleset.frozen_classifications,
                run_id=run_id,
            )
            for i in instances
        ]
        return {
            k: sum(getattr(o, k) for o in outcomes)
            for k in ("created", "changed", "removed", "unchanged")
        }

    first, first_s = timed("swap: first classification (all inserts)", swap_all, 1)
    print(f"    {first}")
    again, again_s = timed("swap: re-run, nothing changed", swap_all, 2)
    print(f"    {again}")
    changed_rule = Rule.objects.current().get(name="bench 03")
    rule_update(
        rule=changed_rule,
        name=changed_rule.name,
        engine=changed_rule.engine,
        is_active=True,
        expression={
            "version": 4,
            "expr": {"op": "OR", "args": [changed_rule.expression["expr"], fn("is_locked")]},
        },
    )
    ruleset = ruleset_load()
    matched, _ = timed("evaluate again after one rule's new version", evaluate_all)
    moved, moved_s = timed("swap: after one rule's new version", swap_all, 3)
    print(f"    {moved}")

    def predecessor_way():
        with transaction.atomic():
            Assignment.objects.filter(
                account__instance__in=instances, source=AssignmentSource.AUTO
            ).delete()
            Assignment.objects.bulk_create(
                [
                    Assignment(
                        account_id=account_id,
                        classification_id=classification_id,
                        rule_id=rule_id,
                        run_id=4,
                    )
                    for m in matched.values()
                    for (account_id, classification_id), rule_id in m.items()
                ],
                batch_size=2000,
            )

    _, naive_swap_s = timed("swap: predecessor's delete-all then insert-all", predecessor_way)

    print()
    print("summary")
    print(
        f"  facts load {load_s:.2f} s; evaluation {eval_s:.2f} s "
        f"(naive ≈ {naive_s:.1f} s, {naive_s / eval_s:.0f}x slower)"
    )
    print(
        f"  swap first {first_s:.2f} s; no-change {again_s:.2f} s; one rule re-versioned "
        f"{moved_s:.2f} s; delete-all/insert-all {naive_swap_s:.2f} s"
    )


if __name__ == "__main__":
    main()

"""Rule versioning, auto-classification of accounts and the daily statistics.

Auto-classification of an instance evaluates every runnable rule against the facts of every
active account in memory, builds the complete new set of automatic assignments, and only
then swaps it in with one transaction: new pairs inserted, gone pairs deleted, unchanged
pairs left alone. Manual assignments are never touched. A stored rule that does not
validate is skipped and reported; its classification keeps the assignments it has, because
its complete new set cannot be known.
"""

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import structlog
from auditlog.models import LogEntry
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from accounts.effective import everything_held
from accounts.models import Account, AccountKind, PrivilegeSnapshot
from accounts.services import account_sync_instance
from classification import dsl
from classification.models import (
    Assignment,
    AssignmentSource,
    Classification,
    ClassificationDailyStat,
    Rule,
    RuleDailyStat,
)
from inventory.models import Instance
from whalefall import alerts
from whalefall.db import insert_rows

log = structlog.get_logger(__name__)

BATCH = 2000


class RuleInvalid(ValueError):
    """The expression does not validate; ``errors`` lists every problem with its path."""

    def __init__(self, errors: list[dsl.DslError]):
        self.errors = errors
        super().__init__("; ".join(f"{e.path or 'expression'}: {e.message}" for e in errors))


class RuleSuperseded(ValueError):
    """Superseded rule versions are read-only."""


# --- Rules --------------------------------------------------------------------------------


def expression_normalise(expression: Any) -> dict[str, Any]:
    """The expression as a validated mapping; raises :class:`RuleInvalid`."""
    errors = dsl.validate(expression)
    if errors:
        raise RuleInvalid(errors)
    return json.loads(expression) if isinstance(expression, str | bytes) else dict(expression)


def _same_expression(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def rule_create(
    *,
    classification: Classification,
    name: str,
    expression: Any,
    engine: str = "",
    is_active: bool = True,
    user=None,
) -> Rule:
    """Create version 1 of a rule."""
    rule = Rule(
        classification=classification,
        name=name,
        engine=engine,
        expression=expression_normalise(expression),
        is_active=is_active,
        created_by=user,
    )
    rule.full_clean()
    rule.save()
    log.info("rule_created", rule_id=rule.pk, lineage=str(rule.lineage), name=name)
    return rule


def rule_update(
    *,
    rule: Rule,
    name: str,
    expression: Any,
    engine: str,
    is_active: bool,
    user=None,
) -> Rule:
    """Apply an edit; returns the current version afterwards.

    A new expression or engine changes what the rule matches, so it becomes version n+1 and
    version n is superseded (kept, read-only). Name and active flag change in place.
    """
    expression = expression_normalise(expression)
    with transaction.atomic():
        current = Rule.objects.select_for_update().get(pk=rule.pk)
        if current.superseded_at is not None:
            raise RuleSuperseded(f"{current} is superseded; edit the current version")
        if _same_expression(current.expression, expression) and current.engine == engine:
            current.name, current.is_active = name, is_active
            current.full_clean()
            current.save(update_fields=["name", "is_active", "updated_at"])
            return current
        now = timezone.now()
        # Supersede first: "one current version" and the name are unique among current rows.
        Rule.objects.filter(pk=current.pk).update(superseded_at=now, updated_at=now)
        successor = Rule(
            lineage=current.lineage,
            version=current.version + 1,
            classification=current.classification,
            name=name,
            engine=engine,
            expression=expression,
            is_active=is_active,
            created_by=user,
            created_at=now,
        )
        successor.full_clean(exclude=["lineage"])
        successor.save()
    log.info(
        "rule_new_version",
        rule_id=successor.pk,
        lineage=str(successor.lineage),
        version=successor.version,
        superseded_id=current.pk,
    )
    return successor


# --- Evaluation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledRule:
    """A runnable rule version reduced to what evaluation needs."""

    id: int
    classification_id: int
    engine: str
    predicate: Callable[[Mapping[str, Any]], bool]


@dataclass
class RuleSet:
    """The compiled runnable rules, and what could not be compiled."""

    rules: list[CompiledRule] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    frozen_classifications: set[int] = field(default_factory=set)

    def for_engine(self, engine: str) -> list[CompiledRule]:
        return [rule for rule in self.rules if rule.engine in ("", engine)]


def ruleset_load(*, engine: str | None = None) -> RuleSet:
    """Compile the current active rules (of one engine, or all), in evaluation order."""
    rules = Rule.objects.runnable()
    if engine is not None:
        rules = rules.for_engine(engine)
    ruleset = RuleSet()
    for rule in rules:
        try:
            predicate = dsl.compile(rule.expression)
        except dsl.InvalidExpression as exc:
            ruleset.problems.append(
                f"rule {rule.name!r} v{rule.version} (#{rule.pk}) of {rule.classification} "
                f"skipped, its expression is invalid: {exc}"
            )
            ruleset.frozen_classifications.add(rule.classification_id)
            continue
        ruleset.rules.append(CompiledRule(rule.pk, rule.classification_id, rule.engine, predicate))
    return ruleset


def matches_compute(
    rules: list[CompiledRule], accounts: Iterable[tuple[int, Mapping[str, Any]]]
) -> dict[tuple[int, int], int]:
    """``(account_id, classification_id) -> rule_id`` of the first rule that matched."""
    matched: dict[tuple[int, int], int] = {}
    for account_id, facts in accounts:
        for rule in rules:
            key = (account_id, rule.classification_id)
            if key not in matched and rule.predicate(facts):
                matched[key] = rule.id
    return matched


NO_PUBLIC: dict[str, list] = {"grants": [], "roles": []}


def _public_facts(instances) -> dict[int, dict[str, list]]:
    """Instance id -> the grants and roles of its PUBLIC account, for effective rule checks
    (``instances``: ids or a subquery of them; one query whatever their number)."""
    rows = PrivilegeSnapshot.objects.filter(
        account__instance_id__in=instances,
        account__kind=AccountKind.PUBLIC,
        account__removed_at__isnull=True,
    ).values_list("account__instance_id", "facts")
    public = {}
    for instance_id, facts in rows:
        # Its own grants and those of the roles granted to PUBLIC.
        grants, roles = everything_held(facts)
        public[instance_id] = {"grants": grants, "roles": roles}
    return public


def _with_public(rows, public) -> Iterable[tuple[int, Mapping[str, Any]]]:
    """``(account_id, facts)`` with ``facts["public"]`` from ``(account_id, instance_id,
    facts)`` rows; an instance without a PUBLIC account gives it empty."""
    for account_id, instance_id, facts in rows:
        facts["public"] = public.get(instance_id, NO_PUBLIC)
        yield account_id, facts


def _active_facts(instance_ids: Iterable[int]) -> Iterable[tuple[int, Mapping[str, Any]]]:
    instance_ids = list(instance_ids)
    rows = (
        PrivilegeSnapshot.objects.filter(
            account__instance_id__in=instance_ids, account__removed_at__isnull=True
        )
        .values_list("account_id", "account__instance_id", "facts")
        .iterator(chunk_size=BATCH)
    )
    return _with_public(rows, _public_facts(instance_ids))


@dataclass
class ClassifyOutcome:
    """What one auto-classification of one instance did (a run handler's outcome)."""

    created: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    detail: dict[str, Any] = field(default_factory=dict)


def assignments_swap(
    *,
    instance: Instance,
    matched: dict[tuple[int, int], int],
    frozen_classifications: set[int],
    run_id: int | None,
) -> ClassifyOutcome:
    """Make the automatic assignments of an instance's accounts exactly ``matched``."""
    outcome = ClassifyOutcome()
    now = timezone.now()
    with transaction.atomic():
        rows = Assignment.objects.filter(account__instance=instance).values_list(
            "pk", "account_id", "classification_id", "rule_id", "source"
        )
        existing: dict[tuple[int, int], tuple[int, int]] = {}
        manual: set[tuple[int, int]] = set()
        for pk, account_id, classification_id, rule_id, source in rows:
            if source == AssignmentSource.MANUAL:
                manual.add((account_id, classification_id))
            else:
                existing[(account_id, classification_id)] = (pk, rule_id)
        wanted = {
            key: rule_id
            for key, rule_id in matched.items()
            if key not in manual and key[1] not in frozen_classifications
        }
        gone = [
            pk
            for key, (pk, _) in existing.items()
            if key not in wanted and key[1] not in frozen_classifications
        ]
        moved: dict[int, list[int]] = defaultdict(list)  # new rule id -> assignment ids
        new = []
        for key, rule_id in wanted.items():
            if key not in existing:
                new.append((key[0], key[1], rule_id))
            elif existing[key][1] != rule_id:
                moved[rule_id].append(existing[key][0])
            else:
                outcome.unchanged += 1
        for start in range(0, len(gone), BATCH):
            batch = gone[start : start + BATCH]
            outcome.removed += Assignment.objects.filter(pk__in=batch).delete()[0]
        for rule_id, pks in moved.items():
            outcome.changed += Assignment.objects.filter(pk__in=pks).update(
                rule_id=rule_id, run_id=run_id, assigned_at=now
            )
        outcome.created = _assignments_insert(new, run_id=run_id, now=now)
        _alert_new_matches(instance, new)
    return outcome


def _alert_new_matches(instance: Instance, new: list[tuple[int, int, int]]) -> None:
    """An alert event per account that newly matched a classification (rules compare its
    risk level), in the transaction that assigned it."""
    if not new:
        return
    classes = {
        pk: (name, risk)
        for pk, name, risk in Classification.objects.filter(
            pk__in={c for _a, c, _r in new}
        ).values_list("pk", "name", "risk_level")
    }
    names = {
        pk: f"{name}@{host}" if host else name
        for pk, name, host in Account.objects.filter(pk__in={a for a, _c, _r in new}).values_list(
            "pk", "name", "host"
        )
    }
    account_path = reverse("admin:accounts_account_change", args=[0]).replace("/0/", "/{}/")
    alerts.emit_many(
        "classification_matched",
        [
            {
                "instance": instance,
                "payload": {
                    "instance": instance.name,
                    "account": names.get(account_id, str(account_id)),
                    "account_id": account_id,
                    "classification": classes[classification_id][0],
                    "risk_level": classes[classification_id][1],
                    "path": account_path.format(account_id),
                },
                "dedup_key": f"assignment:{account_id}:{classification_id}",
            }
            for account_id, classification_id, _rule in new
            if classification_id in classes
        ],
    )


def _assignments_insert(pairs: list[tuple[int, int, int]], *, run_id, now) -> int:
    """Insert automatic assignments ``(account, classification, rule)``; returns how many.

    COPY first; if a manual assignment of one of the pairs was made meanwhile, the unique
    pair refuses the batch and the rows go in again skipping conflicts (manual wins).
    """
    if not pairs:
        return 0
    fields = ["account", "classification", "rule", "source", "run_id", "assigned_at", "note"]
    rows = [(a, c, r, AssignmentSource.AUTO, run_id, now, "") for a, c, r in pairs]
    try:
        with transaction.atomic():
            return insert_rows(Assignment, fields, rows)
    except IntegrityError:
        created = Assignment.objects.bulk_create(
            [
                Assignment(
                    account_id=a,
                    classification_id=c,
                    rule_id=r,
                    source=AssignmentSource.AUTO,
                    run_id=run_id,
                    assigned_at=now,
                )
                for a, c, r in pairs
            ],
            batch_size=BATCH,
            ignore_conflicts=True,
        )
        return len(created)


def classification_classify_instance(*, instance: Instance, run_id: int | None = None):
    """Auto-classify the active accounts of one instance (the classification run's handler)."""
    ruleset = ruleset_load(engine=instance.engine)
    rules = ruleset.rules
    facts = list(_active_facts([instance.pk]))
    matched = matches_compute(rules, facts)
    outcome = assignments_swap(
        instance=instance,
        matched=matched,
        frozen_classifications=ruleset.frozen_classifications,
        run_id=run_id,
    )
    outcome.detail = {"rules": len(rules), "accounts": len(facts)}
    if ruleset.problems:
        outcome.detail["problems"] = ruleset.problems
    log.info(
        "classification_finished",
        instance_id=instance.pk,
        run_id=run_id,
        rules=len(rules),
        accounts=len(facts),
        created=outcome.created,
        changed=outcome.changed,
        removed=outcome.removed,
        unchanged=outcome.unchanged,
        skipped_rules=len(ruleset.problems),
    )
    return outcome


def account_sync_and_classify(*, instance: Instance, run_id: int | None = None):
    """The accounts run's handler: sync the instance's accounts, then classify them.

    The sync has committed by the time classification starts, so a classification failure
    is reported as a problem of the item rather than undoing the sync.
    """
    outcome = account_sync_instance(instance=instance, run_id=run_id)
    try:
        classified = classification_classify_instance(instance=instance, run_id=run_id)
    except Exception as exc:  # the sync stands; the run shows the problem
        log.exception("classification_after_sync_failed", instance_id=instance.pk)
        outcome.detail["problems"] = [f"classification failed: {type(exc).__name__}: {exc}"]
        return outcome
    outcome.detail["classification"] = {
        "created": classified.created,
        "changed": classified.changed,
        "removed": classified.removed,
        "unchanged": classified.unchanged,
    }
    if problems := classified.detail.get("problems"):
        outcome.detail["problems"] = problems
    return outcome


def assignment_add_manual(*, account: Account, classification: Classification, user, note=""):
    """Assign a classification by hand; an automatic assignment of the pair becomes manual."""
    with transaction.atomic():
        assignment, created = Assignment.objects.select_for_update().get_or_create(
            account=account,
            classification=classification,
            defaults={"source": AssignmentSource.MANUAL, "assigned_by": user, "note": note},
        )
        if not created and assignment.source != AssignmentSource.MANUAL:
            assignment.source = AssignmentSource.MANUAL
            assignment.rule = None
            assignment.run_id = None
            assignment.assigned_by = user
            assignment.assigned_at = timezone.now()
            assignment.note = note
            assignment.save()
    LogEntry.objects.log_create(
        assignment,
        action=LogEntry.Action.CREATE if created else LogEntry.Action.UPDATE,
        changes={
            "source": [None if created else AssignmentSource.AUTO, AssignmentSource.MANUAL],
            "account": [None, str(account)],
            "classification": [None, classification.code],
            "note": [None, note],
        },
        additional_data={"instance_id": account.instance_id},
    )
    log.info(
        "assignment_manual_added",
        account_id=account.pk,
        classification=classification.code,
        user_id=getattr(user, "pk", None),
    )
    return assignment


def assignments_remove_manual(*, assignments, user) -> int:
    """Remove manual assignments (automatic ones follow the rules); returns how many."""
    removed = 0
    with transaction.atomic():
        for assignment in assignments.filter(source=AssignmentSource.MANUAL).select_related(
            "account", "classification"
        ):
            LogEntry.objects.log_create(
                assignment,
                action=LogEntry.Action.DELETE,
                changes={
                    "account": [str(assignment.account), None],
                    "classification": [assignment.classification.code, None],
                },
                additional_data={"instance_id": assignment.account.instance_id},
            )
            assignment.delete()
            removed += 1
    log.info("assignments_manual_removed", count=removed, user_id=getattr(user, "pk", None))
    return removed


# --- Preview ------------------------------------------------------------------------------


def rule_preview(*, expression: Any, engine: str, accounts, limit: int = 200) -> dict[str, Any]:
    """The accounts (of the given queryset) an unsaved expression would match.

    Returns ``errors`` (validation problems; nothing is evaluated then), ``total`` matches,
    ``evaluated`` accounts and up to ``limit`` matching accounts.
    """
    errors = dsl.validate(expression)
    if errors:
        return {"errors": errors, "total": 0, "evaluated": 0, "accounts": []}
    predicate = dsl.compile(expression)
    accounts = accounts.filter(removed_at__isnull=True, snapshot__isnull=False)
    if engine:
        accounts = accounts.filter(instance__engine=engine)
    matched_ids, evaluated = [], 0
    rows = accounts.values_list("pk", "instance_id", "snapshot__facts").iterator(chunk_size=BATCH)
    public = _public_facts(accounts.values("instance_id"))
    for account_id, facts in _with_public(rows, public):
        evaluated += 1
        if predicate(facts):
            matched_ids.append(account_id)
    shown = (
        Account.objects.filter(pk__in=matched_ids[:limit])
        .select_related("instance")
        .order_by("instance__name", "name", "host")
    )
    return {"errors": [], "total": len(matched_ids), "evaluated": evaluated, "accounts": shown}


# --- Daily statistics ---------------------------------------------------------------------


def statistics_compute(*, day: date | None = None) -> dict[str, int]:
    """Count matches per rule and per classification for every syncable instance.

    Rows are upserted per (day, rule or classification, instance); rows of that day for
    rules or classifications that no longer apply to an instance are removed, so
    re-running a day overwrites it.
    """
    day = day or timezone.localdate()
    ruleset = ruleset_load()
    totals = {"instances": 0, "rule_rows": 0, "classification_rows": 0}
    for instance in Instance.objects.syncable().only("pk", "engine"):
        rules = ruleset.for_engine(instance.engine)
        facts = list(_active_facts([instance.pk]))
        per_rule: dict[int, int] = dict.fromkeys((rule.id for rule in rules), 0)
        per_classification: dict[int, set[int]] = {rule.classification_id: set() for rule in rules}
        for account_id, account_facts in facts:
            for rule in rules:
                if rule.predicate(account_facts):
                    per_rule[rule.id] += 1
                    per_classification[rule.classification_id].add(account_id)
        assigned = dict(
            Assignment.objects.filter(account__instance=instance, account__removed_at__isnull=True)
            .values("classification_id")
            .annotate(n=Count("pk"))
            .values_list("classification_id", "n")
        )
        classification_ids = set(per_classification) | set(assigned)
        now = timezone.now()
        rule_rows = [
            RuleDailyStat(
                day=day,
                rule_id=rule_id,
                instance=instance,
                engine=instance.engine,
                matched=matched,
                evaluated=len(facts),
                computed_at=now,
            )
            for rule_id, matched in per_rule.items()
        ]
        classification_rows = [
            ClassificationDailyStat(
                day=day,
                classification_id=classification_id,
                instance=instance,
                engine=instance.engine,
                matched=len(per_classification.get(classification_id, ())),
                assigned=assigned.get(classification_id, 0),
                evaluated=len(facts),
                computed_at=now,
            )
            for classification_id in classification_ids
        ]
        with transaction.atomic():
            RuleDailyStat.objects.filter(day=day, instance=instance).exclude(
                rule_id__in=per_rule
            ).delete()
            ClassificationDailyStat.objects.filter(day=day, instance=instance).exclude(
                classification_id__in=classification_ids
            ).delete()
            RuleDailyStat.objects.bulk_create(
                rule_rows,
                batch_size=BATCH,
                update_conflicts=True,
                unique_fields=["day", "rule", "instance"],
                update_fields=["engine", "matched", "evaluated", "computed_at"],
            )
            ClassificationDailyStat.objects.bulk_create(
                classification_rows,
                batch_size=BATCH,
                update_conflicts=True,
                unique_fields=["day", "classification", "instance"],
                update_fields=["engine", "matched", "assigned", "evaluated", "computed_at"],
            )
        totals["instances"] += 1
        totals["rule_rows"] += len(rule_rows)
        totals["classification_rows"] += len(classification_rows)
    log.info("classification_statistics_computed", day=day.isoformat(), **totals)
    if ruleset.problems:
        log.warning("classification_statistics_rules_skipped", problems=ruleset.problems)
    return totals

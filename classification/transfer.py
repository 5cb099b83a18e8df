"""Rules as JSON: export, and an all-or-nothing import that also reads the predecessor's rules.

Export writes ``{"format": "whalefall.rules", "version": 1, "rules": [...]}`` where each rule
is ``{"classification": code, "name", "engine" ("" for all), "active", "expression"}``.
Import accepts that document, ``{"rules": [...]}`` or a bare list, and for each rule also the
predecessor's key names (``rule_name``, ``db_type``, ``rule_expression`` as JSON text,
``is_active``, a classification given by code or name). Every problem is reported with the
rule's position; nothing is written unless every rule is valid.

The check (dry run) runs every constraint the real save runs: the rule language's limits
(:func:`dsl.validate`), the model's field validation (a name of at most 200 characters) and
what PostgreSQL can store (no NUL, no unpaired surrogate). A file is held to the import
limits (``WHALEFALL_IMPORT_MAX_BYTES`` before it is parsed, ``WHALEFALL_IMPORT_MAX_ROWS``
rules before any is checked).
"""

import json
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from classification import dsl
from classification.models import Classification, Rule
from classification.services import rule_create, rule_update
from inventory.models import Engine
from inventory.services import import_size_check
from whalefall.text import printable, unstorable_character, unstorable_reason

FORMAT = "whalefall.rules"
FORMAT_VERSION = 1

_ALIASES = {
    "name": ("name", "rule_name"),
    "engine": ("engine", "db_type"),
    "expression": ("expression", "rule_expression"),
    "active": ("active", "is_active"),
    "classification": ("classification", "classification_code", "classification_name"),
}
_ALL_ENGINES = {"", "all", "*"}
# Problems listed at most; a file with thousands of broken rules gets a count of the rest.
MAX_PROBLEMS = 100


class RulesImportError(ValueError):
    """The document cannot be imported; ``problems`` says where and why."""

    def __init__(self, problems: list[str]):
        if len(problems) > MAX_PROBLEMS:
            rest = len(problems) - MAX_PROBLEMS
            problems = [
                *problems[:MAX_PROBLEMS],
                _("… and %(count)d more problems") % {"count": rest},
            ]
        self.problems = [printable(str(problem)) for problem in problems]
        super().__init__("; ".join(self.problems))


def _no_constant(name: str) -> Any:
    raise ValueError(_("%(name)s is not a JSON value") % {"name": name})


def rules_load(file: IO[bytes]) -> Any:
    """The JSON document of an uploaded rules file; :class:`RulesImportError` when it is
    larger than the import limit (refused before it is parsed) or not JSON."""
    limit = settings.WHALEFALL_IMPORT_MAX_BYTES
    size = getattr(file, "size", None)
    try:
        if size is not None:
            import_size_check(size)
        data = file.read(limit + 1)
        import_size_check(len(data))
    except ValidationError as exc:
        raise RulesImportError(exc.messages) from None
    try:
        return json.loads(data.decode("utf-8-sig"), parse_constant=_no_constant)
    except RecursionError:
        raise RulesImportError(
            [_("The file is not valid JSON: it is nested too deeply.")]
        ) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, huge integers
        raise RulesImportError([_("The file is not valid JSON: %s") % exc]) from None


def rules_export(rules) -> dict[str, Any]:
    """The export document of ``rules`` (current versions, classification selected)."""
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "exported_at": timezone.now().isoformat(timespec="seconds"),
        "rules": [
            {
                "classification": rule.classification.code,
                "name": rule.name,
                "engine": rule.engine,
                "active": rule.is_active,
                "expression": rule.expression,
            }
            for rule in rules.order_by("classification__code", "engine", "name")
        ],
    }


@dataclass(frozen=True)
class _Entry:
    classification: Classification
    name: str
    engine: str
    active: bool
    expression: dict[str, Any]


def _pick(raw: dict, field: str) -> Any:
    for key in _ALIASES[field]:
        if key in raw:
            return raw[key]
    return None


def _entries(document: Any) -> list[Any]:
    if isinstance(document, dict) and isinstance(document.get("rules"), list):
        if "format" in document and document["format"] != FORMAT:
            raise RulesImportError([f"unknown format {document['format']!r}"])
        document = document["rules"]
    if not isinstance(document, list):
        raise RulesImportError(['expected a list of rules or an object with a "rules" list'])
    limit = settings.WHALEFALL_IMPORT_MAX_ROWS
    if len(document) > limit:
        raise RulesImportError(
            [
                _(
                    "The file has more than %(limit)d rules: an import takes at most "
                    "%(limit)d. Split it into smaller files."
                )
                % {"limit": limit}
            ]
        )
    return document


def _save_problems(where: str, rule: Rule, exclude: list[str]) -> list[str]:
    """What the real save would refuse in ``rule``: text PostgreSQL cannot store, and the
    model's own validation (lengths, choices), as in :func:`rule_create`."""
    problems = []
    bad = unstorable_character(rule.name)
    if bad is not None:
        problems.append(f"{where}.name: contains {unstorable_reason(bad)}, which cannot be stored")
        exclude = [*exclude, "name"]
    try:
        rule.full_clean(
            exclude=["lineage", *exclude], validate_unique=False, validate_constraints=False
        )
    except ValidationError as exc:
        problems += [
            f"{where}.{field}: {message}"
            for field, messages in exc.message_dict.items()
            for message in messages
        ]
    return problems


def _parse(document: Any) -> list[_Entry]:
    classifications = {c.code: c for c in Classification.objects.all()}
    by_name = {c.name.casefold(): c for c in classifications.values()}
    problems, entries = [], []
    for index, raw in enumerate(_entries(document)):
        where = f"rules[{index}]"
        if not isinstance(raw, dict):
            problems.append(f"{where}: a rule must be an object")
            continue
        before = len(problems)
        name = _pick(raw, "name")
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{where}.name: a non-blank name is required")
            name = None
        ref = _pick(raw, "classification")
        classification = None
        if isinstance(ref, str):
            classification = classifications.get(ref.strip()) or by_name.get(ref.strip().casefold())
        if classification is None:
            problems.append(f"{where}.classification: no classification {ref!r}")
        engine = _pick(raw, "engine")
        engine = "" if engine is None else str(engine).strip().lower()
        if engine in _ALL_ENGINES:
            engine = ""
        elif engine not in Engine.values:
            problems.append(f"{where}.engine: unknown engine {engine!r}")
        active = _pick(raw, "active")
        if active is None:
            active = True
        elif not isinstance(active, bool):
            problems.append(f"{where}.active: must be true or false")
        expression = _pick(raw, "expression")
        errors = dsl.validate(expression) if expression is not None else None
        if errors is None:
            problems.append(f"{where}.expression: an expression is required")
        else:
            problems += [
                f"{where}.expression{'.' + e.path if e.path else ''}: {e.message} ({e.code})"
                for e in errors
            ]
        if errors == [] and isinstance(expression, str | bytes):
            expression = json.loads(expression)  # read once already, within the limits
        if name is not None:
            unchecked = ["classification"] if classification is None else []
            if errors != []:
                unchecked.append("expression")
            candidate = Rule(
                classification=classification,
                name=name.strip(),
                engine=engine if engine in _ALL_ENGINES or engine in Engine.values else "",
                expression=expression if errors == [] else None,
                is_active=active if isinstance(active, bool) else True,
            )
            problems += _save_problems(where, candidate, unchecked)
        if len(problems) == before:
            entries.append(_Entry(classification, name.strip(), engine, active, expression))
    keys = [(e.classification.pk, e.engine, e.name) for e in entries]
    if len(keys) != len(set(keys)):
        problems.append("the file names the same rule (classification, engine, name) twice")
    if problems:
        raise RulesImportError(problems)
    return entries


def rules_import(document: Any, *, user=None, dry_run: bool = False) -> dict[str, int]:
    """Create or update the rules of ``document``; all or nothing.

    A rule is matched to an existing one by classification, engine and name: a different
    expression makes a new version, a different active flag is changed in place.
    """
    entries = _parse(document)
    try:
        return _write(entries, user=user, dry_run=dry_run)
    except (ValidationError, IntegrityError) as exc:
        # Checked above; only a concurrent change (a rule of the same name saved meanwhile)
        # gets here. The transaction is rolled back: nothing of the file is written.
        messages = exc.messages if isinstance(exc, ValidationError) else [str(exc)]
        raise RulesImportError(
            [_("The import was rolled back: %(reason)s") % {"reason": "; ".join(messages)}]
        ) from None


def _write(entries: list[_Entry], *, user, dry_run: bool) -> dict[str, int]:
    report = {"created": 0, "versioned": 0, "updated": 0, "unchanged": 0}
    with transaction.atomic():
        current = {
            (r.classification_id, r.engine, r.name): r
            for r in Rule.objects.current().filter(
                Q(classification__in={e.classification for e in entries})
            )
        }
        for entry in entries:
            existing = current.get((entry.classification.pk, entry.engine, entry.name))
            if existing is None:
                report["created"] += 1
                if not dry_run:
                    rule_create(
                        classification=entry.classification,
                        name=entry.name,
                        engine=entry.engine,
                        expression=entry.expression,
                        is_active=entry.active,
                        user=user,
                    )
                continue
            same = json.dumps(existing.expression, sort_keys=True) == json.dumps(
                entry.expression, sort_keys=True
            )
            if same and existing.is_active == entry.active:
                report["unchanged"] += 1
                continue
            report["updated" if same else "versioned"] += 1
            if not dry_run:
                rule_update(
                    rule=existing,
                    name=entry.name,
                    engine=entry.engine,
                    expression=entry.expression,
                    is_active=entry.active,
                    user=user,
                )
    return report

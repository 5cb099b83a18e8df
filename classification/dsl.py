"""The classification rule language, DSL v4 (SPEC §6): validation, evaluation, readable form.

An expression is ``{"version": 4, "expr": NODE}`` given as a mapping or as JSON text. A NODE
is an operator ``{"op": "AND" | "OR" | "NOT", "args": [NODE, ...]}`` or a function call
``{"fn": NAME, "args": {...}}``. Rules are evaluated against the facts of
:func:`accounts.facts.derive_facts` (``engine``, ``capabilities``, ``roles``, ``grants``),
plus ``effective`` and ``public`` for the effective checks described below.

Decisions where the predecessor was loose or silent:

* ``version`` must be the integer 4 (not ``"4"``, ``4.0`` or ``true``). When it is not, only
  ``DSL_V4_REQUIRED`` is reported: the rest of the document is in an unknown format.
* Unknown keys are errors, at their own path: in the document or an operator node
  ``INVALID_DSL_EXPRESSION``, among a function's arguments ``INVALID_DSL_ARGS``. Ignoring
  them would let a typo (``"objet"`` for ``"object"``) silently widen a rule.
* ``db_type_in`` names engines the way instances do (``mysql``, ``postgresql``,
  ``sqlserver``, ``oracle``; trimmed, any case; MariaDB is ``mysql``). Any other name is an
  error: a typo would silently narrow the rule.
* An operator needs an ``args`` list (``[]`` is allowed: empty AND is true, empty OR false);
  a function's ``args`` may be omitted or null. An argument given as null counts as absent.
* Operators are trimmed and case-insensitive; function names are trimmed and exact.
* Fail closed: any error anywhere makes the outcome "not matched" with every error listed,
  whatever the operators around it (``NOT`` of an erroring node is not a match, and an
  invalid node after a decisive one still counts). Nothing is evaluated unless the whole
  expression is valid, so :func:`validate` accepting a rule means its only possible run-time
  error is ``PERMISSION_FACTS_MISSING`` (below).
* ``has_privilege`` matches literally: scopes do not imply one another; privilege, role,
  capability and object names are compared exactly as written. A grant whose option is
  ``DENY`` records a denial, not a holding, so it never satisfies ``has_privilege``.
  ``database`` is an alias of ``object`` for scopes ``database`` and ``tablespace`` (the
  predecessor named tablespace buckets with it; its rules must load unchanged).

Effective privileges (SPEC §5.5). Without arguments beyond the predecessor's, every function
keeps its literal meaning: it reads the account's own ``capabilities``, ``roles`` and
``grants``. The functions that read those (``is_superuser``, ``is_locked``,
``has_capability``, ``has_role``, ``has_privilege``) take an optional boolean ``effective``;
``"effective": true`` makes them read what the account can really do instead:

* ``facts["effective"]`` — ``{"capabilities", "roles", "grants"}`` stored by the sync beside
  the literal facts: capabilities derived from the effective set (PUBLIC included; a closed
  list, so a misspelt name is an error), the role names reached through memberships, and
  the grants obtainable through its roles (also by ``SET ROLE``) that it does not hold
  itself — with its own ``grants`` they make its effective set, without PUBLIC's;
* ``facts["public"]`` — ``{"grants", "roles"}`` of the instance's PUBLIC pseudo-account,
  added at evaluation time by the classification service (empty where there is none).

``has_privilege`` and ``has_role`` with ``effective`` match in the effective set or in
PUBLIC's; capability functions read the effective capabilities only. In the effective set a
``DENY`` of the same privilege on the same object cancels a grant (SQL Server: DENY on a role
beats GRANT on the member); scopes still do not imply one another. A rule with an effective
check evaluated against facts that lack ``effective`` (a snapshot written before effective
privileges were recorded) or ``public`` does not match, with ``PERMISSION_FACTS_MISSING`` for
every such check, whatever the operators around it: falling back to the literal facts would
silently answer a different question.

Limits. An expression is refused as a whole, with one ``INVALID_DSL_EXPRESSION`` error,
before anything else is looked at, when it is larger than a rule needs to be: JSON text
longer than :data:`MAX_LENGTH` characters (checked before the text is parsed), more than
:data:`MAX_VALUES` JSON values (objects, lists, strings, numbers, …), more than
:data:`MAX_LENGTH` characters in all its strings and keys together, or nested deeper than
:data:`MAX_DEPTH` operators. The check walks the document without recursion and stops at
the first excess, so a hostile expression (a 21 MB list of 10⁶ arguments, 900 levels of
nesting, a cycle of Python objects) costs little to refuse; ``validate``, ``evaluate``,
``compile`` and ``render`` all run it, as they may be given stored data. A name (role,
privilege, capability, object) may not contain a NUL character or an unpaired surrogate:
neither can be stored, so a rule that validates can always be saved.

Besides ``validate``, ``evaluate`` and ``render`` the module offers :func:`compile`, which
validates once and returns a plain predicate for evaluating one rule against many accounts.
Pure: no ORM, no I/O.
"""

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from accounts.canonical import SCOPES
from accounts.facts import EFFECTIVE_CAPABILITIES
from whalefall.text import printable, unstorable_character, unstorable_reason

VERSION = 4

DSL_V4_REQUIRED = "DSL_V4_REQUIRED"
INVALID_DSL_EXPRESSION = "INVALID_DSL_EXPRESSION"
UNKNOWN_DSL_FUNCTION = "UNKNOWN_DSL_FUNCTION"
MISSING_DSL_ARGS = "MISSING_DSL_ARGS"
INVALID_DSL_ARGS = "INVALID_DSL_ARGS"
# Evaluation only: the facts lack what an effective check reads (the predecessor's name for
# an account without facts).
FACTS_MISSING = "PERMISSION_FACTS_MISSING"

OPERATORS = ("AND", "OR", "NOT")

# The engines of inventory.models.Engine (a test keeps the two lists equal).
ENGINES = ("mysql", "postgresql", "sqlserver", "oracle")
# Other names people give those engines, to say which one is meant.
ENGINE_SPELLINGS = {"mariadb": "mysql", "mssql": "sqlserver", "postgres": "postgresql"}

# Function name -> accepted arguments, in the order the readable form shows them.
FUNCTIONS: dict[str, tuple[str, ...]] = {
    "db_type_in": ("types",),
    "is_superuser": ("effective",),
    "is_locked": ("effective",),
    "has_capability": ("name", "effective"),
    "has_role": ("name", "effective"),
    "has_privilege": ("name", "scope", "object", "database", "effective"),
}

EFFECTIVE = "effective"
PUBLIC = "public"
# What an effective check reads besides facts["effective"]: PUBLIC's grants and roles.
_READS_PUBLIC = ("has_role", "has_privilege")

# Scopes whose object may also be given as ``database`` (predecessor compatibility).
DATABASE_ALIAS_SCOPES = ("database", "tablespace")

# Limits (see the module docstring). Real rules are a few dozen nodes; these leave room
# for a thousand checks in one rule and keep the worst case far from the interpreter's
# recursion limit and from pages of megabytes.
MAX_DEPTH = 64  # operators nested in operators
MAX_VALUES = 10_000  # JSON values in the whole document
MAX_LENGTH = 100_000  # characters of JSON text; also of all strings and keys together
# JSON nesting refused as a whole. Twice what MAX_DEPTH operators reach (an object and an
# args list per level), so a rule nested a little too deep still gets its error at the path
# where it goes too deep; shallow enough for json.dumps of any part in an error message.
_MAX_JSON_DEPTH = 4 * MAX_DEPTH

INVALID_MARK = "<invalid>"

Facts = Mapping[str, Any]
Predicate = Callable[[Facts], bool]


@dataclass(frozen=True, slots=True)
class DslError:
    """One problem in an expression: a stable code, where it is, and a readable message."""

    code: str
    path: str
    message: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """Result of evaluating an expression against one account's facts."""

    matched: bool
    errors: list[DslError] = field(default_factory=list)


class InvalidExpression(ValueError):
    """Raised by :func:`compile` for an expression that does not validate."""

    def __init__(self, errors: list[DslError]):
        self.errors = errors
        super().__init__("; ".join(f"{e.path or '$'}: {e.message}" for e in errors))


def validate(expression: Any) -> list[DslError]:
    """Every error in ``expression`` (a mapping or JSON text); empty when it is valid."""
    return _Compiler().document(expression)[1]


def compile(expression: Any) -> Predicate:
    """Validate ``expression`` once and return a predicate ``facts -> bool``.

    Raises :class:`InvalidExpression` (with all errors) when the expression is invalid.
    """
    compiler = _Compiler()
    predicate, errors = compiler.document(expression)
    if errors or predicate is None:
        raise InvalidExpression(errors)
    keys = tuple(dict.fromkeys(key for _path, needed in compiler.needs for key in needed))
    return _requiring(keys, predicate) if keys else predicate


def evaluate(expression: Any, facts: Facts) -> Outcome:
    """Whether ``facts`` match ``expression``; any error anywhere means not matched."""
    if not isinstance(facts, Mapping):
        raise TypeError(f"facts must be a mapping, not {type(facts).__name__}")
    compiler = _Compiler()
    predicate, errors = compiler.document(expression)
    if errors or predicate is None:
        return Outcome(matched=False, errors=errors)
    missing = _missing_facts(compiler.needs, facts)
    if missing:
        return Outcome(matched=False, errors=missing)
    try:
        matched = predicate(facts)
    except (TypeError, AttributeError, KeyError, ValueError):
        # Facts come from the sync, but may be read back from storage: a malformed list of
        # grants or roles is not an answer, and must not be a crash either (fail closed).
        return Outcome(matched=False, errors=[DslError(FACTS_MISSING, "", _FACTS_MALFORMED)])
    return Outcome(matched=matched, errors=[])


_FACTS_MALFORMED = "the account's facts are not in the shape the sync writes: nothing is answered"

_FACTS_NEEDED = {
    EFFECTIVE: "the account's snapshot has no effective privileges (it was written before "
    "they were recorded; the next sync adds them), so this effective check is not answered",
    PUBLIC: "PUBLIC's privileges were not given with the facts, so this effective check is "
    "not answered",
}


def _missing_facts(needs: list[tuple[str, tuple[str, ...]]], facts: Facts) -> list[DslError]:
    """A ``PERMISSION_FACTS_MISSING`` error for each effective check ``facts`` cannot answer."""
    return [
        DslError(FACTS_MISSING, path, _FACTS_NEEDED[key])
        for path, keys in needs
        for key in keys
        if not isinstance(facts.get(key), Mapping)
    ]


# --- validation and compilation --------------------------------------------------------


def _show(value: Any) -> str:
    """A short JSON-like rendering of a value for error messages."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _load(expression: Any) -> tuple[Any, str | None]:
    """The expression as Python data, or why it cannot be read (not JSON, over a limit).

    Text is measured before it is parsed; the data is then walked against the other limits.
    """
    data = expression
    if isinstance(expression, str | bytes | bytearray):
        if len(expression) > MAX_LENGTH:
            return None, (
                f"the expression is too large: {len(expression)} characters of JSON, "
                f"at most {MAX_LENGTH}"
            )
        try:
            data = json.loads(expression, parse_constant=_no_constant)
        except RecursionError:
            return None, f"the expression is nested more than {MAX_DEPTH} levels deep"
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, huge integers
            return None, f"the expression is not valid JSON: {exc}"
    return data, _over_limits(data)


def _over_limits(data: Any) -> str | None:
    """Which limit ``data`` exceeds, or None: an iterative walk that stops at the first
    excess, so neither a deep nor a wide (nor a cyclic) structure costs more than the
    limits allow."""
    stack = [(data, 1)]
    seen = 0  # values taken from the stack or waiting on it
    length = 0
    while stack:
        value, depth = stack.pop()
        if depth > _MAX_JSON_DEPTH:
            return f"the expression is nested more than {MAX_DEPTH} levels deep"
        if isinstance(value, str):
            length += len(value)
        elif isinstance(value, Mapping | list | tuple):
            seen += len(value)
            if seen >= MAX_VALUES:
                return f"the expression is too large: more than {MAX_VALUES} values"
            if isinstance(value, Mapping):
                length += sum(len(key) for key in value if isinstance(key, str))
                stack.extend((item, depth + 1) for item in value.values())
            else:
                stack.extend((item, depth + 1) for item in value)
        if length > MAX_LENGTH:
            return f"the expression is too large: more than {MAX_LENGTH} characters of text"
    return None


class _Compiler:
    """One pass over an expression that collects every error and builds the predicate."""

    def __init__(self) -> None:
        self.errors: list[DslError] = []
        # (path of the effective argument, facts keys it reads) of every effective check.
        self.needs: list[tuple[str, tuple[str, ...]]] = []

    def error(self, code: str, path: str, message: str) -> None:
        # Paths and messages quote the user's keys and values: keep them showable.
        self.errors.append(DslError(code, printable(path), printable(message)))

    def document(self, expression: Any) -> tuple[Predicate | None, list[DslError]]:
        data, problem = _load(expression)
        if problem is not None:
            self.error(INVALID_DSL_EXPRESSION, "", problem)
            return None, self.errors
        if not isinstance(data, Mapping):
            self.error(
                INVALID_DSL_EXPRESSION,
                "",
                f"the expression must be an object with version and expr, not {_show(data)}",
            )
            return None, self.errors
        version = data.get("version")
        if type(version) is not int or version != VERSION:
            message = (
                "version is missing; it must be the integer 4"
                if "version" not in data
                else f"version must be the integer 4, not {_show(version)}"
            )
            self.error(DSL_V4_REQUIRED, "version", message)
            return None, self.errors
        for key in data:
            if key not in ("version", "expr"):
                self.error(INVALID_DSL_EXPRESSION, str(key), f"unknown key {_show(key)}")
        if "expr" not in data:
            self.error(INVALID_DSL_EXPRESSION, "expr", "expr is required")
            return None, self.errors
        predicate = self.node(data["expr"], "expr", 0)
        return (None if self.errors else predicate), self.errors

    def node(self, node: Any, path: str, depth: int) -> Predicate | None:
        if depth > MAX_DEPTH:
            self.error(INVALID_DSL_EXPRESSION, path, f"nested more than {MAX_DEPTH} levels deep")
            return None
        if not isinstance(node, Mapping):
            self.error(
                INVALID_DSL_EXPRESSION,
                path,
                f"a node must be an object with op or fn, not {_show(node)}",
            )
            return None
        if "op" in node and "fn" in node:
            self.error(INVALID_DSL_EXPRESSION, path, "a node has either op or fn, not both")
            return None
        if "op" in node:
            return self.operator(node, path, depth)
        if "fn" in node:
            return self.function(node, path)
        self.error(INVALID_DSL_EXPRESSION, path, "a node needs op (an operator) or fn (a function)")
        return None

    def operator(self, node: Mapping, path: str, depth: int) -> Predicate | None:
        before = len(self.errors)
        for key in node:
            if key not in ("op", "args"):
                self.error(INVALID_DSL_EXPRESSION, f"{path}.{key}", f"unknown key {_show(key)}")
        raw = node["op"]
        op = raw.strip().upper() if isinstance(raw, str) else None
        if op not in OPERATORS:
            self.error(
                INVALID_DSL_EXPRESSION,
                f"{path}.op",
                f"unknown operator {_show(raw)}; use AND, OR or NOT",
            )
        args = node.get("args")
        if not isinstance(args, list | tuple):
            self.error(
                INVALID_DSL_EXPRESSION,
                f"{path}.args",
                f"an operator needs a list of nodes in args, not {_show(args)}",
            )
            return None
        if op == "NOT" and len(args) != 1:
            self.error(
                INVALID_DSL_EXPRESSION,
                f"{path}.args",
                f"NOT takes exactly one node, not {len(args)}",
            )
        children = [
            self.node(child, f"{path}.args[{i}]", depth + 1) for i, child in enumerate(args)
        ]
        if len(self.errors) > before:
            return None
        if op == "NOT":
            return _not(children[0])
        return _all(children) if op == "AND" else _any(children)

    def function(self, node: Mapping, path: str) -> Predicate | None:
        before = len(self.errors)
        for key in node:
            if key not in ("fn", "args"):
                self.error(INVALID_DSL_EXPRESSION, f"{path}.{key}", f"unknown key {_show(key)}")
        raw = node["fn"]
        if not isinstance(raw, str) or not raw.strip():
            self.error(
                INVALID_DSL_EXPRESSION, f"{path}.fn", f"fn must name a function, not {_show(raw)}"
            )
            return None
        name = raw.strip()
        params = FUNCTIONS.get(name)
        if params is None:
            self.error(
                UNKNOWN_DSL_FUNCTION,
                f"{path}.fn",
                f"unknown function {_show(name)}; known: {', '.join(FUNCTIONS)}",
            )
            return None
        args = node.get("args")
        if args is None:
            args = {}
        elif not isinstance(args, Mapping):
            self.error(
                INVALID_DSL_ARGS, f"{path}.args", f"args must be an object, not {_show(args)}"
            )
            return None
        args_path = f"{path}.args"
        for key in args:
            if key not in params:
                accepted = ", ".join(params) if params else "no arguments"
                self.error(
                    INVALID_DSL_ARGS,
                    f"{args_path}.{key}",
                    f"{name} does not take {_show(key)} (it takes {accepted})",
                )
        predicate = getattr(self, f"fn_{name}")(args, args_path)
        if len(self.errors) > before:
            return None
        if args.get(EFFECTIVE) is True:
            keys = (EFFECTIVE, PUBLIC) if name in _READS_PUBLIC else (EFFECTIVE,)
            self.needs.append((f"{args_path}.{EFFECTIVE}", keys))
        return predicate

    # Arguments -----------------------------------------------------------------------

    def text(self, args: Mapping, path: str, key: str, *, required: bool) -> str | None:
        """A non-blank string argument, or None when absent (an error if required)."""
        value = args.get(key)
        if value is None:
            if required:
                self.error(MISSING_DSL_ARGS, f"{path}.{key}", f"{key} is required")
            return None
        if not isinstance(value, str) or not value.strip():
            self.error(
                INVALID_DSL_ARGS,
                f"{path}.{key}",
                f"{key} must be a non-blank string, not {_show(value)}",
            )
            return None
        bad = unstorable_character(value)
        if bad is not None:
            self.error(
                INVALID_DSL_ARGS,
                f"{path}.{key}",
                f"{key} contains {unstorable_reason(bad)}, which no name holds and a rule "
                "cannot store",
            )
            return None
        return value

    def flag(self, args: Mapping, path: str, key: str) -> bool:
        """A boolean argument; absent or null is false."""
        value = args.get(key)
        if value is None:
            return False
        if type(value) is not bool:
            self.error(
                INVALID_DSL_ARGS,
                f"{path}.{key}",
                f"{key} must be true or false, not {_show(value)}",
            )
            return False
        return value

    # Functions: each validates its arguments and returns the predicate ------------------

    def fn_db_type_in(self, args: Mapping, path: str) -> Predicate | None:
        types = args.get("types")
        if types is None:
            self.error(MISSING_DSL_ARGS, f"{path}.types", "types is required")
            return None
        if not isinstance(types, list | tuple) or not types:
            self.error(
                INVALID_DSL_ARGS,
                f"{path}.types",
                f"types must be a non-empty list of engine names, not {_show(types)}",
            )
            return None
        wanted = set()
        for i, value in enumerate(types):
            if not isinstance(value, str) or not value.strip():
                self.error(
                    INVALID_DSL_ARGS,
                    f"{path}.types[{i}]",
                    f"an engine name must be a non-blank string, not {_show(value)}",
                )
                continue
            engine = value.strip().lower()
            if engine not in ENGINES:
                hint = ENGINE_SPELLINGS.get(engine)
                self.error(
                    INVALID_DSL_ARGS,
                    f"{path}.types[{i}]",
                    f"unknown engine {_show(value)}; "
                    + (f"write {_show(hint)} for it" if hint else f"use {', '.join(ENGINES)}"),
                )
                continue
            wanted.add(engine)
        return _engine_in(frozenset(wanted))

    def fn_is_superuser(self, args: Mapping, path: str) -> Predicate:
        return _has_capability("SUPERUSER", self.flag(args, path, EFFECTIVE))

    def fn_is_locked(self, args: Mapping, path: str) -> Predicate:
        return _has_capability("LOCKED", self.flag(args, path, EFFECTIVE))

    def fn_has_capability(self, args: Mapping, path: str) -> Predicate | None:
        name = self.text(args, path, "name", required=True)
        effective = self.flag(args, path, EFFECTIVE)
        if name is None:
            return None
        # The effective capabilities are a closed list, so a misspelt one is an error; the
        # literal ones also hold every true attribute of the engine and stay open.
        if effective and name not in EFFECTIVE_CAPABILITIES:
            self.error(
                INVALID_DSL_ARGS,
                f"{path}.name",
                f"effective capabilities are {', '.join(EFFECTIVE_CAPABILITIES)}, "
                f"not {_show(name)}",
            )
            return None
        return _has_capability(name, effective)

    def fn_has_role(self, args: Mapping, path: str) -> Predicate | None:
        name = self.text(args, path, "name", required=True)
        effective = self.flag(args, path, EFFECTIVE)
        return None if name is None else _has_role(name, effective)

    def fn_has_privilege(self, args: Mapping, path: str) -> Predicate | None:
        before = len(self.errors)
        name = self.text(args, path, "name", required=True)
        raw_scope = args.get("scope")
        scope = raw_scope.strip().lower() if isinstance(raw_scope, str) else None
        if raw_scope is None:
            self.error(MISSING_DSL_ARGS, f"{path}.scope", "scope is required")
        elif scope not in SCOPES:
            self.error(
                INVALID_DSL_ARGS,
                f"{path}.scope",
                f"scope must be one of {', '.join(SCOPES)}, not {_show(raw_scope)}",
            )
            scope = None
        obj = self.text(args, path, "object", required=False)
        database = self.text(args, path, "database", required=False)
        effective = self.flag(args, path, EFFECTIVE)
        if database is not None and scope is not None:
            if scope not in DATABASE_ALIAS_SCOPES:
                self.error(
                    INVALID_DSL_ARGS,
                    f"{path}.database",
                    f"database only narrows scopes database and tablespace; "
                    f"use object for scope {scope}",
                )
            elif obj is not None and obj != database:
                self.error(
                    INVALID_DSL_ARGS,
                    f"{path}.database",
                    f"object {_show(obj)} and database {_show(database)} name different databases",
                )
        if len(self.errors) > before:
            return None
        return _has_privilege(name, scope, obj if obj is not None else database, effective)


# --- predicates --------------------------------------------------------------------------


def _always(result: bool) -> Predicate:
    def check(facts: Facts) -> bool:
        return result

    return check


def _not(child: Predicate) -> Predicate:
    def check(facts: Facts) -> bool:
        return not child(facts)

    return check


def _all(children: list[Predicate]) -> Predicate:
    if not children:
        return _always(True)
    if len(children) == 1:
        return children[0]
    if len(children) == 2:
        first, second = children

        def check_pair(facts: Facts) -> bool:
            return first(facts) and second(facts)

        return check_pair
    nodes = tuple(children)

    def check(facts: Facts) -> bool:
        return all(child(facts) for child in nodes)

    return check


def _any(children: list[Predicate]) -> Predicate:
    if not children:
        return _always(False)
    if len(children) == 1:
        return children[0]
    if len(children) == 2:
        first, second = children

        def check_pair(facts: Facts) -> bool:
            return first(facts) or second(facts)

        return check_pair
    nodes = tuple(children)

    def check(facts: Facts) -> bool:
        return any(child(facts) for child in nodes)

    return check


def _engine_in(engines: frozenset[str]) -> Predicate:
    def check(facts: Facts) -> bool:
        return str(facts.get("engine") or "").strip().lower() in engines

    return check


def _requiring(keys: tuple[str, ...], predicate: Predicate) -> Predicate:
    """``predicate``, not matching facts that lack one of ``keys`` (fail closed)."""

    def check(facts: Facts) -> bool:
        for key in keys:
            if not isinstance(facts.get(key), Mapping):
                return False
        return predicate(facts)

    return check


# An effective predicate runs only once facts["effective"] (and facts["public"] where it is
# read) are known to be mappings: compile and evaluate check them first.


def _has_capability(name: str, effective: bool = False) -> Predicate:
    if effective:

        def check_effective(facts: Facts) -> bool:
            return name in (facts[EFFECTIVE].get("capabilities") or ())

        return check_effective

    def check(facts: Facts) -> bool:
        return name in (facts.get("capabilities") or ())

    return check


def _has_role(name: str, effective: bool = False) -> Predicate:
    if effective:

        def check_effective(facts: Facts) -> bool:
            return name in (facts[EFFECTIVE].get("roles") or ()) or name in (
                facts[PUBLIC].get("roles") or ()
            )

        return check_effective

    def check(facts: Facts) -> bool:
        return name in (facts.get("roles") or ())

    return check


def _has_privilege(name: str, scope: str, obj: str | None, effective: bool = False) -> Predicate:
    if effective:
        return _holds_effective(name, scope, obj)

    def check(facts: Facts) -> bool:
        for grant in facts.get("grants") or ():
            if (
                grant.get("privilege") == name
                and grant.get("scope") == scope
                and grant.get("option") != "DENY"
                and (obj is None or grant.get("object") == obj)
            ):
                return True
        return False

    return check


def _holds_effective(name: str, scope: str, obj: str | None) -> Predicate:
    """Held through the account, its roles or PUBLIC, and not denied on the same object by
    any of them (a DENY reached through a role beats the member's GRANT)."""

    def check(facts: Facts) -> bool:
        held: set[Any] = set()
        denied: set[Any] = set()
        grants = chain(
            facts.get("grants") or (),
            facts[EFFECTIVE].get("grants") or (),
            facts[PUBLIC].get("grants") or (),
        )
        for grant in grants:
            if grant.get("privilege") != name or grant.get("scope") != scope:
                continue
            target = grant.get("object")
            if obj is not None and target != obj:
                continue
            (denied if grant.get("option") == "DENY" else held).add(target)
        return bool(held - denied)

    return check


# --- readable form -----------------------------------------------------------------------

_ATOM = "atom"


def render(expression: Any) -> str:
    """The one-line readable form, e.g. ``is_superuser() OR has_capability("GRANT_ADMIN")``.

    Never raises: parts that cannot be read are shown as ``<invalid>``.
    """
    data, problem = _load(expression)
    if problem is not None or not isinstance(data, Mapping) or "expr" not in data:
        return INVALID_MARK
    # Names and literals are the user's text: keep the result showable.
    return printable(_render_node(data["expr"], 0)[0])


def _render_node(node: Any, depth: int) -> tuple[str, str]:
    """Text of a node and its kind: ``AND``/``OR`` for an infix group, else atom."""
    if depth > MAX_DEPTH or not isinstance(node, Mapping) or ("op" in node) == ("fn" in node):
        return INVALID_MARK, _ATOM
    if "fn" in node:
        return _render_function(node), _ATOM
    raw = node["op"]
    op = raw.strip().upper() if isinstance(raw, str) else None
    args = node.get("args")
    if op not in OPERATORS or not isinstance(args, list | tuple):
        return INVALID_MARK, _ATOM
    if op == "NOT":
        inner = _render_node(args[0], depth + 1)[0] if len(args) == 1 else INVALID_MARK
        return f"NOT ({inner})", _ATOM
    if not args:
        return f"{op}()", _ATOM
    if len(args) == 1:
        return _render_node(args[0], depth + 1)
    parts = []
    for child in args:
        text, kind = _render_node(child, depth + 1)
        parts.append(text if kind in (_ATOM, op) else f"({text})")
    return f" {op} ".join(parts), op


def _render_function(node: Mapping) -> str:
    raw = node["fn"]
    if not isinstance(raw, str) or not raw.strip():
        return INVALID_MARK
    name = raw.strip()
    args = node.get("args")
    if args is None:
        args = {}
    if not isinstance(args, Mapping):
        return f"{name}({INVALID_MARK})"
    params = FUNCTIONS.get(name, ())
    keys = [key for key in params if args.get(key) is not None]
    keys += sorted((key for key in args if key not in params), key=str)
    # ``effective`` is a mode rather than a value: shown last, as a bare word when true.
    tail = []
    if EFFECTIVE in params and EFFECTIVE in keys:
        keys.remove(EFFECTIVE)
        value = args[EFFECTIVE]
        tail = [EFFECTIVE if value is True else f"{EFFECTIVE}={_literal(value)}"]
    positional = [key for key in params if key != EFFECTIVE]
    if len(positional) == 1 and keys == positional:
        parts = [_literal(args[positional[0]])]
    else:
        parts = [f"{key}={_literal(args[key])}" for key in keys]
    return f"{name}({', '.join(parts + tail)})"


def _literal(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return INVALID_MARK

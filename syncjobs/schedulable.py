"""The tasks a periodic task may name, and the arguments each one accepts (SPEC §8, §9).

A periodic task is data that Schedulers edit, and the worker runs it with whatever
arguments it stores. So the schedule names only the tasks below, with keyword arguments
checked against the task's schema: known names, JSON types, ranges and retention floors
(``WHALEFALL_RUN_RETENTION_MIN_DAYS``). No user id is ever a stored argument: who asked for
a run is the person who pressed "Run selected tasks", taken from that request. Positional
arguments and extra message headers are refused.

:func:`problems` is the one check: the admin form shows its findings, a ``pre_save``
receiver refuses to store a task that has any (whatever the path: admin, shell, fixture,
API), the "Run selected tasks" action and the beat scheduler (``syncjobs.beat``) refuse to
send one, and ``manage.py bootstrap`` disables those stored before these rules existed.
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from whalefall.db import MAX_BIGINT

# Size of the stored JSON of one field, checked before it is parsed.
MAX_JSON_LENGTH = 64 * 1024
MAX_INSTANCE_IDS = 1000
MAX_RETENTION_DAYS = 36_500
EARLIEST_DAY = date(2000, 1, 1)

Check = Callable[[Any], str | None]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def instance_ids(value: Any) -> str | None:
    """A non-empty list of distinct instance ids."""
    if not isinstance(value, list) or not value:
        return _("a non-empty list of instance ids")
    if len(value) > MAX_INSTANCE_IDS:
        return _("at most %(count)d instance ids") % {"count": MAX_INSTANCE_IDS}
    if not all(_is_int(v) and 1 <= v <= MAX_BIGINT for v in value):
        return _("instance ids are positive whole numbers")
    if len(set(value)) != len(value):
        return _("an instance id is listed twice")
    return None


def boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else _("true or false")


def day(value: Any) -> str | None:
    """A calendar date written YYYY-MM-DD, from 2000-01-01 to tomorrow."""
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return _("a date written YYYY-MM-DD")
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        return _("not a calendar date")
    if not EARLIEST_DAY <= parsed <= timezone.localdate() + timedelta(days=1):
        return _("a date from %(first)s to tomorrow") % {"first": EARLIEST_DAY.isoformat()}
    return None


def run_retention_days(value: Any) -> str | None:
    """Whole days, at least ``WHALEFALL_RUN_RETENTION_MIN_DAYS``."""
    floor = settings.WHALEFALL_RUN_RETENTION_MIN_DAYS
    if not _is_int(value) or not floor <= value <= MAX_RETENTION_DAYS:
        return _(
            "a whole number of days from %(floor)d (WHALEFALL_RUN_RETENTION_MIN_DAYS) to %(max)d"
        ) % {"floor": floor, "max": MAX_RETENTION_DAYS}
    return None


@dataclass(frozen=True)
class Schedulable:
    """A task the schedule may name: its keyword arguments, each with its check."""

    arguments: dict[str, Check] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    # The task records who pressed "Run selected tasks" (``requested_by_id``, added by the
    # action from the request, never stored) as the requester of the run it starts.
    records_requester: bool = False
    # The kind of run (``syncjobs.models.RunKind``) the task records, if it records one: the
    # schedule page links a task to the runs it made.
    run_kind: str = ""


SCHEDULABLE: dict[str, Schedulable] = {
    "whalefall.beat_heartbeat": Schedulable(),
    "whalefall.purge_events": Schedulable(),
    # Alerts: daily digests that fell due, and events whose dispatch message was lost.
    "alerts.send_digests": Schedulable(),
    "alerts.dispatch_events": Schedulable(),
    "alerts.purge": Schedulable(),
    "syncjobs.sync_accounts_all": Schedulable(records_requester=True, run_kind="accounts"),
    "syncjobs.sync_accounts_instance": Schedulable(
        {"instance_ids": instance_ids},
        frozenset({"instance_ids"}),
        records_requester=True,
        run_kind="accounts",
    ),
    "syncjobs.classify_instances": Schedulable(
        {"instance_ids": instance_ids}, records_requester=True, run_kind="classification"
    ),
    "syncjobs.classification_statistics": Schedulable({"day": day}),
    "syncjobs.collect_capacity_all": Schedulable(records_requester=True, run_kind="capacity"),
    "syncjobs.collect_capacity_instances": Schedulable(
        {"instance_ids": instance_ids},
        frozenset({"instance_ids"}),
        records_requester=True,
        run_kind="capacity",
    ),
    "syncjobs.aggregate_capacity": Schedulable(
        {"current": boolean, "day": day}, records_requester=True, run_kind="aggregation"
    ),
    "syncjobs.maintain_partitions": Schedulable(records_requester=True, run_kind="maintenance"),
    "syncjobs.reap_runs": Schedulable(),
    "syncjobs.purge_runs": Schedulable({"older_than_days": run_retention_days}),
}

# Names a stored argument may not take whatever the task: they would say who asked.
REQUESTER_ARGUMENTS = frozenset({"user_id", "requested_by_id", "requested_by", "user"})


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _value in pairs]
    if len(set(keys)) != len(keys):
        raise _Duplicate
    return dict(pairs)


def _load(text: str | None, empty: Any) -> tuple[Any, str | None]:
    """The JSON value of a stored field (``empty`` when blank), or why it cannot be read."""
    if text is None or not str(text).strip():
        return empty, None
    text = str(text)
    if len(text) > MAX_JSON_LENGTH:
        return None, _("longer than %(size)d characters") % {"size": MAX_JSON_LENGTH}
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates), None
    except _Duplicate:
        return None, _("a name appears twice")
    except RecursionError:
        return None, _("nested too deeply")
    except ValueError as exc:
        return None, _("not valid JSON (%(error)s)") % {"error": exc}


def problems(
    *, task: str, args: str | None, kwargs: str | None, headers: str | None = None
) -> dict[str, list[str]]:
    """What keeps a periodic task from being stored or sent, per field (``task``, ``args``,
    ``kwargs``, ``headers``); empty when it names a schedulable task with valid arguments."""
    found: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        found.setdefault(name, []).append(message)

    spec = SCHEDULABLE.get(task)
    if spec is None:
        add(
            "task",
            _("%(task)s is not one of WhaleFall's schedulable tasks (%(known)s).")
            % {"task": task or "—", "known": ", ".join(sorted(SCHEDULABLE))},
        )
    positional, error = _load(args, [])
    if error or positional != []:
        add("args", error or _("Positional arguments are not accepted; use keyword arguments."))
    extra_headers, error = _load(headers, {})
    if error or extra_headers != {}:
        add("headers", error or _("Extra message headers are not accepted."))
    keywords, error = _load(kwargs, {})
    if error:
        add("kwargs", error)
        return found
    if not isinstance(keywords, dict):
        add("kwargs", _("Keyword arguments are a JSON object, e.g. {}."))
        return found
    for name, value in keywords.items():
        if name in REQUESTER_ARGUMENTS:
            add(
                "kwargs",
                _(
                    "%(name)s is not accepted: who asks for a run is the person who presses "
                    "“Run selected tasks”, never a stored argument."
                )
                % {"name": name},
            )
        elif spec is None:
            continue
        elif (check := spec.arguments.get(name)) is None:
            add(
                "kwargs",
                _("%(task)s takes no argument %(name)s (it takes: %(known)s).")
                % {"task": task, "name": name, "known": ", ".join(spec.arguments) or _("none")},
            )
        elif (message := check(value)) is not None:
            add("kwargs", _("%(name)s: %(problem)s.") % {"name": name, "problem": message})
    if spec is not None:
        for name in sorted(spec.required - keywords.keys()):
            add("kwargs", _("%(name)s is required.") % {"name": name})
    return found


def problems_of(periodic_task) -> dict[str, list[str]]:
    """:func:`problems` of a ``django_celery_beat`` ``PeriodicTask``."""
    return problems(
        task=periodic_task.task,
        args=periodic_task.args,
        kwargs=periodic_task.kwargs,
        headers=periodic_task.headers,
    )


def refuse_unschedulable(sender, instance, **_kwargs) -> None:
    """``pre_save`` of ``PeriodicTask``: no path stores a task :func:`problems` objects to."""
    found = problems_of(instance)
    if found:
        raise ValidationError(found)

"""Stand-in handlers for run kinds: tests register them instead of the real work.

Importable by a worker process too (the end-to-end test), so it depends on nothing but
the standard library.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Outcome:
    """Shaped like the outcome the real handlers return."""

    created: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    detail: dict[str, Any] = field(default_factory=dict)


DEFAULT_OUTCOME = Outcome(created=1, changed=2, removed=0, unchanged=3)

# Instance name -> callable(instance=..., run_id=...) for the current test; see conftest.
BEHAVIOURS: dict[str, Callable[..., Any]] = {}
CALLS: list[tuple[str, int]] = []


def dispatch(*, instance, run_id: int):
    """Record the call and do what the test asked for this instance (default: succeed)."""
    CALLS.append((instance.name, run_id))
    behaviour = BEHAVIOURS.get(instance.name)
    return behaviour(instance=instance, run_id=run_id) if behaviour else DEFAULT_OUTCOME


def counting(*, instance, run_id: int) -> dict[str, int]:
    """Fixed counts, as a mapping: what the end-to-end worker runs."""
    return {"created": 2, "changed": 1, "removed": 0, "unchanged": 5}


def raising(exc: BaseException) -> Callable[..., Any]:
    """A behaviour that raises ``exc``."""

    def behaviour(**_kwargs):
        raise exc

    return behaviour

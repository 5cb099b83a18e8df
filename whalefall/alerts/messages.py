"""The texts of alert messages: one line per event naming instance, account and change,
with a link to the admin page. Pure apart from URL reversing; translatable."""

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

# Lines listed in a summary or digest before "… and N more".
MAX_LINES = 20


class _Values(dict):
    """Payload values for a template; a missing one reads as "?"."""

    def __missing__(self, key: str) -> str:
        return "?"


def _templates() -> dict[str, str]:
    # Looked up at render time, so the active language applies.
    return {
        "account_privileged": _(
            "%(instance)s: account %(account)s became privileged (%(capabilities)s)"
        ),
        "privileged_changed": _("%(instance)s: privileged account %(account)s changed: %(change)s"),
        "account_insecure": _("%(instance)s: account %(account)s appeared %(problem)s"),
        "classification_matched": _(
            "%(instance)s: account %(account)s newly matched %(classification)s "
            "(risk level %(risk_level)s)"
        ),
        "run_failed": _("Run #%(run_id)s (%(run_kind)s) %(status)s: %(error)s"),
        "sync_failures": _(
            "%(instance)s: %(run_kind)s sync failed %(consecutive_failures)s times in a row: "
            "%(error)s"
        ),
        "instance_recovered": _("%(instance)s is reachable again (%(run_kind)s sync succeeded)"),
        "capacity_forecast": _(
            "%(instance)s: %(target)s is forecast to reach its limit in %(days_to_limit)s days"
        ),
        "capacity_growth": _("%(instance)s: %(target)s grew %(growth_percent)s %% in %(period)s"),
        "partitions_missing": _("Partitions missing for %(month)s: %(tables)s"),
        "heartbeat_stale": _("Beat heartbeat stale: last beat %(age)s seconds ago"),
        "monitoring_privileges": _(
            "%(instance)s: the monitoring account lacks a privilege it needs: %(error)s"
        ),
    }


def _problem(payload: Mapping[str, Any]) -> str:
    problems = []
    if payload.get("anonymous"):
        problems.append(_("anonymous"))
    if payload.get("no_password"):
        problems.append(_("without a password"))
    return ", ".join(problems) or "?"


def link(*, instance_id: int | None, payload: Mapping[str, Any]) -> str:
    """Absolute URL (under ``WHALEFALL_BASE_URL``) of the admin page the event is about."""
    path = payload.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        try:
            path = (
                reverse("admin:inventory_instance_change", args=[instance_id])
                if instance_id
                else reverse("admin:index")
            )
        except NoReverseMatch:
            path = "/"
    return settings.WHALEFALL_BASE_URL + path


def event_line(*, kind: str, instance_id: int | None, instance_name: str, payload: Mapping) -> str:
    """One line: what happened, where, and the link to look at it."""
    values = _Values({k: v for k, v in payload.items() if not isinstance(v, dict | list)})
    if isinstance(payload.get("capabilities"), list):
        values["capabilities"] = ", ".join(str(c) for c in payload["capabilities"])
    if isinstance(payload.get("tables"), list):
        values["tables"] = ", ".join(str(t) for t in payload["tables"])
    values.setdefault("instance", instance_name or "?")
    if kind == "account_insecure":
        values["problem"] = _problem(payload)
    template = _templates().get(kind, "%(instance)s: " + kind)
    text = " ".join((template % values).split())  # one line, whatever the payload held
    return f"{text} — {link(instance_id=instance_id, payload=payload)}"


def subject(*, kind_label: str, count: int, digest: bool = False) -> str:
    if digest:
        return _("[WhaleFall] Daily digest: %(what)s (%(count)d)") % {
            "what": kind_label,
            "count": count,
        }
    if count == 1:
        return _("[WhaleFall] %(what)s") % {"what": kind_label}
    return _("[WhaleFall] %(what)s: %(count)d events") % {"what": kind_label, "count": count}


def body(lines: list[str], *, instances: Iterable[str] = ()) -> str:
    """The text of a message of several events: a count line, then at most MAX_LINES."""
    if len(lines) == 1:
        return lines[0]
    names = Counter(n for n in instances if n)
    events = ngettext("%(count)d event", "%(count)d events", len(lines)) % {"count": len(lines)}
    where = ngettext("on %(count)d instance", "on %(count)d instances", len(names)) % {
        "count": len(names)
    }
    head = _("%(events)s %(where)s.") % {"events": events, "where": where}
    shown = lines[:MAX_LINES]
    more = len(lines) - len(shown)
    tail = [_("… and %(count)d more.") % {"count": more}] if more else []
    return "\n".join([head, *shown, *tail])


def test_text() -> tuple[str, str]:
    return (
        _("[WhaleFall] Test message"),
        _("This is a test message from WhaleFall: the channel works."),
    )


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)

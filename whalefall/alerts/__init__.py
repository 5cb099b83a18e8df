"""Alerts: the apps call :func:`emit`; rules route the events to channels (SPEC §13)."""


def emit(kind, *, instance=None, payload, dedup_key=None):
    """Record an event in the caller's transaction; it is delivered after commit.

    See :func:`whalefall.alerts.services.emit`.
    """
    from whalefall.alerts.services import emit as _emit

    return _emit(kind, instance=instance, payload=payload, dedup_key=dedup_key)


def emit_many(kind, events):
    """Record many events of one kind at once (returns how many were recorded); see
    :func:`whalefall.alerts.services.emit_many`."""
    from whalefall.alerts.services import emit_many as _emit_many

    return _emit_many(kind, events)

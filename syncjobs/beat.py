"""The beat scheduler: django-celery-beat's database scheduler that sends only schedulable
periodic tasks (``syncjobs.schedulable``).

Stored tasks are checked when they are saved; this is the check at the moment of sending,
for rows written before those rules or behind the ORM's back. A task that fails it is
disabled and left out of the schedule, never sent.
"""

from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry

from syncjobs.schedulable import problems_of
from syncjobs.services import periodic_tasks_disable_unschedulable


class SchedulableEntry(ModelEntry):
    """A schedule entry that refuses to exist for a periodic task that is not schedulable:
    the task is disabled (audited, logged) and left out."""

    def __init__(self, model, app=None):
        if problems_of(model):
            periodic_tasks_disable_unschedulable(PeriodicTask.objects.filter(pk=model.pk))
            # The database scheduler leaves out an entry whose construction raises ValueError.
            raise ValueError(f"periodic task {model.name!r} is not schedulable")
        super().__init__(model, app=app)


class Scheduler(DatabaseScheduler):
    """``CELERY_BEAT_SCHEDULER``: the database schedule, schedulable tasks only."""

    Entry = SchedulableEntry

    def install_default_entries(self, data):
        """Install nothing: beat's only default, ``celery.backend_cleanup``, deletes expired
        task results, and every WhaleFall task ignores its result (``ignore_result``), so
        the entry would be an unexplained line on the schedule page that cleans nothing."""

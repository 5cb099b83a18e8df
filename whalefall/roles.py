"""The five roles of WhaleFall (SPEC §1) and the model permissions each one holds.

Each role maps ``"app_label.model"`` to the permission actions it grants: the standard
``view``/``add``/``change``/``delete`` or a custom codename of that model. Object-level
scope (which instances) is granted separately through django-guardian. ``bootstrap``
creates the groups and adds whatever permissions they lack.
"""

from django.utils.translation import gettext_lazy as _

ADMINISTRATORS = "Administrators"
DBAS = "DBAs"
AUDITORS = "Auditors"
SCHEDULERS = "Schedulers"
VIEWERS = "Viewers"

ALL_PERMISSIONS = "__all__"
READ = ("view",)
EDIT = ("view", "add", "change", "delete")

_SCHEDULE_MODELS = (
    "django_celery_beat.periodictask",
    "django_celery_beat.crontabschedule",
    "django_celery_beat.intervalschedule",
    "django_celery_beat.solarschedule",
    "django_celery_beat.clockedschedule",
)

ROLE_PERMISSIONS: dict[str, str | dict[str, tuple[str, ...]]] = {
    ADMINISTRATORS: ALL_PERMISSIONS,
    DBAS: {},
    AUDITORS: {
        "auditlog.logentry": READ,
    },
    SCHEDULERS: {model: EDIT for model in _SCHEDULE_MODELS},
    VIEWERS: {},
}

ROLE_DESCRIPTIONS = {
    ADMINISTRATORS: _("Everything, including users, groups and object permissions."),
    DBAS: _("Manage the instances they may see: credentials, connections, syncs, rules."),
    AUDITORS: _("Read-only access to accounts, history, results and the audit trail."),
    SCHEDULERS: _("Edit periodic tasks and their schedules; read run history."),
    VIEWERS: _("Read inventory and capacity."),
}

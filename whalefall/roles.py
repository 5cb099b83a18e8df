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

# Permissions on these models are scoped per instance: held on the model they mean "every
# instance"; held on single instances (guardian) they mean "these instances".
INSTANCE_SCOPED_MODELS = ("inventory.instance",)
# Records about the whole estate, which a member scoped to some instances must not read.
ESTATE_WIDE_MODELS = ("whalefall.eventlogentry", "alerts.delivery", "alerts.event")
INSTANCE_MANAGE = ("view", "add", "change", "delete", "test_connection", "sync")

_CLASSIFICATION_STATS = (
    "classification.ruledailystat",
    "classification.classificationdailystat",
)

_CAPACITY_READ = {
    model: READ
    for model in (
        "capacity.database",
        "capacity.instancecapacity",
        "capacity.databasesizeaggregate",
        "capacity.instancesizeaggregate",
        "capacity.tablesizesnapshot",
    )
}

ROLE_PERMISSIONS: dict[str, str | dict[str, tuple[str, ...]]] = {
    ADMINISTRATORS: ALL_PERMISSIONS,
    DBAS: {
        "accounts.account": READ,
        "accounts.accountchange": READ,
        "inventory.instance": INSTANCE_MANAGE,
        # Scoped members reach the credentials of their instances (Credential.objects.visible_to).
        "inventory.credential": (*EDIT, "use_credential"),
        "inventory.tag": EDIT,
        "syncjobs.run": ("view", "cancel_run", "rerun_run"),
        "syncjobs.runitem": READ,
        "classification.classification": EDIT,
        "classification.rule": EDIT,
        "classification.assignment": EDIT,
        **{model: READ for model in _CLASSIFICATION_STATS},
        **_CAPACITY_READ,
        # Capacity limits are the DBAs' to set.
        "capacity.database": ("view", "change"),
        "capacity.instancecapacity": ("view", "change"),
    },
    AUDITORS: {
        "accounts.account": ("view", "access_review"),
        "accounts.accountchange": READ,
        "inventory.instance": READ,
        "inventory.credential": READ,
        "inventory.tag": READ,
        "auditlog.logentry": READ,
        "whalefall.loginevent": READ,
        "whalefall.eventlogentry": READ,
        # What alerts were sent, to whom, with what outcome (channels and rules are the
        # Administrators' alone: channels hold webhook and chat tokens).
        "alerts.delivery": READ,
        "syncjobs.run": READ,
        "syncjobs.runitem": READ,
        "classification.classification": READ,
        "classification.rule": READ,
        "classification.assignment": READ,
        **{model: READ for model in _CLASSIFICATION_STATS},
        **_CAPACITY_READ,
    },
    SCHEDULERS: {model: EDIT for model in _SCHEDULE_MODELS},
    VIEWERS: {
        "inventory.instance": READ,
        "inventory.tag": READ,
        **_CAPACITY_READ,
    },
}
# Schedulers read the run history of the jobs they schedule.
ROLE_PERMISSIONS[SCHEDULERS].update(
    {"syncjobs.run": ("view", "view_all_runs"), "syncjobs.runitem": READ}
)

# Every role creates, reads and revokes its own API tokens (whalefall.api); only
# Administrators see everyone's (the manage_api_tokens permission).
for _spec in ROLE_PERMISSIONS.values():
    if isinstance(_spec, dict):
        _spec["whalefall.apitoken"] = ("view", "add", "change")

# "<role> (scoped)" groups hold a role's permissions except those on instance-scoped
# models: members see and act only on the instances granted to them (or to one of their
# groups) per instance or per tag.
SCOPED_SUFFIX = " (scoped)"
SCOPED_ROLES = (DBAS, AUDITORS, VIEWERS)


def scoped_role_permissions(role: str) -> dict[str, tuple[str, ...]]:
    spec = ROLE_PERMISSIONS[role]
    if not isinstance(spec, dict):
        raise ValueError(f"{role} holds every permission; it has no scoped variant")
    left_out = INSTANCE_SCOPED_MODELS + ESTATE_WIDE_MODELS
    return {model: acts for model, acts in spec.items() if model not in left_out}


ROLE_DESCRIPTIONS = {
    ADMINISTRATORS: _("Everything, including users, groups and object permissions."),
    DBAS: _("Manage the instances they may see: credentials, connections, syncs, rules."),
    AUDITORS: _("Read-only access to accounts, history, results and the audit trail."),
    SCHEDULERS: _("Edit periodic tasks and their schedules; read run history."),
    VIEWERS: _("Read inventory and capacity."),
}


def all_role_definitions() -> dict[str, str | dict[str, tuple[str, ...]]]:
    """Every group bootstrap manages: the five roles and their scoped variants."""
    definitions = dict(ROLE_PERMISSIONS)
    for role in SCOPED_ROLES:
        definitions[role + SCOPED_SUFFIX] = scoped_role_permissions(role)
    return definitions

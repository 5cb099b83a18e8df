"""``manage.py bootstrap``: roles, default schedule and the first administrator."""

import io
import re

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from syncjobs.services import DEFAULT_SCHEDULE
from whalefall import roles

pytestmark = pytest.mark.django_db


def bootstrap(*args: str) -> str:
    out = io.StringIO()
    call_command("bootstrap", *args, stdout=out)
    return out.getvalue()


def group_permissions() -> dict[str, set[str]]:
    return {
        group.name: set(group.permissions.values_list("codename", flat=True))
        for group in Group.objects.prefetch_related("permissions")
    }


ROLES = {"Administrators", "DBAs", "Auditors", "Schedulers", "Viewers"}
SCOPED = {"DBAs (scoped)", "Auditors (scoped)", "Viewers (scoped)"}
INSTANCE_PERMS = {
    "view_instance",
    "add_instance",
    "change_instance",
    "delete_instance",
    "test_connection",
    "sync",
}
SCHEDULE_MODELS = (
    "periodictask",
    "crontabschedule",
    "intervalschedule",
    "solarschedule",
    "clockedschedule",
)


def test_creates_the_five_role_groups_and_their_scoped_variants():
    bootstrap()
    assert set(Group.objects.values_list("name", flat=True)) == ROLES | SCOPED
    perms = group_permissions()
    assert {"view_periodictask", "change_periodictask", "add_crontabschedule"} <= perms[
        "Schedulers"
    ]
    assert {"change_user", "change_group", "view_logentry"} <= perms["Administrators"]
    assert perms["DBAs"] >= INSTANCE_PERMS
    assert {"view_instance", "view_logentry", "view_loginevent"} <= perms["Auditors"]
    # Everyone manages their own API tokens (the queryset limits them to their own).
    own_tokens = {"view_apitoken", "add_apitoken", "change_apitoken"}
    for role in ROLES | SCOPED:
        assert own_tokens <= perms[role], role
    assert "manage_api_tokens" not in perms["DBAs"]
    assert perms["Viewers"] - own_tokens == {
        "view_instance",
        "view_tag",
        "view_database",
        "view_instancecapacity",
        "view_databasesizeaggregate",
        "view_instancesizeaggregate",
        "view_tablesizesnapshot",
    }
    assert {"view_run", "view_runitem", "cancel_run", "rerun_run"} <= perms["DBAs"]
    assert "view_all_runs" not in perms["DBAs"], "DBAs see the runs of the instances they see"
    assert {"view_run", "view_runitem"} <= perms["Auditors"]
    assert {"view_run", "view_all_runs", "view_runitem"} <= perms["Schedulers"]
    assert not {"view_run", "view_runitem"} & perms["Viewers"]
    for role in ("Auditors", "Schedulers", "Viewers"):
        assert not {"cancel_run", "rerun_run"} & perms[role], role
    for role in (ROLES - {"Administrators"}) | SCOPED:
        assert not {"add_user", "change_user", "change_group"} & perms[role], role
        # Nobody but Administrators assigns object permissions.
        assert not {p for p in perms[role] if p.endswith("objectpermission")}, role
    for role in ("Auditors", "Viewers", "Schedulers"):
        writes = {p for p in perms[role] if p.split("_")[0] in {"add", "change", "delete"}}
        writes -= own_tokens
        assert all(p.endswith(SCHEDULE_MODELS) for p in writes), (role, writes)
        assert role == "Schedulers" or not writes, role


def test_scoped_variants_hold_the_role_without_instance_permissions():
    bootstrap()
    perms = group_permissions()
    for role in ("DBAs", "Auditors", "Viewers"):
        # Alert deliveries too: their messages name instances of the whole estate.
        estate_wide = {"view_eventlogentry", "view_delivery"}
        assert perms[f"{role} (scoped)"] == perms[role] - INSTANCE_PERMS - estate_wide, role
    # The application event log speaks of every instance: not for scoped members.
    assert "view_eventlogentry" in perms["Auditors"]
    assert "view_eventlogentry" not in perms["Auditors (scoped)"]
    assert "view_delivery" in perms["Auditors"]
    assert "view_delivery" not in perms["Auditors (scoped)"]


def test_is_idempotent():
    bootstrap()
    before = group_permissions()
    tasks_before = PeriodicTask.objects.count()
    out = bootstrap()
    assert group_permissions() == before
    assert PeriodicTask.objects.count() == tasks_before
    assert "Default schedule: 0 periodic task(s) created." in out
    assert re.findall(r"Role [\w ()]+: (\d+) permission", out) == ["0"] * 8


def test_installs_the_default_schedule_without_overwriting_edits():
    bootstrap()
    heartbeat = PeriodicTask.objects.get(task="whalefall.beat_heartbeat")
    assert heartbeat.interval.every == 60
    assert heartbeat.enabled
    assert {job.name for job in DEFAULT_SCHEDULE} <= set(
        PeriodicTask.objects.values_list("name", flat=True)
    )
    daily = {
        task.task: (task.crontab.hour, task.crontab.minute, str(task.crontab.timezone))
        for task in PeriodicTask.objects.filter(crontab__isnull=False).select_related("crontab")
    }
    assert daily["syncjobs.sync_accounts_all"] == ("1", "0", settings.TIME_ZONE)
    assert daily["syncjobs.purge_runs"] == ("5", "0", settings.TIME_ZONE)
    assert PeriodicTask.objects.get(task="syncjobs.reap_runs").interval.every == 300

    # Missing entries are added back; the others stay as staff left them.
    PeriodicTask.objects.filter(task="syncjobs.reap_runs").delete()
    sync = PeriodicTask.objects.get(task="syncjobs.sync_accounts_all")
    sync.crontab = CrontabSchedule.objects.create(minute="30", hour="2")
    sync.save()
    assert "Run reaper" in bootstrap()
    assert PeriodicTask.objects.get(task="syncjobs.reap_runs").interval.every == 300
    sync.refresh_from_db()
    assert (sync.crontab.hour, sync.crontab.minute) == ("2", "30")

    heartbeat.enabled = False
    heartbeat.interval = IntervalSchedule.objects.create(every=30, period=IntervalSchedule.SECONDS)
    heartbeat.save()
    bootstrap()
    heartbeat.refresh_from_db()
    assert heartbeat.enabled is False
    assert heartbeat.interval.every == 30


def test_keeps_permissions_staff_added_to_a_role():
    bootstrap()
    viewers = Group.objects.get(name="Viewers")
    extra = Group.objects.get(name="Schedulers").permissions.first()
    viewers.permissions.add(extra)
    bootstrap()
    assert viewers.permissions.filter(pk=extra.pk).exists()


def test_admin_password_is_printed_once_and_works(client):
    out = bootstrap("--admin", "--username", "chief")
    password = re.search(r"Password \(shown only this once\): (\S+)", out).group(1)
    assert len(password) >= 20
    assert client.login(username="chief", password=password)
    assert client.get("/admin/auth/user/").status_code == 200

    again = bootstrap("--admin", "--username", "chief")
    assert password not in again
    assert "already exists; password unchanged" in again
    assert client.login(username="chief", password=password)


def test_unknown_permission_in_a_role_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(roles.ROLE_PERMISSIONS, "Viewers", {"auth.user": ("fly",)})
    with pytest.raises(CommandError, match=r"auth\.fly"):
        bootstrap()

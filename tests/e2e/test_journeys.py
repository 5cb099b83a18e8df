"""Each role's main journeys from SPEC §1 in a real browser, in English and in Simplified
Chinese: what the pages show, under the Content-Security-Policy, with no console error."""

import io
from datetime import timedelta

import pytest
from auditlog.models import LogEntry
from django.utils import timezone, translation
from django.utils.translation import gettext
from django_celery_beat.models import PeriodicTask
from guardian.shortcuts import get_perms
from openpyxl import load_workbook

from accounts.models import AccountChange
from inventory.models import Instance
from syncjobs.models import Run, RunKind
from tests.e2e.estate import build_estate
from whalefall.models import ApiToken, UserPreference

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.parametrize("language", ["en", "zh-hans"]),
]


def _t(language: str, msgid: str) -> str:
    with translation.override(language):
        return str(gettext(msgid))


@pytest.fixture
def estate(settings):
    settings.DEBUG = False
    # The instance added through the form lives on this machine's MariaDB.
    settings.WHALEFALL_ALLOWED_TARGETS = ["127.0.0.0/8"]
    settings.WHALEFALL_ALLOW_LOOPBACK = True
    return build_estate()


def test_administrator(journey, estate, language):
    j = journey(estate["admin"], language)
    j.goto("/admin/", "dashboard")
    j.speaks(
        "Log out",
        "System health",
        "Instances needing attention",
        "Runs of the last 24 hours",
        "Privileged accounts",
        "Nearest their capacity limit",
    )
    j.says("billing-pg", "shop", "9.0 GB / 10.0 GB", "root_orders@%")
    # The panels use the page's width, not the 600 px of Django's own index page.
    assert j.page.locator(".wf-dashboard").bounding_box()["width"] > 900

    j.goto("/admin/inventory/instance/add/", "instance form")
    j.page.fill("#id_name", "reports-mariadb")
    j.page.select_option("#id_engine", "mysql")
    j.page.fill("#id_host", "127.0.0.1")
    j.page.fill("#id_port", "3306")
    # The credential is an autocomplete (select2): typed, then picked.
    j.page.click("#id_credential + .select2 .select2-selection")
    j.page.fill(".select2-dropdown .select2-search__field", "moni")
    j.page.click(".select2-results__option:has-text('monitor')")
    j.step("instance form filled")
    with j.page.expect_navigation():
        j.page.click('input[name="_save"]')
    j.step("instance added")
    j.speaks("Home")
    j.says("reports-mariadb")
    added = Instance.objects.get(name="reports-mariadb")
    assert (added.host, added.port, added.credential.name) == ("127.0.0.1", 3306, "monitor")

    billing = estate["billing"]
    j.goto(f"/admin/inventory/instance/{billing.pk}/permissions/", "object permissions")
    j.page.fill("#id_user", "sid")
    with j.page.expect_navigation():
        j.page.click('input[name="submit_manage_user"]')
    j.step("permissions of sid")
    # The admin's two-box selector: a double click moves a permission to "chosen".
    for codename in ("view_instance", "sync"):
        j.page.dblclick(f'#id_permissions_from option[value="{codename}"]')
    j.step("permissions chosen")
    with j.page.expect_navigation():
        j.page.click('#content-main input[type="submit"]')
    j.step("permissions granted")
    assert set(get_perms(estate["scoped"], billing)) == {"view_instance", "sync"}
    j.says("sid")

    j.goto("/admin/whalefall/apitoken/add/", "token form")
    j.page.fill("#id_name", "CMDB import")
    with j.page.expect_navigation():
        j.page.click('input[name="_save"]')
    j.step("token shown once")
    token = ApiToken.objects.get(name="CMDB import")
    shown = j.text()
    assert token.prefix in shown
    secret = next(word for word in shown.split() if word.startswith(token.prefix))
    assert len(secret) > len(token.prefix) + 20
    j.goto(f"/admin/whalefall/apitoken/{token.pk}/change/", "token afterwards")
    assert secret not in j.text("body")
    j.says("CMDB import")


def test_dba(journey, estate, language):
    j = journey(estate["dba"], language)
    j.goto("/admin/inventory/instance/?engine__exact=mysql", "instances of MySQL")
    j.speaks("Home")
    j.says("orders-mysql")
    assert "billing-pg" not in j.text("#result_list")

    bob = estate["bob"]
    j.goto(f"/admin/accounts/account/{bob.pk}/change/", "account")
    j.says("bob@%", "ALL PRIVILEGES", "ops", "admin")
    j.speaks("What it can do (effective privileges)")

    change = AccountChange.objects.get(account=estate["root"])
    j.goto(f"/admin/accounts/accountchange/{change.pk}/change/", "change diff")
    j.speaks("Before and after", "Grants added")
    j.says("root_orders", "SUPER", "+1 grant; superuser: — → yes")

    j.goto("/admin/inventory/instance/", "instances")
    j.act(estate["orders"].pk, "sync_accounts_now", "sync queued")
    run = Run.objects.get(kind=RunKind.ACCOUNTS, requested_by=estate["dba"])
    assert list(run.items.values_list("instance__name", flat=True)) == ["orders-mysql"]
    assert j.page.locator(f'.messagelist a[href$="/syncjobs/run/{run.pk}/change/"]').count() == 1

    rule = estate["rule"]
    j.goto(f"/admin/classification/rule/{rule.pk}/change/", "rule editor")
    j.page.fill("#id_expression", '{"version": 4, "expr": {"fn": "is_superuser"}}')
    j.page.get_by_role("button", name=_t(language, "Preview")).click()
    j.page.wait_for_selector("#content-main :text('root_orders')")
    j.step("rule preview")
    j.says("root_orders@%")
    assert "app@%" not in j.text()


def test_auditor(journey, estate, language):
    j = journey(estate["auditor"], language)
    j.goto("/admin/accounts/accountchange/?privileged__exact=1", "privileged changes")
    j.speaks("Home")
    rows = j.text("#result_list")
    assert "root_orders" in rows
    assert "billing_owner" in rows
    assert "bob" in rows
    assert "app@%" not in rows

    j.goto("/admin/accounts/account/access-review/", "access review")
    today = timezone.localdate()
    j.page.fill("#id_start", (today - timedelta(days=90)).isoformat())
    j.page.fill("#id_end", today.isoformat())
    j.page.check('input[name="file_format"][value="xlsx"]')
    j.step("access review filled")
    with j.page.expect_download() as download:
        j.page.click('#content-main [type="submit"]')
    path = download.value.path()
    workbook = load_workbook(io.BytesIO(path.read_bytes()))
    cells = " | ".join(
        str(cell.value)
        for sheet in workbook.worksheets
        for row in sheet.iter_rows()
        for cell in row
    )
    assert len(workbook.worksheets) == 2
    for name in ("root_orders", "billing_owner", "bob"):
        assert name in cells
    assert "app@" not in cells
    j.step("access review downloaded")

    j.goto("/admin/auditlog/logentry/?q=credential", "audit log search")
    j.says("monitor")


def test_scheduler(journey, estate, language):
    j = journey(estate["scheduler"], language)
    j.goto("/admin/django_celery_beat/periodictask/", "periodic tasks")
    j.speaks("Home")
    sync = PeriodicTask.objects.get(task="syncjobs.sync_accounts_all")
    j.says(sync.name)
    if language == "en":
        j.says("daily at 01:00 (UTC)")

    j.goto(f"/admin/django_celery_beat/periodictask/{sync.pk}/change/", "account sync task")
    j.page.check('input[name="repeat"][value="daily"]')
    j.page.fill("#id_at", "02:30")
    with j.page.expect_navigation():
        j.page.click('input[name="_save"]')
    j.step("time changed")
    sync.refresh_from_db()
    assert (sync.crontab.hour, sync.crontab.minute) == ("2", "30")
    if language == "en":
        j.says("daily at 02:30 (UTC)")

    j.goto("/admin/django_celery_beat/periodictask/", "periodic tasks again")
    j.act(sync.pk, "run_tasks", "run now")
    assert j.page.locator(".messagelist li.success").count() == 1
    # Sent on behalf of the person who pressed it, and audited as theirs.
    pressed = LogEntry.objects.get(actor=estate["scheduler"], action=LogEntry.Action.ACCESS)
    assert pressed.object_pk == str(sync.pk)
    assert pressed.additional_data["run_now"]["kwargs"]["requested_by_id"] == estate["scheduler"].pk


def test_viewer(journey, estate, language):
    j = journey(estate["viewer"], language)
    j.goto("/admin/capacity/database/", "capacity ledger")
    j.speaks("Home")
    j.says("shop", "orders-mysql", "9.0 GB")
    capacity = estate["orders"].capacity
    j.goto(f"/admin/capacity/instancecapacity/{capacity.pk}/change/", "instance capacity")
    j.says("orders-mysql", "12.0 GB", "20.0 GB")
    chart = j.page.locator("#content-main svg").first
    assert chart.is_visible()
    assert chart.locator("path, polyline").count() >= 1
    j.allow_console("403")
    j.goto(f"/admin/accounts/account/{estate['root'].pk}/change/", "no accounts", status=403)
    j.speaks("You may not open this page")


def test_scoped_dba(journey, estate, language):
    j = journey(estate["scoped"], language)
    j.goto("/admin/inventory/instance/", "own instances")
    rows = j.text("#result_list")
    assert "orders-mysql" in rows
    assert "billing-pg" not in rows
    j.goto("/admin/accounts/account/", "own accounts")
    rows = j.text("#result_list")
    assert "root_orders" in rows
    assert "billing_owner" not in rows
    # Another instance's page does not even say the instance exists.
    j.allow_console("404")
    j.goto(
        f"/admin/inventory/instance/{estate['billing'].pk}/change/", "another instance", status=404
    )
    assert "billing-pg" not in j.text("body")
    # A page of what a DBA may not manage is refused with WhaleFall's 403 page.
    j.allow_console("403")
    j.goto("/admin/auth/user/", "users refused", status=403)
    j.speaks("Home", "You may not open this page")


def test_switching_language_in_the_header(journey, estate, language):
    """Anyone signed in switches between the languages from the page's header; the choice
    is theirs from then on."""
    other = "en" if language == "zh-hans" else "zh-hans"
    j = journey(estate["viewer"], language)
    j.goto("/admin/capacity/database/", "ledger before")
    with j.page.expect_navigation():
        j.page.click(f'.wf-language-switch button[value="{other}"]')
    j.step("ledger after switching")
    assert j.page.url.endswith("/admin/capacity/database/")
    j.language = other
    j.speaks("Home", "Databases")
    j.says("shop")
    assert UserPreference.objects.get(user=estate["viewer"]).language == other

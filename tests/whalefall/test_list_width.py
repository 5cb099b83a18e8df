"""Changelists at 1 440 px (issue 16): the widest lists fit the window, long cells are cut
with their full text on hover (whalefall/admin.css, whalefall/admin.js), in Chromium."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from accounts.models import AccountChange
from tests.accounts.factories import make_account
from tests.inventory.factories import InstanceFactory

CHROMIUM = "/usr/bin/chromium"
WIDTH = 1440
LONG_SUMMARY = "+40 grants: " + ", ".join(f"SELECT ON shop_{n}.orders_{n}" for n in range(15))


@pytest.mark.django_db(transaction=True)
def test_the_widest_changelists_fit_1440_pixels(live_server, admin_user, settings):
    playwright = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed (requirements/dev.txt brings it)"
    )
    from syncjobs.services import roles_install

    settings.DEBUG = False
    roles_install()
    Group.objects.get(name="Administrators").user_set.add(admin_user)
    instance = InstanceFactory(name="mysql-" + "very-long-instance-name-" * 3)
    make_account(
        instance,
        "service_account_with_a_rather_long_name_for_reporting",
        host="app-server-01.datacentre.example.com",
        grants=[("global", "", "SELECT", "")],
    )
    AccountChange.objects.update(summary=LONG_SUMMARY)
    client = Client()
    client.force_login(admin_user)
    pages = ["/admin/accounts/account/", "/admin/accounts/accountchange/"]
    with playwright.sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=CHROMIUM)
        except Exception as exc:  # noqa: BLE001
            pytest.skip(f"Chromium cannot start here: {exc}")
        context = browser.new_context(viewport={"width": WIDTH, "height": 900})
        context.add_cookies(
            [
                {
                    "name": "sessionid",
                    "value": client.cookies["sessionid"].value,
                    "url": live_server.url,
                }
            ]
        )
        page = context.new_page()
        for url in pages:
            page.goto(live_server.url + url, wait_until="load")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= WIDTH, f"{url} is {width} px wide"
        # The cut summary tells its full text on hover.
        cell = page.locator("#result_list tbody td.field-summary").first
        cell.hover()
        assert cell.get_attribute("title") == LONG_SUMMARY
        browser.close()

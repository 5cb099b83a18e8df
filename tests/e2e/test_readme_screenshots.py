"""The README's two pictures, the dashboard and an account's page at 1440 x 900, written to
whalefall/static/whalefall/screenshots/ when WHALEFALL_SCREENSHOTS=1 (run it by hand after
a change of those pages and commit the files)."""

import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from tests.e2e.estate import build_estate

SCREENSHOTS = Path(django_settings.BASE_DIR) / "whalefall" / "static" / "whalefall" / "screenshots"

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        os.environ.get("WHALEFALL_SCREENSHOTS") != "1",
        reason="writes the README's screenshots only with WHALEFALL_SCREENSHOTS=1",
    ),
]


def test_readme_screenshots(journey, settings):
    settings.DEBUG = False
    estate = build_estate()
    j = journey(estate["admin"])
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pictures = {
        "dashboard.png": ("/admin/", "Privileged accounts"),
        "account-change.png": (
            f"/admin/accounts/account/{estate['bob'].pk}/change/",
            "What it can do (effective privileges)",
        ),
    }
    for name, (path, heading) in pictures.items():
        j.goto(path, name.removesuffix(".png"))
        j.says(heading)
        if name == "account-change.png":
            # From the account's classifications down to what it can do and through whom.
            j.page.locator("#content-main h2", has_text="Classifications").first.evaluate(
                "e => { e.scrollIntoView({block: 'start'}); window.scrollBy(0, -16); }"
            )
        j.page.screenshot(path=str(SCREENSHOTS / name))
        assert (SCREENSHOTS / name).read_bytes().startswith(b"\x89PNG")

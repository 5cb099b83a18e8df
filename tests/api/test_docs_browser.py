"""Swagger UI, ReDoc and the browsable API in Chromium, under the Content-Security-Policy:
they render the API from WhaleFall's own static files and the policy blocks nothing."""

import pytest
from django.test import Client

from tests.factories import UserFactory

CHROMIUM = "/usr/bin/chromium"


@pytest.mark.django_db(transaction=True)
def test_api_docs_render_under_the_policy(live_server, settings):
    playwright = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed (requirements/dev.txt brings it)"
    )
    settings.DEBUG = False
    user = UserFactory(username="docs-reader", is_superuser=True)
    client = Client()
    client.force_login(user)
    problems: list[str] = []
    requests: list[str] = []
    with playwright.sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=CHROMIUM)
        except Exception as exc:  # noqa: BLE001
            pytest.skip(f"Chromium cannot start here: {exc}")
        context = browser.new_context()
        context.add_cookies(
            [
                {
                    "name": "sessionid",
                    "value": client.cookies["sessionid"].value,
                    "url": live_server.url,
                }
            ]
        )
        context.add_init_script(
            "window.__violations = [];"
            "document.addEventListener('securitypolicyviolation', e => window.__violations.push("
            "e.violatedDirective + ' ' + e.blockedURI));"
        )
        page = context.new_page()
        page.on(
            "console",
            lambda m: (
                problems.append(m.text)
                if m.type == "error" and "Content Security Policy" in m.text
                else None
            ),
        )
        page.on("request", lambda r: requests.append(r.url))
        page.on(
            "response",
            lambda r: problems.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None,
        )

        page.goto(live_server.url + "/api/v1/docs/", wait_until="networkidle")
        page.wait_for_selector(".opblock", timeout=15000)
        assert page.locator(".opblock").count() > 20
        problems.extend(f"docs: {v}" for v in page.evaluate("window.__violations"))

        page.goto(live_server.url + "/api/v1/redoc/", wait_until="networkidle")
        page.wait_for_selector("text=WhaleFall API", timeout=15000)
        problems.extend(f"redoc: {v}" for v in page.evaluate("window.__violations"))

        page.goto(live_server.url + "/api/v1/instances/", wait_until="load")
        assert page.locator(".response-info").count() == 1
        problems.extend(f"browsable: {v}" for v in page.evaluate("window.__violations"))
        browser.close()
    # ReDoc's bundle shows its vendor's logo from a CDN; the policy blocks that request,
    # which is what should happen.
    logo = "https://cdn.redoc.ly/redoc/logo-mini.svg"
    problems = [p for p in problems if logo not in p]
    # ReDoc's search worker runs from a blob the page itself made.
    requests = [r for r in requests if r != logo and not r.startswith("blob:")]
    assert not problems, "\n".join(problems)
    # Everything came from WhaleFall itself: no CDN.
    assert all(url.startswith(live_server.url) for url in requests), [
        url for url in requests if not url.startswith(live_server.url)
    ]

"""A real browser (Debian's Chromium through Playwright) against a live server: one browser
for the session, a fresh context per test signed in by session cookie, every console error
and Content-Security-Policy violation failing the test, a screenshot per step."""

import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.utils import translation
from django.utils.translation import gettext

from whalefall.language import SESSION_KEY as LANGUAGE_SESSION_KEY

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# What the browser says it reads, for LocaleMiddleware (which maps zh-CN to zh-hans).
BROWSER_LOCALES = {"en": "en-US", "zh-hans": "zh-CN"}

# Injected by the browser itself, so the page's policy does not apply to it.
VIOLATION_LISTENER = (
    "window.__violations = [];"
    "document.addEventListener('securitypolicyviolation', e => window.__violations.push("
    "e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sample || '')));"
)


@pytest.fixture(scope="package")
def browser():
    """One Chromium for the browser suite (closed after it, with the permission below);
    skipped with the reason when it cannot start."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed (requirements/dev.txt brings it)"
    )
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian's chromium package)")
    # Playwright's sync API keeps an event loop in this thread while the browser lives;
    # the tests still talk to the database synchronously from it, which is safe here.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_api.sync_playwright().start()
    try:
        try:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        except Exception as exc:  # noqa: BLE001 - whatever stops it, the reason is shown
            pytest.skip(f"Chromium cannot start here: {exc}")
        yield chromium
        chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class Journey:
    """A signed-in page that records a screenshot per step and fails on the first console
    error, uncaught exception or policy violation seen so far."""

    def __init__(self, page, base_url: str, directory: Path, language: str):
        self.page = page
        self.base_url = base_url
        self.directory = directory
        self.language = language
        self.steps = 0
        self.problems: list[str] = []
        self.allowed: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"uncaught: {exc}"))

    def _console(self, message) -> None:
        text = message.text
        if (message.type == "error" or "Content Security Policy" in text) and not any(
            allowed in text for allowed in self.allowed
        ):
            self.problems.append(f"{message.type}: {text} ({self.page.url})")

    def allow_console(self, text: str) -> None:
        """A console error the next steps expect (the browser logs a 403 page's status)."""
        self.allowed.append(text)

    def goto(self, path: str, step: str, *, status: int = 200):
        response = self.page.goto(self.base_url + path, wait_until="load")
        assert response is not None, path
        assert response.status == status, (path, response.status)
        assert "/admin/login/" not in self.page.url, f"{path} asked to sign in"
        self.step(step)
        return response

    def act(self, pk, action: str, step: str) -> None:
        """On a changelist: tick the row of ``pk``, choose ``action`` and run it."""
        self.page.check(f'input[name="_selected_action"][value="{pk}"]')
        self.page.select_option('select[name="action"]', action)
        with self.page.expect_navigation():
            self.page.click('button[name="index"]')
        self.step(step)

    def step(self, name: str) -> None:
        """Check the page is clean so far and keep its picture."""
        self.steps += 1
        self.directory.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        self.page.screenshot(
            path=str(self.directory / f"{self.steps:02d}-{slug}.png"), full_page=True
        )
        self.check()

    def check(self) -> None:
        violations = self.page.evaluate("window.__violations || []")
        self.problems.extend(f"CSP: {v} ({self.page.url})" for v in violations)
        self.page.evaluate("window.__violations = []")
        assert not self.problems, self.problems

    def text(self, selector: str = "#content") -> str:
        """The element's text as written in the page (before CSS capitalises it), spaces
        collapsed."""
        return " ".join((self.page.locator(selector).first.text_content() or "").split())

    def says(self, *texts: str, selector: str = "#content") -> None:
        """Each of ``texts`` is on the page."""
        shown = self.text(selector)
        for text in texts:
            assert " ".join(text.split()) in shown, f"{text!r} not on {self.page.url}"

    def speaks(self, *msgids: str) -> None:
        """The page shows each of these strings of WhaleFall or Django in its language,
        and says which language it is written in."""
        assert self.page.get_attribute("html", "lang") == self.language
        with translation.override(self.language):
            self.says(*[str(gettext(m)) for m in msgids], selector="body")


@pytest.fixture
def journey(browser, live_server, request):
    """``journey(user, language="en")``: a new browser context signed in as ``user``, in
    ``language`` (the user's session choice and the browser's own), at 1440 x 900."""
    contexts = []
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")

    def open_as(user, language: str = "en", *, viewport=None) -> Journey:
        client = Client()
        client.force_login(user)
        session = client.session
        session[LANGUAGE_SESSION_KEY] = language  # as at sign-in
        session.save()
        context = browser.new_context(
            viewport=viewport or {"width": 1440, "height": 900},
            locale=BROWSER_LOCALES[language],
            accept_downloads=True,
        )
        contexts.append(context)
        context.set_default_timeout(10_000)
        context.add_cookies(
            [
                {"name": "sessionid", "value": session.session_key, "url": live_server.url},
                {
                    "name": settings.LANGUAGE_COOKIE_NAME,
                    "value": language,
                    "url": live_server.url,
                },
            ]
        )
        context.add_init_script(VIOLATION_LISTENER)
        page = context.new_page()
        suffix = f"-{user.username}" if len(contexts) > 1 else ""
        return Journey(page, live_server.url, ARTIFACTS / f"{name}{suffix}", language)

    yield open_as
    for context in contexts:
        context.close()

"""Content-Security-Policy and Permissions-Policy on every page (issue 12, item 8).

The policy allows scripts, styles, images and fonts from WhaleFall's own static files
only. Every admin page — each registered ModelAdmin's changelist, add and change page and
every custom view it adds (access review, statistics, charts, import, export …), the
dashboard and the app indexes — is fetched as a superuser and must carry both headers and
contain no inline script, no event-handler attribute, no inline style and no
``javascript:`` URL. A real Chromium then loads a few pages and must report no violation.
"""

import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django_celery_beat.models import ClockedSchedule, PeriodicTask, SolarSchedule
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Account
from classification.models import Classification
from classification.services import assignment_add_manual, rule_create
from syncjobs.services import schedule_install_defaults
from tests.accounts.factories import make_account
from tests.capacity.factories import DatabaseFactory, InstanceCapacityFactory
from tests.factories import UserFactory
from tests.inventory.factories import CredentialFactory, InstanceFactory, TagFactory
from tests.syncjobs.factories import RunFactory, RunItemFactory
from whalefall.alerts.models import Channel, Delivery, Event, Rule
from whalefall.api.tokens import api_token_create
from whalefall.models import EventLogEntry, LoginEvent, SingleSignOnIdentity

EXPECTED_DIRECTIVES = {
    "default-src": "'none'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}
# JSON data blocks ({{ value|json_script }}) are never executed, so the policy allows them.
DATA_SCRIPT_TYPES = {"application/json", "application/ld+json"}


def directives(header: str) -> dict[str, str]:
    parts = (part.strip().split(None, 1) for part in header.split(";") if part.strip())
    return {part[0]: (part[1] if len(part) > 1 else "") for part in parts}


class InlineCode(HTMLParser):
    """Collects what the policy would block: inline scripts, event-handler attributes,
    inline styles and javascript: URLs."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=…>")
            if name == "style":
                self.problems.append(f"<{tag} style=…>")
            if name in {"href", "src", "action", "formaction"} and (
                value or ""
            ).strip().lower().startswith("javascript:"):
                self.problems.append(f"<{tag} {name}=javascript:…>")
        if tag == "style":
            self.problems.append("<style> element")
        script_type = (attributes.get("type") or "").lower()
        if tag == "script" and "src" not in attributes and script_type not in DATA_SCRIPT_TYPES:
            self.problems.append(f"inline <script {attributes}>")

    handle_startendtag = handle_starttag


def inline_code(html: str) -> list[str]:
    parser = InlineCode()
    parser.feed(html)
    return parser.problems


def assert_protected(response, url: str) -> None:
    policy = directives(response.get("Content-Security-Policy", ""))
    for name, value in EXPECTED_DIRECTIVES.items():
        assert policy.get(name) == value, (url, name, policy)
    permissions = response.get("Permissions-Policy", "")
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()", "usb=()"):
        assert feature in permissions, (url, permissions)


# --- The headers -----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/admin/login/", "/health/live", "/no-such-page/", "/admin/"])
def test_every_response_carries_both_policies(client, url):
    response = client.get(url)
    assert_protected(response, url)


def test_the_policy_text_is_exactly_the_documented_one(client):
    response = client.get("/health/live")
    assert directives(response["Content-Security-Policy"]) == {
        **EXPECTED_DIRECTIVES,
        "font-src": "'self'",
        "connect-src": "'self'",
        "manifest-src": "'self'",
    }


# --- Every admin page ------------------------------------------------------------------


@pytest.fixture
def estate(db, admin_user):
    """One object of every model the admin shows."""
    from syncjobs.services import roles_install

    roles_install()
    schedule_install_defaults()
    ClockedSchedule.objects.create(clocked_time=timezone.now() + timedelta(days=1))
    SolarSchedule.objects.create(event="sunrise", latitude=52.0, longitude=4.0)
    tag = TagFactory(colour="#1f77b4")
    instance = InstanceFactory(credential=CredentialFactory())
    instance.tags.add(tag)
    account = make_account(instance, "app", host="%", grants=[("global", "", "SELECT", "")])
    classification = Classification.objects.create(code="csp", name="CSP", colour="#dc2626")
    rule_create(
        classification=classification,
        name="Everyone",
        expression={"version": 4, "expr": {"fn": "is_superuser"}},
    )
    assignment_add_manual(account=account, classification=classification, user=admin_user)
    database = DatabaseFactory(instance=instance)
    InstanceCapacityFactory(instance=instance)
    run = RunFactory()
    RunItemFactory(run=run, instance=instance)
    LoginEvent.objects.create(kind="failed", username="x", ip_address="192.0.2.1")
    EventLogEntry.objects.create(
        created_at=timezone.now(), level="warning", event="csp_probe", logger="t"
    )
    TOTPDevice.objects.create(user=admin_user, name="Authenticator app", confirmed=False)
    SingleSignOnIdentity.objects.create(
        user=UserFactory(), issuer="https://id.example.test", subject="csp-probe"
    )
    api_token_create(user=admin_user, name="csp probe")
    channel = Channel.objects.create(name="csp", kind="email", recipients="dba@example.com")
    alert_rule = Rule.objects.create(name="csp", trigger="run_failed")
    alert_rule.channels.add(channel)
    alert = Event.objects.create(kind="run_failed", instance=instance, payload={"run_id": 1})
    Delivery.objects.create(channel=channel, rule=alert_rule, preview="csp").events.add(alert)
    return {"instance": instance, "account": account, "database": database, "run": run}


def admin_urls(model_admin, obj) -> list[str]:
    """Every GET-able page of a ModelAdmin: its standard views and the ones it adds."""
    urls = []
    for pattern in model_admin.urls:
        if not pattern.name:
            continue
        params = set(pattern.pattern.regex.groupindex)
        kwargs = {}
        if params & {"object_id", "object_pk"}:
            if obj is None:
                continue
            kwargs = {name: obj.pk for name in params & {"object_id", "object_pk"}}
        if params - {"object_id", "object_pk"}:
            continue  # per-user/per-group permission pages need another id
        try:
            urls.append(reverse(f"admin:{pattern.name}", kwargs=kwargs))
        except NoReverseMatch:
            continue
    return urls


@pytest.mark.django_db
def test_no_admin_page_needs_inline_code(client, admin_user, estate):
    client.force_login(admin_user)
    checked, missing_objects, failures = [], [], []
    urls = [
        "/admin/",
        *(f"/admin/{label}/" for label in {m._meta.app_label for m in admin.site._registry}),
    ]
    for model, model_admin in admin.site._registry.items():
        obj = model._default_manager.order_by("pk").first()
        if obj is None:
            missing_objects.append(model._meta.label)
        urls.extend(admin_urls(model_admin, obj))
    for url in urls:
        response = client.get(url)
        assert_protected(response, url)
        if response.status_code >= 500:
            failures.append((url, response.status_code))
        if "text/html" in response.get("Content-Type", ""):
            content = response.content.decode()
            if problems := inline_code(content):
                failures.append((url, sorted(set(problems))))
            checked.append(url)
    assert not failures, failures
    assert not missing_objects, f"no object to open the change page of: {missing_objects}"
    # The walk reached the custom views too, not only the standard ones.
    for fragment in (
        "/access-review/",
        "/statistics/",
        "/table-sizes/",
        "/instance/import/",
        "/instance/export/",
        "/periodictask/",
    ):
        assert any(fragment in url for url in checked), fragment
    assert len(checked) > 80


def test_whalefall_templates_hold_no_inline_code():
    """Templates that only render under rare conditions are read as text."""
    from django.conf import settings

    pattern = re.compile(
        r"<script(?![^>]*\bsrc=)(?![^>]*application/json)|\son[a-z]+\s*=|\sstyle\s*=|<style",
        re.IGNORECASE,
    )
    offenders = []
    for directory in settings.TEMPLATES[0]["DIRS"]:
        for path in directory.rglob("*.html"):
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if pattern.search(line):
                    offenders.append(f"{path.relative_to(directory)}:{number}: {line.strip()}")
    assert not offenders, offenders


# --- A real browser ---------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


@pytest.mark.django_db(transaction=True)
def test_chromium_reports_no_violation_on_the_dashboard_and_an_account_page(
    live_server, admin_user, settings
):
    playwright = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed (requirements/dev.txt brings it)"
    )
    from syncjobs.services import roles_install

    settings.DEBUG = False
    roles_install()
    schedule_install_defaults()
    tag = TagFactory(colour="#1f77b4")
    instance = InstanceFactory(credential=CredentialFactory())
    instance.tags.add(tag)
    account = make_account(instance, "app", host="%", grants=[("global", "", "SELECT", "")])
    classification = Classification.objects.create(code="csp", name="CSP", colour="#dc2626")
    assignment_add_manual(account=account, classification=classification, user=admin_user)
    Group.objects.get(name="Administrators").user_set.add(admin_user)
    scheduled = PeriodicTask.objects.filter(crontab__isnull=False).order_by("pk").first()
    client = Client()
    client.force_login(admin_user)
    pages = [
        "/admin/",
        f"/admin/accounts/account/{Account.objects.get().pk}/change/",
        "/admin/inventory/instance/",
        "/admin/classification/classification/statistics/",
        f"/admin/django_celery_beat/periodictask/{scheduled.pk}/change/",
        "/admin/inventory/instance/export/",
    ]
    violations: list[str] = []
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
        # Injected by the browser itself, so the page's policy does not apply to it.
        context.add_init_script(
            "window.__violations = [];"
            "document.addEventListener('securitypolicyviolation', e => window.__violations.push("
            "e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sample || '')));"
        )
        page = context.new_page()
        page.on(
            "console",
            lambda message: (
                violations.append(message.text)
                if "Content Security Policy" in message.text or "Permissions-Policy" in message.text
                else None
            ),
        )
        for url in pages:
            response = page.goto(live_server.url + url, wait_until="load")
            assert response.status == 200, url
            assert "Log in" not in page.title(), url
            page.wait_for_timeout(100)
            violations.extend(f"{url}: {v}" for v in page.evaluate("window.__violations"))
            if url == "/admin/inventory/instance/":
                # The tag's colour, set by whalefall/admin.js, survives the policy.
                colour = page.eval_on_selector(
                    "[data-tag-colour]",
                    "e => getComputedStyle(e).getPropertyValue('--tag-colour').trim()",
                )
                assert colour == "#1f77b4"
            if "/periodictask/" in url:
                # Only the field of the chosen way of repeating shows (whalefall/admin.js).
                assert page.locator("#id_at").is_visible()
                assert not page.locator("#id_every_minutes").is_visible()
                page.check('input[name="repeat"][value="interval"]')
                assert page.locator("#id_every_minutes").is_visible()
                assert not page.locator("#id_at").is_visible()
            if url.endswith("/export/") and page.locator("input.select-toggle").count():
                page.locator("input.select-toggle").uncheck()
                boxes = page.locator(".selectable-field-export-row input[type=checkbox]")
                assert boxes.count()
                assert not any(boxes.nth(i).is_checked() for i in range(boxes.count()))
        # The engine filter submits itself (it had an inline onchange handler).
        page.goto(live_server.url + "/admin/classification/classification/statistics/")
        with page.expect_navigation():
            page.select_option("#wf-engine", "postgresql")
        assert "engine=postgresql" in page.url
        violations.extend(page.evaluate("window.__violations"))
        browser.close()
    assert not violations, violations

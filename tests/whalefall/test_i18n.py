"""Simplified Chinese (issue 16): the catalogues are complete and cover the code, a
Chinese-speaking user's pages carry none of WhaleFall's English, and each user's language
is chosen by them, kept, and defaults to LANGUAGE_CODE."""

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client, override_settings

from accounts.models import Account
from tests.accounts.factories import make_account
from tests.factories import UserFactory
from tests.inventory.factories import InstanceFactory
from whalefall import catalogues
from whalefall.models import UserPreference

ROOT = Path(settings.BASE_DIR)
# makemessages' view of the project: what it reads and what it leaves alone.
IGNORED = [".venv", ".git", ".data", "tests", "benchmarks", "deploy", "staticfiles", "node_modules"]
needs_xgettext = pytest.mark.skipif(
    shutil.which("xgettext") is None or shutil.which("msgmerge") is None,
    reason="makemessages needs GNU gettext (apt-get install gettext)",
)


@pytest.mark.parametrize("path", catalogues.catalogue_paths(), ids=catalogues.APPS)
def test_catalogue_complete(path):
    """0 untranslated, 0 fuzzy, placeholders kept, and the committed .mo says the same."""
    assert path.exists()
    assert len(catalogues.read_po(path)) > 50
    assert catalogues.problems(path) == []
    assert catalogues.stale_compiled(path) == []


def _makemessages(root: Path, monkeypatch) -> None:
    """makemessages for zh_Hans run in ``root`` as the project runs it."""
    monkeypatch.chdir(root)
    locale_paths = [root / "whalefall" / "locale"] if (root / "whalefall").exists() else []
    with override_settings(LOCALE_PATHS=locale_paths):
        call_command(
            "makemessages", locale=[catalogues.LANGUAGE], ignore_patterns=IGNORED, verbosity=0
        )


def _copy(source: Path, target: Path) -> None:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*IGNORED, "__pycache__", "*.mo"))


@needs_xgettext
def test_catalogues_cover_every_string_of_the_code(tmp_path, monkeypatch):
    """makemessages over a copy of the project adds no untranslated entry: every string the
    code and templates mark for translation has its Chinese."""
    for part in [*{app.split("/")[0] for app in catalogues.APPS}, "templates"]:
        _copy(ROOT / part, tmp_path / part)
    _makemessages(tmp_path, monkeypatch)
    found = [p for path in catalogues.catalogue_paths(tmp_path) for p in catalogues.problems(path)]
    assert found == [], "run makemessages and translate:\n" + "\n".join(found)


@needs_xgettext
def test_a_new_untranslated_string_fails_the_check(tmp_path, monkeypatch):
    _copy(ROOT / "capacity", tmp_path / "capacity")
    (tmp_path / "capacity" / "probe.py").write_text(
        "from django.utils.translation import gettext as _\n\n"
        'MESSAGE = _("A sentence that nobody has translated")\n'
    )
    _makemessages(tmp_path / "capacity", monkeypatch)
    po = tmp_path / "capacity" / "locale" / catalogues.LANGUAGE / "LC_MESSAGES" / "django.po"
    found = catalogues.problems(po)
    assert len(found) == 1
    assert "'A sentence that nobody has translated' is untranslated" in found[0]


def test_placeholder_lost_or_fuzzy_is_a_problem(tmp_path):
    po = tmp_path / "django.po"
    po.write_text(
        'msgid ""\nmsgstr ""\n"Language: zh_Hans\\n"\n\n'
        '#, python-format\nmsgid "%(count)d instance retired."\nmsgstr "已删除实例。"\n\n'
        '#, fuzzy\nmsgid "Instances"\nmsgstr "实例"\n\n'
        '#, python-brace-format\nmsgid "Run {task_id}"\nmsgstr "任务运行 {id}"\n\n'
        '#, python-format\nmsgid "every day"\nmsgid_plural "every %(count)d days"\n'
        'msgstr[0] "每天"\nmsgstr[1] "每 %(count)d 天"\n',
        encoding="utf-8",
    )
    found = catalogues.problems(po)
    assert len(found) == 3
    assert "'%(count)d instance retired.' has placeholders set()" in found[0]
    assert "'Instances' is fuzzy" in found[1]
    assert "'Run {task_id}' has placeholders {'{id}'}" in found[2]


# --- Pages as a Chinese-speaking user ----------------------------------------------------


class _Text(HTMLParser):
    """The text a reader sees: text nodes and the titles, labels and placeholders."""

    def __init__(self):
        super().__init__()
        self.parts, self._skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if name in ("title", "aria-label", "placeholder", "alt") and value:
                self.parts.append(value)
            if tag == "input" and name == "value" and ("type", "submit") in attrs and value:
                self.parts.append(value)

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.parts.append(" ".join(data.split()))


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return "\n".join(parser.parts)


def _english_sentences() -> set[str]:
    """WhaleFall's own English that would betray an untranslated page: every catalogue
    message of two words or more, without placeholders."""
    return {
        entry.msgid
        for path in catalogues.catalogue_paths()
        for entry in catalogues.read_po(path)
        if " " in entry.msgid.strip()
        and not catalogues.placeholders(entry.msgid)
        and "%" not in entry.msgid
        and entry.msgstr[0] != entry.msgid
    }


ENGLISH = _english_sentences()


@pytest.fixture
def chinese_admin(db):
    user = UserFactory(username="lin", is_superuser=True)
    UserPreference.objects.create(user=user, language="zh-hans")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def account(db):
    instance = InstanceFactory(name="orders-db")
    make_account(
        instance,
        "app_rw",
        host="%",
        grants=[("global", "", "SUPER", "GRANT")],
        attributes={"superuser": True},
    )
    return Account.objects.get(instance=instance, name="app_rw")


def _page(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    assert response["Content-Language"] == "zh-hans"
    html = response.content.decode()
    assert '<html lang="zh-hans"' in html
    return visible_text(html)


def _assert_no_english(text: str, *expected_chinese: str):
    left = sorted(sentence for sentence in ENGLISH if sentence in text)
    assert left == [], f"English left on the page: {left}"
    for word in expected_chinese:
        assert word in text


@pytest.fixture(autouse=True)
def _no_platform_checks(monkeypatch):
    """The system health panel probes the broker; its words are checked, not the broker."""
    monkeypatch.setattr("whalefall.admin.checks_for", lambda request: {})


def test_dashboard_in_chinese(chinese_admin, account):
    text = _page(chinese_admin, "/admin/")
    _assert_no_english(text, "鲸落", "数据库资产", "需要关注的实例", "近 24 小时的任务运行", "账户")
    for word in ("Instances needing attention", "Runs of the last 24 hours", "Database estate"):
        assert word not in text


def test_the_english_detector_sees_an_english_page(account):
    """The check above is not blind: the same dashboard in English trips it."""
    client = Client()
    client.force_login(UserFactory(username="smith", is_superuser=True))
    text = visible_text(client.get("/admin/").content.decode())
    assert {"Database estate", "Instances needing attention"} <= {s for s in ENGLISH if s in text}


def test_changelist_in_chinese(chinese_admin, account):
    text = _page(chinese_admin, "/admin/inventory/instance/")
    _assert_no_english(text, "实例", "数据库类型", "测试连接", "orders-db")
    assert "Instances" not in text
    assert "Test connection" not in text


def test_account_page_in_chinese(chinese_admin, account):
    text = _page(chinese_admin, f"/admin/accounts/account/{account.pk}/change/")
    _assert_no_english(text, "账户", "变更历史", "新增", "有效权限", "app_rw")
    for word in ("Change history", "What it can do", "Created"):
        assert word not in text


# --- Choosing the language ---------------------------------------------------------------


def _lang(client, url="/admin/") -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response["Content-Language"]


def test_language_switch_is_kept_for_the_user(db):
    user = UserFactory(username="wang", is_superuser=True)
    client = Client()
    client.force_login(user)
    assert _lang(client) == "en"
    assert "简体中文" in client.get("/admin/").content.decode()  # the switch in the user tools

    response = client.post(
        "/admin/language/", {"language": "zh-hans", "next": "/admin/inventory/instance/"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/inventory/instance/"
    assert UserPreference.objects.get(user=user).language == "zh-hans"
    assert _lang(client, "/admin/inventory/instance/") == "zh-hans"

    # Another browser, another session: the choice follows the user, not the cookie.
    elsewhere = Client()
    elsewhere.force_login(user)
    assert _lang(elsewhere) == "zh-hans"

    client.post("/admin/language/", {"language": "en", "next": "/admin/"})
    assert UserPreference.objects.get(user=user).language == "en"
    assert _lang(client) == "en"


def test_language_defaults_to_language_code_not_the_browser(db):
    user = UserFactory(username="zhao", is_superuser=True)
    client = Client(headers={"accept-language": "zh-CN,zh;q=0.9"})
    client.force_login(user)
    assert _lang(client) == "en"
    with override_settings(LANGUAGE_CODE="zh-hans"):
        other = Client()
        other.force_login(user)
        assert _lang(other) == "zh-hans"


def test_language_switch_refuses_what_it_should(db):
    user = UserFactory(username="qian", is_superuser=True)
    client = Client()
    client.force_login(user)
    assert client.get("/admin/language/").status_code == 405
    # Another site as the way back, a language WhaleFall does not have.
    response = client.post(
        "/admin/language/", {"language": "zh-hans", "next": "https://evil.example/admin/"}
    )
    assert response["Location"] == "/admin/"
    response = client.post("/admin/language/", {"language": "fr\x00", "next": "/admin/"})
    assert response.status_code == 302
    assert UserPreference.objects.get(user=user).language == "zh-hans"
    # Someone not signed in changes nobody's language.
    anonymous = Client()
    response = anonymous.post("/admin/language/", {"language": "en"})
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert UserPreference.objects.get(user=user).language == "zh-hans"


@override_settings(TIME_ZONE="Asia/Shanghai")
def test_times_in_chinese_are_in_time_zone_with_the_zone_named(chinese_admin, account):
    text = _page(chinese_admin, f"/admin/accounts/account/{account.pk}/change/")
    moments = re.findall(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} (\S+)", text)
    assert moments
    assert set(moments) == {"CST"}

"""One way to write a moment (issue 16): to the second, zone named, the same in lists,
computed columns and detail pages (``whalefall.moments``, ``whalefall.formats``)."""

from datetime import UTC, datetime

import pytest
from django.template import Context, Template
from django.test import override_settings
from django.utils import formats, timezone, translation

from accounts.models import AccountChange
from tests.accounts.factories import make_account
from tests.inventory.factories import InstanceFactory
from whalefall.moments import MOMENT_FORMAT, iso_moment, moment

AT = datetime(2026, 12, 5, 7, 8, 42, 512000, tzinfo=UTC)


def test_a_moment_has_seconds_and_its_zone():
    with timezone.override("Asia/Shanghai"):
        assert moment(AT) == "2026-12-05 15:08:42 CST"
    with timezone.override("UTC"):
        assert moment(AT) == "2026-12-05 07:08:42 UTC"
    assert moment(None) == ""


def test_the_filter_and_the_helper_agree():
    with timezone.override("UTC"):
        rendered = Template("{% load whalefall_time %}{{ at|moment }}").render(Context({"at": AT}))
    assert rendered == "2026-12-05 07:08:42 UTC"


def test_exports_read_iso_8601_with_the_offset():
    with timezone.override("Asia/Shanghai"):
        assert iso_moment(AT) == "2026-12-05T15:08:42+08:00"


@override_settings(FORMAT_MODULE_PATH=["whalefall.formats"])
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_djangos_datetime_format_is_the_moment_in_every_language(language):
    with translation.override(language), timezone.override("UTC"):
        assert formats.get_format("DATETIME_FORMAT") == MOMENT_FORMAT
        assert formats.date_format(AT, "DATETIME_FORMAT") == "2026-12-05 07:08:42 UTC"


@pytest.mark.django_db
@override_settings(FORMAT_MODULE_PATH=["whalefall.formats"], TIME_ZONE="UTC")
def test_changes_seconds_apart_read_apart_in_the_list(admin_client):
    instance = InstanceFactory(name="mysql-a", engine="mysql")
    first = make_account(instance, "alice").changes.get()
    second = make_account(instance, "bob").changes.get()
    AccountChange.objects.filter(pk=first.pk).update(detected_at=AT)
    AccountChange.objects.filter(pk=second.pk).update(detected_at=AT.replace(second=51))
    # Whatever zone or language an earlier test left active in this thread.
    with timezone.override("UTC"), translation.override("en"):
        content = admin_client.get("/admin/accounts/accountchange/").content.decode()
    assert "2026-12-05 07:08:42 UTC" in content
    assert "2026-12-05 07:08:51 UTC" in content

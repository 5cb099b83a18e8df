"""Exports written one way (issue 16): XLSX with typed cells and no formula-guard apostrophe
(CSV keeps the guard), booleans TRUE/FALSE, one ISO 8601 moment format per sheet, sheets
named after their content; Auditors export the audit log and login events."""

import csv
import io
from datetime import UTC, datetime

import openpyxl
import pytest
import tablib
from auditlog.models import LogEntry
from django.utils import timezone

from inventory.models import Instance
from inventory.services import export_cell, instance_export
from tests.accounts.factories import make_account
from tests.inventory.factories import InstanceFactory
from whalefall.exports import sheet_title, xlsx_document
from whalefall.models import LoginEvent

CSV, XLSX = "0", "1"
AUDIT = {
    f"auditlogresource_{name}": "on"
    for name in ("timestamp", "actor", "action", "content_type", "object_repr", "changes")
}
LOGINS = {f"logineventresource_{name}": "on" for name in ("created_at", "kind", "username")}


def sheet(content: bytes):
    book = openpyxl.load_workbook(io.BytesIO(content))
    return book.active


def csv_rows(content: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(content.decode())))


def xlsx_rows(ws) -> list[dict]:
    values = list(ws.iter_rows(values_only=True))
    return [dict(zip(values[0], row, strict=True)) for row in values[1:]]


# --- The writer (no database) -----------------------------------------------------------


def test_xlsx_text_is_a_typed_string_cell_without_the_guard():
    data = tablib.Dataset(headers=["name", "flag", "count"], title="Accounts")
    data.append(["=cmd|' /C calc'!A0", True, 3])
    data.append(["+1 grant", False, 0])
    ws = sheet(xlsx_document(data))
    assert ws.title == "Accounts"
    rows = list(ws.iter_rows(min_row=2))
    assert [c.value for c in rows[0]] == ["=cmd|' /C calc'!A0", True, 3]
    assert [c.data_type for c in rows[0]] == ["s", "b", "n"]
    assert rows[1][0].value == "+1 grant"


def test_xlsx_cells_xml_cannot_hold_are_escaped_not_fatal():
    data = tablib.Dataset(headers=["event"], title="Events")
    data.append(["bad\x01byte"])
    assert sheet(xlsx_document(data))["A2"].value == "bad\\x01byte"


def test_sheet_titles_follow_excels_rules():
    assert sheet_title("Account changes") == "Account changes"
    assert sheet_title("a/b:c[d]*?") == "a-b-c-d---"
    assert len(sheet_title("x" * 80)) == 31


@pytest.mark.parametrize(
    ("value", "native", "cell"),
    [
        (True, False, "TRUE"),
        (False, False, "FALSE"),
        (True, True, True),
        ("=1+1", False, "'=1+1"),
        ("=1+1", True, "=1+1"),
        (None, False, ""),
        (3, False, 3),
    ],
)
def test_cells_are_written_one_way(value, native, cell):
    assert export_cell(value, native=native) == cell


def test_moments_are_iso_8601_with_the_offset_in_both_formats(settings):
    moment = datetime(2026, 12, 5, 4, 8, 42, 123456, tzinfo=UTC)
    timezone.activate("Asia/Shanghai")
    try:
        assert export_cell(moment, native=False) == "2026-12-05T12:08:42+08:00"
        assert export_cell(moment, native=True) == "2026-12-05T12:08:42+08:00"
    finally:
        timezone.deactivate()


# --- Through the admin and the services -------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_the_instance_export_guards_csv_only_and_writes_booleans_one_way(file_format):
    InstanceFactory(name="=cmd|' /C calc'!A0", owner="+team", is_active=True)
    data = instance_export(queryset=Instance.objects.all(), file_format=file_format)
    if file_format == "csv":
        (row,) = csv_rows(data.encode() if isinstance(data, str) else data)
        assert (row["name"], row["owner"], row["is_active"]) == (
            "'=cmd|' /C calc'!A0",
            "'+team",
            "TRUE",
        )
    else:
        ws = sheet(data)
        assert ws.title == "instances"
        (row,) = xlsx_rows(ws)
        assert row["name"] == "=cmd|' /C calc'!A0"
        assert (row["owner"], row["is_active"]) == ("+team", True)


@pytest.mark.django_db
def test_the_account_export_in_xlsx_has_typed_cells_and_one_moment_format(client, user_with_role):
    instance = InstanceFactory(name="instance-a", engine="mysql")
    make_account(instance, "=cmd|'/C calc'!A0")
    client.force_login(user_with_role("Auditors"))
    fields = {
        f"accountresource_{f}": "on"
        for f in ("account", "superuser", "first_seen_at", "last_seen_at", "changed_at")
    }
    response = client.post(
        "/admin/accounts/account/export/", {"format": XLSX, "resource": "0", **fields}
    )
    assert response.status_code == 200
    ws = sheet(response.content)
    assert ws.title == "Accounts"
    (row,) = xlsx_rows(ws)
    assert row["account"].startswith("=cmd")
    assert row["superuser"] in (True, False)
    moments = [row["first_seen_at"], row["last_seen_at"]]
    for value in moments:
        assert isinstance(value, str)
        assert datetime.fromisoformat(value).tzinfo is not None
    csv_export = client.post(
        "/admin/accounts/account/export/", {"format": CSV, "resource": "0", **fields}
    )
    (line,) = csv_rows(csv_export.content)
    assert line["account"].startswith("'=cmd")
    assert line["superuser"] in {"TRUE", "FALSE"}
    assert datetime.fromisoformat(line["first_seen_at"]).tzinfo is not None


@pytest.fixture
def audited(db):
    instance = InstanceFactory(name="=hostile")
    LoginEvent.objects.create(kind="succeeded", username="=alice", ip_address="10.0.0.1")
    return instance


@pytest.mark.django_db
@pytest.mark.parametrize("file_format", [CSV, XLSX])
def test_auditors_export_the_audit_log(client, user_with_role, audited, file_format):
    client.force_login(user_with_role("Auditors"))
    response = client.post(
        "/admin/auditlog/logentry/export/", {"format": file_format, "resource": "0", **AUDIT}
    )
    assert response.status_code == 200
    if file_format == CSV:
        rows = csv_rows(response.content)
        assert any(r["object_repr"] == "'=hostile" for r in rows)
    else:
        ws = sheet(response.content)
        assert ws.title == "Log entries"
        rows = xlsx_rows(ws)
        assert any(r["object_repr"] == "=hostile" for r in rows)
    assert len(rows) == LogEntry.objects.count()


@pytest.mark.django_db
@pytest.mark.parametrize("file_format", [CSV, XLSX])
def test_auditors_export_login_events(client, user_with_role, audited, file_format):
    client.force_login(user_with_role("Auditors"))
    response = client.post(
        "/admin/whalefall/loginevent/export/", {"format": file_format, "resource": "0", **LOGINS}
    )
    assert response.status_code == 200
    if file_format == CSV:
        rows = csv_rows(response.content)
        assert "'=alice" in {r["username"] for r in rows}
    else:
        rows = xlsx_rows(sheet(response.content))
        assert "=alice" in {r["username"] for r in rows}


@pytest.mark.django_db
def test_a_scoped_reader_exports_only_their_own_login_events(client, user_with_role, audited):
    user = user_with_role("Auditors (scoped)", username="carol")
    LoginEvent.objects.create(kind="succeeded", username="carol", user=user)
    client.force_login(user)
    response = client.post(
        "/admin/whalefall/loginevent/export/", {"format": CSV, "resource": "0", **LOGINS}
    )
    if response.status_code == 403:
        pytest.skip("scoped Auditors do not read login events")
    assert {r["username"] for r in csv_rows(response.content)} == {"carol"}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["Viewers", "Schedulers", "DBAs"])
def test_roles_without_the_audit_log_cannot_export_it(client, user_with_role, audited, role):
    client.force_login(user_with_role(role))
    response = client.post(
        "/admin/auditlog/logentry/export/", {"format": CSV, "resource": "0", **AUDIT}
    )
    assert response.status_code == 403

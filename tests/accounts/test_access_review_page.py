"""The access review page (issue 16): reachable from the accounts list, styled like the
admin's forms, one table per CSV, typed cells in the workbook."""

import csv
import io
from datetime import datetime

import openpyxl
import pytest
from django.utils import timezone

from accounts.reports import CHANGE_HEADERS, PEOPLE_HEADERS
from tests.accounts.factories import make_account
from tests.inventory.factories import InstanceFactory

pytestmark = pytest.mark.django_db

PAGE = "/admin/accounts/account/access-review/"


@pytest.fixture
def hostile():
    instance = InstanceFactory(name="instance-a", engine="mysql")
    return make_account(
        instance,
        "=cmd|'/C calc'!A0",
        host="%",
        grants=[("global", "", "SUPER", "GRANT")],
        attributes={"superuser": True, "locked": False},
    )


def period(file_format: str) -> dict:
    today = timezone.localdate()
    return {
        "start": today.replace(day=1).isoformat(),
        "end": today.isoformat(),
        "file_format": file_format,
    }


@pytest.mark.parametrize(("role", "linked"), [("Auditors", True), ("DBAs", False)])
def test_the_accounts_list_links_to_the_access_review(client, user_with_role, role, linked):
    client.force_login(user_with_role(role))
    content = client.get("/admin/accounts/account/").content.decode()
    assert (f'href="{PAGE}"' in content) is linked
    assert 'class="export_link"' in content


def test_the_form_is_laid_out_as_the_admins_forms(client, user_with_role):
    client.force_login(user_with_role("Auditors"))
    content = client.get(PAGE).content.decode()
    assert 'class="module aligned"' in content
    assert 'class="form-row field-start' in content
    assert "admin/css/forms.css" in content


@pytest.mark.parametrize(
    ("choice", "headers", "filename"),
    [("csv-accounts", PEOPLE_HEADERS, "accounts"), ("csv-changes", CHANGE_HEADERS, "changes")],
)
def test_a_csv_holds_one_table(client, user_with_role, hostile, choice, headers, filename):
    client.force_login(user_with_role("Auditors"))
    response = client.post(PAGE, period(choice))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    assert f"-{filename}.csv" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == headers
    # No second header row glued under the first table.
    assert all(row != PEOPLE_HEADERS and row != CHANGE_HEADERS for row in rows[1:])
    assert all(len(row) == len(headers) for row in rows)
    account = rows[0].index("account")
    assert {row[account] for row in rows[1:]} == {"'=cmd|'/C calc'!A0@%"}


def test_the_workbook_has_typed_cells_without_the_guard(client, user_with_role, hostile):
    client.force_login(user_with_role("Auditors"))
    response = client.post(PAGE, period("xlsx"))
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["Privileged accounts", "Changes"]
    sheet = book["Privileged accounts"]
    header = [cell.value for cell in sheet[1]]
    row = sheet[2]
    cell = row[header.index("account")]
    assert (cell.value, cell.data_type) == ("=cmd|'/C calc'!A0@%", "s")
    assert row[header.index("superuser")].value is True
    changes = book["Changes"]
    detected = changes.cell(row=2, column=CHANGE_HEADERS.index("detected_at") + 1).value
    assert datetime.fromisoformat(detected).tzinfo is not None

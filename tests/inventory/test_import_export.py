"""Instance import (all or nothing, row-level errors) and formula-safe export (SPEC §4)."""

import io

import openpyxl
import pytest
import tablib
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from inventory.models import Instance
from inventory.services import formula_safe, instance_export, instance_import
from tests.inventory.factories import CredentialFactory, InstanceFactory, TagFactory

pytestmark = pytest.mark.django_db

HEADER = "name,engine,host,port,database_name,credential,tags,environment,description\n"


@pytest.fixture(autouse=True)
def _references():
    CredentialFactory(name="monitor")
    TagFactory(slug="prod", name="Production")
    TagFactory(slug="eu", name="Europe")


def run(csv_text: str, user=None, dry_run=False):
    return instance_import(data=csv_text, file_format="csv", user=user, dry_run=dry_run)


def row_errors(result) -> dict[int, str]:
    """Row number -> all error text of that row (validation and other errors)."""
    errors: dict[int, str] = {}
    for row in result.invalid_rows:
        errors[row.number] = str(row.error_dict)
    for number, row_errs in result.row_errors():
        errors[number] = errors.get(number, "") + " ".join(str(e.error) for e in row_errs)
    return errors


def test_a_valid_file_creates_instances_with_credential_and_tags():
    result = run(
        HEADER
        + 'db-eu-1,postgresql,10.0.0.5,5432,postgres,monitor,"prod,eu",production,main\n'
        + "db-eu-2,mysql,10.0.0.6,,,monitor,eu,staging,\n"
    )
    assert not result.has_errors()
    assert not result.has_validation_errors()
    first = Instance.objects.get(name="db-eu-1")
    assert first.engine == "postgresql"
    assert first.credential.name == "monitor"
    assert set(first.tags.values_list("slug", flat=True)) == {"prod", "eu"}
    assert Instance.objects.get(name="db-eu-2").port == 3306  # engine default


def test_an_existing_name_updates_that_instance():
    existing = InstanceFactory(name="db-1", host="10.0.0.1", engine="mysql", port=3306)
    result = run(HEADER + "db-1,mysql,10.0.0.99,3307,,monitor,,,moved\n")
    assert not result.has_validation_errors()
    existing.refresh_from_db()
    assert (existing.host, existing.port, existing.description) == ("10.0.0.99", 3307, "moved")
    assert Instance.objects.count() == 1


def test_dry_run_previews_without_writing():
    result = run(HEADER + "db-new,mysql,10.0.0.1,3306,,,,,\n", dry_run=True)
    assert not result.has_validation_errors()
    assert result.totals["new"] == 1
    assert not Instance.objects.filter(name="db-new").exists()


@pytest.mark.parametrize(
    ("bad_row", "expected"),
    [
        ("db-bad,mysql,10.0.0.2,70000,,,,,", "port"),
        ("db-bad,db2,10.0.0.2,3306,,,,,", "engine"),
        ('db-bad,mysql,10.0.0.2,3306,,,,,=HYPERLINK("http://x")', "formula"),
        ("db-bad,mysql,10.0.0.2,3306,,,,,@SUM(A1)", "formula"),
        ("db-bad,mysql,10.0.0.2,3306,,nobody,,,", "no credential named nobody"),
        ("db-bad,mysql,10.0.0.2,3306,,,ghost,,", "unknown tag(s): ghost"),
        ("db-bad,mysql,,3306,,,,,", "host"),
    ],
)
def test_one_bad_row_writes_nothing_and_is_named(bad_row, expected):
    result = run(
        HEADER
        + "db-ok-1,mysql,10.0.0.1,3306,,,,,\n"
        + bad_row
        + "\n"
        + "db-ok-2,mysql,10.0.0.3,3306,,,,,\n"
    )
    assert result.has_errors() or result.has_validation_errors()
    errors = row_errors(result)
    assert list(errors) == [2], errors
    assert expected in errors[2]
    assert not Instance.objects.exists()


def test_a_duplicate_name_in_the_file_is_an_error_and_nothing_is_written():
    result = run(HEADER + "db-x,mysql,10.0.0.1,3306,,,,,\n" + "db-x,mysql,10.0.0.2,3306,,,,,\n")
    errors = row_errors(result)
    assert set(errors) == {1, 2}
    assert all("more than once" in text for text in errors.values())
    assert not Instance.objects.exists()


def test_a_negative_number_is_a_bad_port_not_a_formula():
    errors = row_errors(run(HEADER + "db-neg,mysql,10.0.0.1,-1,,,,,\n"))
    assert "port" in errors[1]
    assert "formula" not in errors[1]


def test_missing_required_columns_are_named():
    with pytest.raises(ValidationError) as caught:
        run("name,port\ndb-1,3306\n")
    assert "Missing column(s): engine, host." in caught.value.messages
    assert not Instance.objects.exists()


def test_xlsx_files_import_too():
    book = tablib.Dataset(headers=["name", "engine", "host", "port"])
    book.append(["db-xlsx", "oracle", "10.0.0.9", 1521])
    result = instance_import(data=book.export("xlsx"), file_format="xlsx", user=None, dry_run=False)
    assert not result.has_validation_errors()
    assert Instance.objects.get(name="db-xlsx").engine == "oracle"


def test_the_admin_import_page_previews_errors_and_offers_no_confirmation(client, admin_user):
    client.force_login(admin_user)
    upload = SimpleUploadedFile(
        "instances.csv", (HEADER + "db-1,mysql,10.0.0.1,99999,,,,,\n").encode(), "text/csv"
    )
    response = client.post(
        "/admin/inventory/instance/import/",
        {"format": "0", "import_file": upload, "resource": "0"},
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert "Line number: 1" in content or "Row 1" in content or "errors" in content.lower()
    assert "confirm" not in content.lower() or "process_import" not in content
    assert not Instance.objects.exists()


def test_formula_safe_prefixes_dangerous_cells_only():
    assert formula_safe("=1+1") == "'=1+1"
    assert formula_safe("+31 20 555") == "'+31 20 555"
    assert formula_safe("-cmd") == "'-cmd"
    assert formula_safe("@SUM(A1)") == "'@SUM(A1)"
    assert formula_safe("\tx") == "'\tx"
    assert formula_safe("db-1") == "db-1"
    assert formula_safe(3306) == 3306


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_exported_cells_are_formula_safe(file_format):
    InstanceFactory(name="=cmd|' /C calc'!A0", description="@SUM(1+1)", owner="+team")
    data = instance_export(queryset=Instance.objects.all(), file_format=file_format)
    if file_format == "csv":
        rows = list(tablib.Dataset().load(data, format="csv").dict)
    else:
        sheet = openpyxl.load_workbook(io.BytesIO(data)).active
        values = list(sheet.iter_rows(values_only=True))
        rows = [dict(zip(values[0], row, strict=True)) for row in values[1:]]
    (row,) = rows
    # CSV cells carry the guard; XLSX cells are typed strings a spreadsheet never runs.
    guard = "'" if file_format == "csv" else ""
    assert row["name"] == guard + "=cmd|' /C calc'!A0"
    assert row["description"] == guard + "@SUM(1+1)"
    assert row["owner"] == guard + "+team"
    if file_format == "xlsx":
        cells = next(openpyxl.load_workbook(io.BytesIO(data)).active.iter_rows(min_row=2))
        assert {cell.data_type for cell in cells if isinstance(cell.value, str)} == {"s"}

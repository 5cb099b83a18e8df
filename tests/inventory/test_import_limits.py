"""Instance import against hostile and awkward files (SPEC §4, §9): caps on size and rows
that reject early, CSV and XLSX only, clear messages for wrong columns, NUL bytes and bad
numbers, formulas refused (also in XLSX, also after a line break or in fullwidth), and real
XLSX files with empty cells. Each attack is played against the service and the admin page.
"""

import csv
import io
import time
import zipfile
from xml.sax.saxutils import escape

import openpyxl
import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import override_settings

from inventory import services
from inventory.models import Instance, Tag
from inventory.services import formula_safe, instance_import, looks_like_formula
from tests.inventory.factories import CredentialFactory, TagFactory

pytestmark = pytest.mark.django_db

IMPORT_URL = "/admin/inventory/instance/import/"


@pytest.fixture(autouse=True)
def _references():
    CredentialFactory(name="monitor")
    TagFactory(slug="prod", name="Production")


def run(data, file_format="csv", dry_run=False):
    return instance_import(data=data, file_format=file_format, user=None, dry_run=dry_run)


def row_errors(result) -> dict[int, str]:
    """Row number -> error text; only validation errors are expected (no crash rows)."""
    assert not result.base_errors
    assert not list(result.row_errors()), [
        (n, [str(e.error) for e in errs]) for n, errs in result.row_errors()
    ]
    return {row.number: str(row.error_dict) for row in result.invalid_rows}


def elapsed(func, *args, **kwargs):
    start = time.perf_counter()
    try:
        return func(*args, **kwargs), time.perf_counter() - start
    except ValidationError as exc:
        return exc, time.perf_counter() - start


# --- real XLSX files written part by part (fast for 200 000 rows, and with formulas) -------


def _cell(ref: str, value) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple):  # ("formula", cached value)
        formula, cached = value
        return f'<c r="{ref}" t="str"><f>{escape(formula)}</f><v>{escape(cached)}</v></c>'
    if isinstance(value, int):
        return f'<c r="{ref}"><v>{value}</v></c>'
    return f'<c r="{ref}" t="inlineStr"><is><t>{escape(value)}</t></is></c>'


def xlsx(rows, *, extra_parts: dict[str, str] | None = None) -> bytes:
    """A minimal real workbook of one sheet, written straight as SpreadsheetML."""
    columns = "ABCDEFGHIJKLMNOP"

    def sheet_rows():
        for number, row in enumerate(rows, start=1):
            cells = "".join(_cell(f"{columns[i]}{number}", v) for i, v in enumerate(row))
            yield f'<row r="{number}">{cells}</row>'

    sheet = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        "<sheetData>" + "".join(sheet_rows()) + "</sheetData></worksheet>"
    )
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            '<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
            '2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            '<sheets><sheet name="instances" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
            '2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/'
            '2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>'
        ),
        "xl/sharedStrings.xml": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'count="0" uniqueCount="0"></sst>'
        ),
        "xl/worksheets/sheet1.xml": sheet,
        **(extra_parts or {}),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return buffer.getvalue()


HEADER = ["name", "engine", "host", "port", "description", "owner"]


def upload(client, data: bytes, name: str, file_format: str):
    index = {"csv": "0", "xlsx": "1"}[file_format]
    file = SimpleUploadedFile(name, data)
    return client.post(IMPORT_URL, {"format": index, "import_file": file, "resource": "0"})


@pytest.fixture
def importer(client, admin_user):
    client.force_login(admin_user)
    client.raise_request_exception = False
    return client


# --- size and rows: rejected early ----------------------------------------------------------


def big_csv(size: int) -> bytes:
    line = b"db-%07d,mysql,10.0.0.1,3306,,\n"
    rows = b"".join(line % i for i in range(size // len(line % 0) + 1))
    return (",".join(HEADER) + "\n").encode() + rows


def test_a_10_megabyte_csv_is_refused_by_size_at_once():
    data = big_csv(10 * 1024 * 1024)
    assert len(data) > 10 * 1024 * 1024
    (error, seconds) = elapsed(run, data)
    assert isinstance(error, ValidationError)
    assert "at most 5.0" in error.messages[0]
    assert seconds < 0.5
    assert not Instance.objects.exists()


def test_the_admin_refuses_a_10_megabyte_csv_before_reading_it(importer, monkeypatch):
    read = []
    monkeypatch.setattr(services, "instance_sheet_read", lambda *a, **k: read.append(1))
    (response, seconds) = elapsed(upload, importer, big_csv(10 * 1024 * 1024), "i.csv", "csv")
    assert response.status_code == 200
    assert "at most 5.0" in response.content.decode()
    assert not read  # refused by the upload form, never parsed
    assert seconds < 3
    assert not Instance.objects.exists()


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (lambda i: [i], "more than 10000 rows"),  # small rows: stopped by counting them
        (lambda i: [f"db-{i}", "mysql", "10.0.0.1", 3306], "unpacks to"),  # by their bulk
    ],
    ids=["narrow", "wide"],
)
def test_a_200_000_row_xlsx_is_refused_quickly(row, expected):
    data = xlsx([HEADER] + [row(i) for i in range(200_000)])
    assert len(data) < 5 * 1024 * 1024  # passes the size cap: the row cap must stop it
    (error, seconds) = elapsed(run, data, "xlsx")
    assert isinstance(error, ValidationError)
    assert expected in error.messages[0]
    assert seconds < 2
    assert not Instance.objects.exists()


def test_a_row_of_half_a_million_cells_is_refused_quickly():
    data = xlsx([HEADER, [1]])
    wide = "<c><v>1</v></c>" * 500_000  # 7.5 MB of XML: under the unpacked cap
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(buffer, "w") as target:
        for info in source.infolist():
            text = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                text = text.replace(b'<row r="2">', b'<row r="2">' + wide.encode())
            target.writestr(info, text, zipfile.ZIP_DEFLATED)
    (error, seconds) = elapsed(run, buffer.getvalue(), "xlsx")
    assert "more than 1024 cells" in error.messages[0]
    assert seconds < 2


def test_a_csv_with_too_many_rows_stops_at_the_limit_quickly():
    data = big_csv(2 * 1024 * 1024)  # about 70 000 rows, within the size cap
    (error, seconds) = elapsed(run, data)
    assert "more than 10000 rows" in error.messages[0]
    assert seconds < 1


@override_settings(WHALEFALL_IMPORT_MAX_ROWS=3)
def test_the_row_limit_counts_data_rows_only():
    rows = "".join(f"db-{i},mysql,10.0.0.{i},3306,,\n" for i in range(3))
    assert not run(",".join(HEADER) + "\n" + rows).has_validation_errors()
    with pytest.raises(ValidationError, match="more than 3 rows"):
        run(",".join(HEADER) + "\n" + rows + "db-9,mysql,10.0.0.9,3306,,\n")


def test_an_xlsx_that_unpacks_to_a_bomb_is_refused_before_it_is_read():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (200 * 1024 * 1024))
    data = buffer.getvalue()
    assert len(data) < 1024 * 1024
    (error, seconds) = elapsed(run, data, "xlsx")
    assert "unpacks to" in error.messages[0]
    assert seconds < 0.5


def test_an_xml_entity_bomb_is_refused():
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lolololololololololol">'
        + "".join(
            f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
            for i in range(1, 9)
        )
        + ']><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'count="1" uniqueCount="1"><si><t>&lol8;</t></si></sst>'
    )
    data = xlsx([HEADER], extra_parts={"xl/sharedStrings.xml": laughs})
    (error, seconds) = elapsed(run, data, "xlsx")
    assert isinstance(error, ValidationError)
    assert seconds < 2


# --- formats ---------------------------------------------------------------------------------


def test_the_import_page_offers_csv_and_xlsx_only(importer):
    page = importer.get(IMPORT_URL).content.decode()
    for title in ("csv", "xlsx"):
        assert f">{title}</option>" in page
    for title in ("tsv", "json", "yaml", "html", "ods", "xls<"):
        assert f">{title}" not in page
    response = importer.post(
        IMPORT_URL,
        {"format": "2", "import_file": SimpleUploadedFile("i.json", b"[]"), "resource": "0"},
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()


@pytest.mark.parametrize(
    "data",
    [b"\xff\xfename,engine,host\n", b"PK\x03\x04garbage", b"<html><table></table></html>"],
)
def test_garbage_is_a_clear_file_error(importer, data):
    for file_format in ("csv", "xlsx"):
        with pytest.raises(ValidationError):
            run(data, file_format)
        response = upload(importer, data, f"x.{file_format}", file_format)
        assert response.status_code == 200
        content = response.content.decode()
        assert "errorlist" in content
        assert "Traceback" not in content


# --- columns ---------------------------------------------------------------------------------


def test_wrong_columns_are_a_form_error_listing_unknown_and_expected(importer):
    response = upload(importer, b"name,bogus,hostname\ndb-1,1,x\n", "i.csv", "csv")
    assert response.status_code == 200
    content = response.content.decode()
    assert "Unknown column(s): bogus, hostname." in content
    assert "Missing column(s): engine, host." in content
    assert "Expected columns: name, engine, host (required), port" in content
    assert "Traceback" not in content
    assert "_duplicates" not in content
    assert "/work/" not in content
    assert "site-packages" not in content
    assert not Instance.objects.exists()


def test_repeated_and_unnamed_columns_are_named():
    with pytest.raises(ValidationError) as caught:
        run("name,engine,host,name,,port\ndb-1,mysql,h,db-1,x,1\n")
    text = " ".join(caught.value.messages)
    assert "named twice: name" in text
    assert "Column 5 has no name" in text


def test_an_export_imports_again_unchanged():
    run(",".join(HEADER) + "\ndb-1,mysql,10.0.0.1,3306,,team\n")
    exported = services.instance_export(queryset=Instance.objects.all(), file_format="csv")
    result = run(exported)
    assert not result.has_validation_errors()
    assert result.totals["skip"] == 1


# --- bad cells: clear row errors, never a crash -----------------------------------------------


def csv_row(**cells) -> str:
    values = {"name": "db-1", "engine": "mysql", "host": "10.0.0.1", "port": "3306"} | cells
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(values)
    writer.writerow(values.values())
    return text.getvalue()


@pytest.mark.parametrize(
    ("cells", "column", "expected"),
    [
        ({"description": "a\x00b"}, "description", "NUL character"),
        ({"name": "db\x00-1"}, "name", "NUL character"),
        ({"host": "\x00"}, "host", "NUL character"),
        ({"port": "abc"}, "port", "enter a whole number"),
        ({"port": "5432.7"}, "port", "enter a whole number"),
        ({"port": "1e3"}, "port", "enter a whole number"),
        ({"port": "9" * 5000}, "port", "enter a whole number"),
        ({"is_active": "maybe"}, "is_active", "enter true or false"),
        ({"tags": "prod,ghost"}, "tags", "unknown tag(s): ghost"),
        ({"credential": "nobody"}, "credential", "no credential named nobody"),
        ({"name": "n" * 500}, "name", "at most 100 characters"),
    ],
)
def test_a_bad_cell_is_a_clear_row_error(cells, column, expected):
    for dry_run in (True, False):
        errors = row_errors(run(csv_row(**cells), dry_run=dry_run))
        assert list(errors) == [1]
        assert column in errors[1], errors[1]
        assert expected in errors[1], errors[1]
        assert "ConversionSyntax" not in errors[1]
        assert "Traceback" not in errors[1]
    assert not Instance.objects.exists()


def test_the_admin_shows_the_bad_port_in_words(importer):
    response = upload(importer, csv_row(port="abc").encode(), "i.csv", "csv")
    content = response.content.decode()
    assert "enter a whole number" in content
    assert "decimal" not in content
    assert "process_import" not in content  # no confirmation offered


# --- formulas --------------------------------------------------------------------------------

HOSTILE_STARTS = [
    '=HYPERLINK("http://x")',
    "+cmd",
    "-2+3",
    "@SUM(A1)",
    "  =1+1",
    "\r=cmd|' /C calc'!A0",
    "\n=1+1",
    "\t=1+1",
    "\u3000=1+1",
    "\uff1dcmd",  # fullwidth =
    "\uff0bcmd",  # fullwidth +
    "\uff0dcmd",  # fullwidth -
    "\uff20SUM(A1)",  # fullwidth @
]


@pytest.mark.parametrize("value", HOSTILE_STARTS)
def test_formula_like_cells_are_refused_on_import_and_escaped_on_export(value):
    assert looks_like_formula(value)
    assert formula_safe(value) == "'" + value
    data = ",".join(HEADER) + '\ndb-1,mysql,10.0.0.1,3306,"' + value.replace('"', '""') + '",\n'
    errors = row_errors(run(data))
    assert "description" in errors[1]
    assert "formula" in errors[1]
    assert not Instance.objects.exists()


@pytest.mark.parametrize("value", ["-1", "+31", "db-1", "a=b", "12.5", "", "owner@example.com"])
def test_plain_values_are_not_formulas(value):
    assert not looks_like_formula(value)


def test_an_xlsx_formula_is_refused_not_read_as_its_cached_value():
    data = xlsx(
        [
            ["name", "engine", "host", "description"],
            ["db-1", "mysql", ('CONCATENATE("10.0.0.", "1")', "10.0.0.1"), "ok"],
        ]
    )
    errors = row_errors(run(data, "xlsx"))
    assert "host" in errors[1]
    assert "formula" in errors[1]
    assert not Instance.objects.exists()


def test_an_openpyxl_workbook_formula_is_refused():
    book = openpyxl.Workbook()
    book.active.append(["name", "engine", "host", "owner"])
    book.active.append(["db-1", "mysql", "10.0.0.1", "=A2&B2"])
    buffer = io.BytesIO()
    book.save(buffer)
    errors = row_errors(run(buffer.getvalue(), "xlsx"))
    assert "owner" in errors[1]
    assert "formula" in errors[1]


# --- real XLSX files with empty cells ------------------------------------------------------


def test_a_real_xlsx_with_empty_optional_text_cells_imports():
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["name", "engine", "host", "port", "database_name", "credential", "tags",
                  "environment", "owner", "description", "is_active",
                  "deep_privileges"])  # fmt: skip
    sheet.append(["db-1", "postgresql", "10.0.0.1", 5432, None, "monitor", "prod", None, None,
                  None, True, None])  # fmt: skip
    sheet.append(["db-2", "mysql", "10.0.0.2", None, None, None, None, None, None, None, None])
    sheet.append([None] * 12)  # a blank row, as spreadsheets leave them
    sheet["P10"] = None  # a touched but empty cell far away widens the sheet
    buffer = io.BytesIO()
    book.save(buffer)
    result = run(buffer.getvalue(), "xlsx")
    assert row_errors(result) == {}
    first = Instance.objects.get(name="db-1")
    assert (first.port, first.description, first.owner, first.database_name) == (5432, "", "", "")
    assert first.is_active is True
    assert first.deep_privileges is False
    second = Instance.objects.get(name="db-2")
    assert second.port == 3306
    assert second.is_active is True


def test_an_xlsx_with_numbers_dates_and_booleans_reads_as_text():
    data = xlsx(
        [
            ["name", "engine", "host", "port", "owner"],
            [12345, "mysql", "10.0.0.1", 3306, 42],
        ]
    )
    assert row_errors(run(data, "xlsx")) == {}
    assert Instance.objects.get(name="12345").owner == "42"


# --- transactions --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_no_transaction_is_open_while_the_file_is_read(monkeypatch):
    CredentialFactory(name="monitor2")
    seen = []
    real = services._csv_rows

    def watching(data):
        for row in real(data):
            seen.append(connection.in_atomic_block)
            yield row

    monkeypatch.setattr(services, "_csv_rows", watching)
    result = run(",".join(HEADER) + "\ndb-1,mysql,10.0.0.1,3306,,\n")
    assert not result.has_validation_errors()
    assert seen
    assert not any(seen)


# --- the admin: check, then confirm ---------------------------------------------------------


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_the_admin_checks_then_imports_csv_and_xlsx(importer, file_format):
    if file_format == "csv":
        data = (",".join(HEADER) + "\ndb-1,mysql,10.0.0.1,3306,,team\n").encode()
    else:
        data = xlsx([HEADER, ["db-1", "mysql", "10.0.0.1", 3306, None, "team"]])
    check = upload(importer, data, f"instances.{file_format}", file_format)
    assert check.status_code == 200
    confirm = check.context["confirm_form"]
    assert confirm is not None
    assert not Instance.objects.exists()
    done = importer.post("/admin/inventory/instance/process_import/", confirm.initial)
    assert done.status_code == 302
    assert Instance.objects.get(name="db-1").owner == "team"


def test_a_confirmed_import_that_no_longer_passes_writes_nothing(importer):
    data = "name,engine,host,tags\ndb-1,mysql,10.0.0.1,\ndb-2,mysql,10.0.0.2,prod\n"
    check = upload(importer, data.encode(), "instances.csv", "csv")
    confirm = check.context["confirm_form"]
    Tag.objects.filter(slug="prod").delete()  # meanwhile, row 2's tag is gone
    done = importer.post("/admin/inventory/instance/process_import/", confirm.initial, follow=True)
    assert "Nothing was imported" in done.content.decode()
    assert not Instance.objects.exists()

"""The ledger export carries what the ledger shows (issue 16): the 30-day growth and the
day the capacity limit is reached."""

import csv
import io
from datetime import date, timedelta

import openpyxl
import pytest
from django.utils import timezone

from capacity import forecast
from tests.capacity.test_admin import GIB, MIB, estate  # noqa: F401  the shared estate

pytestmark = pytest.mark.django_db

FIELDS = {
    f"databaseresource_{name}": "on"
    for name in (
        "name",
        "total_bytes",
        "capacity_limit_bytes",
        "growth_bytes_per_day",
        "limit_reached_on",
    )
}


def test_the_csv_ledger_has_growth_and_forecast(client, user_with_role, estate):  # noqa: F811
    client.force_login(user_with_role("Viewers"))
    response = client.post(
        "/admin/capacity/database/export/?presence=all", {"format": "0", "resource": "0", **FIELDS}
    )
    rows = {row["name"]: row for row in csv.DictReader(io.StringIO(response.content.decode()))}
    shop = estate["shop"]
    shop.refresh_from_db()
    assert int(rows["Shop"]["growth_bytes_per_day"]) == round(shop.growth_bytes_per_day)
    assert abs(int(rows["Shop"]["growth_bytes_per_day"]) - 100 * MIB) < MIB
    expected = forecast.date_reached(
        timezone.localdate(shop.collected_at),
        shop.total_bytes,
        shop.growth_bytes_per_day,
        shop.capacity_limit_bytes,
        today=timezone.localdate(),
    )
    assert rows["Shop"]["limit_reached_on"] == expected.isoformat()
    assert date.fromisoformat(rows["Shop"]["limit_reached_on"]) > timezone.localdate()
    assert date.fromisoformat(rows["Shop"]["limit_reached_on"]) < timezone.localdate() + timedelta(
        days=200
    )
    # No limit, no forecast.
    assert rows["logs"]["limit_reached_on"] == ""


def test_the_xlsx_ledger_types_growth_as_a_number(client, user_with_role, estate):  # noqa: F811
    client.force_login(user_with_role("Viewers"))
    response = client.post(
        "/admin/capacity/database/export/?presence=all", {"format": "1", "resource": "0", **FIELDS}
    )
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    assert sheet.title == "Databases"
    header = [cell.value for cell in sheet[1]]
    rows = {row[0]: row for row in sheet.iter_rows(min_row=2, values_only=True)}
    growth = rows["Shop"][header.index("growth_bytes_per_day")]
    assert isinstance(growth, int)
    assert rows["Shop"][header.index("total_bytes")] == 12 * GIB

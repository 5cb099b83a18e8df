"""Period aggregates: exact figures over a hand-built set of samples, previous windows,
idempotence, and the scheduled (last complete) versus current (open) period."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from capacity.models import (
    AggregatePeriod,
    DatabaseSizeAggregate,
    DatabaseSizeSample,
    InstanceSizeAggregate,
    Trend,
)
from capacity.services import aggregates_compute, aggregates_compute_all
from tests.capacity.factories import (
    DatabaseFactory,
    DatabaseSizeSampleFactory,
    InstanceSizeSampleFactory,
)
from tests.inventory.factories import InstanceFactory

pytestmark = pytest.mark.django_db

MARCH, APRIL, MAY = 3, 4, 5


def d(month: int, day: int, year: int = 2024) -> date:
    return date(year, month, day)


def sample(database, day: date, total: int):
    return DatabaseSizeSampleFactory(database=database, day=day, total_bytes=total)


def figures(row) -> tuple:
    return (
        row.avg_bytes,
        row.min_bytes,
        row.max_bytes,
        row.sample_count,
        row.change_bytes,
        row.change_percent,
        row.trend,
    )


@pytest.fixture
def april():
    """Databases whose March and April samples give every case of change and trend."""
    instance = InstanceFactory()
    subjects = {name: DatabaseFactory(instance=instance, name=name) for name in "ABCDEF"}
    data = {
        # March average 1000; April 1000, 1100, 1300: 1133.33 -> 1133, +13.30 %.
        "A": {d(MARCH, 1): 1000, d(MARCH, 31): 1000, d(APRIL, 1): 1000, d(APRIL, 15): 1100,
              d(APRIL, 30): 1300},
        # 2000 -> 1875: -6.25 %.
        "B": {d(MARCH, 10): 2000, d(APRIL, 2): 1900, d(APRIL, 3): 1850},
        # 1000 -> 1050: exactly +5 % is still stable.
        "C": {d(MARCH, 10): 1000, d(APRIL, 5): 1040, d(APRIL, 6): 1060},
        # No March: no change, 0 %.
        "D": {d(APRIL, 20): 500},
        # March average 0: the change is known, its percent is not (0), the growth is.
        "E": {d(MARCH, 5): 0, d(APRIL, 5): 100},
        # Around April only: February and May samples are no part of it.
        "F": {d(2, 29): 1, d(MARCH, 1): 1000, d(APRIL, 30): 1000, d(MAY, 1): 9999},
    }  # fmt: skip
    for name, days in data.items():
        for day, total in days.items():
            sample(subjects[name], day, total)
    return instance, subjects


def test_database_figures_are_exact(april):
    _instance, subjects = april

    result = aggregates_compute(period="month", day=d(MAY, 10))

    assert result == {
        "period": "month",
        "start": d(APRIL, 1),
        "end": d(APRIL, 30),
        "previous_start": d(MARCH, 1),
        "previous_end": d(MARCH, 31),
        "databases": 6,
        "instances": 0,
        "databases_removed": 0,
        "instances_removed": 0,
    }
    rows = {
        row.database.name: row
        for row in DatabaseSizeAggregate.objects.select_related("database").filter(
            period_type=AggregatePeriod.MONTH
        )
    }
    assert set(rows) == set(subjects)
    assert figures(rows["A"]) == (1133, 1000, 1300, 3, 133, Decimal("13.30"), Trend.GROWING)
    assert figures(rows["B"]) == (1875, 1850, 1900, 2, -125, Decimal("-6.25"), Trend.SHRINKING)
    assert figures(rows["C"]) == (1050, 1040, 1060, 2, 50, Decimal("5.00"), Trend.STABLE)
    assert figures(rows["D"]) == (500, 500, 500, 1, 0, Decimal("0.00"), Trend.STABLE)
    assert figures(rows["E"]) == (100, 100, 100, 1, 100, Decimal("0.00"), Trend.GROWING)
    assert figures(rows["F"]) == (1000, 1000, 1000, 1, 0, Decimal("0.00"), Trend.STABLE)
    for row in rows.values():
        assert (row.period_start, row.period_end) == (d(APRIL, 1), d(APRIL, 30))


def test_averages_round_to_whole_bytes():
    database = DatabaseFactory()
    sample(database, d(MARCH, 1), 1)
    sample(database, d(MARCH, 2), 2)
    sample(database, d(APRIL, 1), 3)

    aggregates_compute(period="month", day=d(APRIL, 1))
    aggregates_compute(period="month", day=d(MAY, 1))

    march = DatabaseSizeAggregate.objects.get(period_start=d(MARCH, 1))
    april = DatabaseSizeAggregate.objects.get(period_start=d(APRIL, 1))
    assert march.avg_bytes == 2  # 1.5, half away from zero
    assert (april.avg_bytes, april.change_bytes, april.change_percent) == (3, 1, Decimal("50.00"))


def test_instance_figures_average_the_daily_totals():
    instance = InstanceFactory()
    other = InstanceFactory()
    for day, total, count in [
        (d(MARCH, 1), 9000, 3),
        (d(MARCH, 2), 11000, 3),
        (d(APRIL, 1), 9000, 3),
        (d(APRIL, 2), 10000, 4),
        (d(APRIL, 3), 14000, 5),
    ]:
        InstanceSizeSampleFactory(
            instance=instance, day=day, total_bytes=total, database_count=count
        )
    InstanceSizeSampleFactory(instance=other, day=d(APRIL, 9), total_bytes=7, database_count=1)

    result = aggregates_compute(period="month", day=d(MAY, 2))

    assert (result["databases"], result["instances"]) == (0, 2)
    row = InstanceSizeAggregate.objects.get(instance=instance)
    # 11000 a day, not 11000 / 4 per database (the predecessor's FLAW 11).
    assert figures(row) == (11000, 9000, 14000, 3, 1000, Decimal("10.00"), Trend.GROWING)
    assert figures(InstanceSizeAggregate.objects.get(instance=other)) == (
        7, 7, 7, 1, 0, Decimal("0.00"), Trend.STABLE,
    )  # fmt: skip


def test_one_statement_per_level():
    database = DatabaseFactory()
    sample(database, d(APRIL, 1), 10)
    InstanceSizeSampleFactory(instance=database.instance, day=d(APRIL, 1), total_bytes=10)

    with CaptureQueriesContext(connection) as queries:
        aggregates_compute(period="month", day=d(MAY, 1))

    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().startswith("INSERT")]
    assert len(inserts) == 2
    assert all("ON CONFLICT" in sql and "GROUP BY" in sql for sql in inserts)


def test_re_running_overwrites_instead_of_adding(april):
    _instance, subjects = april
    aggregates_compute(period="month", day=d(MAY, 10))
    first = {row.pk: figures(row) for row in DatabaseSizeAggregate.objects.all()}

    again = aggregates_compute(period="month", day=d(MAY, 31))

    assert again["databases"] == 6
    assert {row.pk: figures(row) for row in DatabaseSizeAggregate.objects.all()} == first

    # A late sample changes the figures in place.
    sample(subjects["D"], d(APRIL, 21), 700)
    aggregates_compute(period="month", day=d(MAY, 10))
    row = DatabaseSizeAggregate.objects.get(database=subjects["D"])
    assert figures(row) == (600, 500, 700, 2, 0, Decimal("0.00"), Trend.STABLE)
    assert DatabaseSizeAggregate.objects.count() == 6


def test_re_running_drops_the_aggregates_whose_samples_are_gone(april):
    _instance, subjects = april
    aggregates_compute(period="month", day=d(MAY, 10))
    # D's only April sample is gone (its month dropped by the retention, say).
    DatabaseSizeSample.objects.filter(database=subjects["D"]).delete()

    again = aggregates_compute(period="month", day=d(MAY, 10))

    assert again["databases_removed"] == 1
    assert not DatabaseSizeAggregate.objects.filter(database=subjects["D"]).exists()
    assert DatabaseSizeAggregate.objects.count() == 5
    # Other periods are not touched.
    aggregates_compute(period="week", day=d(MAY, 10))
    weeks = DatabaseSizeAggregate.objects.filter(period_type="week").count()
    aggregates_compute(period="month", day=d(MAY, 10))
    assert DatabaseSizeAggregate.objects.filter(period_type="week").count() == weeks


def test_the_previous_quarter_is_the_whole_previous_quarter():
    database = DatabaseFactory()
    sample(database, d(1, 15), 100)
    sample(database, d(MARCH, 31), 300)  # the predecessor's window ended with February
    sample(database, d(APRIL, 1), 220)
    sample(database, d(6, 30), 220)
    sample(database, d(7, 1), 10_000)  # the next quarter

    result = aggregates_compute(period="quarter", day=d(7, 1))

    assert (result["start"], result["end"]) == (d(APRIL, 1), d(6, 30))
    assert (result["previous_start"], result["previous_end"]) == (d(1, 1), d(MARCH, 31))
    row = DatabaseSizeAggregate.objects.get(period_type=AggregatePeriod.QUARTER)
    assert figures(row) == (220, 220, 220, 2, 20, Decimal("10.00"), Trend.GROWING)


def test_the_first_quarter_compares_with_the_last_quarter_of_the_year_before():
    database = DatabaseFactory()
    sample(database, d(10, 1, 2023), 400)
    sample(database, d(12, 31, 2023), 400)
    sample(database, d(2, 1), 380)

    result = aggregates_compute(period="quarter", day=d(4, 1))

    assert (result["previous_start"], result["previous_end"]) == (d(10, 1, 2023), d(12, 31, 2023))
    row = DatabaseSizeAggregate.objects.get()
    assert figures(row) == (380, 380, 380, 1, -20, Decimal("-5.00"), Trend.STABLE)


def test_weeks_run_monday_to_sunday():
    database = DatabaseFactory()
    sample(database, d(MAY, 5), 50)  # Sunday: the week before
    sample(database, d(MAY, 6), 100)  # Monday
    sample(database, d(MAY, 12), 200)  # Sunday
    sample(database, d(MAY, 13), 999)  # Monday: the week after

    result = aggregates_compute(period="week", day=d(MAY, 13))

    assert (result["start"], result["end"]) == (d(MAY, 6), d(MAY, 12))
    row = DatabaseSizeAggregate.objects.get()
    assert figures(row) == (150, 100, 200, 2, 100, Decimal("200.00"), Trend.GROWING)


def test_the_current_period_is_the_open_one():
    database = DatabaseFactory()
    sample(database, d(APRIL, 30), 100)
    sample(database, d(MAY, 1), 110)
    sample(database, d(MAY, 10), 130)

    result = aggregates_compute(period="month", day=d(MAY, 10), current=True)

    assert (result["start"], result["end"]) == (d(MAY, 1), d(MAY, 31))
    row = DatabaseSizeAggregate.objects.get()
    assert (row.period_start, row.period_end) == (d(MAY, 1), d(MAY, 31))
    assert figures(row) == (120, 110, 130, 2, 20, Decimal("20.00"), Trend.GROWING)


def test_all_periods_at_once():
    database = DatabaseFactory()
    sample(database, d(MARCH, 31), 100)  # Sunday, last day of a month and of a quarter

    results = aggregates_compute_all(day=d(APRIL, 1))

    assert {period: r["databases"] for period, r in results.items()} == {
        "week": 1,
        "month": 1,
        "quarter": 1,
    }
    assert set(DatabaseSizeAggregate.objects.values_list("period_type", "period_start")) == {
        ("week", d(MARCH, 25)),
        ("month", d(MARCH, 1)),
        ("quarter", d(1, 1)),
    }


def test_no_samples_no_rows():
    assert aggregates_compute(period="week", day=d(MAY, 1))["databases"] == 0
    assert not DatabaseSizeAggregate.objects.exists()


def test_unknown_periods_are_refused():
    with pytest.raises(ValueError, match="'day' is not a valid AggregatePeriod"):
        aggregates_compute(period="day", day=d(MAY, 1))

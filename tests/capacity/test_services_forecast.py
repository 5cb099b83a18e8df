"""Forecasts of a database and an instance from their stored samples."""

from datetime import date, timedelta

import pytest

from capacity.services import Forecast, forecast_database, forecast_instance
from tests.capacity.factories import (
    GIB,
    DatabaseFactory,
    DatabaseSizeSampleFactory,
    InstanceCapacityFactory,
    InstanceSizeSampleFactory,
)
from tests.inventory.factories import InstanceFactory

pytestmark = pytest.mark.django_db

TODAY = date(2024, 6, 30)
MIB = 1024**2


def days_ago(n: int) -> date:
    return TODAY - timedelta(days=n)


def test_database_growth_over_30_and_90_days_and_its_limit(django_assert_num_queries):
    database = DatabaseFactory(capacity_limit_bytes=20 * GIB)
    # 90 days ago to 31 days ago: flat at 10 GiB; then 100 MiB a day up to today.
    for n in range(89, 30, -1):
        DatabaseSizeSampleFactory(database=database, day=days_ago(n), total_bytes=10 * GIB)
    for n in range(29, -1, -1):
        DatabaseSizeSampleFactory(
            database=database, day=days_ago(n), total_bytes=10 * GIB + (30 - n) * 100 * MIB
        )
    DatabaseSizeSampleFactory(database=database, day=days_ago(90), total_bytes=0)  # too old
    DatabaseSizeSampleFactory(database=DatabaseFactory(), day=TODAY, total_bytes=GIB)

    with django_assert_num_queries(1):
        result = forecast_database(database, today=TODAY)

    assert result.growth_30d == 100 * MIB
    assert 0 < result.growth_90d < 100 * MIB
    assert result.limit_bytes == 20 * GIB
    # Latest 10 GiB + 3000 MiB; 7240 MiB to go at 100 MiB a day: 73 days.
    assert result.projected_date == TODAY + timedelta(days=73)


def test_database_without_limit_or_samples():
    database = DatabaseFactory()
    assert forecast_database(database, today=TODAY) == Forecast(None, None, None, None)

    DatabaseSizeSampleFactory(database=database, day=days_ago(3), total_bytes=GIB)
    DatabaseSizeSampleFactory(database=database, day=days_ago(1), total_bytes=2 * GIB)
    result = forecast_database(database, today=TODAY)
    assert (result.growth_30d, result.growth_90d) == (GIB / 2, GIB / 2)
    assert result.projected_date is None


def test_the_90_day_growth_projects_when_the_last_30_days_have_one_sample():
    database = DatabaseFactory(capacity_limit_bytes=3 * GIB)
    DatabaseSizeSampleFactory(database=database, day=days_ago(60), total_bytes=GIB)
    DatabaseSizeSampleFactory(database=database, day=days_ago(40), total_bytes=2 * GIB)
    DatabaseSizeSampleFactory(database=database, day=days_ago(20), total_bytes=2 * GIB)

    result = forecast_database(database, today=TODAY)

    assert result.growth_30d is None
    assert result.growth_90d == GIB / 40
    assert result.projected_date == days_ago(20) + timedelta(days=40)


def test_instance_forecast_uses_its_capacity_limit(django_assert_num_queries):
    instance = InstanceFactory()
    InstanceCapacityFactory(instance=instance, capacity_limit_bytes=10 * GIB)
    for n in range(10):  # 100 MiB a day, up to 8 GiB + 900 MiB today
        InstanceSizeSampleFactory(
            instance=instance, day=days_ago(n), total_bytes=(8 * 1024 + (9 - n) * 100) * MIB
        )
    instance = type(instance).objects.select_related("capacity").get(pk=instance.pk)

    with django_assert_num_queries(1):
        result = forecast_instance(instance, today=TODAY)

    assert result.growth_30d == result.growth_90d == 100 * MIB
    assert result.limit_bytes == 10 * GIB
    assert result.projected_date == TODAY + timedelta(days=12)  # 1148 MiB to go


def test_instance_without_capacity_row_has_no_limit():
    instance = InstanceFactory()
    InstanceSizeSampleFactory(instance=instance, day=days_ago(2), total_bytes=GIB)
    InstanceSizeSampleFactory(instance=instance, day=days_ago(1), total_bytes=2 * GIB)

    result = forecast_instance(instance, today=TODAY)

    assert (result.growth_30d, result.limit_bytes, result.projected_date) == (GIB, None, None)


@pytest.mark.django_db
def test_growth_is_stored_on_the_database_rows():
    from datetime import timedelta

    from django.utils import timezone

    from capacity.models import Database
    from capacity.services import database_growth_refresh
    from tests.capacity.factories import DatabaseFactory, DatabaseSizeSampleFactory

    today = timezone.localdate()
    growing = DatabaseFactory(total_bytes=1000)
    flat = DatabaseFactory(instance=growing.instance, total_bytes=500)
    lonely = DatabaseFactory(instance=growing.instance, total_bytes=1)
    old = DatabaseFactory(instance=growing.instance, total_bytes=1)
    for age in range(10):
        day = today - timedelta(days=age)
        DatabaseSizeSampleFactory(database=growing, day=day, total_bytes=1000 - 7 * age)
        DatabaseSizeSampleFactory(database=flat, day=day, total_bytes=500)
    DatabaseSizeSampleFactory(database=lonely, day=today, total_bytes=1)
    for age in (40, 41):  # outside the 30-day window
        DatabaseSizeSampleFactory(database=old, day=today - timedelta(days=age), total_bytes=age)
    database_growth_refresh(instance_ids=[growing.instance_id], today=today)
    growth = dict(Database.objects.values_list("name", "growth_bytes_per_day"))
    assert growth[growing.name] == pytest.approx(7)
    assert growth[flat.name] == pytest.approx(0)
    assert growth[lonely.name] is None
    assert growth[old.name] is None

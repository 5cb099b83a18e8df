"""The demo history command: fills missing days, aggregates them, never in production."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from capacity.models import DatabaseSizeAggregate, DatabaseSizeSample, InstanceSizeSample
from tests.capacity.factories import GIB, DatabaseFactory, DatabaseSizeSampleFactory

pytestmark = pytest.mark.django_db


def test_fills_history_and_aggregates():
    database = DatabaseFactory(total_bytes=10 * GIB)
    real = DatabaseSizeSampleFactory(database=database, total_bytes=10 * GIB)
    out = StringIO()
    call_command("capacity_demo_history", days=40, stdout=out)
    assert DatabaseSizeSample.objects.filter(database=database).count() == 40
    assert InstanceSizeSample.objects.filter(instance=database.instance).count() == 40
    # The day that had a real sample keeps it.
    kept = DatabaseSizeSample.objects.get(database=database, day=timezone.localdate())
    assert kept.total_bytes == real.total_bytes
    assert DatabaseSizeAggregate.objects.filter(database=database, period_type="week").count() >= 5
    assert "39 database samples written" in out.getvalue()


def test_refused_in_production_and_without_data(settings):
    with pytest.raises(CommandError, match="no collected databases"):
        call_command("capacity_demo_history", days=10)
    settings.DJANGO_ENV = "production"
    with pytest.raises(CommandError, match="never written in production"):
        call_command("capacity_demo_history", days=10)

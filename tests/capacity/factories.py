"""factory-boy factories for the capacity models."""

from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from capacity.models import (
    AggregatePeriod,
    Database,
    DatabaseSizeAggregate,
    DatabaseSizeSample,
    InstanceCapacity,
    InstanceSizeAggregate,
    InstanceSizeSample,
    TableSizeSnapshot,
    Trend,
)
from capacity.partitions import partition_ensure
from capacity.periods import window
from tests.inventory.factories import InstanceFactory

GIB = 1024**3


class DatabaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Database

    instance = factory.SubFactory(InstanceFactory)
    name = factory.Sequence(lambda n: f"Sales_{n}")
    first_seen_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=30))
    last_seen_at = factory.LazyFunction(timezone.now)


class InstanceCapacityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = InstanceCapacity

    instance = factory.SubFactory(InstanceFactory)
    total_bytes = 10 * GIB
    database_count = 3
    collected_at = factory.LazyFunction(timezone.now)


class _SampleFactory(factory.django.DjangoModelFactory):
    """Ensures the month's partition first, as every writer of samples must."""

    class Meta:
        abstract = True

    day = factory.LazyFunction(timezone.localdate)
    collected_at = factory.LazyFunction(timezone.now)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        partition_ensure(kwargs["day"])
        return super()._create(model_class, *args, **kwargs)


class DatabaseSizeSampleFactory(_SampleFactory):
    class Meta:
        model = DatabaseSizeSample

    database = factory.SubFactory(DatabaseFactory)
    total_bytes = 2 * GIB
    data_bytes = factory.LazyAttribute(lambda s: s.total_bytes)


class InstanceSizeSampleFactory(_SampleFactory):
    class Meta:
        model = InstanceSizeSample

    instance = factory.SubFactory(InstanceFactory)
    total_bytes = 6 * GIB
    database_count = 3


class _AggregateFactory(factory.django.DjangoModelFactory):
    class Meta:
        abstract = True

    period_type = AggregatePeriod.MONTH
    period_start = factory.LazyAttribute(lambda a: window(a.period_type, timezone.localdate())[0])
    period_end = factory.LazyAttribute(lambda a: window(a.period_type, a.period_start)[1])
    avg_bytes = 2 * GIB
    min_bytes = GIB
    max_bytes = 3 * GIB
    sample_count = 28
    change_bytes = 0
    change_percent = Decimal("0.00")
    trend = Trend.STABLE
    computed_at = factory.LazyFunction(timezone.now)


class DatabaseSizeAggregateFactory(_AggregateFactory):
    class Meta:
        model = DatabaseSizeAggregate

    database = factory.SubFactory(DatabaseFactory)


class InstanceSizeAggregateFactory(_AggregateFactory):
    class Meta:
        model = InstanceSizeAggregate

    instance = factory.SubFactory(InstanceFactory)


class TableSizeSnapshotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TableSizeSnapshot

    database = factory.SubFactory(DatabaseFactory)
    schema_name = "public"
    table_name = factory.Sequence(lambda n: f"orders_{n}")
    row_count = 1000
    data_bytes = 8 * 1024**2
    index_bytes = 2 * 1024**2
    total_bytes = factory.LazyAttribute(lambda t: t.data_bytes + t.index_bytes)
    collected_at = factory.LazyFunction(timezone.now)

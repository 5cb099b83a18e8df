"""Invariants of the capacity models, enforced by the database."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm

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
from capacity.periods import Period
from tests.capacity.factories import (
    GIB,
    DatabaseFactory,
    DatabaseSizeAggregateFactory,
    DatabaseSizeSampleFactory,
    InstanceCapacityFactory,
    InstanceSizeAggregateFactory,
    InstanceSizeSampleFactory,
    TableSizeSnapshotFactory,
)
from tests.factories import UserFactory
from tests.inventory.factories import InstanceFactory

pytestmark = pytest.mark.django_db

CAPACITY_MODELS = list(apps.get_app_config("capacity").get_models())


def refused(factory, **kwargs):
    with pytest.raises(IntegrityError), transaction.atomic():
        factory(**kwargs)


def test_every_field_explains_itself():
    for model in CAPACITY_MODELS:
        for field in model._meta.get_fields():
            if field.auto_created or isinstance(field, models.CompositePrimaryKey):
                continue
            assert field.help_text, f"{model.__name__}.{field.name} has no help_text"


def test_constraint_names_follow_app_class_rule():
    for model in CAPACITY_MODELS:
        prefix = f"capacity_{model._meta.model_name}_"
        for constraint in model._meta.constraints:
            assert constraint.name.startswith(prefix), constraint.name


def test_aggregate_periods_reuse_the_period_names():
    assert set(AggregatePeriod.values) == {Period.WEEK, Period.MONTH, Period.QUARTER}


def test_database_names_are_unique_per_instance_in_their_real_case():
    database = DatabaseFactory(name="Sales")
    DatabaseFactory(instance=database.instance, name="sales")
    DatabaseFactory(name="Sales")  # another instance
    refused(DatabaseFactory, instance=database.instance, name="Sales")
    assert Database.objects.get(instance=database.instance, name="Sales") == database


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": ""},
        {"total_bytes": -1},
        {"data_bytes": -1},
        {"log_bytes": -1},
        {"capacity_limit_bytes": -1},
    ],
)
def test_database_rows_must_be_sane(kwargs):
    refused(DatabaseFactory, **kwargs)


def test_database_cannot_be_last_seen_before_first_seen():
    now = timezone.now()
    refused(DatabaseFactory, first_seen_at=now, last_seen_at=now - timedelta(seconds=1))


def test_database_keeps_its_latest_size_and_removal_on_the_row():
    database = DatabaseFactory(total_bytes=None)
    assert database.total_bytes is None
    assert not database.is_removed
    gone = DatabaseFactory(instance=database.instance, removed_at=timezone.now())
    assert gone.is_removed
    assert list(Database.objects.present()) == [database]


def test_database_visibility_follows_the_instance_permission():
    mine, other = DatabaseFactory(), DatabaseFactory()
    user = UserFactory()
    assert not Database.objects.visible_to(user).exists()
    assign_perm("inventory.view_instance", user, mine.instance)
    assert list(Database.objects.visible_to(user)) == [mine]
    superuser = UserFactory(is_superuser=True)
    assert set(Database.objects.visible_to(superuser)) == {mine, other}
    assert not Database.objects.visible_to(None).exists()


def test_validators_reject_negative_sizes_in_forms():
    database = DatabaseFactory.build(instance=InstanceFactory(), total_bytes=-5)
    with pytest.raises(ValidationError) as error:
        database.full_clean()
    assert "total_bytes" in error.value.message_dict


def test_one_capacity_row_per_instance():
    capacity = InstanceCapacityFactory()
    refused(InstanceCapacityFactory, instance=capacity.instance)
    refused(InstanceCapacityFactory, total_bytes=-1)
    refused(InstanceCapacityFactory, capacity_limit_bytes=-1)
    assert capacity.instance.capacity == capacity
    assert InstanceCapacity.objects.get(pk=capacity.instance.pk) == capacity


def test_one_database_sample_per_database_and_day():
    sample = DatabaseSizeSampleFactory()
    refused(DatabaseSizeSampleFactory, database=sample.database, day=sample.day)
    DatabaseSizeSampleFactory(database=sample.database, day=sample.day - timedelta(days=1))
    assert sample.pk == (sample.database_id, sample.day)


@pytest.mark.parametrize("kwargs", [{"total_bytes": -1}, {"data_bytes": -1}, {"log_bytes": -1}])
def test_database_sample_sizes_are_non_negative(kwargs):
    refused(DatabaseSizeSampleFactory, **kwargs)


def test_one_instance_sample_per_instance_and_day():
    sample = InstanceSizeSampleFactory()
    refused(InstanceSizeSampleFactory, instance=sample.instance, day=sample.day)
    refused(InstanceSizeSampleFactory, total_bytes=-1)
    assert InstanceSizeSample.objects.get(pk=(sample.instance_id, sample.day)) == sample


@pytest.mark.parametrize("factory", [DatabaseSizeAggregateFactory, InstanceSizeAggregateFactory])
def test_one_aggregate_per_subject_period_and_start(factory):
    aggregate = factory()
    subject = (
        {"database": aggregate.database}
        if factory is DatabaseSizeAggregateFactory
        else {"instance": aggregate.instance}
    )
    refused(factory, **subject, period_start=aggregate.period_start)
    factory(**subject, period_type=AggregatePeriod.QUARTER)
    factory(
        **subject,
        period_start=aggregate.period_start - timedelta(days=31),
        period_end=aggregate.period_start - timedelta(days=1),
    )


@pytest.mark.parametrize("factory", [DatabaseSizeAggregateFactory, InstanceSizeAggregateFactory])
@pytest.mark.parametrize(
    "kwargs",
    [
        {"period_type": "day"},
        {"period_type": "year"},
        {"trend": "exploding"},
        {"sample_count": 0},
        {"min_bytes": -1, "avg_bytes": 0, "max_bytes": 0},
        {"min_bytes": 3 * GIB, "avg_bytes": 2 * GIB, "max_bytes": 4 * GIB},
        {"min_bytes": GIB, "avg_bytes": 5 * GIB, "max_bytes": 4 * GIB},
    ],
)
def test_aggregates_must_be_sane(factory, kwargs):
    refused(factory, **kwargs)


@pytest.mark.parametrize("factory", [DatabaseSizeAggregateFactory, InstanceSizeAggregateFactory])
def test_aggregate_period_cannot_end_before_it_starts(factory):
    aggregate = factory.build()
    refused(factory, period_end=aggregate.period_start - timedelta(days=1))


def test_aggregates_keep_negative_changes_and_percentages():
    aggregate = DatabaseSizeAggregateFactory(
        change_bytes=-GIB, change_percent=Decimal("-33.33"), trend=Trend.SHRINKING
    )
    aggregate.refresh_from_db()
    assert (aggregate.change_bytes, aggregate.change_percent) == (-GIB, Decimal("-33.33"))
    assert DatabaseSizeAggregate.objects.filter(trend=Trend.SHRINKING).count() == 1
    assert InstanceSizeAggregate.objects.count() == 0


def test_table_sizes_are_latest_only_per_table():
    table = TableSizeSnapshotFactory(schema_name="public", table_name="orders")
    refused(
        TableSizeSnapshotFactory,
        database=table.database,
        schema_name="public",
        table_name="orders",
    )
    TableSizeSnapshotFactory(database=table.database, schema_name="audit", table_name="orders")
    TableSizeSnapshotFactory(database=table.database, schema_name="", table_name="Orders")
    assert str(table) == "public.orders"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"table_name": ""},
        {"row_count": -1},
        {"data_bytes": -1},
        {"index_bytes": -1},
        {"total_bytes": -1},
    ],
)
def test_table_sizes_must_be_sane(kwargs):
    refused(TableSizeSnapshotFactory, **kwargs)


def test_deleting_a_database_removes_its_capacity_rows():
    database = DatabaseFactory()
    DatabaseSizeSampleFactory(database=database)
    DatabaseSizeAggregateFactory(database=database)
    TableSizeSnapshotFactory(database=database)
    database.delete()
    assert not DatabaseSizeSample.objects.exists()
    assert not DatabaseSizeAggregate.objects.exists()
    assert not TableSizeSnapshot.objects.exists()

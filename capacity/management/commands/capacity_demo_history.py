"""Fill in made-up size history for a demonstration: charts and aggregates need days."""

import random
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from capacity.models import Database, DatabaseSizeSample, InstanceSizeSample
from capacity.partitions import samples_upsert
from capacity.periods import Period, previous_window
from capacity.services import aggregates_compute, database_growth_refresh


class Command(BaseCommand):
    help = (
        "Generate daily size samples for the last N days of every collected database (days "
        "that already have a sample are left alone), then compute the aggregates of the "
        "periods they cover. For demonstrations only; refused in production."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=120, help="Days of history (default 120).")
        parser.add_argument("--seed", type=int, default=1, help="Random seed, for repeatable data.")

    def handle(self, *args, days: int, seed: int, **options):
        if settings.DJANGO_ENV == "production":
            raise CommandError("demo history is never written in production")
        if not 2 <= days <= 1000:
            raise CommandError("--days must be between 2 and 1000")
        rng = random.Random(seed)  # noqa: S311  demo figures, not secrets
        today = timezone.localdate()
        now = timezone.now()
        databases = list(
            Database.objects.filter(removed_at__isnull=True, total_bytes__isnull=False)
        )
        if not databases:
            raise CommandError("no collected databases yet: run a capacity collection first")
        existing = set(
            DatabaseSizeSample.objects.filter(
                database__in=databases, day__gt=today - timedelta(days=days)
            ).values_list("database_id", "day")
        )
        samples, per_instance = [], {}
        for database in databases:
            daily_growth = rng.uniform(-0.001, 0.006)  # shrinking a little to growing fast
            for age in range(days):
                day = today - timedelta(days=age)
                size = max(0, int(database.total_bytes * (1 - daily_growth * age)))
                size = int(size * rng.uniform(0.995, 1.005)) if age else database.total_bytes
                key = (database.instance_id, day)
                total, count = per_instance.get(key, (0, 0))
                per_instance[key] = (total + size, count + 1)
                if (database.pk, day) in existing:
                    continue
                samples.append(
                    DatabaseSizeSample(
                        database=database, day=day, total_bytes=size, collected_at=now
                    )
                )
        written = samples_upsert(samples)
        instance_days = set(
            InstanceSizeSample.objects.filter(
                instance_id__in={d.instance_id for d in databases},
                day__gt=today - timedelta(days=days),
            ).values_list("instance_id", "day")
        )
        samples_upsert(
            [
                InstanceSizeSample(
                    instance_id=instance_id,
                    day=day,
                    total_bytes=total,
                    database_count=count,
                    collected_at=now,
                )
                for (instance_id, day), (total, count) in per_instance.items()
                if (instance_id, day) not in instance_days
            ]
        )
        database_growth_refresh(instance_ids=list({d.instance_id for d in databases}))
        periods = 0
        for period in (Period.WEEK, Period.MONTH, Period.QUARTER):
            day = today
            while day > today - timedelta(days=days):
                aggregates_compute(period=period, day=day)
                periods += 1
                day = previous_window(period, day)[1]
            aggregates_compute(period=period, day=today, current=True)
        self.stdout.write(
            f"{written} database samples written for {len(databases)} databases over "
            f"{days} days; {periods} periods aggregated."
        )

"""factory-boy factories for runs and run items."""

import factory

from syncjobs.models import Run, RunItem
from tests.inventory.factories import InstanceFactory


class RunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Run

    kind = Run.Kind.ACCOUNTS
    trigger = Run.Trigger.SCHEDULED


class RunItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RunItem

    run = factory.SubFactory(RunFactory)
    instance = factory.SubFactory(InstanceFactory)

"""factory-boy factories shared by every test module."""

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    """A staff user; pass ``roles=["DBAs"]`` to put it in role groups."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    is_staff = True
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def roles(self, create, extracted, **_kwargs):
        if create and extracted:
            self.groups.add(*Group.objects.filter(name__in=extracted))

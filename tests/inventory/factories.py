"""factory-boy factories for the inventory models."""

import factory

from inventory.models import Credential, Instance, Tag

DEFAULT_SECRET = "s3cr3t-Pa55!"


class CredentialFactory(factory.django.DjangoModelFactory):
    """A credential whose secret is encrypted as ``set_secret`` does it.

    Pass ``secret="…"`` for another clear-text secret, ``secret=""`` for none."""

    class Meta:
        model = Credential

    name = factory.Sequence(lambda n: f"credential-{n}")
    username = "whalefall"
    secret = DEFAULT_SECRET

    @classmethod
    def _build(cls, model_class, *args, secret, **kwargs):
        credential = model_class(*args, **kwargs)
        if secret:
            credential.set_secret(secret)
        return credential

    @classmethod
    def _create(cls, model_class, *args, secret, **kwargs):
        credential = cls._build(model_class, *args, secret=secret, **kwargs)
        credential.save(force_insert=True, using=cls._meta.database)
        return credential


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag

    slug = factory.Sequence(lambda n: f"tag-{n}")
    name = factory.LazyAttribute(lambda tag: tag.slug.replace("-", " ").title())


class InstanceFactory(factory.django.DjangoModelFactory):
    """A MySQL instance on the local MariaDB; pass ``tags=[…]`` to tag it."""

    class Meta:
        model = Instance
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"instance-{n}")
    engine = "mysql"
    host = "127.0.0.1"
    port = 3306
    credential = factory.SubFactory(CredentialFactory)

    @factory.post_generation
    def tags(self, create, extracted, **_kwargs):
        if create and extracted:
            self.tags.add(*extracted)

"""Fixtures of the API tests: a client per user, authenticated by a personal token."""

import pytest
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient

from tests.factories import UserFactory
from whalefall.api.tokens import api_token_create
from whalefall.roles import SCOPED_SUFFIX


@pytest.fixture
def api_client():
    """``api_client(user, write=False)``: a client sending a new token of ``user``;
    ``api_client(None)`` sends nothing."""

    def make(user=None, *, write: bool = False) -> APIClient:
        client = APIClient()
        if user is not None:
            _row, token = api_token_create(user=user, name="test", can_write=write)
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    return make


@pytest.fixture
def scoped_user(user_with_role):
    """``scoped_user("DBAs", instances)``: a member of the scoped variant of the role,
    granted each of ``instances`` with that role's instance permissions."""

    def make(role: str, instances, perms=("view_instance",)):
        user = user_with_role(role + SCOPED_SUFFIX)
        for instance in instances:
            for perm in perms:
                assign_perm(f"inventory.{perm}", user, instance)
        return user

    return make


HIDDEN = "hidden"  # every object of the instance a scoped user must not see carries it


@pytest.fixture
def api_estate(roles):
    """Two instances with everything the API serves — accounts and changes, classifications,
    databases with samples and aggregates, runs — one of them (named "hidden…") outside the
    scoped DBA's instances. Returns the objects and that scoped DBA."""
    import importlib

    from django.apps import apps
    from django.utils import timezone

    from classification.models import Classification
    from classification.services import classification_classify_instance, rule_create
    from tests.accounts.factories import make_account
    from tests.capacity.factories import (
        DatabaseFactory,
        DatabaseSizeAggregateFactory,
        DatabaseSizeSampleFactory,
        InstanceCapacityFactory,
        InstanceSizeAggregateFactory,
        InstanceSizeSampleFactory,
    )
    from tests.classification.conftest import SUPER_OR_ALL
    from tests.inventory.factories import CredentialFactory, InstanceFactory, TagFactory
    from tests.syncjobs.factories import RunFactory, RunItemFactory
    from whalefall.roles import DBAS, INSTANCE_MANAGE

    importlib.import_module("classification.migrations.0002_seed_system_classifications").seed(
        apps, None
    )
    super_ = Classification.objects.get(code="super")
    rule_create(
        classification=super_,
        name="Global SUPER",
        engine="mysql",
        expression=SUPER_OR_ALL,
    )
    objects = {}
    run = RunFactory(started_at=timezone.now())
    for label in ("shown", HIDDEN):
        # Tags are shared by every instance, hence visible to all: no "hidden" in theirs.
        tag = TagFactory(slug=f"tag-{len(objects)}")
        credential = CredentialFactory(name=f"{label}-credential")
        instance = InstanceFactory(name=f"{label}-mysql", credential=credential, tags=[tag])
        root = make_account(
            instance, f"{label}_root", host="%", grants=[("global", "", "SUPER", "GRANT")]
        )
        make_account(
            instance, f"{label}_app", host="10.%", grants=[("database", "shop", "SELECT", "")]
        )
        classification_classify_instance(instance=instance)
        database = DatabaseFactory(instance=instance, name=f"{label}_shop")
        DatabaseSizeSampleFactory(database=database)
        InstanceSizeSampleFactory(instance=instance)
        DatabaseSizeAggregateFactory(database=database)
        InstanceSizeAggregateFactory(instance=instance)
        InstanceCapacityFactory(instance=instance)
        RunItemFactory(run=run, instance=instance)
        objects[label] = {"instance": instance, "account": root, "database": database}
    scoped = UserFactory(username="scoped-dba", roles=[DBAS + SCOPED_SUFFIX])
    for perm in INSTANCE_MANAGE:
        codename = perm if perm in ("test_connection", "sync") else f"{perm}_instance"
        if perm != "add":
            assign_perm(f"inventory.{codename}", scoped, objects["shown"]["instance"])
    objects["scoped_user"] = scoped
    return objects

"""Fixtures of the API tests: a client per user, authenticated by a personal token."""

import pytest
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient

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

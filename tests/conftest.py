"""Fixtures shared by the whole suite."""

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.cache import cache

from syncjobs.services import roles_install
from tests.factories import UserFactory
from tests.fakedb import fake_oracle, fake_sqlserver  # noqa: F401
from whalefall.roles import ROLE_PERMISSIONS


@pytest.fixture(autouse=True, scope="session")
def _credential_key():
    """A throwaway Fernet key for the whole run; no key file is written."""
    settings.WHALEFALL_CREDENTIAL_KEYS = [Fernet.generate_key().decode()]
    return settings.WHALEFALL_CREDENTIAL_KEYS


@pytest.fixture(autouse=True)
def _clear_cache():
    """Rate-limit counters and cached values never leak between tests."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def roles(db):
    """The five role groups with their permissions, as ``bootstrap`` creates them."""
    roles_install()
    return list(ROLE_PERMISSIONS)


@pytest.fixture
def user_with_role(roles):
    """Factory fixture: ``user_with_role("DBAs")`` returns a staff user in that group."""

    def make(role: str | None, **kwargs):
        return UserFactory(roles=[role] if role else [], **kwargs)

    return make


@pytest.fixture
def admin_user(db):
    return UserFactory(username="root", is_superuser=True)

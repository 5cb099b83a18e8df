"""Fixtures shared by the whole suite."""

import socket

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


# The fake SQL Server and Oracle servers answer to names under the reserved .test domain
# (RFC 6761), which no real resolver knows: the outbound guard resolves every name before
# connecting, so the tests' resolver gives these names a documentation address (RFC 5737).
TEST_NAMES = {"mssql.example.test": "192.0.2.14", "oracle.example.test": "192.0.2.15"}


@pytest.fixture(autouse=True)
def _test_names_resolve(monkeypatch):
    system_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        name = host.lower().removesuffix(".") if isinstance(host, str) else host
        if name in TEST_NAMES:
            return system_getaddrinfo(TEST_NAMES[name], port, *args, **kwargs)
        return system_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


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

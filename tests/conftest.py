"""Fixtures shared by the whole suite."""

import secrets
import socket

import psycopg
import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.cache import cache

from syncjobs.services import roles_install
from tests.factories import UserFactory
from tests.fakedb import fake_oracle, fake_sqlserver  # noqa: F401
from whalefall.roles import ROLE_PERMISSIONS

PASSWORD_AUTH_ROLE = "whalefall_password_auth"


@pytest.fixture(autouse=True, scope="session")
def _postgres_password_auth_role():
    """The NOLOGIN role that the tests' PostgreSQL monitoring roles join: where pg_hba.conf
    has a ``+whalefall_password_auth`` line (``.ci/run`` adds it) its members must log in
    with their password. Created here when missing, so that the suite runs on any machine
    with a local PostgreSQL; :func:`postgres_refuses_wrong_passwords` says whether the
    server enforces it."""
    try:
        with psycopg.connect(
            host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True, connect_timeout=3
        ) as conn:
            if not conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", [PASSWORD_AUTH_ROLE]
            ).fetchone():
                conn.execute(f"CREATE ROLE {PASSWORD_AUTH_ROLE} NOLOGIN")
    except psycopg.Error:
        pass  # no local PostgreSQL: the tests that need one fail on their own terms


def postgres_refuses_wrong_passwords() -> bool:
    """Whether the local PostgreSQL makes members of ``whalefall_password_auth`` prove their
    password (a pg_hba.conf rule), rather than trusting local connections."""
    probe = f"wf_probe_{secrets.token_hex(4)}"
    with psycopg.connect(
        host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f"CREATE ROLE {probe} LOGIN PASSWORD 'right' IN ROLE {PASSWORD_AUTH_ROLE}")
        try:
            psycopg.connect(
                host="127.0.0.1",
                user=probe,
                password="wrong",
                dbname="postgres",
            ).close()
        except psycopg.OperationalError:
            return True
        finally:
            conn.execute(f"DROP ROLE {probe}")
        return False


@pytest.fixture
def postgres_password_auth():
    """Skips a test that proves a wrong PostgreSQL password is refused where the server
    trusts local connections (no pg_hba.conf rule for ``+whalefall_password_auth``)."""
    if not postgres_refuses_wrong_passwords():
        pytest.skip(
            "the local PostgreSQL trusts members of whalefall_password_auth; add "
            "'host all +whalefall_password_auth 127.0.0.1/32 scram-sha-256' to pg_hba.conf "
            "(.ci/run does) to run this test"
        )


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

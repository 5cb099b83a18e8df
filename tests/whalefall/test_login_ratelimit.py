"""Admin login throttling per client address and per username (SPEC §9)."""

import pytest
from django.test import override_settings

from tests.factories import PASSWORD, UserFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("_rates"),
]


@pytest.fixture
def _rates():
    # Hour-long windows: a test never straddles a window boundary.
    with override_settings(WHALEFALL_LOGIN_RATE_IP="3/h", WHALEFALL_LOGIN_RATE_USERNAME="2/h"):
        yield


def attempt(client, username, ip, password="wrong"):
    return client.post(
        "/admin/login/", {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def test_one_address_is_limited_after_the_limit(client):
    statuses = [attempt(client, f"name{i}", "203.0.113.5").status_code for i in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert attempt(client, "other", "203.0.113.6").status_code == 200


def test_one_username_is_limited_across_addresses(client):
    statuses = [attempt(client, "Alice", f"203.0.113.{i}").status_code for i in range(3)]
    assert statuses == [200, 200, 429]
    # The same name in other case is the same account.
    assert attempt(client, "alice ", "203.0.113.99").status_code == 429


def test_a_throttled_user_cannot_log_in_even_with_the_right_password(client):
    UserFactory(username="bob")
    attempt(client, "bob", "198.51.100.1")
    attempt(client, "bob", "198.51.100.2")
    response = attempt(client, "bob", "198.51.100.3", password=PASSWORD)
    assert response.status_code == 429
    assert b"Too many login attempts" in response.content
    assert "_auth_user_id" not in client.session


def test_viewing_the_login_page_is_not_counted(client):
    for _ in range(5):
        assert client.get("/admin/login/", REMOTE_ADDR="203.0.113.7").status_code == 200
    assert attempt(client, "carol", "203.0.113.7").status_code == 200


def test_a_successful_login_below_the_limit_works(client):
    UserFactory(username="dave")
    response = attempt(client, "dave", "198.51.100.9", password=PASSWORD)
    assert response.status_code == 302

"""Admin login throttling per client address and per username (SPEC §9)."""

import pytest
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from tests.factories import PASSWORD, UserFactory
from whalefall.middleware import TrustedProxyMiddleware
from whalefall.models import LoginEvent
from whalefall.security import client_ip

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


# --- Only failures count (issue 12, item 6) ------------------------------------------------


def test_seven_correct_logins_in_a_row_never_get_429(client):
    UserFactory(username="frank")
    with override_settings(WHALEFALL_LOGIN_RATE_IP="5/h", WHALEFALL_LOGIN_RATE_USERNAME="5/h"):
        statuses = []
        for _ in range(7):
            statuses.append(
                attempt(client, "frank", "198.51.100.20", password=PASSWORD).status_code
            )
            client.logout()
    assert statuses == [302] * 7


def test_a_success_starts_the_username_count_afresh(client):
    UserFactory(username="gina")
    # Limit 2 per username: one failure, then a success, then two more failures are allowed.
    assert attempt(client, "gina", "198.51.100.30").status_code == 200
    assert attempt(client, "gina", "198.51.100.31", password=PASSWORD).status_code == 302
    client.logout()
    assert attempt(client, "gina", "198.51.100.32").status_code == 200
    assert attempt(client, "gina", "198.51.100.33").status_code == 200
    assert attempt(client, "gina", "198.51.100.34", password=PASSWORD).status_code == 429


def test_a_success_does_not_lift_the_limit_of_its_address(client):
    # One valid account must not let an address keep guessing other people's passwords.
    UserFactory(username="hank")
    ip = "198.51.100.40"
    assert [attempt(client, f"victim{i}", ip).status_code for i in range(3)] == [200] * 3
    assert attempt(client, "hank", ip, password=PASSWORD).status_code == 429


def test_checking_the_limit_counts_nothing(client):
    from whalefall.security import login_is_throttled

    request = RequestFactory().post("/admin/login/", {"username": "ivy"}, REMOTE_ADDR="192.0.2.9")
    assert not any(login_is_throttled(request) for _ in range(50))


# --- The client address (one function for the limiter, logs, login records, audit log) -----


def request_from(peer: str, forwarded: str | None = None):
    extra = {"REMOTE_ADDR": peer}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        # No trusted proxy configured for this peer: the header is the client's own claim.
        ("203.0.113.5", "6.6.6.6", "203.0.113.5"),
        ("203.0.113.5", "6.6.6.6, 10.0.0.2", "203.0.113.5"),
        # Through the trusted proxy: the address it appended, whatever the client claimed.
        ("10.0.0.2", "203.0.113.5", "203.0.113.5"),
        ("10.0.0.2", "6.6.6.6, 203.0.113.5", "203.0.113.5"),
        ("10.0.0.2", "6.6.6.6,203.0.113.5", "203.0.113.5"),
        # Through two trusted proxies: the right-most address that is not one of them.
        ("10.0.0.2", "6.6.6.6, 203.0.113.5, 10.0.0.3", "203.0.113.5"),
        ("10.0.0.2", "2001:db8::5", "2001:db8::5"),
        ("::ffff:10.0.0.2", "203.0.113.5", "203.0.113.5"),
        # A trusted proxy without a header, or only proxies in it: the left-most hop.
        ("10.0.0.2", None, "10.0.0.2"),
        ("10.0.0.2", "", "10.0.0.2"),
        ("10.0.0.2", "10.0.0.3", "10.0.0.3"),
        # Garbage where an address should be: the proxy that passed it on.
        ("10.0.0.2", "203.0.113.5, not-an-ip", "10.0.0.2"),
        ("10.0.0.2", "203.0.113.5:4711", "10.0.0.2"),
        ("10.0.0.2", "203.0.113.5, 10.0.0.3, junk", "10.0.0.2"),
        # No peer address at all (a Unix socket): one shared bucket.
        ("", "203.0.113.5", "0.0.0.0"),  # noqa: S104
    ],
)
@override_settings(WHALEFALL_TRUSTED_PROXIES=["10.0.0.0/24"])
def test_the_client_is_the_right_most_address_that_is_not_a_trusted_proxy(peer, forwarded, client):
    assert client_ip(request_from(peer, forwarded)) == client


def test_without_trusted_proxies_forwarded_for_is_never_believed():
    assert client_ip(request_from("10.0.0.2", "203.0.113.5")) == "10.0.0.2"


def test_a_forged_forwarded_for_cannot_dodge_the_limit(client):
    statuses = [
        client.post(
            "/admin/login/",
            {"username": f"n{i}", "password": "x"},
            REMOTE_ADDR="203.0.113.50",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{i}",
        ).status_code
        for i in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    assert set(LoginEvent.objects.values_list("ip_address", flat=True)) == {"203.0.113.50"}


@override_settings(WHALEFALL_TRUSTED_PROXIES=["10.0.0.0/24"])
def test_behind_a_trusted_proxy_each_client_has_its_own_count(client):
    def through_proxy(i, claimed):
        return client.post(
            "/admin/login/",
            {"username": f"m{i}", "password": "x"},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR=f"{claimed}, 203.0.113.60",
        ).status_code

    # A client that rotates what it claims is still 203.0.113.60 to the limiter.
    assert [through_proxy(i, f"198.51.100.{i}") for i in range(4)] == [200, 200, 200, 429]
    assert set(LoginEvent.objects.values_list("ip_address", flat=True)) == {"203.0.113.60"}


@override_settings(WHALEFALL_TRUSTED_PROXIES=["10.0.0.0/24"])
def test_logs_login_records_and_audit_log_carry_the_same_client_address(client, caplog):
    from auditlog.models import LogEntry

    from tests.inventory.factories import InstanceFactory

    user = UserFactory(username="jane", is_superuser=True)
    instance = InstanceFactory()
    proxy = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.70"}
    client.post("/admin/login/", {"username": "jane", "password": PASSWORD}, **proxy)
    client.post(
        f"/admin/inventory/instance/{instance.pk}/change/",
        {
            "name": instance.name,
            "engine": "mysql",
            "host": "10.0.0.9",
            "port": 3306,
            "tls_mode": "preferred",
        },
        **proxy,
    )
    assert LoginEvent.objects.get(user=user).ip_address == "203.0.113.70"
    assert LogEntry.objects.get_for_object(instance).latest("timestamp").remote_addr == (
        "203.0.113.70"
    )
    finished = [
        r.msg for r in caplog.records if getattr(r, "msg", None) and isinstance(r.msg, dict)
    ]
    assert {m.get("client_ip") for m in finished if m.get("event") == "request_finished"} == {
        "203.0.113.70"
    }


@pytest.mark.parametrize(
    ("peer", "trusted"),
    [("203.0.113.5", False), ("10.0.0.2", True)],
)
def test_forwarded_headers_count_only_from_a_trusted_proxy(peer, trusted):
    seen = {}

    def view(request):
        seen["secure"] = request.is_secure()
        seen["headers"] = {k for k in request.META if k.startswith("HTTP_X_FORWARDED")}
        return HttpResponse()

    request = RequestFactory().get(
        "/",
        REMOTE_ADDR=peer,
        HTTP_X_FORWARDED_PROTO="https",
        HTTP_X_FORWARDED_HOST="evil.example",
        HTTP_X_FORWARDED_FOR="6.6.6.6",
    )
    with override_settings(
        WHALEFALL_TRUSTED_PROXIES=["10.0.0.0/24"],
        SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
    ):
        TrustedProxyMiddleware(view)(request)
    assert seen["secure"] is trusted
    assert bool(seen["headers"]) is trusted

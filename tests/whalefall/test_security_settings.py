"""Security settings per DJANGO_ENV (issue 12, items 5, 6 and 8), each in a fresh interpreter."""

import ipaddress
import json

import pytest
from django.test import RequestFactory, override_settings
from hypothesis import given
from hypothesis import strategies as st

from tests.whalefall.test_settings import import_settings, production_env, run
from whalefall.security import client_ip

PROBE = """
import json, django
django.setup()
from django.conf import settings
print(json.dumps({
    "allow_loopback": settings.WHALEFALL_ALLOW_LOOPBACK,
    "proxy_ssl_header": bool(getattr(settings, "SECURE_PROXY_SSL_HEADER", None)),
    "csp": settings.CONTENT_SECURITY_POLICY["DIRECTIVES"],
    "middleware": settings.MIDDLEWARE[:4],
}))
"""


def probe(env: dict[str, str]) -> dict:
    result = run(["-c", PROBE], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_refuses_loopback_instances_and_upgrades_requests():
    values = probe(production_env())
    assert values["allow_loopback"] is False
    assert values["proxy_ssl_header"] is False  # no proxy configured, no header believed
    assert values["csp"]["upgrade-insecure-requests"] is True
    assert values["middleware"][0] == "whalefall.middleware.TrustedProxyMiddleware"


def test_development_allows_the_local_servers(tmp_path):
    env = production_env(DJANGO_ENV="development", DATABASE_URL=None, REDIS_URL=None)
    env["WHALEFALL_CREDENTIAL_KEY_FILE"] = str(tmp_path / "key")
    assert probe(env)["allow_loopback"] is True


def test_a_trusted_proxy_turns_on_the_forwarded_https_header():
    assert probe(production_env(WHALEFALL_TRUSTED_PROXIES="172.18.0.0/16"))["proxy_ssl_header"]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "WHALEFALL_ALLOWED_TARGETS",
            "10.0.0.0/8,db.example.com:5432",
            "WHALEFALL_ALLOWED_TARGETS: 'db.example.com:5432' is neither a CIDR",
        ),
        (
            "WHALEFALL_TRUSTED_PROXIES",
            "10.0.0.1,proxy.example.com",
            "WHALEFALL_TRUSTED_PROXIES: 'proxy.example.com' is not an address or CIDR",
        ),
    ],
)
def test_a_malformed_rule_stops_the_start_naming_it(name, value, message):
    result = import_settings(production_env(**{name: value}))
    assert result.returncode != 0
    assert message in result.stderr


# --- The client address, for any X-Forwarded-For -------------------------------------------

PROXIES = ipaddress.ip_network("10.0.0.0/24")
hops = st.ip_addresses().map(str) | st.sampled_from(["10.0.0.3", "10.0.0.4"]) | st.text(max_size=20)


def canonical(text: str) -> str | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    return str(getattr(address, "ipv4_mapped", None) or address)


@given(
    peer=st.sampled_from(["10.0.0.2", "203.0.113.9"]),
    forwarded=st.lists(hops, max_size=6).map(", ".join) | st.text(max_size=80),
)
@override_settings(WHALEFALL_TRUSTED_PROXIES=[str(PROXIES)])
def test_the_client_never_is_an_address_the_client_chose(peer, forwarded):
    request = RequestFactory().get("/", REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=forwarded)
    client = client_ip(request)
    if peer == "203.0.113.9":
        assert client == peer  # not a trusted proxy: its header means nothing
        return
    entries = [canonical(entry) for entry in forwarded.split(",")]
    assert client == peer or client in entries
    # Right of the right-most untrusted address only proxies appended; left of it is the
    # client's own claim, which must never be taken.
    untrusted = [i for i, e in enumerate(entries) if e and ipaddress.ip_address(e) not in PROXIES]
    if untrusted and None not in entries[untrusted[-1] :]:
        assert client == entries[untrusted[-1]]

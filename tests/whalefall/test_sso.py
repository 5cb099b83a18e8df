"""Single sign-on through OpenID Connect against a fake identity provider: the provider's
token, key set and user info endpoints are answered in-process (no network), with ID tokens
signed by a key of the test's own."""

import base64
import hashlib
import io
import json
import logging
import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.models import Group
from django.test import override_settings
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from hypothesis import given
from hypothesis import strategies as st

from tests.factories import UserFactory
from whalefall import mfa
from whalefall.logging import build_formatter
from whalefall.models import SingleSignOnIdentity
from whalefall.settings import _oidc_group_map

pytestmark = pytest.mark.django_db

ISSUER = "https://id.example.test/realms/corp"
TOKEN = f"{ISSUER}/token"
USERINFO = f"{ISSUER}/userinfo"
JWKS = f"{ISSUER}/certs"
CLIENT_ID = "whalefall"
OIDC_SETTINGS = {
    "WHALEFALL_OIDC_ENABLED": True,
    "WHALEFALL_OIDC_ISSUER": ISSUER,
    "WHALEFALL_OIDC_PROVIDER_NAME": "Corp ID",
    "WHALEFALL_OIDC_GROUP_MAP": {
        "dba-team": ("DBAs",),
        "secops": ("Auditors",),
        "platform": ("DBAs", "Schedulers"),
    },
    "OIDC_OP_AUTHORIZATION_ENDPOINT": f"{ISSUER}/auth",
    "OIDC_OP_TOKEN_ENDPOINT": TOKEN,
    "OIDC_OP_USER_ENDPOINT": USERINFO,
    "OIDC_OP_JWKS_ENDPOINT": JWKS,
    "OIDC_RP_CLIENT_ID": CLIENT_ID,
    "OIDC_RP_CLIENT_SECRET": "client-secret-for-tests",  # pragma: allowlist secret
    "OIDC_RP_SIGN_ALGO": "RS256",
    "AUTHENTICATION_BACKENDS": [
        "django.contrib.auth.backends.ModelBackend",
        "guardian.backends.ObjectPermissionBackend",
        "whalefall.sso.OIDCBackend",
    ],
}


# Generated once: RSA key generation is the slow part of every test here.
PROVIDER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _response(url: str, body, content_type="application/json", status=200) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.url = url
    response.headers["Content-Type"] = content_type
    response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return response


class FakeProvider:
    """The identity provider's back channel, answering mozilla-django-oidc's requests."""

    def __init__(self):
        self.key = PROVIDER_KEY
        self.kid = "test-key"
        self.code = "authorization-code-f00d"
        self.access_token = "access-token-c0ffee"
        self.claims: dict = {}
        self.token_claims: dict = {}
        self.userinfo_extra: dict = {}
        self.signing_key = self.key
        self.challenge = ""
        self.nonce = ""
        self.calls: list[str] = []
        self.issued_id_tokens: list[str] = []
        self.down = False

    def id_token(self) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": CLIENT_ID,
            "sub": self.claims["sub"],
            "iat": now,
            "exp": now + 300,
            "nonce": self.nonce,
            **self.token_claims,
        }
        token = jwt.encode(
            {k: v for k, v in claims.items() if v is not None},
            self.signing_key,
            algorithm="RS256",
            headers={"kid": self.kid},
        )
        self.issued_id_tokens.append(token)
        return token

    def post(self, url, data=None, auth=None, timeout=None, **_kwargs):
        assert timeout, "every call to the provider has a timeout"
        self.calls.append(url)
        if self.down:
            raise requests.ConnectionError("provider unreachable")
        assert url == TOKEN
        if data["code"] != self.code:
            return _response(url, {"error": "invalid_grant"}, status=400)
        verifier = data["code_verifier"].encode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
        assert challenge.decode() == self.challenge, "PKCE verifier matches the challenge"
        return _response(
            url,
            {
                "id_token": self.id_token(),
                "access_token": self.access_token,
                "token_type": "Bearer",
            },
        )

    def get(self, url, headers=None, timeout=None, **_kwargs):
        assert timeout, "every call to the provider has a timeout"
        self.calls.append(url)
        if url == JWKS:
            public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
            return _response(url, {"keys": [{**public, "kid": self.kid, "alg": "RS256"}]})
        assert url == USERINFO
        assert headers["Authorization"] == f"Bearer {self.access_token}"
        return _response(url, {**self.claims, **self.userinfo_extra})


@pytest.fixture
def provider(monkeypatch, roles):
    fake = FakeProvider()
    monkeypatch.setattr("mozilla_django_oidc.auth.requests.post", fake.post)
    monkeypatch.setattr("mozilla_django_oidc.auth.requests.get", fake.get)
    with override_settings(**OIDC_SETTINGS):
        yield fake


def start(client, provider, next_url="/admin/"):
    """Press the button: WhaleFall sends the browser to the provider."""
    response = client.get(f"/admin/sso/start/?next={next_url}")
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{ISSUER}/auth"
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["client_id"] == CLIENT_ID
    assert query["code_challenge_method"] == "S256"
    assert "openid" in query["scope"].split()
    provider.challenge = query["code_challenge"]
    provider.nonce = query["nonce"]
    return query["state"]


def sign_in(client, provider, *, sub="u-1", groups=("dba-team",), next_url="/admin/", **claims):
    """The whole round trip: start, the provider's redirect back with a code, the callback."""
    provider.claims = {
        "sub": sub,
        "preferred_username": claims.pop("preferred_username", "jdoe"),
        "email": "jdoe@corp.example.test",
        "given_name": "Jane",
        "family_name": "Doe",
        **({"groups": groups} if groups is not None else {}),
        **claims,
    }
    state = start(client, provider, next_url)
    return client.get(f"/admin/sso/callback/?code={provider.code}&state={state}")


def signed_in(client) -> bool:
    return SESSION_KEY in client.session


def role_names(user) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


# --- The button -----------------------------------------------------------------------------


def test_without_configuration_there_is_no_button_and_no_route(client):
    page = client.get("/admin/login/").content.decode()
    assert "/admin/sso/start/" not in page
    assert client.get("/admin/sso/start/").status_code == 404
    assert client.get("/admin/sso/callback/?code=x&state=y").status_code == 404


def test_the_login_page_offers_the_provider_as_a_plain_link(client, provider):
    page = client.get("/admin/login/?next=/admin/inventory/instance/").content.decode()
    assert "Sign in with Corp ID" in page
    assert 'href="/admin/sso/start/?next=/admin/inventory/instance/"' in page
    assert "onclick" not in page


# --- Signing in and the group map ---------------------------------------------------------


def test_a_mapped_directory_user_is_created_and_signed_in(client, provider):
    response = sign_in(client, provider, next_url="/admin/inventory/instance/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/inventory/instance/"
    assert signed_in(client)
    user = get_user_model().objects.get(username="jdoe")
    assert user.is_staff
    assert not user.is_superuser
    assert not user.has_usable_password()
    assert (user.email, user.first_name, user.last_name) == (
        "jdoe@corp.example.test",
        "Jane",
        "Doe",
    )
    assert role_names(user) == {"DBAs"}
    assert SingleSignOnIdentity.objects.get(user=user).subject == "u-1"
    assert client.get("/admin/inventory/instance/").status_code == 200
    # Nothing of the tokens is kept in the session.
    assert not [key for key, _value in client.session.items() if "token" in key]


def test_the_map_is_applied_again_at_every_sign_in(client, provider):
    sign_in(client, provider, groups=["dba-team", "unrelated"])
    user = get_user_model().objects.get(username="jdoe")
    custom = Group.objects.create(name="Night shift")  # not managed by the map: kept
    user.groups.add(custom)
    client.logout()

    sign_in(client, provider, groups=["secops"])
    assert role_names(user) == {"Auditors", "Night shift"}
    client.logout()

    sign_in(client, provider, groups=["platform", "secops"])
    assert role_names(user) == {"DBAs", "Schedulers", "Auditors", "Night shift"}


def test_a_role_added_by_hand_is_removed_at_the_next_sign_in(client, provider):
    sign_in(client, provider, groups=["secops"])
    user = get_user_model().objects.get(username="jdoe")
    user.groups.add(Group.objects.get(name="Administrators"))
    client.logout()
    sign_in(client, provider, groups=["secops"])
    assert role_names(user) == {"Auditors"}


def test_an_unmapped_directory_user_gets_no_account_and_no_access(client, provider):
    response = sign_in(client, provider, sub="u-2", preferred_username="guest", groups=["sales"])
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/"
    assert not signed_in(client)
    assert not get_user_model().objects.filter(username="guest").exists()
    page = client.get("/admin/login/").content.decode()
    assert "no WhaleFall role" in page


def test_a_user_removed_from_the_directory_groups_loses_roles_and_staff(client, provider):
    sign_in(client, provider, groups=["dba-team"])
    user = get_user_model().objects.get(username="jdoe")
    other_browser = client.__class__()
    other_browser.force_login(user, backend="whalefall.sso.OIDCBackend")
    assert other_browser.get("/admin/").status_code == 200
    client.logout()

    response = sign_in(client, provider, groups=[])
    assert response["Location"] == "/admin/login/"
    assert not signed_in(client)
    user.refresh_from_db()
    assert not user.is_staff
    assert role_names(user) == set()
    # The session that was open elsewhere has no admin left either.
    assert other_browser.get("/admin/").status_code == 302


def test_groups_from_the_id_token_count_too(client, provider):
    provider.token_claims = {"groups": ["secops"]}
    sign_in(client, provider, groups=None)
    assert signed_in(client)
    assert role_names(get_user_model().objects.get(username="jdoe")) == {"Auditors"}


def test_the_user_info_has_the_last_word_on_groups(client, provider):
    provider.token_claims = {"groups": ["secops"]}
    sign_in(client, provider, groups=[])
    assert not signed_in(client)


def test_a_deactivated_user_cannot_sign_in_and_its_sessions_end(client, provider):
    sign_in(client, provider)
    user = get_user_model().objects.get(username="jdoe")
    user.is_active = False
    user.save()
    assert client.get("/admin/").status_code == 302
    client.logout()
    sign_in(client, provider)
    assert not signed_in(client)


# --- Hostile provider answers and hostile directory accounts ------------------------------


def test_a_local_account_is_never_taken_over_by_name(client, provider, admin_user):
    response = sign_in(client, provider, sub="evil", preferred_username="ROOT")
    assert response["Location"] == "/admin/login/"
    assert not signed_in(client)
    assert not SingleSignOnIdentity.objects.exists()
    admin_user.refresh_from_db()
    assert admin_user.is_superuser
    assert role_names(admin_user) == set()


def test_a_local_account_is_never_taken_over_by_email(client, provider):
    local = UserFactory(username="localadmin", email="boss@corp.example.test", is_superuser=True)
    sign_in(client, provider, sub="evil2", preferred_username="newname", email=local.email)
    user = get_user_model().objects.get(pk=client.session[SESSION_KEY])
    assert user.username == "newname"
    assert user.pk != local.pk
    assert not user.is_superuser


def test_the_same_subject_is_the_same_user_even_under_a_new_name(client, provider):
    sign_in(client, provider, sub="u-7", preferred_username="first")
    client.logout()
    sign_in(client, provider, sub="u-7", preferred_username="renamed")
    assert get_user_model().objects.filter(username__in=["first", "renamed"]).count() == 1


@pytest.mark.parametrize(
    "token_claims",
    [
        {"aud": "another-client"},
        {"iss": "https://evil.example.test"},
        {"exp": int(time.time()) - 3600},
        {"exp": None},
        {"nonce": "replayed-nonce"},
    ],
    ids=["audience", "issuer", "expired", "no-expiry", "nonce"],
)
def test_an_id_token_with_wrong_claims_is_refused(client, provider, token_claims):
    provider.token_claims = token_claims
    response = sign_in(client, provider)
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/"
    assert not signed_in(client)
    assert not get_user_model().objects.filter(username="jdoe").exists()


def test_an_id_token_signed_by_another_key_is_refused(client, provider):
    provider.signing_key = OTHER_KEY
    sign_in(client, provider)
    assert not signed_in(client)


def test_an_unsigned_id_token_is_refused(client, provider, monkeypatch):
    def unsigned() -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": CLIENT_ID, "sub": "u-1", "exp": now + 60}
        return jwt.encode({**claims, "nonce": provider.nonce}, None, algorithm="none")

    monkeypatch.setattr(provider, "id_token", unsigned)
    sign_in(client, provider)
    assert not signed_in(client)


def test_user_info_about_another_subject_is_refused(client, provider):
    provider.userinfo_extra = {"sub": "someone-else"}
    sign_in(client, provider)
    assert not signed_in(client)


@pytest.mark.parametrize("username", ["", "a b", "x" * 151, "<script>", None, 42, ["jdoe"]])
def test_an_unusable_username_claim_is_refused(client, provider, username):
    sign_in(client, provider, preferred_username=username)
    assert not signed_in(client)
    assert not SingleSignOnIdentity.objects.exists()


@pytest.mark.parametrize("groups", ["dba-team", ["dba-team", 7, None, {"x": 1}, ["secops"]]])
def test_odd_group_claims_are_read_safely(client, provider, groups):
    sign_in(client, provider, groups=groups)
    assert signed_in(client)
    assert role_names(get_user_model().objects.get(username="jdoe")) == {"DBAs"}


@pytest.mark.parametrize("groups", [{"dba-team": True}, 1, "", "DBAs"])
def test_group_claims_that_name_no_mapped_group_give_nothing(client, provider, groups):
    sign_in(client, provider, groups=groups)
    assert not signed_in(client)


def test_a_replayed_callback_is_refused(client, provider):
    sign_in(client, provider)
    client.logout()
    state = start(client, provider)
    client.get(f"/admin/sso/callback/?code={provider.code}&state={state}")
    client.logout()
    response = client.get(f"/admin/sso/callback/?code={provider.code}&state={state}")
    assert response.status_code in (302, 400)
    assert not signed_in(client)


def test_a_callback_without_a_started_sign_in_is_refused(client, provider):
    response = client.get(f"/admin/sso/callback/?code={provider.code}&state=forged")
    assert response.status_code in (302, 400)
    assert not signed_in(client)
    assert provider.calls == []


def test_a_provider_error_returns_to_the_login_page(client, provider):
    state = start(client, provider)
    response = client.get(f"/admin/sso/callback/?error=access_denied&state={state}")
    assert response["Location"] == "/admin/login/"
    assert not signed_in(client)


def test_an_unreachable_provider_is_a_message_not_a_500(client, provider):
    provider.down = True
    response = sign_in(client, provider)
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/"
    assert not signed_in(client)


def test_a_wrong_code_is_refused(client, provider):
    provider.claims = {"sub": "u-1", "preferred_username": "jdoe", "groups": ["dba-team"]}
    state = start(client, provider)
    response = client.get(f"/admin/sso/callback/?code=guessed&state={state}")
    assert response["Location"] == "/admin/login/"
    assert not signed_in(client)


# --- Second factor --------------------------------------------------------------------------


def _code(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():06d}"


def test_directory_users_follow_the_two_factor_rules_by_default(client, provider):
    sign_in(client, provider)
    user = get_user_model().objects.get(username="jdoe")
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client.logout()
    response = sign_in(client, provider)
    assert response["Location"] == "/admin/two-factor/verify/"
    assert not signed_in(client)
    client.post("/admin/two-factor/verify/", {"code": _code(device)})
    assert signed_in(client)
    assert client.session["_auth_user_backend"] == "whalefall.sso.OIDCBackend"
    assert client.get("/admin/").status_code == 200


def test_directory_users_enrol_when_their_role_requires_it(client, provider):
    with override_settings(WHALEFALL_MFA_REQUIRED_GROUPS=["DBAs"]):
        response = sign_in(client, provider)
    assert response["Location"] == "/admin/two-factor/set-up/"
    assert not signed_in(client)


def test_the_provider_can_be_trusted_with_the_second_factor(client, provider):
    sign_in(client, provider)
    user = get_user_model().objects.get(username="jdoe")
    TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client.logout()
    with override_settings(WHALEFALL_OIDC_SKIP_MFA=True, WHALEFALL_MFA_REQUIRED_GROUPS=["DBAs"]):
        response = sign_in(client, provider)
        assert response["Location"] == "/admin/"
        assert signed_in(client)
        assert client.get("/admin/").status_code == 200
    # The same account's password sign-in still owes the code: the trust is per backend.
    assert mfa.second_factor_step(user, backend="django.contrib.auth.backends.ModelBackend")


# --- Tokens never reach the logs ------------------------------------------------------------


@pytest.fixture
def log_output():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(build_formatter(use_json=True))
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


def test_no_token_or_code_is_logged(client, provider, log_output, caplog):
    caplog.set_level(logging.DEBUG)
    sign_in(client, provider)
    client.logout()
    provider.token_claims = {"aud": "another-client"}
    sign_in(client, provider)
    # A replay of an old callback URL: Django logs the refused request, URL included.
    client.get(f"/admin/sso/callback/?code={provider.code}&state=forged")
    output = log_output.getvalue()
    assert provider.issued_id_tokens
    secrets = [provider.code, provider.access_token, *provider.issued_id_tokens]
    for secret in secrets:
        assert secret not in output
    for secret in [provider.access_token, *provider.issued_id_tokens]:
        assert secret not in caplog.text


@pytest.mark.parametrize(
    ("text", "kept", "masked"),
    [
        ("GET '/admin/sso/callback/?code=abc123&state=xyz'", "state=xyz", "abc123"),
        ("/cb?state=s1&code=abc123", "state=s1", "abc123"),
        ("https://id.example.test/t?access_token=tok987&x=1", "x=1", "tok987"),
        ("/cb?id_token=eyJhbGciOi.eyJzdWIi.sig", "/cb?id_token=", "eyJhbGciOi"),
        ("/x?code_verifier=v3r1f&next=/admin/", "next=/admin/", "v3r1f"),
    ],
)
def test_urls_in_logs_lose_their_codes_and_tokens(text, kept, masked):
    from whalefall.logging import redact

    for value in (text, {"request": text}):
        rendered = json.dumps(redact(value))
        assert kept in rendered
        assert masked not in rendered


def test_objects_in_logs_are_masked_by_their_text():
    from django.test import RequestFactory

    from whalefall.logging import redact

    request = RequestFactory().get("/admin/sso/callback/", {"code": "abc123", "state": "s"})
    assert "abc123" not in redact({"request": request})["request"]
    assert redact({"n": 3, "ok": True, "none": None}) == {"n": 3, "ok": True, "none": None}


# --- Settings -------------------------------------------------------------------------------


@given(st.text(max_size=200))
def test_the_group_map_parser_never_fails(raw):
    mapping, problems = _oidc_group_map(raw)
    assert all(isinstance(k, str) and k for k in mapping)
    assert all(v and all(isinstance(g, str) and g for g in v) for v in mapping.values())
    assert all(isinstance(p, str) for p in problems)


_NAME = st.text(
    alphabet=st.characters(blacklist_characters=",;=", blacklist_categories=["Cs", "Zs", "Cc"]),
    min_size=1,
    max_size=20,
)


@given(st.lists(st.tuples(_NAME, _NAME), max_size=10))
def test_the_group_map_parser_reads_what_was_written(pairs):
    mapping, problems = _oidc_group_map(",".join(f"{d}={r}" for d, r in pairs))
    assert problems == []
    expected: dict[str, tuple[str, ...]] = {}
    for directory_group, role in pairs:
        d, r = directory_group.strip(), role.strip()
        if d and r and r not in expected.get(d, ()):
            expected[d] = (*expected.get(d, ()), r)
    assert mapping == expected


def test_ldap_style_group_names_use_semicolons():
    mapping, problems = _oidc_group_map(
        "cn=dba,ou=groups,dc=corp=DBAs; cn=audit,ou=groups,dc=corp=Auditors"
    )
    assert problems == []
    assert mapping == {
        "cn=dba,ou=groups,dc=corp": ("DBAs",),
        "cn=audit,ou=groups,dc=corp": ("Auditors",),
    }


@pytest.mark.parametrize("raw", ["dba-team", "=DBAs", "dba-team=", "a=b,,c"])
def test_malformed_group_map_entries_are_reported(raw):
    assert _oidc_group_map(raw)[1]


# --- Production refuses a partial configuration ---------------------------------------------

FULL_OIDC = {
    "WHALEFALL_OIDC_ISSUER": ISSUER,
    "WHALEFALL_OIDC_CLIENT_ID": CLIENT_ID,
    "WHALEFALL_OIDC_CLIENT_SECRET": "s3cret-for-tests",  # pragma: allowlist secret
    "WHALEFALL_OIDC_AUTHORIZATION_ENDPOINT": f"{ISSUER}/auth",
    "WHALEFALL_OIDC_TOKEN_ENDPOINT": TOKEN,
    "WHALEFALL_OIDC_USERINFO_ENDPOINT": USERINFO,
    "WHALEFALL_OIDC_JWKS_ENDPOINT": JWKS,
}


def _settings_of(env: dict[str, str], *names: str):
    from tests.whalefall.test_settings import production_env, run

    script = "import json, whalefall.settings as s; print(json.dumps([getattr(s, n) for n in %r]))"
    return run(["-c", script % (list(names),)], production_env(**env))


def test_production_starts_with_single_sign_on_configured():
    result = _settings_of(
        {**FULL_OIDC, "WHALEFALL_OIDC_GROUP_MAP": "dba-team=DBAs,secops=Auditors"},
        "WHALEFALL_OIDC_ENABLED",
        "AUTHENTICATION_BACKENDS",
        "WHALEFALL_OIDC_GROUP_MAP",
        "WHALEFALL_MFA_REQUIRED_GROUPS",
        "OIDC_RP_SCOPES",
    )
    assert result.returncode == 0, result.stderr
    enabled, backends, group_map, required, scopes = json.loads(result.stdout.splitlines()[-1])
    assert enabled
    assert "whalefall.sso.OIDCBackend" in backends
    assert group_map == {"dba-team": ["DBAs"], "secops": ["Auditors"]}
    assert required == ["Administrators"]
    assert scopes == "openid email profile"


def test_production_starts_without_single_sign_on():
    result = _settings_of({}, "WHALEFALL_OIDC_ENABLED", "AUTHENTICATION_BACKENDS")
    assert result.returncode == 0, result.stderr
    enabled, backends = json.loads(result.stdout.splitlines()[-1])
    assert not enabled
    assert "whalefall.sso.OIDCBackend" not in backends


@pytest.mark.parametrize("missing", sorted(FULL_OIDC))
def test_production_refuses_a_partial_single_sign_on_configuration(missing):
    env = {name: value for name, value in FULL_OIDC.items() if name != missing}
    result = _settings_of(env, "WHALEFALL_OIDC_ENABLED")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"{missing} is required when single sign-on is configured" in result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"WHALEFALL_OIDC_TOKEN_ENDPOINT": "http://id.example.test/token"},
            "WHALEFALL_OIDC_TOKEN_ENDPOINT must be an https:// URL",
        ),
        ({"WHALEFALL_OIDC_SIGN_ALGO": "none"}, "WHALEFALL_OIDC_SIGN_ALGO must be one of"),
        ({"WHALEFALL_OIDC_SIGN_ALGO": "HS256"}, "WHALEFALL_OIDC_SIGN_ALGO must be one of"),
        ({"WHALEFALL_OIDC_GROUP_MAP": "dba-team"}, "WHALEFALL_OIDC_GROUP_MAP: entry #1"),
    ],
)
def test_production_refuses_an_unsafe_single_sign_on_configuration(env, message):
    result = _settings_of({**FULL_OIDC, **env}, "WHALEFALL_OIDC_ENABLED")
    assert result.returncode != 0
    assert message in result.stderr


def test_required_groups_are_configurable_and_empty_outside_production():
    result = _settings_of(
        {"WHALEFALL_MFA_REQUIRED_GROUPS": "Administrators, DBAs,"}, "WHALEFALL_MFA_REQUIRED_GROUPS"
    )
    assert json.loads(result.stdout.splitlines()[-1]) == [["Administrators", "DBAs"]]
    from django.conf import settings

    assert settings.WHALEFALL_MFA_REQUIRED_GROUPS == []  # the test settings

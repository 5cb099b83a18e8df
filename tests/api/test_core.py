"""The API's common ground: tokens, the error envelope, rate limits, the schema and docs."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from whalefall.api.throttling import TokenRateThrottle
from whalefall.api.tokens import api_token_create, api_token_revoke, token_digest
from whalefall.models import ApiToken

pytestmark = pytest.mark.django_db


def _error(response):
    body = response.json()
    assert set(body) == {"error"}, body
    assert response["X-Request-ID"] == body["error"]["request_id"]
    return body["error"]


def test_anonymous_gets_401_in_the_envelope():
    response = APIClient().get("/api/v1/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert _error(response)["code"] == "not_authenticated"


def test_the_schema_and_docs_need_a_sign_in(api_client, user_with_role, roles):
    assert APIClient().get("/api/v1/schema/").status_code == 401
    client = api_client(user_with_role("Viewers"))
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert schema.json()["openapi"].startswith("3.1")
    assert client.get("/api/v1/docs/").status_code == 200


def test_a_token_is_stored_as_a_digest_only(admin_user):
    row, token = api_token_create(user=admin_user, name="cmdb")
    stored = ApiToken.objects.get(pk=row.pk)
    assert stored.digest == token_digest(token)
    assert token not in stored.digest
    assert token.startswith(stored.prefix)
    assert len(stored.prefix) < len(token) // 3


@pytest.mark.parametrize(
    "spoil",
    [
        lambda row: ApiToken.objects.filter(pk=row.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        ),
        lambda row: api_token_revoke(tokens=ApiToken.objects.filter(pk=row.pk)),
        lambda row: type(row.user).objects.filter(pk=row.user_id).update(is_active=False),
    ],
    ids=["expired", "revoked", "owner deactivated"],
)
def test_expired_revoked_or_orphaned_tokens_are_refused(admin_user, spoil):
    row, token = api_token_create(user=admin_user, name="cmdb")
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/api/v1/").status_code == 200
    spoil(row)
    response = client.get("/api/v1/")
    assert response.status_code == 401
    assert _error(response)["code"] == "authentication_failed"


def test_a_wrong_token_is_refused_without_saying_why(admin_user):
    api_token_create(user=admin_user, name="cmdb")
    for header in ("Bearer wf_not-a-token", "Bearer", "Bearer a b"):
        response = APIClient(HTTP_AUTHORIZATION=header).get("/api/v1/")
        assert response.status_code == 401, header


def test_use_is_recorded_once_a_minute(admin_user):
    row, token = api_token_create(user=admin_user, name="cmdb")
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {token}", REMOTE_ADDR="192.0.2.7")
    client.get("/api/v1/")
    row.refresh_from_db()
    first = row.last_used_at
    assert first is not None
    assert row.last_used_ip == "192.0.2.7"
    client.get("/api/v1/")
    row.refresh_from_db()
    assert row.last_used_at == first


def test_unknown_addresses_answer_in_the_envelope(api_client, admin_user):
    response = api_client(admin_user).get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert _error(response)["code"] == "not_found"


def test_an_upstream_request_id_is_the_envelopes(api_client):
    response = api_client(None).get("/api/v1/", HTTP_X_REQUEST_ID="trace-42")
    assert _error(response)["request_id"] == "trace-42"


def test_over_the_rate_a_token_gets_429_with_retry_after(admin_user, monkeypatch):
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"token": "3/min"})
    _row, token = api_token_create(user=admin_user, name="busy")
    _row2, other = api_token_create(user=admin_user, name="quiet")
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {token}")
    statuses = [client.get("/api/v1/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = client.get("/api/v1/")
    assert _error(response)["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 60
    # The limit is per token.
    assert APIClient(HTTP_AUTHORIZATION=f"Bearer {other}").get("/api/v1/").status_code == 200


def test_a_post_to_an_unknown_address_answers_in_the_envelope(admin_user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = client.post("/api/v1/no-such-thing/", {})
    assert response.status_code == 404
    assert _error(response)["code"] == "not_found"


def test_an_address_without_its_trailing_slash_is_named_in_the_404(api_client, admin_user):
    client = api_client(admin_user)
    assert client.get("/api/v1/tags/").status_code == 200
    response = client.get("/api/v1/tags")
    assert response.status_code == 404
    assert "/api/v1/tags/" in _error(response)["message"]
    assert "slash" not in _error(client.get("/api/v1/nothing"))["message"]


def test_errors_of_list_items_have_indexed_paths():
    from rest_framework.exceptions import ErrorDetail

    from whalefall.api.errors import _flatten

    detail = {
        "tags": {1: [ErrorDetail("No such tag.", code="does_not_exist")]},
        "expression": {"args": [{}, {"scope": [ErrorDetail("Bad scope.", code="invalid")]}]},
        "non_field_errors": [ErrorDetail("Both at once.", code="invalid")],
    }
    assert _flatten(detail) == [
        {"path": "tags[1]", "code": "does_not_exist", "message": "No such tag."},
        {"path": "expression.args[1].scope", "code": "invalid", "message": "Bad scope."},
        {"path": "", "code": "invalid", "message": "Both at once."},
    ]

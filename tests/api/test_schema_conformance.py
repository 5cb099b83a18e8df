"""Schemathesis against the live OpenAPI schema, as an administrator and as a DBA scoped to
one instance: no 5xx, every response as the schema describes it, and nothing of the
instance the scoped user may not see."""

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import HIDDEN
from tests.factories import UserFactory
from whalefall.api.tokens import api_token_create

EXAMPLES = 12


@pytest.fixture
def wsgi_app():
    """Django's WSGI application, kept on the test's connection and transaction (as the test
    client does): requests must not close the connection when they end."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(api_estate, wsgi_app):
    admin = UserFactory(username="schema-admin", is_superuser=True)
    _row, token = api_token_create(user=admin, name="schema")
    return schemathesis.openapi.from_wsgi(
        "/api/v1/schema/?format=json",
        wsgi_app,
        headers={"Authorization": f"Bearer {token}"},
    )


def _persona(user, api_estate) -> dict:
    _row, token = api_token_create(user=user, name="conformance", can_write=True)
    hidden = api_estate[HIDDEN]
    return {
        "headers": {"Authorization": f"Bearer {token}"},
        "hidden_ids": {"instance": hidden["instance"].pk, "account": hidden["account"].pk},
    }


@pytest.fixture
def administrator(api_estate):
    return _persona(UserFactory(username="api-admin", is_superuser=True), api_estate)


@pytest.fixture
def scoped_dba(api_estate):
    return _persona(api_estate["scoped_user"], api_estate)


def _leaks(value, hidden_ids, key=None) -> str | None:
    """Where ``value`` (a JSON document) shows something of the hidden instance."""
    if isinstance(value, dict):
        for name, item in value.items():
            if found := _leaks(item, hidden_ids, name):
                return f"{name}: {found}"
        return None
    if isinstance(value, list):
        for item in value:
            if found := _leaks(item, hidden_ids, key):
                return found
        return None
    if isinstance(value, str) and HIDDEN in value.lower():
        return repr(value)
    if key in ("instance", "instance_id") and value == hidden_ids["instance"]:
        return f"instance id {value}"
    return None


def _call_and_check(case, persona, *, scoped: bool) -> None:
    response = case.call(headers=persona["headers"])
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
        headers=persona["headers"],
    )
    if scoped and "json" in response.headers.get("Content-Type", [""])[0]:
        leak = _leaks(response.json(), persona["hidden_ids"])
        assert leak is None, f"{case.method} {case.formatted_path}: hidden instance shown: {leak}"


def _run_every_operation(api_schema, persona, *, scoped: bool) -> None:
    """Generate cases for every operation of the schema and check each response; the
    failures of all operations are reported together."""
    failures: list[str] = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case):
            _call_and_check(case, persona, scoped=scoped)

        try:
            check()
        except Exception as exc:  # noqa: BLE001 (collected, reported below)
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert operations > 10, "the schema lists too few operations"
    assert not failures, "\n\n".join(failures)


def test_as_an_administrator(api_schema, administrator):
    _run_every_operation(api_schema, administrator, scoped=False)


def test_as_a_dba_scoped_to_one_instance(api_schema, scoped_dba):
    _run_every_operation(api_schema, scoped_dba, scoped=True)

"""The API answers as the admin does: for every role, scoped or not, each list endpoint
over a model the admin shows returns exactly the rows of that model's changelist, and
refuses exactly when the admin refuses."""

import pytest
from django.contrib import admin
from django.test import RequestFactory

from tests.factories import UserFactory
from whalefall.api import router
from whalefall.roles import ROLE_PERMISSIONS, SCOPED_ROLES, SCOPED_SUFFIX

pytestmark = pytest.mark.django_db


def _endpoints():
    for prefix, viewset, basename in router.registry:
        queryset = getattr(viewset, "queryset", None)
        if queryset is None or queryset.model not in admin.site._registry:
            continue
        yield f"/api/v1/{prefix}/", queryset.model, basename


def _personas(api_estate):
    people = {
        role: UserFactory(username=f"parity-{role}", roles=[role]) for role in ROLE_PERMISSIONS
    }
    people["scoped DBA"] = api_estate["scoped_user"]
    for role in SCOPED_ROLES:
        # A scoped member granted nothing yet sees nothing of any instance.
        people[f"{role}{SCOPED_SUFFIX} without instances"] = UserFactory(
            username=f"parity-{role}-none", roles=[role + SCOPED_SUFFIX]
        )
    return people


def _admin_answer(model, user) -> set | None:
    """Ids the admin's changelist shows ``user``; None when the admin refuses the page."""
    request = RequestFactory().get("/admin/")
    request.user = user
    model_admin = admin.site._registry[model]
    if not model_admin.has_view_or_change_permission(request):
        return None
    return set(model_admin.get_queryset(request).values_list("pk", flat=True))


def _api_answer(client, url) -> set | None:
    ids, page = set(), f"{url}?limit=1000"
    while page:
        response = client.get(page)
        if response.status_code in (401, 403):
            return None
        assert response.status_code == 200, (url, response.status_code, response.content[:300])
        body = response.json()
        ids |= {row["id"] for row in body["results"]}
        page = body.get("next")
    return ids


def test_every_endpoint_answers_every_role_as_the_admin_does(api_estate, api_client):
    endpoints = list(_endpoints())
    assert len(endpoints) >= 8, [url for url, _model, _name in endpoints]
    mismatches = []
    for name, user in _personas(api_estate).items():
        client = api_client(user)
        for url, model, _basename in endpoints:
            expected, got = _admin_answer(model, user), _api_answer(client, url)
            if expected != got:
                mismatches.append(f"{name} {url}: admin {expected} api {got}")
    assert not mismatches, "\n".join(mismatches)

"""Every export URL with a query parameter its list does not know: a clear 400, never a 500.

The export page applies the list's filters from the query string, as the list does; a
parameter that is no filter of that list (a stale bookmark, a hand-edited link, a probe)
used to end in an unhandled IncorrectLookupParameters for every role.
"""

import pytest
from django.contrib import admin
from django.urls import reverse
from guardian.shortcuts import assign_perm
from import_export.admin import ExportMixin

from tests.inventory.factories import InstanceFactory
from whalefall.exports import ExportActionMixin
from whalefall.roles import ROLE_PERMISSIONS

pytestmark = pytest.mark.django_db

EXPORTING_ADMINS = sorted(
    (model._meta.label_lower, model_admin)
    for model, model_admin in admin.site._registry.items()
    if isinstance(model_admin, ExportMixin)
)
EXPORT = {"format": "0", "resource": "0"}
BOGUS = ["bogus=1", "password__startswith=a", "id__exact=abc", "created_at__gte=yesterday"]


def export_url(model_admin) -> str:
    opts = model_admin.model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_export")


def test_every_export_shares_the_one_export_base():
    assert len(EXPORTING_ADMINS) >= 5, EXPORTING_ADMINS
    for label, model_admin in EXPORTING_ADMINS:
        assert isinstance(model_admin, ExportActionMixin), label


@pytest.fixture
def people(user_with_role, admin_user):
    """A user of every role, a DBA scoped to one instance, a superuser."""
    users = {role: user_with_role(role) for role in ROLE_PERMISSIONS}
    instance = InstanceFactory(name="scoped-one")
    scoped = user_with_role(None, username="scoped-dba")
    assign_perm("inventory.view_instance", scoped, instance)
    users["scoped DBA"] = scoped
    users["superuser"] = admin_user
    return users


@pytest.mark.parametrize(("label", "model_admin"), EXPORTING_ADMINS, ids=lambda v: str(v))
def test_an_unknown_parameter_is_a_clear_400_for_every_role(client, people, label, model_admin):
    client.raise_request_exception = False
    url = export_url(model_admin)
    for who, user in people.items():
        client.force_login(user)
        allowed = client.get(url).status_code
        assert allowed in (200, 403), (who, label)
        for query in BOGUS:
            for response in (client.get(f"{url}?{query}"), client.post(f"{url}?{query}", EXPORT)):
                assert response.status_code == (400 if allowed == 200 else 403), (who, label, query)
                if response.status_code == 400:
                    content = response.content.decode()
                    assert "does not know" in content, (who, label, query)
                    assert query.split("=")[0] in content
                    assert "Traceback" not in content


@pytest.mark.parametrize(("label", "model_admin"), EXPORTING_ADMINS, ids=lambda v: str(v))
def test_known_filters_still_narrow_the_export(client, admin_user, label, model_admin):
    client.force_login(admin_user)
    url = export_url(model_admin)
    assert client.get(url).status_code == 200
    assert client.get(f"{url}?q=x&o=1").status_code == 200


def test_an_export_narrowed_by_a_filter_exports_only_those_rows(client, admin_user):
    InstanceFactory(name="pg-one", engine="postgresql")
    InstanceFactory(name="my-one", engine="mysql")
    client.force_login(admin_user)
    response = client.post(
        "/admin/inventory/instance/export/?engine__exact=mysql",
        {**EXPORT, "instanceresource_name": "on", "instanceresource_engine": "on"},
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert "my-one" in content
    assert "pg-one" not in content

"""Credentials follow the instance scope (SPEC §1, §9; issue 12 item 1).

A DBA scoped to instance A plays the attacker against instance B's credential: listing it,
opening it, replacing its secret, picking it for A (form, autocomplete, import, service),
testing a connection with it. Every path goes through ``Credential.objects.visible_to``.
"""

import json

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from guardian.shortcuts import assign_perm

from inventory import services
from inventory.models import (
    CHANGE_CREDENTIAL,
    USE_CREDENTIAL,
    VIEW_CREDENTIAL,
    Credential,
    Instance,
)
from tests.factories import UserFactory
from tests.inventory.factories import CredentialFactory, InstanceFactory

pytestmark = pytest.mark.django_db

SECRET_A = "secret-of-A-1f9c"
SECRET_B = "secret-of-B-7d2e"
INSTANCE_PERMS = ("view_instance", "change_instance", "delete_instance", "test_connection", "sync")


@pytest.fixture(autouse=True)
def _loopback_allowed(settings):
    settings.WHALEFALL_ALLOWED_TARGETS = ["127.0.0.0/8", "10.0.0.0/8"]
    settings.WHALEFALL_ALLOW_LOOPBACK = True


@pytest.fixture
def estate(roles):
    """Instances A and B with their own credentials, and a DBA scoped to A."""
    cred_a = CredentialFactory(name="cred-a", secret=SECRET_A)
    cred_b = CredentialFactory(name="cred-b", secret=SECRET_B)
    a = InstanceFactory(name="instance-a", credential=cred_a, host="10.0.0.1")
    b = InstanceFactory(name="instance-b", credential=cred_b, host="10.0.0.2")
    dba = UserFactory(username="scoped-dba", roles=["DBAs (scoped)"])
    for perm in INSTANCE_PERMS:
        assign_perm(f"inventory.{perm}", dba, a)
    return dba, a, b, cred_a, cred_b


@pytest.fixture
def fake_probe(monkeypatch):
    """Connection tests succeed without a network, and remember what they were sent."""
    from inventory.engines.base import VersionInfo

    sent = []

    def probe(instance_id, target):
        sent.append(target.secret)
        return services.ConnectionCheck(
            instance_id, ok=True, version=VersionInfo("8.0.36", "8.0", "8.0.36")
        )

    monkeypatch.setattr(services, "_probe", probe)
    return sent


def change_form_data(instance: Instance, **overrides) -> dict:
    data = {
        "name": instance.name,
        "engine": instance.engine,
        "host": instance.host,
        "port": instance.port,
        "database_name": instance.database_name,
        "credential": instance.credential_id or "",
        "tls_mode": instance.tls_mode,
        "is_active": "on",
        "environment": "",
        "owner": "",
        "description": "",
    }
    return {**data, **overrides}


# --- The one choke point ---------------------------------------------------------------


def test_visible_to_gives_a_scoped_dba_only_the_credentials_of_its_instances(estate):
    dba, _a, _b, cred_a, _cred_b = estate
    for perm in (VIEW_CREDENTIAL, CHANGE_CREDENTIAL, USE_CREDENTIAL):
        assert list(Credential.objects.visible_to(dba, perm)) == [cred_a], perm


def test_visible_to_gives_unscoped_roles_every_credential(estate, user_with_role):
    _dba, _a, _b, cred_a, cred_b = estate
    dba = user_with_role("DBAs")
    for perm in (VIEW_CREDENTIAL, CHANGE_CREDENTIAL, USE_CREDENTIAL):
        assert set(Credential.objects.visible_to(dba, perm)) == {cred_a, cred_b}
    auditor = user_with_role("Auditors")
    assert set(Credential.objects.visible_to(auditor, VIEW_CREDENTIAL)) == {cred_a, cred_b}
    assert not Credential.objects.visible_to(auditor, CHANGE_CREDENTIAL).exists()
    assert not Credential.objects.visible_to(auditor, USE_CREDENTIAL).exists()
    assert not Credential.objects.visible_to(user_with_role("Viewers"), VIEW_CREDENTIAL).exists()


def test_a_scoped_auditor_sees_no_credential(estate, user_with_role):
    _dba, a, _b, _cred_a, _cred_b = estate
    auditor = user_with_role("Auditors (scoped)")
    assign_perm("inventory.view_instance", auditor, a)
    assert not Credential.objects.visible_to(auditor, VIEW_CREDENTIAL).exists()


def test_a_shared_credential_is_used_but_not_edited_from_one_of_its_instances(estate):
    dba, a, b, _cred_a, _cred_b = estate
    shared = CredentialFactory(name="shared")
    Instance.objects.filter(pk__in=[a.pk, b.pk]).update(credential=shared)
    assert shared in Credential.objects.visible_to(dba, VIEW_CREDENTIAL)
    assert shared in Credential.objects.visible_to(dba, USE_CREDENTIAL)
    assert shared not in Credential.objects.visible_to(dba, CHANGE_CREDENTIAL)


def test_object_permissions_on_a_credential_add_it(estate):
    dba, _a, _b, _cred_a, cred_b = estate
    assign_perm(VIEW_CREDENTIAL, dba, cred_b)
    assert cred_b in Credential.objects.visible_to(dba, VIEW_CREDENTIAL)
    assert cred_b not in Credential.objects.visible_to(dba, USE_CREDENTIAL)
    team = Group.objects.create(name="B users")
    dba.groups.add(team)
    assign_perm(USE_CREDENTIAL, team, cred_b)
    dba = type(dba).objects.get(pk=dba.pk)  # fresh permission cache
    assert cred_b in Credential.objects.visible_to(dba, USE_CREDENTIAL)
    assert cred_b not in Credential.objects.visible_to(dba, CHANGE_CREDENTIAL)


def test_visible_to_refuses_anonymous_inactive_and_unknown_permissions(estate):
    dba, *_ = estate
    from django.contrib.auth.models import AnonymousUser

    assert not Credential.objects.visible_to(AnonymousUser()).exists()
    dba.is_active = False
    assert not Credential.objects.visible_to(dba).exists()
    with pytest.raises(ValueError, match="not a credential permission"):
        Credential.objects.visible_to(dba, "inventory.view_instance")


# --- Listing, opening, editing -----------------------------------------------------------


def test_a_scoped_dba_lists_only_the_credentials_of_its_instances(client, estate):
    dba, *_ = estate
    client.force_login(dba)
    content = client.get("/admin/inventory/credential/").content.decode()
    assert "cred-a" in content
    assert "cred-b" not in content


def test_a_scoped_dba_cannot_open_or_replace_another_instances_secret(client, estate):
    dba, _a, _b, _cred_a, cred_b = estate
    client.force_login(dba)
    url = f"/admin/inventory/credential/{cred_b.pk}/change/"
    assert client.get(url).status_code == 404
    response = client.post(
        url, {"name": "renamed", "username": "evil", "secret": "attacker-chosen", "engine": ""}
    )
    assert response.status_code == 404
    cred_b.refresh_from_db()
    assert (cred_b.name, cred_b.decrypt_secret()) == ("cred-b", SECRET_B)
    assert client.post(f"/admin/inventory/credential/{cred_b.pk}/delete/").status_code == 404
    assert client.get(f"/admin/inventory/credential/{cred_b.pk}/history/").status_code == 404


def test_a_scoped_dba_edits_the_credential_of_its_instance(client, estate):
    dba, _a, _b, cred_a, _cred_b = estate
    client.force_login(dba)
    response = client.post(
        f"/admin/inventory/credential/{cred_a.pk}/change/",
        {"name": "cred-a", "username": "mon", "secret": "rotated-secret", "engine": ""},
    )
    assert response.status_code == 302
    cred_a.refresh_from_db()
    assert cred_a.decrypt_secret() == "rotated-secret"


def test_a_shared_credential_is_read_only_for_a_dba_of_one_of_its_instances(client, estate):
    dba, a, b, _cred_a, _cred_b = estate
    shared = CredentialFactory(name="shared", secret="shared-secret")
    Instance.objects.filter(pk__in=[a.pk, b.pk]).update(credential=shared)
    client.force_login(dba)
    url = f"/admin/inventory/credential/{shared.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    assert b'name="secret"' not in page.content
    response = client.post(url, {"name": "shared", "username": "x", "secret": "replaced"})
    assert response.status_code == 403
    shared.refresh_from_db()
    assert shared.decrypt_secret() == "shared-secret"


def test_the_instance_count_counts_only_visible_instances(client, estate):
    dba, a, b, _cred_a, _cred_b = estate
    shared = CredentialFactory(name="shared")
    Instance.objects.filter(pk__in=[a.pk, b.pk]).update(credential=shared)
    client.force_login(dba)
    response = client.get("/admin/inventory/credential/")
    row = next(r for r in response.context["cl"].result_list if r.pk == shared.pk)
    assert row._instances == 1


def test_a_scoped_dba_who_creates_a_credential_keeps_it(client, estate):
    dba, a, *_ = estate
    client.force_login(dba)
    response = client.post(
        "/admin/inventory/credential/add/",
        {"name": "new-one", "username": "mon", "secret": "fresh-secret", "engine": ""},
    )
    assert response.status_code == 302
    created = Credential.objects.get(name="new-one")
    assert created in Credential.objects.visible_to(dba, USE_CREDENTIAL)
    assert client.get(f"/admin/inventory/credential/{created.pk}/change/").status_code == 200
    response = client.post(
        f"/admin/inventory/instance/{a.pk}/change/", change_form_data(a, credential=created.pk)
    )
    assert response.status_code == 302
    a.refresh_from_db()
    assert a.credential == created


@pytest.mark.parametrize(
    ("role", "status"), [("Administrators", 200), ("DBAs", 403), ("Auditors", 403)]
)
def test_object_permissions_of_a_credential_are_for_administrators(
    client, estate, user_with_role, role, status
):
    _dba, _a, _b, cred_a, _cred_b = estate
    client.force_login(user_with_role(role))
    assert client.get(f"/admin/inventory/credential/{cred_a.pk}/permissions/").status_code == status


# --- Picking a credential for an instance ------------------------------------------------


def test_the_autocomplete_offers_only_usable_credentials(client, estate):
    dba, *_ = estate
    client.force_login(dba)
    response = client.get(
        "/admin/autocomplete/",
        {"app_label": "inventory", "model_name": "instance", "field_name": "credential"},
    )
    assert response.status_code == 200
    names = {item["text"] for item in json.loads(response.content)["results"]}
    assert names == {"cred-a"}


def test_the_autocomplete_leaves_out_a_credential_the_user_may_only_see(client, estate):
    dba, _a, _b, _cred_a, cred_b = estate
    assign_perm(VIEW_CREDENTIAL, dba, cred_b)
    client.force_login(dba)
    response = client.get(
        "/admin/autocomplete/",
        {"app_label": "inventory", "model_name": "instance", "field_name": "credential"},
    )
    names = {item["text"] for item in json.loads(response.content)["results"]}
    assert names == {"cred-a"}


def test_a_scoped_dba_cannot_pick_another_instances_credential_in_the_form(client, estate):
    dba, a, _b, cred_a, cred_b = estate
    client.force_login(dba)
    response = client.post(
        f"/admin/inventory/instance/{a.pk}/change/", change_form_data(a, credential=cred_b.pk)
    )
    assert response.status_code == 200  # the form again, with an error
    assert "credential" in response.context["adminform"].form.errors
    a.refresh_from_db()
    assert a.credential == cred_a


def test_a_scoped_dba_moves_its_own_instance_with_its_own_credential(client, estate):
    dba, a, *_ = estate
    client.force_login(dba)
    response = client.post(
        f"/admin/inventory/instance/{a.pk}/change/", change_form_data(a, host="10.0.0.9")
    )
    assert response.status_code == 302
    a.refresh_from_db()
    assert a.host == "10.0.0.9"


def test_an_explicit_use_grant_lets_a_dba_pick_that_credential(client, estate):
    dba, a, _b, _cred_a, cred_b = estate
    assign_perm(USE_CREDENTIAL, dba, cred_b)
    client.force_login(dba)
    response = client.post(
        f"/admin/inventory/instance/{a.pk}/change/", change_form_data(a, credential=cred_b.pk)
    )
    assert response.status_code == 302
    a.refresh_from_db()
    assert a.credential == cred_b


def test_moving_an_instance_needs_the_right_to_use_its_credential(client, estate, roles):
    _dba, a, *_ = estate
    # May change instance A, but holds no credential permission at all.
    mover = UserFactory(username="mover", roles=["Viewers"])
    assign_perm("inventory.view_instance", mover, a)
    assign_perm("inventory.change_instance", mover, a)
    client.force_login(mover)
    for change in ({"host": "10.0.0.9"}, {"port": 3307}, {"engine": "postgresql"}):
        response = client.post(
            f"/admin/inventory/instance/{a.pk}/change/", change_form_data(a, **change)
        )
        assert response.status_code == 200, change
        assert "credential" in response.context["adminform"].form.errors, change
    a.refresh_from_db()
    assert (a.host, a.port, a.engine) == ("10.0.0.1", 3306, "mysql")
    # What does not move the credential is still editable.
    response = client.post(
        f"/admin/inventory/instance/{a.pk}/change/", change_form_data(a, description="notes")
    )
    assert response.status_code == 302


def test_the_service_check_refuses_another_instances_credential(estate):
    dba, a, _b, _cred_a, cred_b = estate
    a.credential = cred_b
    with pytest.raises(ValidationError) as raised:
        services.instance_connection_check(user=dba, instance=a)
    assert "credential" in raised.value.message_dict
    new = Instance(name="new", engine="mysql", host="10.0.0.7", port=3306, credential=cred_b)
    with pytest.raises(ValidationError):
        services.instance_connection_check(user=dba, instance=new)


def test_the_service_check_lets_unchanged_connections_through(estate, user_with_role):
    _dba, _a, b, _cred_a, _cred_b = estate
    # Nothing that moves the credential changed: no right to use it is needed.
    b.description = "edited"
    services.instance_connection_check(user=user_with_role("Viewers"), instance=b)


def test_an_import_cannot_pick_another_instances_credential(estate):
    dba, a, _b, cred_a, _cred_b = estate
    result = services.instance_import(
        data=f"name,engine,host,port,credential\n{a.name},mysql,10.0.0.1,3306,cred-b\n",
        file_format="csv",
        user=dba,
        dry_run=False,
    )
    assert result.has_validation_errors()
    errors = str(result.invalid_rows[0].error_dict)
    assert "no credential named cred-b" in errors  # nothing tells that it exists
    a.refresh_from_db()
    assert a.credential == cred_a


def test_an_import_cannot_move_an_instance_with_a_credential_it_may_not_use(estate, roles):
    _dba, a, *_ = estate
    mover = UserFactory(username="mover", roles=["Viewers"])
    assign_perm("inventory.change_instance", mover, a)
    result = services.instance_import(
        data=f"name,engine,host,port\n{a.name},mysql,10.6.6.6,3306\n",
        file_format="csv",
        user=mover,
        dry_run=True,
    )
    assert result.has_validation_errors()
    assert "may not use this credential" in str(result.invalid_rows[0].error_dict)


# --- Testing a connection ---------------------------------------------------------------


def test_a_connection_test_never_sends_a_credential_the_user_may_not_use(estate, fake_probe):
    dba, a, _b, _cred_a, cred_b = estate
    a.credential = cred_b  # e.g. a stale in-memory change that never passed the form
    [check] = services.instance_test_connections(instances=[a], user=dba)
    assert (check.ok, check.kind) == (False, "not_allowed")
    assert SECRET_B not in fake_probe
    a.refresh_from_db()
    assert a.last_checked_at is None  # a refusal is not recorded on the instance


def test_a_tester_without_the_right_to_use_the_credential_is_refused(
    client, estate, fake_probe, roles
):
    _dba, a, *_ = estate
    tester = UserFactory(username="tester", roles=["Viewers"])
    assign_perm("inventory.view_instance", tester, a)
    assign_perm("inventory.test_connection", tester, a)
    client.force_login(tester)
    response = client.post(f"/admin/inventory/instance/{a.pk}/test-connection/", follow=True)
    assert "may not use the credential" in response.content.decode()
    assert fake_probe == []


def test_a_scoped_dba_tests_its_own_instance(client, estate, fake_probe):
    dba, a, *_ = estate
    client.force_login(dba)
    client.post(f"/admin/inventory/instance/{a.pk}/test-connection/")
    assert fake_probe == [SECRET_A]

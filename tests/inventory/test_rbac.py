"""Roles and per-instance scope on every inventory admin page and action (SPEC §1, §9)."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from guardian.shortcuts import assign_perm

from inventory import services
from inventory.models import Instance
from tests.factories import UserFactory
from tests.inventory.factories import CredentialFactory, InstanceFactory, TagFactory

pytestmark = pytest.mark.django_db

ROLES = ["Administrators", "DBAs", "Auditors", "Schedulers", "Viewers"]
READERS = {"Administrators", "DBAs", "Auditors", "Viewers"}
MANAGERS = {"Administrators", "DBAs"}

PAGES = {
    "instances": ("/admin/inventory/instance/", READERS),
    "instance": ("/admin/inventory/instance/{instance}/change/", READERS),
    "add instance": ("/admin/inventory/instance/add/", MANAGERS),
    "delete instance": ("/admin/inventory/instance/{instance}/delete/", MANAGERS),
    "import instances": ("/admin/inventory/instance/import/", MANAGERS),
    "export instances": ("/admin/inventory/instance/export/", READERS),
    "instance permissions": (
        "/admin/inventory/instance/{instance}/permissions/",
        {"Administrators"},
    ),
    "credentials": ("/admin/inventory/credential/", {"Administrators", "DBAs", "Auditors"}),
    "credential": (
        "/admin/inventory/credential/{credential}/change/",
        {"Administrators", "DBAs", "Auditors"},
    ),
    "add credential": ("/admin/inventory/credential/add/", MANAGERS),
    "tags": ("/admin/inventory/tag/", READERS),
    "add tag": ("/admin/inventory/tag/add/", MANAGERS),
    "audit log": ("/admin/auditlog/logentry/", {"Administrators", "Auditors"}),
    "login events": ("/admin/whalefall/loginevent/", {"Administrators", "Auditors"}),
    "users": ("/admin/auth/user/", {"Administrators"}),
}


@pytest.fixture
def objects():
    credential = CredentialFactory()
    tag = TagFactory(slug="eu")
    instance = InstanceFactory(credential=credential)
    instance.tags.add(tag)
    return {"instance": instance.pk, "credential": credential.pk, "tag": tag.pk}


@pytest.fixture
def fake_probe(monkeypatch):
    """Connection tests succeed without a network."""
    from inventory.engines.base import VersionInfo

    def probe(instance_id, target):
        return services.ConnectionCheck(
            instance_id, ok=True, version=VersionInfo("8.0.36", "8.0", "8.0.36")
        )

    monkeypatch.setattr(services, "_probe", probe)


def as_role(client, user_with_role, role):
    client.force_login(user_with_role(role))
    return client


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", sorted(PAGES))
def test_page_access(client, user_with_role, objects, role, page):
    url, allowed = PAGES[page]
    as_role(client, user_with_role, role)
    status = client.get(url.format(**objects)).status_code
    assert status == (200 if role in allowed else 403), (role, page, status)


@pytest.mark.parametrize("role", sorted(READERS - MANAGERS))
def test_read_only_roles_cannot_save_changes(client, user_with_role, objects, role):
    as_role(client, user_with_role, role)
    response = client.post(
        f"/admin/inventory/instance/{objects['instance']}/change/",
        {"name": "renamed", "engine": "mysql", "host": "h", "port": 3306, "tls_mode": "preferred"},
    )
    assert response.status_code == 403
    assert not Instance.objects.filter(name="renamed").exists()


def post_action(client, url, action, pks, **extra):
    return client.post(url, {"action": action, ACTION_CHECKBOX_NAME: pks, "index": 0, **extra})


ACTIONS = {
    "test_connection": (
        MANAGERS,
        lambda i: i.last_checked_at is not None,
    ),
    "retire": (MANAGERS, lambda i: i.retired_at is not None),
    "add_tags": (MANAGERS, lambda i: i.tags.filter(slug="new").exists()),
}


@pytest.mark.usefixtures("fake_probe")
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_instance_actions(client, user_with_role, objects, role, action):
    TagFactory(slug="new")
    allowed, happened = ACTIONS[action]
    as_role(client, user_with_role, role)
    extra = {"apply": "1", "tags": [TagFactory._meta.model.objects.get(slug="new").pk]}
    post_action(client, "/admin/inventory/instance/", action, [objects["instance"]], **extra)
    instance = Instance.objects.get(pk=objects["instance"])
    assert happened(instance) == (role in allowed), (role, action)


@pytest.mark.parametrize("role", ROLES)
def test_restore_action(client, user_with_role, objects, role):
    Instance.objects.filter(pk=objects["instance"]).update(retired_at="2026-01-01T00:00:00Z")
    as_role(client, user_with_role, role)
    post_action(client, "/admin/inventory/instance/", "restore", [objects["instance"]])
    restored = Instance.objects.get(pk=objects["instance"]).retired_at is None
    assert restored == (role in MANAGERS)


EXPORT_FIELDS = {
    "format": "0",
    "resource": "0",
    "instanceresource_name": "on",
    "instanceresource_host": "on",
}


@pytest.mark.parametrize("role", ROLES)
def test_export_action(client, user_with_role, objects, role):
    as_role(client, user_with_role, role)
    response = post_action(
        client, "/admin/inventory/instance/", "export_admin_action", [objects["instance"]]
    )
    offered = response.status_code == 200 and b"instanceresource_name" in response.content
    assert offered == (role in READERS), (role, response.status_code)
    exported = client.post(
        "/admin/inventory/instance/export/",
        {**EXPORT_FIELDS, "export_items": [objects["instance"]]},
    )
    is_csv = exported.status_code == 200 and exported["Content-Type"].startswith("text/csv")
    assert is_csv == (role in READERS), (role, exported.status_code)


@pytest.mark.parametrize("role", ROLES)
def test_grant_by_tag_is_for_administrators_only(client, user_with_role, objects, role):
    team = Group.objects.create(name="EU team")
    as_role(client, user_with_role, role)
    post_action(
        client,
        "/admin/inventory/tag/",
        "grant_permissions",
        [objects["tag"]],
        apply="1",
        group=team.pk,
        permissions=["inventory.test_connection"],
    )
    member = UserFactory(roles=["EU team"])
    granted = member.has_perm(
        "inventory.view_instance", Instance.objects.get(pk=objects["instance"])
    )
    assert granted == (role == "Administrators")


@pytest.mark.usefixtures("fake_probe")
def test_test_connection_button_respects_the_permission(client, user_with_role, objects):
    url = f"/admin/inventory/instance/{objects['instance']}/test-connection/"
    as_role(client, user_with_role, "Auditors")
    assert client.post(url).status_code == 403
    as_role(client, user_with_role, "DBAs")
    assert client.get(url).status_code == 405
    assert client.post(url).status_code == 302
    assert Instance.objects.get(pk=objects["instance"]).version_full == "8.0.36"


# --- A DBA scoped to one instance -------------------------------------------------------


@pytest.fixture
def scoped(user_with_role):
    """A DBA allowed on instance A only, through object permissions."""
    a = InstanceFactory(name="instance-a")
    b = InstanceFactory(name="instance-b")
    user = user_with_role("DBAs (scoped)")
    for perm in ("view_instance", "change_instance", "delete_instance", "test_connection", "sync"):
        assign_perm(f"inventory.{perm}", user, a)
    return user, a, b


def test_scoped_dba_sees_only_its_instance(client, scoped):
    user, _a, _b = scoped
    client.force_login(user)
    content = client.get("/admin/inventory/instance/").content.decode()
    assert "instance-a" in content
    assert "instance-b" not in content


def test_scoped_dba_cannot_open_another_instance(client, scoped):
    user, a, b = scoped
    client.force_login(user)
    assert client.get(f"/admin/inventory/instance/{a.pk}/change/").status_code == 200
    assert client.get(f"/admin/inventory/instance/{b.pk}/change/").status_code in (403, 404)
    assert client.get(f"/admin/inventory/instance/{b.pk}/delete/").status_code in (403, 404)
    assert client.post(f"/admin/inventory/instance/{b.pk}/test-connection/").status_code in (
        403,
        404,
    )


@pytest.mark.usefixtures("fake_probe")
def test_scoped_dba_cannot_act_on_another_instance_through_an_action(client, scoped):
    user, a, b = scoped
    client.force_login(user)
    post_action(client, "/admin/inventory/instance/", "retire", [a.pk, b.pk])
    post_action(client, "/admin/inventory/instance/", "test_connection", [a.pk, b.pk])
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.retired_at is not None
    assert a.last_checked_at is not None
    assert b.retired_at is None
    assert b.last_checked_at is None


def test_scoped_dba_cannot_add_instances_or_update_others_by_import(client, scoped):
    user, a, b = scoped
    client.force_login(user)
    assert client.get("/admin/inventory/instance/add/").status_code == 403
    result = services.instance_import(
        data=f"name,engine,host,port\n{a.name},mysql,10.9.9.9,3306\n{b.name},mysql,10.9.9.9,3306\n",
        file_format="csv",
        user=user,
        dry_run=False,
    )
    assert result.has_validation_errors()
    b.refresh_from_db()
    assert b.host != "10.9.9.9"


def test_scoped_dba_exports_only_its_instances(client, scoped):
    user, _a, _b = scoped
    client.force_login(user)
    response = client.post("/admin/inventory/instance/export/", EXPORT_FIELDS)
    assert response["Content-Type"].startswith("text/csv")
    body = response.content.decode()
    assert "instance-a" in body
    assert "instance-b" not in body


def test_scoped_dba_cannot_export_another_instance_by_naming_it(client, scoped):
    user, a, b = scoped
    client.force_login(user)
    response = client.post(
        "/admin/inventory/instance/export/", {**EXPORT_FIELDS, "export_items": [a.pk, b.pk]}
    )
    assert "instance-b" not in response.content.decode()


def test_tag_grant_scopes_a_team_to_tagged_instances(client, admin_user, user_with_role):
    eu = TagFactory(slug="eu")
    tagged = InstanceFactory(name="eu-db")
    tagged.tags.add(eu)
    InstanceFactory(name="us-db")
    team = Group.objects.create(name="EU DBAs")
    client.force_login(admin_user)
    post_action(
        client,
        "/admin/inventory/tag/",
        "grant_permissions",
        [eu.pk],
        apply="1",
        group=team.pk,
        permissions=["inventory.change_instance", "inventory.test_connection"],
    )
    member = user_with_role("DBAs (scoped)")
    member.groups.add(team)
    client.force_login(member)
    content = client.get("/admin/inventory/instance/").content.decode()
    assert "eu-db" in content
    assert "us-db" not in content
    assert set(Instance.objects.visible_to(member, "inventory.test_connection")) == {tagged}

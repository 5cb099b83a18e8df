"""The configuration audit trail and login events (SPEC §8)."""

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Group
from django.test import override_settings
from guardian.models import GroupObjectPermission
from guardian.shortcuts import assign_perm

from inventory.models import Instance
from tests.factories import PASSWORD, UserFactory
from tests.inventory.factories import CredentialFactory, InstanceFactory
from whalefall.models import LoginEvent

pytestmark = pytest.mark.django_db


def change_instance(client, instance, **fields):
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
    data.update(fields)
    return client.post(
        f"/admin/inventory/instance/{instance.pk}/change/", data, HTTP_X_REQUEST_ID="req-audit-1"
    )


def test_editing_an_instance_records_who_what_when_and_which_request(client, user_with_role):
    dba = user_with_role("DBAs", username="dana")
    instance = InstanceFactory(host="10.0.0.1")
    client.force_login(dba)
    assert change_instance(client, instance, host="10.0.0.2").status_code == 302
    entry = LogEntry.objects.get_for_object(instance).filter(action=LogEntry.Action.UPDATE).get()
    assert entry.actor == dba
    assert entry.changes_dict["host"] == ["10.0.0.1", "10.0.0.2"]
    assert entry.timestamp is not None
    assert entry.cid == "req-audit-1"
    assert entry.remote_addr == "127.0.0.1"


def test_a_forged_forwarded_for_header_does_not_reach_the_audit_log(client, user_with_role):
    instance = InstanceFactory()
    client.force_login(user_with_role("DBAs"))
    client.post(
        f"/admin/inventory/instance/{instance.pk}/change/",
        {
            "name": instance.name,
            "engine": "mysql",
            "host": "10.0.0.2",
            "port": 3306,
            "tls_mode": "preferred",
        },
        HTTP_X_FORWARDED_FOR="6.6.6.6",
    )
    entry = LogEntry.objects.get_for_object(instance).latest("timestamp")
    assert entry.remote_addr == "127.0.0.1"


def test_tag_changes_on_an_instance_are_recorded(client, admin_user):
    from tests.inventory.factories import TagFactory

    instance = InstanceFactory()
    tag = TagFactory(slug="prod")
    instance.tags.add(tag)
    entry = LogEntry.objects.get_for_object(instance).latest("timestamp")
    assert "tags" in entry.changes_dict


def test_a_credential_change_is_recorded_with_the_secret_masked(client, admin_user):
    credential = CredentialFactory(name="monitor", secret="first-secret")
    client.force_login(admin_user)
    client.post(
        f"/admin/inventory/credential/{credential.pk}/change/",
        {"name": "monitor", "username": "u2", "secret": "second-secret", "engine": ""},
    )
    entry = LogEntry.objects.get_for_object(credential).filter(action=LogEntry.Action.UPDATE).get()
    assert entry.actor == admin_user
    assert entry.changes_dict["secret_ciphertext"] == ["********", "********"]
    assert entry.changes_dict["username"][1] == "u2"


def test_object_permission_grants_are_recorded():
    group = Group.objects.create(name="EU team")
    instance = InstanceFactory()
    assign_perm("inventory.view_instance", group, instance)
    grant = GroupObjectPermission.objects.get(group=group)
    assert LogEntry.objects.get_for_object(grant).filter(action=LogEntry.Action.CREATE).exists()


def test_retiring_is_recorded(client, user_with_role):
    instance = InstanceFactory()
    client.force_login(user_with_role("DBAs"))
    client.post(
        "/admin/inventory/instance/",
        {"action": "retire", "_selected_action": [instance.pk], "index": 0},
    )
    entry = LogEntry.objects.get_for_object(instance).latest("timestamp")
    assert "retired_at" in entry.changes_dict


def test_connection_tests_are_not_configuration_changes(monkeypatch):
    from inventory import services

    instance = InstanceFactory()
    before = LogEntry.objects.count()
    monkeypatch.setattr(
        services,
        "_probe",
        lambda pk, target: services.ConnectionCheck(pk, ok=False, kind="timeout", message="x"),
    )
    services.instance_test_connection(instance=instance)
    assert LogEntry.objects.count() == before


def test_the_audit_log_is_read_only_even_for_a_superuser(client, admin_user):
    instance = InstanceFactory()
    entry = LogEntry.objects.get_for_object(instance).get()
    client.force_login(admin_user)
    assert client.get(f"/admin/auditlog/logentry/{entry.pk}/change/").status_code == 200
    assert client.post(f"/admin/auditlog/logentry/{entry.pk}/change/", {}).status_code == 403
    assert client.get(f"/admin/auditlog/logentry/{entry.pk}/delete/").status_code == 403
    assert client.get("/admin/auditlog/logentry/add/").status_code == 403
    assert LogEntry.objects.filter(pk=entry.pk).exists()


def test_the_audit_log_filters_by_actor_model_and_object(client, user_with_role, admin_user):
    dba = user_with_role("DBAs", username="dana")
    first, second = InstanceFactory(name="first-db"), InstanceFactory(name="second-db")
    client.force_login(dba)
    change_instance(client, first, host="10.1.1.1")
    auditor = user_with_role("Auditors")
    client.force_login(auditor)
    by_actor = client.get(f"/admin/auditlog/logentry/?actor__id__exact={dba.pk}").content.decode()
    assert "first-db" in by_actor
    assert "second-db" not in by_actor
    by_object = client.get(f"/admin/auditlog/logentry/?q={second.pk}").content.decode()
    assert "second-db" in by_object
    content_type = LogEntry.objects.get_for_object(first).first().content_type_id
    by_model = client.get(f"/admin/auditlog/logentry/?content_type__id__exact={content_type}")
    assert by_model.status_code == 200


@override_settings(WHALEFALL_LOGIN_RATE_IP="100/h", WHALEFALL_LOGIN_RATE_USERNAME="2/h")
def test_login_success_failure_and_rate_limit_are_recorded(client):
    user = UserFactory(username="erin")
    client.post(
        "/admin/login/", {"username": "erin", "password": "wrong"}, HTTP_USER_AGENT="probe/1"
    )
    client.post("/admin/login/", {"username": "erin", "password": PASSWORD})
    client.logout()
    # Only failures count toward the limit, and the success started the count afresh.
    for password in ("wrong", "wrong", PASSWORD):
        client.post("/admin/login/", {"username": "erin", "password": password})
    kinds = list(LoginEvent.objects.order_by("created_at", "pk").values_list("kind", flat=True))
    assert kinds == ["failed", "succeeded", "failed", "failed", "rate_limited"]
    failed = LoginEvent.objects.filter(kind="failed").earliest("created_at", "pk")
    assert (failed.username, failed.user, failed.ip_address, failed.user_agent) == (
        "erin",
        user,
        "127.0.0.1",
        "probe/1",
    )
    assert failed.request_id


def test_login_events_are_read_only(client, user_with_role):
    client.post("/admin/login/", {"username": "nobody", "password": "x"})
    event = LoginEvent.objects.get()
    client.force_login(user_with_role("Auditors"))
    assert client.get("/admin/whalefall/loginevent/").status_code == 200
    assert client.get(f"/admin/whalefall/loginevent/{event.pk}/delete/").status_code == 403
    assert event.user is None
    assert Instance.objects.count() == 0

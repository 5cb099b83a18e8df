"""The audit log, login events and event log as a person limited to some instances reads
them: nothing about other instances, users, groups or permissions (issue 12, item 2)."""

import re

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from guardian.shortcuts import assign_perm

from classification.models import Assignment, Classification
from classification.services import assignment_add_manual, assignments_remove_manual
from tests.accounts.factories import make_account
from tests.factories import UserFactory
from tests.inventory.factories import CredentialFactory, InstanceFactory, TagFactory
from whalefall.models import EventLogEntry, LoginEvent

pytestmark = pytest.mark.django_db

LOG = "/admin/auditlog/logentry/"


@pytest.fixture
def estate(user_with_role):
    """Instances A (the scoped auditor's) and B (hidden), each with its own credential, and
    entries about users, groups and object permissions."""
    cred_a = CredentialFactory(name="cred-of-a")
    cred_b = CredentialFactory(name="cred-of-b")
    a = InstanceFactory(name="db-alpha", credential=cred_a)
    b = InstanceFactory(name="db-bravo", credential=cred_b)
    b.host = "10.66.0.2"
    b.save()
    team = Group.objects.create(name="team-bravo")
    assign_perm("inventory.view_instance", team, b)
    UserFactory(username="root-admin")
    auditor = user_with_role("Auditors (scoped)", username="scoped-auditor")
    assign_perm("inventory.view_instance", auditor, a)
    return {"a": a, "b": b, "cred_a": cred_a, "cred_b": cred_b, "auditor": auditor}


def rows(client, url=LOG) -> list[LogEntry]:
    response = client.get(url)
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def test_a_scoped_auditor_reads_only_entries_about_their_instances(client, estate):
    client.force_login(estate["auditor"])
    listed = rows(client)
    reprs = {entry.object_repr for entry in listed}
    assert "db-alpha" in reprs
    assert "db-bravo" not in reprs
    assert "cred-of-b" not in reprs
    models = {entry.content_type.model for entry in listed}
    assert models <= {"instance", "credential"}, models
    content = client.get(LOG).content.decode()
    for hidden in ("db-bravo", "cred-of-b", "team-bravo", "root-admin", "10.66.0.2"):
        assert hidden not in content, hidden


def test_entries_of_a_hidden_instance_cannot_be_opened_searched_or_filtered(client, estate):
    b = estate["b"]
    hidden = LogEntry.objects.get_for_object(b).latest("timestamp")
    client.force_login(estate["auditor"])
    page = client.get(f"{LOG}{hidden.pk}/change/", follow=True)
    assert "10.66.0.2" not in page.content.decode()
    assert "db-bravo" not in page.content.decode()
    assert all(e.object_repr != "db-bravo" for e in rows(client, f"{LOG}?q={b.pk}"))
    assert rows(client, f"{LOG}?q=db-bravo") == []
    instance_type = ContentType.objects.get_for_model(b).pk
    by_model = rows(client, f"{LOG}?content_type__id__exact={instance_type}")
    assert {e.object_repr for e in by_model} == {"db-alpha"}
    # The result count is the count of what they may read.
    response = client.get(LOG)
    assert response.context["cl"].result_count == len(response.context["cl"].result_list)


def test_credential_entries_follow_the_credential_scope(client, estate, user_with_role):
    """Those of the credentials the user may see (Credential.objects.visible_to): a DBA
    who may change instance A sees its credential's entries, never B's."""
    dba = user_with_role("DBAs (scoped)")
    dba.groups.add(Group.objects.get(name="Auditors (scoped)"))  # to read the log at all
    for perm in ("view_instance", "change_instance"):
        assign_perm(f"inventory.{perm}", dba, estate["a"])
    client.force_login(dba)
    reprs = {entry.object_repr for entry in rows(client)}
    assert "cred-of-a" in reprs
    assert "cred-of-b" not in reprs
    # Reading instance A only does not reach its credential, nor its entries.
    client.force_login(estate["auditor"])
    assert "cred-of-a" not in {entry.object_repr for entry in rows(client)}
    # A credential granted to the auditor explicitly is theirs to read about.
    assign_perm("inventory.view_credential", estate["auditor"], estate["cred_b"])
    assert "cred-of-b" in {entry.object_repr for entry in rows(client)}


def test_entries_about_users_groups_and_permissions_are_for_the_whole_estate(
    client, estate, user_with_role
):
    group_type = ContentType.objects.get_for_model(Group).pk
    client.force_login(estate["auditor"])
    assert rows(client, f"{LOG}?content_type__id__exact={group_type}") == []
    # The whole-estate auditor reads them all.
    client.force_login(user_with_role("Auditors"))
    models = {entry.content_type.model for entry in rows(client)}
    assert {"group", "groupobjectpermission", "user", "instance", "credential"} <= models


def test_filter_choices_list_neither_users_nor_hidden_models(client, estate):
    client.force_login(estate["auditor"])
    content = client.get(LOG).content.decode()
    assert "actor__id__exact" not in content, "the user list is not theirs to read"
    assert "root-admin" not in content
    choices = set(re.findall(r"content_type__id__exact=(\d+)", content))
    readable = {
        str(ContentType.objects.get_by_natural_key(*label.split(".")).pk)
        for label in (
            "inventory.instance",
            "inventory.credential",
            "inventory.tag",
            "classification.assignment",
            "classification.classification",
            "classification.rule",
        )
    }
    assert choices <= readable
    assert str(ContentType.objects.get_for_model(Group).pk) not in choices


def test_naming_an_actor_shows_nothing_beyond_the_scope(client, estate):
    admin = UserFactory(username="root-admin")
    client.force_login(estate["auditor"])
    response = client.get(f"{LOG}?actor__id__exact={admin.pk}")
    # Refused as a lookup they are not offered, or answered within their scope.
    if response.status_code == 200:
        assert "db-bravo" not in response.content.decode()


def test_shared_configuration_is_read_with_the_models_view_permission(client, estate):
    TagFactory(slug="eu-west", name="EU West")
    client.force_login(estate["auditor"])
    assert "EU West" in {e.object_repr for e in rows(client)}


def test_manual_assignments_follow_the_instance_of_their_account(client, estate):
    reviewed = Classification.objects.create(code="reviewed", name="Reviewed")
    mine = make_account(estate["a"], "app_a")
    theirs = make_account(estate["b"], "app_b")
    assignment_add_manual(account=mine, classification=reviewed, user=None, note="")
    assignment_add_manual(account=theirs, classification=reviewed, user=None, note="")
    client.force_login(estate["auditor"])
    content = client.get(LOG).content.decode()
    assert "app_a" in content
    assert "app_b" not in content
    # Once removed, an assignment of a hidden instance stays hidden, one of theirs visible.
    assignments_remove_manual(assignments=Assignment.objects.filter(account=theirs), user=None)
    assignments_remove_manual(assignments=Assignment.objects.filter(account=mine), user=None)
    assignment_entries = [e for e in rows(client) if e.content_type.model == "assignment"]
    assert {e.action for e in assignment_entries} == {
        LogEntry.Action.CREATE,
        LogEntry.Action.DELETE,
    }
    assert all("app_a" in e.object_repr for e in assignment_entries)
    assert "app_b" not in client.get(LOG).content.decode()


def test_the_whole_estate_auditor_still_reads_everything(client, estate, user_with_role):
    client.force_login(user_with_role("Auditors"))
    content = client.get(LOG).content.decode()
    for name in ("db-alpha", "db-bravo", "cred-of-b"):
        assert name in content
    assert "actor__id__exact" in content


def test_a_user_without_any_instance_reads_no_instance_entries(client, estate, user_with_role):
    nobody = user_with_role("Auditors (scoped)")
    client.force_login(nobody)
    assert {e.content_type.model for e in rows(client)} <= {"tag", "classification", "rule"}


def test_a_direct_grant_of_the_log_changes_nothing(client, estate):
    """Holding the permission on the log itself (not through a role) is still scoped."""
    viewer = UserFactory(username="odd-one")
    viewer.user_permissions.add(
        Permission.objects.get(codename="view_logentry", content_type__app_label="auditlog")
    )
    assign_perm("inventory.view_instance", viewer, estate["a"])
    client.force_login(viewer)
    assert {e.object_repr for e in rows(client)} <= {"db-alpha"}


# --- Login events -----------------------------------------------------------------------


def test_a_scoped_auditor_reads_only_their_own_login_events(client, estate, user_with_role):
    auditor = estate["auditor"]
    LoginEvent.objects.create(kind="succeeded", username=auditor.username, user=auditor)
    LoginEvent.objects.create(kind="failed", username=auditor.username, ip_address="10.1.1.1")
    LoginEvent.objects.create(kind="succeeded", username="root-admin", ip_address="10.9.9.9")
    client.force_login(auditor)
    content = client.get("/admin/whalefall/loginevent/").content.decode()
    assert "10.1.1.1" in content
    assert "root-admin" not in content
    assert "10.9.9.9" not in content
    client.force_login(user_with_role("Auditors"))
    content = client.get("/admin/whalefall/loginevent/").content.decode()
    assert "root-admin" in content


# --- The application event log ----------------------------------------------------------


def test_the_event_log_given_to_a_scoped_user_shows_only_their_instances(client, estate):
    from django.utils import timezone

    def entry(event, instance_id):
        return EventLogEntry.objects.create(
            created_at=timezone.now(), level="warning", event=event, instance_id=instance_id
        )

    entry("about_alpha", estate["a"].pk)
    entry("about_bravo", estate["b"].pk)
    entry("about_the_estate", None)
    auditor = estate["auditor"]
    auditor.user_permissions.add(Permission.objects.get(codename="view_eventlogentry"))
    client.force_login(auditor)
    listed = {e.event for e in rows(client, "/admin/whalefall/eventlogentry/")}
    assert listed == {"about_alpha"}

"""The clear-text secret reaches only the driver: never HTML, audit entries, logs or exports."""

import csv
import io
import json
import logging

import MySQLdb
import openpyxl
import pytest
from auditlog.models import LogEntry
from django.test import RequestFactory

from inventory.admin import CredentialAdmin
from inventory.models import Credential
from inventory.services import instance_export, instance_test_connection
from tests.inventory.factories import CredentialFactory, InstanceFactory
from whalefall.logging import build_formatter

pytestmark = pytest.mark.django_db

SECRET = "Zq9-unique-secret-4711"


@pytest.fixture
def credential():
    return CredentialFactory(name="monitor", username="whalefall", secret=SECRET)


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def rendered_logs():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(build_formatter(use_json=True))
    logging.getLogger().addHandler(handler)
    yield stream
    logging.getLogger().removeHandler(handler)


def assert_clean(text: str, credential: Credential) -> None:
    assert SECRET not in text
    assert credential.secret_ciphertext not in text


def test_admin_pages_never_show_the_secret(admin_client, credential):
    instance = InstanceFactory(credential=credential)
    for url in (
        "/admin/inventory/credential/",
        f"/admin/inventory/credential/{credential.pk}/change/",
        "/admin/inventory/instance/",
        f"/admin/inventory/instance/{instance.pk}/change/",
        f"/admin/inventory/credential/{credential.pk}/history/",
    ):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert_clean(response.content.decode(), credential)


def test_a_rejected_form_does_not_echo_the_typed_secret(admin_client, credential):
    response = admin_client.post(
        "/admin/inventory/credential/add/",
        {"name": credential.name, "username": "other", "secret": "Typed-New-Secret-99"},
    )
    assert response.status_code == 200  # duplicate name: the form comes back with an error
    assert "Typed-New-Secret-99" not in response.content.decode()


def test_changing_the_secret_through_the_admin_encrypts_it(admin_client, credential):
    response = admin_client.post(
        f"/admin/inventory/credential/{credential.pk}/change/",
        {"name": "monitor", "username": "whalefall", "secret": "Rotated-Secret-1", "engine": ""},
    )
    assert response.status_code == 302
    credential.refresh_from_db()
    assert credential.decrypt_secret() == "Rotated-Secret-1"


def test_leaving_the_secret_empty_keeps_it(admin_client, credential):
    admin_client.post(
        f"/admin/inventory/credential/{credential.pk}/change/",
        {"name": "monitor", "username": "renamed", "secret": "", "engine": ""},
    )
    credential.refresh_from_db()
    assert credential.username == "renamed"
    assert credential.decrypt_secret() == SECRET


def test_the_secret_field_is_a_sensitive_post_parameter(admin_user, credential):
    request = RequestFactory().post(
        f"/admin/inventory/credential/{credential.pk}/change/", {"secret": SECRET}
    )
    request.user = admin_user
    request._dont_enforce_csrf_checks = True
    from django.contrib import admin

    CredentialAdmin(Credential, admin.site).changeform_view(request, str(credential.pk))
    assert request.sensitive_post_parameters == ("secret",)


def test_audit_entries_show_the_secret_masked(admin_client, credential):
    admin_client.post(
        f"/admin/inventory/credential/{credential.pk}/change/",
        {"name": "monitor", "username": "whalefall", "secret": "Second-Secret-2", "engine": ""},
    )
    entries = LogEntry.objects.get_for_object(credential)
    assert entries.count() >= 2
    dump = json.dumps([e.changes for e in entries])
    assert SECRET not in dump
    assert "Second-Secret-2" not in dump
    credential.refresh_from_db()
    assert credential.secret_ciphertext not in dump
    update = entries.filter(action=LogEntry.Action.UPDATE).latest("timestamp")
    assert update.changes_dict["secret_ciphertext"] == ["********", "********"]
    assert "secret_changed_at" in update.changes_dict


def test_a_failed_connection_logs_and_stores_no_secret(credential, rendered_logs, monkeypatch):
    def echoing_driver(**kwargs):
        # Some drivers repeat what they were given; the engine must scrub it.
        raise MySQLdb.OperationalError(1045, f"Access denied (password '{kwargs['password']}')")

    monkeypatch.setattr(MySQLdb, "connect", echoing_driver)
    instance = InstanceFactory(credential=credential, engine="mysql")
    check = instance_test_connection(instance=instance)
    assert not check.ok
    assert check.kind == "authentication"
    instance.refresh_from_db()
    assert_clean(check.message, credential)
    assert_clean(instance.last_connection_error, credential)
    assert "***" in instance.last_connection_error
    assert_clean(rendered_logs.getvalue(), credential)
    assert "instance_connection_failed" in rendered_logs.getvalue()


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_exports_carry_no_secret(credential, file_format):
    InstanceFactory(credential=credential)
    data = instance_export(
        queryset=credential.instances.model.objects.all(), file_format=file_format
    )
    if file_format == "csv":
        text = data
    else:
        sheet = openpyxl.load_workbook(io.BytesIO(data)).active
        text = "\n".join(",".join(str(c) for c in row) for row in sheet.iter_rows(values_only=True))
    assert_clean(text, credential)
    assert "monitor" in text  # the credential is referred to by name only
    assert list(csv.reader(io.StringIO(text)))

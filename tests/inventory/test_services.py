"""Inventory services against the local MariaDB and PostgreSQL."""

import secrets

import MySQLdb
import psycopg
import pytest

from inventory import services
from inventory.models import Credential, Instance
from tests.inventory.factories import CredentialFactory, InstanceFactory, TagFactory

pytestmark = pytest.mark.django_db

MONITOR_PASSWORD = "Mon-" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def mariadb_monitor():
    """A monitoring account on the local MariaDB, dropped afterwards."""
    name = f"wf_svc_{secrets.token_hex(3)}"
    root = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="")
    cursor = root.cursor()
    cursor.execute(f"DROP USER IF EXISTS '{name}'@'%'")
    cursor.execute(f"CREATE USER '{name}'@'%%' IDENTIFIED BY %s", [MONITOR_PASSWORD])
    cursor.execute(f"GRANT SELECT ON mysql.* TO '{name}'@'%'")
    yield name
    cursor.execute(f"DROP USER IF EXISTS '{name}'@'%'")
    root.close()


@pytest.fixture(scope="module")
def postgres_monitor():
    """A monitoring role on the local PostgreSQL that must authenticate with its password."""
    name = f"wf_svc_{secrets.token_hex(3)}"
    with psycopg.connect(
        host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {name}")
        conn.execute(
            f"CREATE ROLE {name} LOGIN PASSWORD '{MONITOR_PASSWORD}' "
            "IN ROLE whalefall_password_auth"
        )
        yield name
        conn.execute(f"DROP ROLE IF EXISTS {name}")


def mariadb_instance(username, password=MONITOR_PASSWORD, **kwargs):
    credential = CredentialFactory(username=username, secret=password)
    return InstanceFactory(
        engine="mysql", host="127.0.0.1", port=3306, credential=credential, **kwargs
    )


def test_a_successful_test_stores_the_version(mariadb_monitor):
    instance = mariadb_instance(mariadb_monitor)
    check = services.instance_test_connection(instance=instance)
    assert check.ok, check.message
    instance.refresh_from_db()
    assert "MariaDB" in instance.version_raw
    assert instance.version_major_minor.count(".") == 1
    assert instance.version_full.startswith(instance.version_major_minor)
    assert instance.last_connection_ok is True
    assert instance.last_connected_at == instance.last_checked_at
    assert instance.last_connection_error == ""


def test_a_failed_test_keeps_the_last_success_and_records_the_error(mariadb_monitor):
    instance = mariadb_instance(mariadb_monitor)
    services.instance_test_connection(instance=instance)
    instance.refresh_from_db()
    connected_at = instance.last_connected_at
    instance.credential.set_secret("wrong-password")
    instance.credential.save()
    check = services.instance_test_connection(instance=Instance.objects.get(pk=instance.pk))
    assert (check.ok, check.kind) == (False, "authentication")
    instance.refresh_from_db()
    assert instance.last_connection_ok is False
    assert instance.last_connected_at == connected_at
    assert instance.last_checked_at > connected_at
    assert instance.last_connection_error.startswith("Authentication failed")
    assert "wrong-password" not in instance.last_connection_error


def test_several_instances_are_tested_in_one_call(mariadb_monitor, postgres_monitor):
    maria = mariadb_instance(mariadb_monitor)
    postgres = InstanceFactory(
        engine="postgresql",
        host="127.0.0.1",
        port=5432,
        database_name="postgres",
        credential=CredentialFactory(username=postgres_monitor, secret=MONITOR_PASSWORD),
    )
    no_credential = InstanceFactory(credential=None)
    checks = {
        c.instance_id: c
        for c in services.instance_test_connections(instances=[maria, postgres, no_credential])
    }
    assert checks[maria.pk].ok
    assert checks[postgres.pk].ok
    assert checks[no_credential.pk].kind == "credential"
    assert "PostgreSQL" in Instance.objects.get(pk=postgres.pk).version_raw


def test_retire_and_restore_are_idempotent():
    first, second = InstanceFactory(), InstanceFactory()
    assert services.instance_retire(instances=Instance.objects.all()) == 2
    assert services.instance_retire(instances=Instance.objects.all()) == 0
    assert Instance.objects.current().count() == 0
    assert services.instance_restore(instances=Instance.objects.filter(pk=first.pk)) == 1
    assert list(Instance.objects.syncable()) == [first]
    second.refresh_from_db()
    assert second.is_retired


def test_add_tags_keeps_existing_ones():
    old, new = TagFactory(slug="old"), TagFactory(slug="new")
    instance = InstanceFactory()
    instance.tags.add(old)
    services.instance_add_tags(instances=Instance.objects.all(), tags=[new])
    services.instance_add_tags(instances=Instance.objects.all(), tags=[new])
    assert set(instance.tags.values_list("slug", flat=True)) == {"old", "new"}


def test_an_administrator_registers_and_tests_an_instance_in_the_admin(
    client, admin_user, mariadb_monitor
):
    client.force_login(admin_user)
    response = client.post(
        "/admin/inventory/credential/add/",
        {
            "name": "local-monitor",
            "username": mariadb_monitor,
            "secret": MONITOR_PASSWORD,
            "engine": "mysql",
        },
    )
    assert response.status_code == 302
    credential = Credential.objects.get(name="local-monitor")
    response = client.post(
        "/admin/inventory/instance/add/",
        {
            "name": "local-mariadb",
            "engine": "mysql",
            "host": "127.0.0.1",
            "port": "",
            "credential": credential.pk,
            "tls_mode": "preferred",
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    instance = Instance.objects.get(name="local-mariadb")
    assert instance.port == 3306
    assert instance.credential == credential
    response = client.post(f"/admin/inventory/instance/{instance.pk}/test-connection/", follow=True)
    content = response.content.decode()
    messages = [str(m) for m in response.context["messages"]]
    assert any(m.startswith("local-mariadb: connected (version") for m in messages), messages
    instance.refresh_from_db()
    assert instance.version_full in content

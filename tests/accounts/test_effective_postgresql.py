"""Effective privileges synced from the real local PostgreSQL: PUBLIC, superuser roles,
predefined roles that escalate (SPEC §5.5)."""

import pytest

from accounts.models import Account, AccountChange, ChangeType
from accounts.services import account_sync_instance

pytestmark = pytest.mark.django_db


def get(instance, kind, name):
    return Account.objects.select_related("snapshot").get(
        instance=instance, kind=kind, name=name, host=""
    )


def grant(scope, obj, privilege, option=""):
    return {"scope": scope, "object": obj, "privilege": privilege, "option": option}


def test_public_holds_the_built_in_defaults_and_a_new_public_grant_is_a_change(
    postgres, postgres_instance
):
    database = postgres.database("pubdb")
    postgres.run(f'CREATE DATABASE "{database}"')
    postgres.run(f'GRANT CONNECT ON DATABASE "{database}" TO {postgres.prefix}monitor')
    postgres_instance.deep_privileges = True
    postgres_instance.save()
    account_sync_instance(instance=postgres_instance, run_id=1)

    public = get(postgres_instance, "public", "PUBLIC")
    grants = public.snapshot.privileges["grants"]
    assert grant("database", database, "CONNECT") in grants
    assert grant("database", database, "TEMPORARY") in grants
    fingerprint = public.snapshot.fingerprint

    postgres.run("GRANT CREATE ON SCHEMA public TO PUBLIC", database=database)
    account_sync_instance(instance=postgres_instance, run_id=2)

    public = get(postgres_instance, "public", "PUBLIC")
    assert public.snapshot.fingerprint != fingerprint
    assert grant("schema", f"{database}.public", "CREATE") in public.snapshot.privileges["grants"]
    change = AccountChange.objects.get(account=public, run_id=2)
    assert change.change_type == ChangeType.PRIVILEGES_CHANGED
    assert change.diff["grants_added"] == [grant("schema", f"{database}.public", "CREATE")]


def test_a_member_of_a_superuser_role_is_superuser_even_without_inherit(
    postgres, postgres_instance
):
    boss, app = postgres.role("boss"), postgres.role("app")
    postgres.run(
        f"CREATE ROLE {boss} SUPERUSER NOLOGIN",
        f"CREATE ROLE {app} LOGIN NOINHERIT",
        f"GRANT {boss} TO {app}",
    )
    account_sync_instance(instance=postgres_instance)

    account = get(postgres_instance, "user", app)
    assert account.snapshot.privileges["attributes"]["superuser"] is False
    assert account.snapshot.is_superuser
    paths = account.snapshot.facts["effective"]["role_paths"]
    assert paths == [{"role": boss, "via": [], "set_role": True}]
    assert Account.objects.filter(pk=account.pk).privileged().exists()


def test_pg_execute_server_program_is_escalation(postgres, postgres_instance):
    etl = postgres.role("etl")
    postgres.run(f"CREATE ROLE {etl} LOGIN", f"GRANT pg_execute_server_program TO {etl}")
    account_sync_instance(instance=postgres_instance)

    account = get(postgres_instance, "user", etl)
    assert account.snapshot.can_escalate
    assert not account.snapshot.is_superuser
    assert "pg_execute_server_program" in account.snapshot.facts["effective"]["roles"]

"""API v1 inventory resources: instances, credentials and tags, with the admin's rules.

A DBA scoped to instance A plays the attacker against instance B: listing it, opening it,
changing it, picking B's credential for A, reading or replacing B's credential.
"""

import socket

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from guardian.shortcuts import assign_perm

from inventory import services
from inventory.engines.base import VersionInfo
from inventory.models import Credential, Instance, Tag
from tests.inventory.factories import DEFAULT_SECRET, CredentialFactory, InstanceFactory, TagFactory

pytestmark = pytest.mark.django_db

INSTANCE_PERMS = ("view_instance", "change_instance", "delete_instance", "test_connection", "sync")
SECRET_A = "secret-of-A-1f9c"
SECRET_B = "secret-of-B-7d2e"


@pytest.fixture(autouse=True)
def _targets(settings):
    settings.WHALEFALL_ALLOWED_TARGETS = ["127.0.0.0/8", "10.0.0.0/8", "2001:db8::/32"]
    settings.WHALEFALL_ALLOW_LOOPBACK = True


@pytest.fixture
def estate(roles, scoped_user):
    """Instances A and B with their own credentials and tags; a DBA scoped to A with every
    instance permission, and a Viewer scoped to A."""
    prod, test = TagFactory(slug="prod"), TagFactory(slug="test")
    cred_a = CredentialFactory(name="cred-a", secret=SECRET_A)
    cred_b = CredentialFactory(name="cred-b", secret=SECRET_B)
    a = InstanceFactory(
        name="instance-a", credential=cred_a, host="10.0.0.1", environment="production", tags=[prod]
    )
    b = InstanceFactory(name="instance-b", credential=cred_b, host="10.0.0.2", tags=[prod, test])
    return {
        "a": a,
        "b": b,
        "cred_a": cred_a,
        "cred_b": cred_b,
        "prod": prod,
        "test": test,
        "dba": scoped_user("DBAs", [a], INSTANCE_PERMS),
        "viewer": scoped_user("Viewers", [a]),
    }


def _error(response, status):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    return body["error"]


def _paths(response) -> dict[str, str]:
    error = _error(response, 400)
    assert error["code"] == "validation_error"
    return {field["path"]: field["code"] for field in error["fields"]}


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return sorted(row["id"] for row in response.json()["results"])


# --- Instances: reading -----------------------------------------------------------------


def test_unscoped_roles_list_every_instance_scoped_ones_only_theirs(
    estate, api_client, user_with_role
):
    a, b = estate["a"], estate["b"]
    for role in ("Administrators", "DBAs", "Auditors", "Viewers"):
        assert _ids(api_client(user_with_role(role)).get("/api/v1/instances/")) == [a.pk, b.pk]
    for user in (estate["dba"], estate["viewer"]):
        client = api_client(user)
        assert _ids(client.get("/api/v1/instances/")) == [a.pk]
        assert client.get(f"/api/v1/instances/{a.pk}/").status_code == 200
        assert _error(client.get(f"/api/v1/instances/{b.pk}/"), 404)["code"] == "not_found"
    # Schedulers hold no instance permission at all.
    assert api_client(user_with_role("Schedulers")).get("/api/v1/instances/").status_code == 403


def test_an_instance_reads_as_on_its_page(estate, api_client, admin_user):
    a = estate["a"]
    body = api_client(admin_user).get(f"/api/v1/instances/{a.pk}/").json()
    assert body["name"] == "instance-a"
    assert body["url"].endswith(f"/api/v1/instances/{a.pk}/")
    assert body["credential"] == estate["cred_a"].pk
    assert body["tags"] == ["prod"]
    assert body["status"] == "not_tested"
    assert body["retired_at"] is None
    assert SECRET_A not in str(body)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("engine=mysql", {"a", "b"}),
        ("engine=postgresql", set()),
        ("environment=production", {"a"}),
        ("tag=test", {"b"}),
        ("tag=prod", {"a", "b"}),
        ("status=active", {"a", "b"}),
        ("status=retired", set()),
        ("search=INSTANCE-B", {"b"}),
        ("search=10.0.0.1", {"a"}),
    ],
)
def test_filters_mirror_the_admin_list_filters(estate, api_client, admin_user, query, expected):
    response = api_client(admin_user).get(f"/api/v1/instances/?{query}")
    assert _ids(response) == sorted(estate[label].pk for label in expected)


def test_status_filter_sees_retired_and_inactive(estate, api_client, admin_user):
    Instance.objects.filter(pk=estate["a"].pk).update(is_active=False)
    retired = InstanceFactory(host="10.0.0.3")
    services.instance_retire(instances=Instance.objects.filter(pk=retired.pk))
    client = api_client(admin_user)
    assert _ids(client.get("/api/v1/instances/?status=inactive")) == [estate["a"].pk]
    assert _ids(client.get("/api/v1/instances/?status=retired")) == [retired.pk]
    assert _ids(client.get("/api/v1/instances/?status=active")) == [estate["b"].pk]
    assert _paths(client.get("/api/v1/instances/?status=gone")) == {"status": "invalid_choice"}


def test_list_queries_do_not_depend_on_the_page(estate, api_client, admin_user):
    for n in range(8):
        InstanceFactory(host="10.0.1.1", tags=[estate["prod"], estate["test"]], name=f"bulk-{n}")
    client = api_client(admin_user)
    client.get("/api/v1/instances/?limit=2")  # token touch and other first-call writes
    counts, url = [], "/api/v1/instances/?limit=2"
    for _page in range(4):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200
        counts.append(len(queries))
        url = response.json()["next"]
    assert len(set(counts)) == 1, counts
    assert counts[0] <= 6


# --- Instances: writing -----------------------------------------------------------------


def test_create_applies_the_models_rules(estate, api_client, admin_user):
    client = api_client(admin_user, write=True)
    response = client.post(
        "/api/v1/instances/",
        {
            "name": "new-pg",
            "engine": "postgresql",
            "host": "[2001:DB8::0001]",
            "credential": estate["cred_a"].pk,
            "tags": ["test", "prod"],
        },
    )
    assert response.status_code == 201, response.content
    created = Instance.objects.get(name="new-pg")
    assert created.port == 5432  # the engine's default, as the admin form sets it
    assert response.json()["port"] == 5432
    assert created.host == response.json()["host"] == "2001:db8::1"  # canonical IP text
    assert set(created.tags.values_list("slug", flat=True)) == {"prod", "test"}


def test_read_only_tokens_and_read_only_roles_cannot_write(estate, api_client, user_with_role):
    data = {"name": "x", "engine": "mysql", "host": "10.0.0.9"}
    response = api_client(user_with_role("Administrators")).post("/api/v1/instances/", data)
    assert _error(response, 403)["code"] == "permission_denied"
    for role in ("Viewers", "Auditors"):
        client = api_client(user_with_role(role), write=True)
        assert client.post("/api/v1/instances/", data).status_code == 403
        assert client.patch(f"/api/v1/instances/{estate['a'].pk}/", {"owner": "x"}).status_code == (
            403
        )
    assert not Instance.objects.filter(name="x").exists()


def test_a_scoped_member_without_the_model_permission_cannot_add(estate, api_client):
    data = {"name": "x", "engine": "mysql", "host": "10.0.0.9"}
    response = api_client(estate["dba"], write=True).post("/api/v1/instances/", data)
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("change", "path", "code"),
    [
        ({"host": "10.0.0.1,10.0.0.2"}, "host", "invalid"),
        ({"host": "169.254.169.254"}, "host", "invalid"),
        ({"port": 70000}, "port", "max_value"),
        ({"engine": "oracle", "credential": "mysql-only"}, "credential", "invalid"),
        ({"tags": ["prod", "nope"]}, "tags[1]", "does_not_exist"),
        ({"engine": "db2"}, "engine", "invalid_choice"),
        ({"name": "bad\x00name"}, "name", "unstorable"),
    ],
)
def test_validation_errors_name_their_path(estate, api_client, admin_user, change, path, code):
    if change.get("credential") == "mysql-only":
        change["credential"] = CredentialFactory(engine="mysql").pk
    data = {"name": "new", "engine": "mysql", "host": "10.0.0.9", **change}
    response = api_client(admin_user, write=True).post("/api/v1/instances/", data)
    assert _paths(response).get(path) == code, response.json()
    assert not Instance.objects.filter(host="10.0.0.9").exists()


def test_an_unpaired_surrogate_is_a_field_error_not_a_crash(estate, api_client, admin_user):
    body = '{"name": "x", "engine": "mysql", "host": "10.0.0.9", "tags": ["prod", "\\ud800"]}'
    response = api_client(admin_user, write=True).post(
        "/api/v1/instances/", body, content_type="application/json"
    )
    assert _paths(response) == {"tags[1]": "unstorable"}


def test_the_credential_must_be_one_the_user_may_use(estate, api_client):
    client = api_client(estate["dba"], write=True)
    a = estate["a"]
    # B's credential does not exist for A's DBA: same answer as an unknown id.
    response = client.patch(f"/api/v1/instances/{a.pk}/", {"credential": estate["cred_b"].pk})
    assert _paths(response) == {"credential": "does_not_exist"}
    response = client.patch(f"/api/v1/instances/{a.pk}/", {"credential": 10**9})
    assert _paths(response) == {"credential": "does_not_exist"}
    a.refresh_from_db()
    assert a.credential_id == estate["cred_a"].pk
    # Its own instance's credential and its host are the DBA's to change.
    response = client.patch(f"/api/v1/instances/{a.pk}/", {"host": "10.0.0.5", "owner": "dba"})
    assert response.status_code == 200, response.content
    a.refresh_from_db()
    assert (a.host, a.owner) == ("10.0.0.5", "dba")


def test_moving_an_instance_needs_the_right_to_use_its_credential(estate, api_client, scoped_user):
    # May change A, holds no right to use any credential.
    a = estate["a"]
    editor = scoped_user("Viewers", [a], ("view_instance", "change_instance"))
    client = api_client(editor, write=True)
    # Keeping the credential while changing nothing about the connection is allowed...
    assert client.patch(f"/api/v1/instances/{a.pk}/", {"owner": "x"}).status_code == 200
    # ...sending it somewhere new is not (services.instance_connection_check).
    response = client.patch(f"/api/v1/instances/{a.pk}/", {"host": "10.0.0.99"})
    assert _paths(response) == {"credential": "invalid"}
    a.refresh_from_db()
    assert (a.host, a.owner) == ("10.0.0.1", "x")


def test_visible_but_not_changeable_is_403_hidden_is_404(estate, api_client):
    client = api_client(estate["viewer"], write=True)
    a, b = estate["a"], estate["b"]
    assert client.patch(f"/api/v1/instances/{a.pk}/", {"owner": "x"}).status_code == 403
    dba = api_client(estate["dba"], write=True)
    assert dba.patch(f"/api/v1/instances/{b.pk}/", {"owner": "x"}).status_code == 404
    assert dba.delete(f"/api/v1/instances/{b.pk}/").status_code == 404
    assert dba.post(f"/api/v1/instances/{b.pk}/retire/").status_code == 404
    assert Instance.objects.get(pk=b.pk).owner == ""


def test_delete_needs_the_delete_permission_on_the_instance(estate, api_client, scoped_user):
    a = estate["a"]
    changer = scoped_user("DBAs", [a], ("view_instance", "change_instance"))
    assert api_client(changer, write=True).delete(f"/api/v1/instances/{a.pk}/").status_code == 403
    response = api_client(estate["dba"], write=True).delete(f"/api/v1/instances/{a.pk}/")
    assert response.status_code == 204
    assert not Instance.objects.filter(pk=a.pk).exists()


def test_an_instance_with_history_is_retired_not_deleted(estate, api_client, admin_user):
    from tests.accounts.factories import make_account

    a = estate["a"]
    make_account(a, "root", host="%")
    response = api_client(admin_user, write=True).delete(f"/api/v1/instances/{a.pk}/")
    assert _error(response, 409)["code"] == "conflict"
    assert Instance.objects.filter(pk=a.pk).exists()


def test_retire_and_restore(estate, api_client):
    a = estate["a"]
    client = api_client(estate["dba"], write=True)
    response = client.post(f"/api/v1/instances/{a.pk}/retire/")
    assert response.status_code == 200
    assert response.json()["status"] == "retired"
    assert response.json()["retired_at"] is not None
    assert Instance.objects.current().filter(pk=a.pk).count() == 0
    assert client.post(f"/api/v1/instances/{a.pk}/retire/").status_code == 200  # no-op
    response = client.post(f"/api/v1/instances/{a.pk}/restore/")
    assert response.json()["status"] == "not_tested"
    assert Instance.objects.current().filter(pk=a.pk).count() == 1
    viewer = api_client(estate["viewer"], write=True)
    assert viewer.post(f"/api/v1/instances/{a.pk}/retire/").status_code == 403
    assert api_client(estate["dba"]).post(f"/api/v1/instances/{a.pk}/retire/").status_code == 403


@pytest.fixture
def closed_port() -> int:
    """A local TCP port nothing listens on (bound once to pick it, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def fake_probe(monkeypatch):
    """Connection tests succeed without a network and remember the secret they were sent."""
    sent = []

    def probe(instance_id, target):
        sent.append(target.secret)
        return services.ConnectionCheck(
            instance_id, ok=True, version=VersionInfo("8.0.36-log", "8.0", "8.0.36")
        )

    monkeypatch.setattr(services, "_probe", probe)
    return sent


def test_test_connection_calls_the_service_and_returns_its_result(estate, api_client, fake_probe):
    a = estate["a"]
    response = api_client(estate["dba"], write=True).post(
        f"/api/v1/instances/{a.pk}/test-connection/"
    )
    assert response.status_code == 200, response.content
    assert response.json() == {
        "instance": a.pk,
        "ok": True,
        "kind": "",
        "message": "",
        "version": {"raw": "8.0.36-log", "major_minor": "8.0", "full": "8.0.36"},
    }
    assert fake_probe == [SECRET_A]
    a.refresh_from_db()
    assert (a.last_connection_ok, a.version_full) == (True, "8.0.36")


def test_test_connection_refusals(estate, api_client, fake_probe, scoped_user):
    a, b = estate["a"], estate["b"]
    assert (
        api_client(estate["viewer"], write=True)
        .post(f"/api/v1/instances/{a.pk}/test-connection/")
        .status_code
        == 403
    )
    dba = api_client(estate["dba"], write=True)
    assert dba.post(f"/api/v1/instances/{b.pk}/test-connection/").status_code == 404
    # A tester who may not use the instance's credential gets the service's refusal.
    tester = scoped_user("Viewers", [a], ("view_instance", "test_connection"))
    response = api_client(tester, write=True).post(f"/api/v1/instances/{a.pk}/test-connection/")
    assert response.status_code == 200
    assert (response.json()["ok"], response.json()["kind"]) == (False, "not_allowed")
    assert fake_probe == []


def test_a_failed_connection_is_reported(estate, api_client, admin_user, closed_port):
    a = estate["a"]
    Instance.objects.filter(pk=a.pk).update(host="127.0.0.1", port=closed_port)
    response = api_client(admin_user, write=True).post(f"/api/v1/instances/{a.pk}/test-connection/")
    body = response.json()
    assert (body["ok"], body["kind"], body["version"]) == (False, "unreachable", None)
    assert body["message"]
    assert SECRET_A not in body["message"]


# --- Credentials ------------------------------------------------------------------------


def test_credential_create_takes_the_secret_and_never_returns_it(estate, api_client, admin_user):
    client = api_client(admin_user, write=True)
    response = client.post(
        "/api/v1/credentials/",
        {"name": "monitor", "username": "wf", "secret": "Tr1cky pass ", "engine": "mysql"},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert "secret" not in body
    assert "secret_ciphertext" not in body
    assert body["has_secret"] is True
    assert body["instance_count"] == 0
    stored = Credential.objects.get(name="monitor")
    assert stored.decrypt_secret() == "Tr1cky pass "  # not trimmed
    for url in ("/api/v1/credentials/", f"/api/v1/credentials/{stored.pk}/"):
        text = client.get(url).content.decode()
        assert "Tr1cky" not in text
        assert stored.secret_ciphertext not in text


def test_credential_secret_rules(estate, api_client, admin_user):
    client = api_client(admin_user, write=True)
    response = client.post("/api/v1/credentials/", {"name": "n", "username": "u"})
    assert _paths(response) == {"secret": "required"}
    cred = estate["cred_a"]
    changed_at = cred.secret_changed_at
    response = client.patch(f"/api/v1/credentials/{cred.pk}/", {"username": "other", "secret": ""})
    assert response.status_code == 200
    cred.refresh_from_db()
    assert (cred.username, cred.decrypt_secret()) == ("other", SECRET_A)
    assert cred.secret_changed_at == changed_at
    response = client.patch(f"/api/v1/credentials/{cred.pk}/", {"secret": "n3w"})
    cred.refresh_from_db()
    assert cred.decrypt_secret() == "n3w"
    assert "n3w" not in response.content.decode()


def test_credentials_follow_the_instance_scope(estate, api_client):
    client = api_client(estate["dba"], write=True)
    a_cred, b_cred = estate["cred_a"], estate["cred_b"]
    assert _ids(client.get("/api/v1/credentials/")) == [a_cred.pk]
    assert client.get(f"/api/v1/credentials/{b_cred.pk}/").status_code == 404
    response = client.patch(f"/api/v1/credentials/{b_cred.pk}/", {"secret": "stolen"})
    assert response.status_code == 404
    assert client.delete(f"/api/v1/credentials/{b_cred.pk}/").status_code == 404
    b_cred.refresh_from_db()
    assert b_cred.decrypt_secret() == SECRET_B
    # Its own instance's credential it may change.
    assert (
        client.patch(f"/api/v1/credentials/{a_cred.pk}/", {"secret": "rotated"}).status_code == 200
    )
    # Viewers hold no credential permission.
    assert api_client(estate["viewer"]).get("/api/v1/credentials/").status_code == 403


def test_a_shared_credential_is_seen_but_not_changed_from_one_instance(estate, api_client):
    shared = estate["cred_a"]
    Instance.objects.filter(pk=estate["b"].pk).update(credential=shared)
    client = api_client(estate["dba"], write=True)
    body = client.get(f"/api/v1/credentials/{shared.pk}/").json()
    assert body["instance_count"] == 1  # B is not the DBA's to count
    assert client.patch(f"/api/v1/credentials/{shared.pk}/", {"secret": "x"}).status_code == 403
    assert client.delete(f"/api/v1/credentials/{shared.pk}/").status_code == 403


def test_the_creator_of_a_credential_reaches_it(estate, api_client):
    client = api_client(estate["dba"], write=True)
    response = client.post("/api/v1/credentials/", {"name": "mine", "username": "u", "secret": "s"})
    assert response.status_code == 201, response.content
    pk = response.json()["id"]
    assert client.get(f"/api/v1/credentials/{pk}/").status_code == 200
    assert client.patch(f"/api/v1/credentials/{pk}/", {"description": "d"}).status_code == 200
    # ...and may connect A with it.
    response = client.patch(f"/api/v1/instances/{estate['a'].pk}/", {"credential": pk})
    assert response.status_code == 200, response.content


def test_a_credential_in_use_is_not_deleted(estate, api_client, admin_user):
    client = api_client(admin_user, write=True)
    response = client.delete(f"/api/v1/credentials/{estate['cred_a'].pk}/")
    assert _error(response, 409)["code"] == "conflict"
    unused = CredentialFactory()
    assert client.delete(f"/api/v1/credentials/{unused.pk}/").status_code == 204
    assert api_client(admin_user).delete(f"/api/v1/credentials/{unused.pk}/").status_code == 403


@pytest.mark.parametrize("resource", ["credentials", "tags"])
def test_credential_and_tag_queries_do_not_depend_on_the_page(estate, api_client, resource):
    for n in range(6):
        cred = CredentialFactory(name=f"bulk-{n}")
        InstanceFactory(credential=cred, host="10.0.1.1", tags=[TagFactory()])
        # Scoped: the credential and instance scopes are part of every page's queries.
        assign_perm("inventory.view_credential", estate["dba"], cred)
    client = api_client(estate["dba"])
    client.get(f"/api/v1/{resource}/?limit=1")
    counts, url = [], f"/api/v1/{resource}/?limit=1"
    for _page in range(3):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200
        counts.append(len(queries))
        url = response.json()["next"]
    assert len(set(counts)) == 1, counts


# --- Tags -------------------------------------------------------------------------------


def test_tags_are_shared_and_count_only_visible_instances(estate, api_client, admin_user):
    def counts(user):
        rows = api_client(user).get("/api/v1/tags/").json()["results"]
        return {row["slug"]: row["instance_count"] for row in rows}

    assert counts(admin_user) == {"prod": 2, "test": 1}
    assert counts(estate["viewer"]) == {"prod": 1, "test": 0}


def test_tag_crud_by_role(estate, api_client, user_with_role):
    dba = api_client(user_with_role("DBAs"), write=True)
    response = dba.post("/api/v1/tags/", {"slug": "eu", "name": "EU", "category": "location"})
    assert response.status_code == 201, response.content
    pk = response.json()["id"]
    assert response.json()["instance_count"] == 0
    assert dba.patch(f"/api/v1/tags/{pk}/", {"colour": "#1f77b4"}).status_code == 200
    assert Tag.objects.get(pk=pk).colour == "#1f77b4"
    assert _paths(dba.patch(f"/api/v1/tags/{pk}/", {"colour": "red"})) == {"colour": "invalid"}
    assert _paths(dba.post("/api/v1/tags/", {"slug": "eu", "name": "x"})) == {"slug": "unique"}
    viewer = api_client(user_with_role("Viewers"), write=True)
    assert viewer.get(f"/api/v1/tags/{pk}/").status_code == 200
    assert viewer.delete(f"/api/v1/tags/{pk}/").status_code == 403
    assert dba.delete(f"/api/v1/tags/{pk}/").status_code == 204
    assert dba.get("/api/v1/tags/?category=team").json()["results"] == []


def test_secret_default_is_not_in_any_answer(estate, api_client, admin_user):
    client = api_client(admin_user)
    for url in ("/api/v1/instances/", "/api/v1/credentials/", "/api/v1/tags/"):
        assert DEFAULT_SECRET not in client.get(url).content.decode()
        assert SECRET_A not in client.get(url).content.decode()


def test_api_writes_are_audited_under_the_tokens_owner(estate, api_client):
    from auditlog.models import LogEntry

    client = api_client(estate["dba"], write=True)
    a, cred = estate["a"], estate["cred_a"]
    assert client.patch(f"/api/v1/instances/{a.pk}/", {"owner": "team-x"}).status_code == 200
    entry = LogEntry.objects.get_for_object(a).order_by("-pk").first()
    assert entry.actor == estate["dba"]
    assert entry.changes_dict["owner"] == ["", "team-x"]
    assert (
        client.patch(f"/api/v1/credentials/{cred.pk}/", {"secret": "fresh-9x"}).status_code == 200
    )
    entry = LogEntry.objects.get_for_object(cred).order_by("-pk").first()
    assert entry.actor == estate["dba"]
    assert "fresh-9x" not in str(entry.changes)

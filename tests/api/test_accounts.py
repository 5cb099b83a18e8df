"""API of accounts: the account list and page with canonical and effective privileges, the
change history and its feed, the access review — with the admin's permissions and scope."""

import io
from datetime import timedelta

import openpyxl
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.admin import ACCESS_REVIEW_TYPES
from accounts.models import Account, AccountChange
from classification.models import Assignment, Classification
from tests.accounts.factories import make_account
from tests.inventory.factories import InstanceFactory, TagFactory

ROLES = ["Administrators", "DBAs", "Auditors", "Schedulers", "Viewers"]
READERS = {"Administrators", "DBAs", "Auditors"}
REVIEWERS = {"Administrators", "Auditors"}


def via(scope, obj, privilege, path, option="", set_role=False):
    return {"scope": scope, "object": obj, "privilege": privilege, "option": option,
            "via": list(path), "set_role": set_role}  # fmt: skip


@pytest.fixture
def data():
    """Instance a (MySQL): root (superuser), app, PUBLIC, bob (superuser through roles);
    instance b (PostgreSQL): b_owner (can escalate) and a removed account."""
    tag = TagFactory(slug="prod")
    a = InstanceFactory(name="instance-a", engine="mysql", tags=[tag])
    b = InstanceFactory(name="instance-b", engine="postgresql")
    root = make_account(
        a, "root", host="%",
        grants=[("global", "", "SUPER", "GRANT"), ("database", "Shop_Mixed", "SELECT", "")],
        attributes={"superuser": True, "locked": False},
    )  # fmt: skip
    app = make_account(
        a, "app", host="10.%", grants=[("table", "shop.orders", "UPDATE", "")], roles=["reader"]
    )
    public = make_account(
        a, "PUBLIC", kind="public", grants=[("database", "wiki", "SELECT", "")],
        effective={"grants": [via("database", "wiki", "SELECT", [])]},
    )  # fmt: skip
    bob = make_account(
        a, "bob", host="%", roles=["ops"],
        effective={
            "grants": [via("global", "", "ALL PRIVILEGES", ["ops", "admin"], "GRANT", True)],
            "roles": ["admin", "ops"],
            "role_paths": [{"role": "ops", "via": [], "set_role": True},
                           {"role": "admin", "via": ["ops"], "set_role": True}],
            "capabilities": ["ESCALATION", "GRANT_ADMIN", "SUPERUSER"],
        },
    )  # fmt: skip
    owner = make_account(
        b, "b_owner", grants=[("database", "b", "OWNER", "")],
        effective={"grants": [], "capabilities": ["ESCALATION"]},
    )  # fmt: skip
    gone = make_account(b, "gone", grants=[("database", "b", "CONNECT", "")])
    Account.objects.filter(pk=gone.pk).update(removed_at=timezone.now())
    return {"a": a, "b": b, "root": root, "app": app, "public": public, "bob": bob,
            "owner": owner, "gone": gone}  # fmt: skip


def _error(response, status):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


def _names(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {row["identity"] for row in response.json()["results"]}


# --- Accounts ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_who_may_read_accounts(api_client, user_with_role, data, role):
    client = api_client(user_with_role(role))
    urls = ["/api/v1/accounts/", f"/api/v1/accounts/{data['root'].pk}/"]
    expected = 200 if role in READERS else 403
    assert [client.get(url).status_code for url in urls] == [expected] * 2


@pytest.mark.django_db
def test_a_scoped_user_sees_only_the_accounts_of_their_instances(api_client, scoped_user, data):
    client = api_client(scoped_user("Auditors", [data["a"]]))
    assert _names(client.get("/api/v1/accounts/?limit=1000")) == {
        "root@%", "app@10.%", "PUBLIC", "bob@%",
    }  # fmt: skip
    # Another instance's account: as if it did not exist, even through a filter.
    _error(client.get(f"/api/v1/accounts/{data['owner'].pk}/"), 404)
    assert _names(client.get(f"/api/v1/accounts/?instance={data['b'].pk}")) == set()
    assert client.get(f"/api/v1/accounts/{data['root'].pk}/").status_code == 200
    # Nothing granted: refused, as the admin refuses its pages.
    nobody = api_client(scoped_user("Auditors", []))
    for url in (
        "/api/v1/accounts/",
        "/api/v1/account-changes/",
        "/api/v1/account-changes/?since=0",
    ):
        _error(nobody.get(url), 403)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("superuser=true", {"root@%", "bob@%"}),
        ("can_grant=true", {"root@%", "bob@%"}),
        ("can_escalate=true", {"bob@%", "b_owner"}),
        ("privileged=true", {"root@%", "bob@%", "b_owner"}),
        ("privileged=false", {"app@10.%", "PUBLIC", "gone"}),
        ("kind=public", {"PUBLIC"}),
        ("engine=postgresql", {"b_owner", "gone"}),
        ("tag=prod&superuser=false", {"app@10.%", "PUBLIC"}),
        ("removed=true", {"gone"}),
        ("removed=false&engine=postgresql", {"b_owner"}),
        ("search=B", {"bob@%", "b_owner"}),
        ("locked=true", set()),
        ("anonymous=false&search=ap", {"app@10.%"}),
    ],
)
def test_account_filters_mirror_the_admin(api_client, admin_user, data, query, expected):
    client = api_client(admin_user)
    assert _names(client.get(f"/api/v1/accounts/?limit=1000&{query}")) == expected


@pytest.mark.django_db
def test_accounts_by_instance_and_classification(api_client, admin_user, data):
    high = Classification.objects.create(code="t-high", name="T high", risk_level=1)
    Assignment.objects.create(account=data["app"], classification=high, source="manual")
    client = api_client(admin_user)
    both = f"{data['a'].pk},{data['b'].pk}"
    assert len(_names(client.get(f"/api/v1/accounts/?instance={both}"))) == 6
    assert _names(client.get("/api/v1/accounts/?classification=t-high")) == {"app@10.%"}
    assert "app@10.%" not in _names(client.get("/api/v1/accounts/?classification=none"))
    row = client.get(f"/api/v1/accounts/?instance={data['a'].pk}&search=app").json()["results"]
    assert row[0]["classifications"] == [
        {"code": "t-high", "name": "T high", "risk_level": 1, "source": "manual"}
    ]
    error = _error(client.get("/api/v1/accounts/?engine=db2&superuser=maybe"), 400)
    assert {f["path"] for f in error["fields"]} == {"engine", "superuser"}


@pytest.mark.django_db
def test_the_list_is_light_unless_privileges_are_asked_for(api_client, admin_user, data):
    client = api_client(admin_user)
    row = client.get(f"/api/v1/accounts/?search=root&instance={data['a'].pk}").json()
    row = row["results"][0]
    assert "privileges" not in row
    assert "facts" not in row
    assert "effective" not in row
    assert row["superuser"] is True
    assert row["privileged"] is True
    assert row["instance"] == data["a"].pk
    assert row["engine"] == "mysql"
    expanded = client.get("/api/v1/accounts/?search=root&expand=privileges").json()["results"][0]
    assert expanded["privileges"] == data["root"].snapshot.privileges
    assert "SUPERUSER" in expanded["capabilities"]


@pytest.mark.django_db
def test_an_account_with_its_canonical_and_effective_privileges(api_client, scoped_user, data):
    client = api_client(scoped_user("Auditors", [data["a"]]))
    body = client.get(f"/api/v1/accounts/{data['bob'].pk}/").json()
    bob = Account.objects.get(pk=data["bob"].pk)
    assert body["privileges"] == bob.snapshot.privileges  # its own set: no grants
    assert body["privileges"]["grants"] == []
    assert body["privileges"]["roles"] == ["ops"]
    assert body["facts"] == bob.snapshot.facts
    effective = body["effective"]
    assert effective["resolved"] is True
    assert set(effective["capabilities"]) >= {"SUPERUSER", "GRANT_ADMIN", "ESCALATION"}
    assert effective["roles"] == ["admin", "ops"]
    assert effective["role_paths"][1] == {"role": "admin", "via": ["ops"], "set_role": True}
    assert effective["public_account"] == data["public"].pk
    grants = {(g["privilege"], g["object"]): g for g in effective["grants"]}
    assert grants[("ALL PRIVILEGES", "")] == {
        **via("global", "", "ALL PRIVILEGES", ["ops", "admin"], "GRANT", True),
        "provenance": "via ops → admin (SET ROLE)",
    }
    assert grants[("SELECT", "wiki")]["via"] == ["PUBLIC"]
    assert grants[("SELECT", "wiki")]["provenance"] == "via PUBLIC"

    root = client.get(f"/api/v1/accounts/{data['root'].pk}/").json()
    own = [g for g in root["effective"]["grants"] if g["privilege"] == "SUPER"]
    assert own == [{**via("global", "", "SUPER", [], "GRANT"), "provenance": "direct"}]
    assert "SUPERUSER" in root["effective"]["direct_capabilities"]


def _count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(queries)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["accounts", "account-changes"])
def test_queries_do_not_depend_on_page_size_or_number(api_client, admin_user, data, path):
    high = Classification.objects.create(code="t-many", name="T many", risk_level=2)
    for index in range(24):
        account = make_account(data["a"], f"more{index}", grants=[("global", "", "SELECT", "")])
        Assignment.objects.create(account=account, classification=high, source="manual")
    client = api_client(admin_user)
    client.get(f"/api/v1/{path}/?limit=2")  # token use recorded once
    first = client.get(f"/api/v1/{path}/?limit=5").json()
    counts = {
        _count_queries(client, f"/api/v1/{path}/?limit=2"),
        _count_queries(client, f"/api/v1/{path}/?limit=20"),
        _count_queries(client, first["next"]),
        _count_queries(client, client.get(first["next"]).json()["next"]),
    }
    assert len(counts) == 1, counts


# --- Account changes --------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_who_may_read_the_change_history(api_client, user_with_role, data, role):
    client = api_client(user_with_role(role))
    change = data["root"].changes.get()
    urls = [
        "/api/v1/account-changes/",
        f"/api/v1/account-changes/{change.pk}/",
        "/api/v1/account-changes/?since=0",
    ]
    expected = 200 if role in READERS else 403
    assert [client.get(url).status_code for url in urls] == [expected] * 3


@pytest.mark.django_db
def test_changes_newest_first_with_their_account_and_instance(api_client, admin_user, data):
    extra = AccountChange.objects.create(
        account=data["app"], instance=data["a"], engine="mysql", run_id=42,
        detected_at=timezone.now(), change_type="privileges_changed", summary="+1 grant",
        diff={"grants_added": [via("global", "", "PROCESS", [])]}, privileged=False,
    )  # fmt: skip
    client = api_client(admin_user)
    rows = client.get("/api/v1/account-changes/").json()["results"]
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)
    assert rows[0] == {
        "id": extra.pk,
        "detected_at": rows[0]["detected_at"],
        "change_type": "privileges_changed",
        "summary": "+1 grant",
        "privileged": False,
        "run_id": 42,
        "engine": "mysql",
        "account": data["app"].pk,
        "account_identity": "app@10.%",
        "instance": data["a"].pk,
        "instance_name": "instance-a",
        "diff": extra.diff,
    }
    detail = client.get(f"/api/v1/account-changes/{extra.pk}/").json()
    assert detail == rows[0]


@pytest.mark.django_db
def test_a_diff_is_returned_exactly_whatever_its_text(api_client, admin_user, data):
    # The diff is written into the answer as the database's JSON text, not re-encoded.
    tricky = 'q"uote \\ back\u2028line \u00e9\u4e2d \\u00000\\u0000 </script>'
    change = AccountChange.objects.create(
        account=data["app"], instance=data["a"], engine="mysql", detected_at=timezone.now(),
        change_type="attributes_changed", summary=f'"\\u00000\\u0000" {tricky}',
        diff={"attributes": {tricky: [None, 1.5]}, "grants_added": [{"object": tricky}]},
    )  # fmt: skip
    response = api_client(admin_user).get("/api/v1/account-changes/", {"limit": 1000})
    assert "\u2028".encode() not in response.content  # escaped, as DRF does
    row = next(r for r in response.json()["results"] if r["id"] == change.pk)
    assert row["diff"] == change.diff
    assert row["summary"] == change.summary
    every = {r["id"]: r["diff"] for r in response.json()["results"]}
    assert every == dict(AccountChange.objects.values_list("pk", "diff"))


@pytest.mark.django_db
def test_change_filters(api_client, admin_user, data):
    old = AccountChange.objects.create(
        account=data["owner"], instance=data["b"], engine="postgresql", run_id=7,
        detected_at=timezone.now() - timedelta(days=40), change_type="removed",
        summary="removed", diff={}, privileged=True,
    )  # fmt: skip
    client = api_client(admin_user)

    def ids(query):
        response = client.get(f"/api/v1/account-changes/?limit=1000&{query}")
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    everything = set(AccountChange.objects.values_list("pk", flat=True))
    assert ids("") == everything
    assert ids("run=7") == {old.pk}
    assert ids("change_type=removed") == {old.pk}
    assert ids("change_type=removed&change_type=created") == everything
    assert ids(f"account={data['owner'].pk}") == set(
        data["owner"].changes.values_list("pk", flat=True)
    )
    assert ids(f"instance={data['b'].pk}&privileged=true") == {
        old.pk, data["owner"].changes.get(change_type="created").pk,
    }  # fmt: skip
    before = (timezone.now() - timedelta(days=30)).isoformat()
    assert ids(f"detected_at_before={before.replace('+', '%2B')}") == {old.pk}
    assert ids(f"detected_at_after={before.replace('+', '%2B')}") == everything - {old.pk}
    for bound in ("0001-01-01T00:00:00%2B01:00", "9999-12-31T23:59:59-01:00", "yesterday"):
        response = client.get(f"/api/v1/account-changes/?detected_at_after={bound}")
        assert _error(response, 400)["fields"][0]["path"] == "detected_at", bound
    # Offsets PostgreSQL would refuse are read as the time they mean.
    assert ids("detected_at_after=2000-01-01T12:00:00-19:08") == everything
    assert ids("engine=postgresql&search=b_") == {
        old.pk, data["owner"].changes.get(change_type="created").pk,
    }  # fmt: skip


@pytest.mark.django_db
def test_a_scoped_user_sees_only_the_changes_of_their_instances(api_client, scoped_user, data):
    client = api_client(scoped_user("DBAs", [data["b"]]))
    visible = set(AccountChange.objects.filter(instance=data["b"]).values_list("pk", flat=True))
    rows = client.get("/api/v1/account-changes/?limit=1000").json()["results"]
    assert {row["id"] for row in rows} == visible
    hidden = data["root"].changes.get()
    _error(client.get(f"/api/v1/account-changes/{hidden.pk}/"), 404)
    assert client.get(f"/api/v1/account-changes/?account={data['root'].pk}").json()["results"] == []


@pytest.mark.django_db
@pytest.mark.parametrize("cursor", ["abc", "-1.5", "1.-5", "12", "1.2.3", f"{2**63}.1", "", "0.x"])
def test_an_invalid_feed_cursor_is_a_400_on_since(api_client, admin_user, cursor):
    error = _error(api_client(admin_user).get("/api/v1/account-changes/", {"since": cursor}), 400)
    assert error["code"] == "validation_error"
    assert [field["path"] for field in error["fields"]] == ["since"]


# Which changes the feed may return yet (those no open transaction can still precede,
# anywhere on the server) is the model's rule, tested with concurrent writers in
# tests/accounts/test_change_feed.py. Here every change counts as settled, so that these
# tests of the API do not wait on other transactions of a shared server.


def _feed(client, since="0", limit=None, **filters):
    """Every change from ``since`` to the end of the feed, and the calls it took."""
    rows, calls = [], []
    while True:
        params = {"since": since, **({"limit": limit} if limit else {}), **filters}
        response = client.get("/api/v1/account-changes/", params)
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"next_since", "has_more", "results"}
        calls.append(body)
        rows += body["results"]
        if not body["has_more"]:
            return rows, calls
        since = body["next_since"]


@pytest.fixture
def feed_data(db, monkeypatch):
    monkeypatch.setattr("accounts.models.committed_before", lambda queryset, field="txid": queryset)
    a, b = InstanceFactory(name="feed-a"), InstanceFactory(name="feed-b")
    for index in range(7):
        make_account(a if index % 2 else b, f"user{index}", grants=[("global", "", "SELECT", "")])
    return {"a": a, "b": b}


def test_the_feed_from_zero_returns_every_change_in_commit_order(api_client, admin_user, feed_data):
    rows, calls = _feed(api_client(admin_user))
    expected = list(AccountChange.objects.order_by("txid", "id").values_list("pk", flat=True))
    assert [row["id"] for row in rows] == expected
    assert len(calls) == 1
    assert calls[0]["next_since"].endswith(f".{expected[-1]}")
    assert rows[0]["account_identity"] == "user0"
    assert rows[0]["instance_name"] == "feed-b"


def test_the_feed_continues_from_each_cursor_without_gaps_or_repeats(
    api_client, admin_user, feed_data
):
    client = api_client(admin_user)
    whole, _calls = _feed(client)
    paged, calls = _feed(client, limit=2)
    assert [r["id"] for r in paged] == [r["id"] for r in whole]
    assert [len(call["results"]) for call in calls] == [2, 2, 2, 1]
    # Polling at the end: nothing new, the same cursor back.
    end = calls[-1]["next_since"]
    assert client.get("/api/v1/account-changes/", {"since": end}).json() == {
        "next_since": end, "has_more": False, "results": [],
    }  # fmt: skip
    # New changes arrive after the cursor, and only they.
    late = make_account(feed_data["a"], "late", grants=[("global", "", "SELECT", "")])
    new, _calls = _feed(client, since=end)
    assert [r["id"] for r in new] == [late.changes.get().pk]


def test_the_feed_keeps_scope_and_filters(api_client, scoped_user, admin_user, feed_data):
    a, b = feed_data["a"], feed_data["b"]
    rows, _calls = _feed(api_client(scoped_user("Auditors", [a])), limit=2)
    expected = AccountChange.objects.filter(instance=a).order_by("txid", "id")
    assert [r["id"] for r in rows] == list(expected.values_list("pk", flat=True))
    rows, _calls = _feed(api_client(admin_user), instance=b.pk, search="user4")
    assert [r["account_identity"] for r in rows] == ["user4"]


# --- Access review ----------------------------------------------------------------------


def _period():
    today = timezone.localdate()
    return {"start": (today - timedelta(days=1)).isoformat(), "end": today.isoformat()}


def _sheet(content: bytes, title: str) -> list[tuple]:
    return list(openpyxl.load_workbook(io.BytesIO(content))[title].iter_rows(values_only=True))


def _cells(rows: list[dict], header) -> list[tuple]:
    """JSON rows as a sheet's cells: the workbook's text cells are typed strings holding the
    values as they are (no formula guard, unlike CSV), an empty text an empty cell."""
    return [tuple(row[h] if row[h] != "" else None for h in header) for row in rows]


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_who_may_produce_the_access_review(api_client, user_with_role, data, role):
    response = api_client(user_with_role(role)).get("/api/v1/access-review/", _period())
    assert response.status_code == (200 if role in REVIEWERS else 403)


@pytest.mark.django_db
def test_the_access_review_has_the_admins_rows_as_json_and_xlsx(
    api_client, client, user_with_role, data
):
    high = Classification.objects.create(code="t-risk", name="T risk", risk_level=2)
    Assignment.objects.create(account=data["app"], classification=high, source="manual")
    auditor = user_with_role("Auditors")
    client.force_login(auditor)
    admin_file = client.post(
        "/admin/accounts/account/access-review/", {**_period(), "file_format": "xlsx"}
    )
    api = api_client(auditor)

    body = api.get("/api/v1/access-review/", _period()).json()
    assert body["start"] == _period()["start"]
    assert body["end"] == _period()["end"]
    people = _sheet(admin_file.content, "Privileged accounts")
    header = people[0]
    assert _cells(body["accounts"], header) == people[1:]
    changes = _sheet(admin_file.content, "Changes")
    assert _cells(body["changes"], changes[0]) == changes[1:]
    by_name = {row["account"]: row for row in body["accounts"]}
    assert set(by_name) == {"root@%", "bob@%", "b_owner", "app@10.%"}
    assert by_name["app@10.%"]["privileged_because"] == "T risk"
    assert by_name["bob@%"]["account_id"] == data["bob"].pk
    assert "[via ops → admin (SET ROLE)]" in by_name["bob@%"]["grants"]

    xlsx = api.get("/api/v1/access-review/", {**_period(), "format": "xlsx"})
    assert xlsx.status_code == 200
    assert xlsx["Content-Type"] == admin_file["Content-Type"]
    assert xlsx["Content-Disposition"] == admin_file["Content-Disposition"]
    for title in ("Privileged accounts", "Changes"):
        assert _sheet(xlsx.content, title) == _sheet(admin_file.content, title)
    csv = api.get("/api/v1/access-review/", {**_period(), "format": "csv"})
    assert csv["Content-Type"] == "text/csv"
    assert b"privileged_because" in csv.content


@pytest.mark.django_db
def test_the_access_review_of_a_scoped_auditor_and_chosen_instances(
    api_client, scoped_user, admin_user, data
):
    client = api_client(scoped_user("Auditors", [data["a"]]))
    body = client.get("/api/v1/access-review/", _period()).json()
    assert {row["account"] for row in body["accounts"]} == {"root@%", "bob@%"}
    assert {row["instance_id"] for row in body["changes"]} == {data["a"].pk}
    # Another instance's id is refused exactly like an id that does not exist.
    hidden = _error(client.get("/api/v1/access-review/", {"instance": data["b"].pk}), 400)
    missing = _error(client.get("/api/v1/access-review/", {"instance": 10**9}), 400)
    assert [f["path"] for f in hidden["fields"]] == ["instance"]
    assert [f["code"] for f in hidden["fields"]] == [f["code"] for f in missing["fields"]]

    admin = api_client(admin_user)
    chosen = admin.get("/api/v1/access-review/", {**_period(), "instance": data["b"].pk}).json()
    assert {row["account"] for row in chosen["accounts"]} == {"b_owner"}
    tagged = admin.get("/api/v1/access-review/", {**_period(), "tag": "prod"}).json()
    assert {row["account"] for row in tagged["accounts"]} == {"root@%", "bob@%"}
    nobody = api_client(scoped_user("Auditors", []))
    _error(nobody.get("/api/v1/access-review/", _period()), 403)


@pytest.mark.django_db
def test_access_review_errors_are_json_whatever_the_format(api_client, admin_user, data):
    client = api_client(admin_user)
    query = {"start": "2026-06-30", "end": "2026-01-01", "format": "xlsx"}
    error = _error(client.get("/api/v1/access-review/", query), 400)
    assert [f["path"] for f in error["fields"]] == ["end"]
    error = _error(client.get("/api/v1/access-review/", {"start": "soon"}), 400)
    assert [f["path"] for f in error["fields"]] == ["start"]
    assert client.get("/api/v1/access-review/", {"format": "pdf"}).status_code == 404
    # Asked for the workbook alone, by Accept: the error is still JSON.
    xlsx_only = client.get(
        "/api/v1/access-review/", {"end": "never"}, HTTP_ACCEPT=ACCESS_REVIEW_TYPES["xlsx"]
    )
    assert _error(xlsx_only, 400)["fields"][0]["path"] == "end"
    assert xlsx_only["Content-Type"] == "application/json"
    ok = client.get("/api/v1/access-review/", HTTP_ACCEPT=ACCESS_REVIEW_TYPES["xlsx"])
    assert ok["Content-Type"] == ACCESS_REVIEW_TYPES["xlsx"]
    for tag in ("no-such-tag", "bad\x00slug"):
        error = _error(client.get("/api/v1/access-review/", {"tag": tag}), 400)
        assert {f["path"] for f in error["fields"]} == {"tag[0]" if "\x00" in tag else "tag"}


@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai"])
def test_list_rows_written_directly_equal_what_drfs_fields_write(db, data, settings, zone):
    from django.utils import timezone as django_timezone
    from rest_framework import serializers as drf_serializers

    from accounts.admin import assignments_prefetch
    from accounts.api import AccountSerializer

    settings.TIME_ZONE = zone
    classification = Classification.objects.create(code="x", name="X", risk_level=2)
    Assignment.objects.create(account=data["root"], classification=classification, source="manual")
    now = django_timezone.now()
    no_snapshot = Account.objects.create(
        instance=data["a"], name="fresh", host="%", kind="user", first_seen_at=now, last_seen_at=now
    )
    accounts = (
        Account.objects.select_related("instance", "snapshot")
        .prefetch_related(assignments_prefetch())
        .order_by("pk")
    )
    with django_timezone.override(zone):
        for account in accounts:
            serializer = AccountSerializer(context={})
            fast = serializer.to_representation(account)
            generic = drf_serializers.ModelSerializer.to_representation(serializer, account)
            assert fast == dict(generic), account
            assert list(fast) == list(generic), "the same fields, in the same order"
    assert no_snapshot.pk in {a.pk for a in accounts}

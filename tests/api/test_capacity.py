"""API of capacity: the database ledger and its limits, daily samples on keyset pages over
their composite keys, aggregates, forecasts and the capacity of one instance."""

from datetime import timedelta

import pytest
from django.utils import timezone

from capacity.api import CompositeKeysetPagination
from capacity.models import AggregatePeriod, Database, DatabaseSizeSample, InstanceCapacity
from capacity.services import forecast_database, forecast_instance
from tests.capacity.factories import (
    GIB,
    DatabaseFactory,
    DatabaseSizeAggregateFactory,
    DatabaseSizeSampleFactory,
    InstanceCapacityFactory,
    InstanceSizeAggregateFactory,
    InstanceSizeSampleFactory,
)
from tests.inventory.factories import InstanceFactory, TagFactory

pytestmark = pytest.mark.django_db

DAYS = 12


@pytest.fixture
def estate(db):
    """Two instances with two present databases each (one removed on the first), twelve
    days of growing samples, aggregates and capacity rows."""
    today = timezone.localdate()
    prod = TagFactory(slug="prod")
    a = InstanceFactory(name="mysql-a", tags=[prod])
    b = InstanceFactory(name="pg-b", engine="postgresql", port=5432)
    databases = {
        "shop": DatabaseFactory(instance=a, name="shop", total_bytes=40 * GIB),
        "crm": DatabaseFactory(instance=a, name="crm", total_bytes=5 * GIB),
        "old": DatabaseFactory(instance=a, name="old", removed_at=timezone.now()),
        "ledger": DatabaseFactory(instance=b, name="ledger", total_bytes=8 * GIB),
        "audit": DatabaseFactory(instance=b, name="audit", total_bytes=GIB),
    }
    for database in databases.values():
        for offset in range(DAYS):
            DatabaseSizeSampleFactory(
                database=database,
                day=today - timedelta(days=offset),
                total_bytes=GIB + (DAYS - offset) * 1024**2,
            )
        DatabaseSizeAggregateFactory(database=database)
        DatabaseSizeAggregateFactory(database=database, period_type=AggregatePeriod.WEEK)
    for instance in (a, b):
        for offset in range(DAYS):
            InstanceSizeSampleFactory(
                instance=instance,
                day=today - timedelta(days=offset),
                total_bytes=10 * GIB + (DAYS - offset) * GIB,
            )
        InstanceSizeAggregateFactory(instance=instance)
    InstanceCapacityFactory(instance=a, total_bytes=45 * GIB, capacity_limit_bytes=100 * GIB)
    InstanceCapacityFactory(instance=b, total_bytes=9 * GIB)
    return {"a": a, "b": b, "today": today, **databases}


def _ids(response) -> list:
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


def _all_pages(client, url, params) -> list[dict]:
    rows, response = [], client.get(url, params)
    while True:
        assert response.status_code == 200, response.json()
        rows += response.json()["results"]
        if not response.json()["next"]:
            return rows
        response = client.get(response.json()["next"])


# --- Databases ----------------------------------------------------------------------------


def test_the_ledger_is_scoped_to_visible_instances(api_client, user_with_role, scoped_user, estate):
    everyone = api_client(user_with_role("Viewers"))
    assert len(_ids(everyone.get("/api/v1/capacity/databases/"))) == 5
    scoped = api_client(scoped_user("Viewers", [estate["b"]]))
    assert set(_ids(scoped.get("/api/v1/capacity/databases/"))) == {
        estate["ledger"].pk,
        estate["audit"].pk,
    }
    assert scoped.get(f"/api/v1/capacity/databases/{estate['shop'].pk}/").status_code == 404
    forecast = f"/api/v1/capacity/databases/{estate['shop'].pk}/forecast/"
    assert scoped.get(forecast).status_code == 404
    filtered = scoped.get("/api/v1/capacity/databases/", {"instance": estate["a"].pk})
    assert _ids(filtered) == []


def test_ledger_filters_mirror_the_admin(api_client, user_with_role, estate):
    client = api_client(user_with_role("Viewers"))
    url = "/api/v1/capacity/databases/"
    assert _ids(client.get(url, {"removed": "true"})) == [estate["old"].pk]
    assert len(_ids(client.get(url, {"removed": "false"}))) == 4
    pg = set(_ids(client.get(url, {"engine": "postgresql"})))
    assert pg == {estate["ledger"].pk, estate["audit"].pk}
    assert set(_ids(client.get(url, {"tag": "prod", "removed": "false"}))) == {
        estate["shop"].pk,
        estate["crm"].pk,
    }
    assert _ids(client.get(url, {"search": "SH"})) == [estate["shop"].pk]
    assert client.get(url, {"engine": "db2"}).status_code == 400
    assert client.get(url, {"instance": str(2**64)}).status_code == 400


def test_a_database_shows_its_limit_date_and_forecast(api_client, user_with_role, estate):
    shop = estate["shop"]
    Database.objects.filter(pk=shop.pk).update(
        capacity_limit_bytes=50 * GIB,
        growth_bytes_per_day=float(GIB),
        collected_at=timezone.now(),
    )
    client = api_client(user_with_role("Viewers"))
    body = client.get(f"/api/v1/capacity/databases/{shop.pk}/").json()
    assert body["instance"] == {"id": estate["a"].pk, "name": "mysql-a", "engine": "mysql"}
    assert body["limit_date"] == (estate["today"] + timedelta(days=10)).isoformat()
    forecast = client.get(f"/api/v1/capacity/databases/{shop.pk}/forecast/").json()
    shop.refresh_from_db()
    expected = forecast_database(shop)
    assert forecast["growth_30d"] == pytest.approx(expected.growth_30d)
    assert forecast["growth_30d"] == pytest.approx(1024**2)
    assert forecast["limit_bytes"] == 50 * GIB
    assert forecast["projected_date"] == expected.projected_date.isoformat()


def test_the_limit_is_set_by_those_the_admin_lets(api_client, user_with_role, scoped_user, estate):
    shop = estate["shop"]
    url = f"/api/v1/capacity/databases/{shop.pk}/"
    dba = api_client(user_with_role("DBAs"), write=True)
    response = dba.patch(url, {"capacity_limit_bytes": 60 * GIB, "name": "renamed"})
    assert response.status_code == 200
    assert response.json()["capacity_limit_bytes"] == 60 * GIB
    assert response.json()["name"] == "shop"
    shop.refresh_from_db()
    assert shop.capacity_limit_bytes == 60 * GIB
    cleared = dba.patch(url, {"capacity_limit_bytes": None}, format="json")
    assert cleared.json()["capacity_limit_bytes"] is None

    negative = dba.patch(url, {"capacity_limit_bytes": -1})
    assert negative.status_code == 400
    assert negative.json()["error"]["fields"][0]["path"] == "capacity_limit_bytes"
    assert dba.put(url, {"capacity_limit_bytes": 1}).status_code == 405

    read_only = api_client(user_with_role("DBAs"))
    assert read_only.patch(url, {"capacity_limit_bytes": 1}).status_code == 403
    viewer = api_client(user_with_role("Viewers"), write=True)
    assert viewer.patch(url, {"capacity_limit_bytes": 1}).status_code == 403
    scoped = api_client(scoped_user("DBAs", [estate["b"]]), write=True)
    assert scoped.patch(url, {"capacity_limit_bytes": 1}).status_code == 404
    own = f"/api/v1/capacity/databases/{estate['ledger'].pk}/"
    assert scoped.patch(own, {"capacity_limit_bytes": GIB}).status_code == 200
    shop.refresh_from_db()
    assert shop.capacity_limit_bytes is None


# --- Samples ------------------------------------------------------------------------------


def test_samples_of_one_database_over_a_date_range(api_client, user_with_role, estate):
    today = estate["today"]
    client = api_client(user_with_role("Viewers"))
    response = client.get(
        "/api/v1/capacity/database-samples/",
        {
            "database": estate["shop"].pk,
            "start": (today - timedelta(days=4)).isoformat(),
            "end": (today - timedelta(days=1)).isoformat(),
        },
    )
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [row["day"] for row in rows] == [
        (today - timedelta(days=offset)).isoformat() for offset in (1, 2, 3, 4)
    ]
    assert {row["database"] for row in rows} == {estate["shop"].pk}
    assert rows[0]["total_bytes"] == GIB + (DAYS - 1) * 1024**2


def test_sample_pages_walk_every_row_once_both_ways(api_client, user_with_role, estate):
    client = api_client(user_with_role("Viewers"))
    url = "/api/v1/capacity/database-samples/"
    rows = _all_pages(client, url, {"limit": 7})
    keys = [(row["database"], row["day"]) for row in rows]
    assert len(keys) == len(set(keys)) == DatabaseSizeSample.objects.count() == 5 * DAYS
    assert keys == sorted(keys, reverse=True)  # the primary key, read backwards

    # Back from the last page with "previous" gives the same rows in the same order.
    last = client.get(url, {"limit": 7})
    while last.json()["next"]:
        last = client.get(last.json()["next"])
    back, page = [], last
    while True:
        back = page.json()["results"] + back
        if not page.json()["previous"]:
            break
        page = client.get(page.json()["previous"])
    assert [(row["database"], row["day"]) for row in back] == keys


def test_sample_pages_cost_the_same_whatever_the_page(
    api_client, user_with_role, estate, django_assert_max_num_queries
):
    client = api_client(user_with_role("Viewers"))
    url = "/api/v1/capacity/database-samples/"
    client.get(url, {"limit": 3})  # the token's first use is recorded once
    with django_assert_max_num_queries(6) as first:
        page = client.get(url, {"limit": 3})
    for _ in range(15):
        page = client.get(page.json()["next"])
    with django_assert_max_num_queries(6) as later:
        page = client.get(page.json()["next"])
    assert page.json()["results"]
    assert len(later.captured_queries) == len(first.captured_queries)
    # No OFFSET: the position is a row comparison on the key.
    sql = later.captured_queries[-1]["sql"]
    assert "OFFSET" not in sql.upper()
    table = '"capacity_databasesizesample"'
    assert f'({table}."database_id", {table}."day") <' in sql


def test_samples_are_scoped_and_filtered_by_instance(
    api_client, user_with_role, scoped_user, estate
):
    scoped = api_client(scoped_user("Viewers", [estate["b"]]))
    rows = _all_pages(scoped, "/api/v1/capacity/database-samples/", {"limit": 100})
    assert {row["database"] for row in rows} == {estate["ledger"].pk, estate["audit"].pk}
    hidden = scoped.get(
        "/api/v1/capacity/database-samples/", {"database": estate["shop"].pk}
    ).json()
    assert hidden["results"] == []
    instances = _all_pages(scoped, "/api/v1/capacity/instance-samples/", {})
    assert {row["instance"] for row in instances} == {estate["b"].pk}
    assert len(instances) == DAYS

    everyone = api_client(user_with_role("Viewers"))
    of_a = everyone.get(
        "/api/v1/capacity/database-samples/", {"instance": estate["a"].pk, "limit": 1000}
    ).json()["results"]
    assert {row["database"] for row in of_a} == {
        estate["shop"].pk,
        estate["crm"].pk,
        estate["old"].pk,
    }


def test_a_forged_cursor_is_a_400(api_client, user_with_role, estate):
    client = api_client(user_with_role("Viewers"))
    url = "/api/v1/capacity/database-samples/"
    for cursor in ("zzz", "eyJyIjowLCJwIjpbMSwibm90LWEtZGF5Il19", "eyJyIjowLCJwIjpbMWUzMF19"):
        response = client.get(url, {"cursor": cursor})
        assert response.status_code == 400, cursor
        assert response.json()["error"]["fields"][0]["path"] == "cursor"
    huge = CompositeKeysetPagination.encode_keyset(False, [2**70, "2026-01-01"])
    assert client.get(url, {"cursor": huge}).status_code == 400


def test_samples_need_the_capacity_pages_permission(api_client, user_with_role, estate):
    # Auditors and Viewers read capacity; Schedulers do not.
    client = api_client(user_with_role("Schedulers"))
    assert client.get("/api/v1/capacity/database-samples/").status_code == 403
    assert client.get("/api/v1/capacity/instance-samples/").status_code == 403


# --- Aggregates ---------------------------------------------------------------------------


def test_aggregates_by_period_subject_and_scope(api_client, user_with_role, scoped_user, estate):
    client = api_client(user_with_role("Viewers"))
    url = "/api/v1/capacity/database-aggregates/"
    weeks = client.get(url, {"period": "week", "database": estate["shop"].pk}).json()["results"]
    assert len(weeks) == 1
    assert weeks[0]["period_type"] == "week"
    assert weeks[0]["trend"] == "stable"
    assert weeks[0]["change_percent"] == "0.00"
    of_a = client.get(url, {"instance": estate["a"].pk, "limit": 100}).json()["results"]
    assert len(of_a) == 6
    assert client.get(url, {"period": "year"}).status_code == 400

    scoped = api_client(scoped_user("Viewers", [estate["b"]]))
    seen = _all_pages(scoped, url, {"limit": 1})
    assert {row["database"] for row in seen} == {estate["ledger"].pk, estate["audit"].pk}
    hidden = next(iter(estate["shop"].size_aggregates.all()))
    assert scoped.get(f"{url}{hidden.pk}/").status_code == 404
    instances = scoped.get("/api/v1/capacity/instance-aggregates/").json()["results"]
    assert [row["instance"] for row in instances] == [estate["b"].pk]


# --- Capacity of one instance -------------------------------------------------------------


def test_capacity_of_one_instance(api_client, user_with_role, estate):
    a = estate["a"]
    client = api_client(user_with_role("Viewers"))
    response = client.get(f"/api/v1/capacity/instances/{a.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["instance"] == {"id": a.pk, "name": "mysql-a", "engine": "mysql"}
    assert body["total_bytes"] == 45 * GIB
    assert body["capacity_limit_bytes"] == 100 * GIB
    assert body["used_percent"] == 45.0
    # Present databases only, largest first.
    assert [d["name"] for d in body["databases"]] == ["shop", "crm"]
    expected = forecast_instance(a)
    assert body["forecast"]["growth_30d"] == pytest.approx(float(GIB))
    assert body["forecast"]["growth_30d"] == pytest.approx(expected.growth_30d)
    assert body["forecast"]["projected_date"] == expected.projected_date.isoformat()
    assert client.get(f"/api/v1/capacity/instances/{a.pk}/forecast/").json() == body["forecast"]

    b = client.get(f"/api/v1/capacity/instances/{estate['b'].pk}/").json()
    assert b["capacity_limit_bytes"] is None
    assert b["used_percent"] is None
    assert b["forecast"]["projected_date"] is None

    never = InstanceFactory(name="new")
    assert client.get(f"/api/v1/capacity/instances/{never.pk}/").status_code == 404


def test_instance_capacity_is_scoped_and_its_limit_set_as_in_the_admin(
    api_client, user_with_role, scoped_user, estate
):
    a, b = estate["a"], estate["b"]
    scoped = api_client(scoped_user("DBAs", [b]), write=True)
    assert scoped.get(f"/api/v1/capacity/instances/{a.pk}/").status_code == 404
    listed = scoped.get("/api/v1/capacity/instances/").json()["results"]
    assert [row["instance"]["id"] for row in listed] == [b.pk]
    limit = {"capacity_limit_bytes": 18 * GIB}
    assert scoped.patch(f"/api/v1/capacity/instances/{a.pk}/", limit).status_code == 404
    response = scoped.patch(f"/api/v1/capacity/instances/{b.pk}/", limit)
    assert response.status_code == 200
    assert response.json()["used_percent"] == 50.0
    assert InstanceCapacity.objects.get(pk=b.pk).capacity_limit_bytes == 18 * GIB

    viewer = api_client(user_with_role("Viewers"), write=True)
    assert viewer.patch(f"/api/v1/capacity/instances/{b.pk}/", limit).status_code == 403
    everyone = api_client(user_with_role("Viewers"))
    url = "/api/v1/capacity/instances/"
    postgres = everyone.get(url, {"engine": "postgresql"}).json()["results"]
    assert [row["instance"]["id"] for row in postgres] == [b.pk]
    named = everyone.get(url, {"search": "mysql"}).json()["results"]
    assert [row["instance"]["id"] for row in named] == [a.pk]


def test_instance_summary_queries_do_not_grow_with_databases(
    api_client, user_with_role, estate, django_assert_max_num_queries
):
    client = api_client(user_with_role("Viewers"))
    url = f"/api/v1/capacity/instances/{estate['a'].pk}/"
    client.get(url)
    with django_assert_max_num_queries(8) as few:
        client.get(url)
    for index in range(20):
        DatabaseFactory(instance=estate["a"], name=f"more_{index}", total_bytes=index)
    with django_assert_max_num_queries(8) as many:
        body = client.get(url).json()
    assert len(body["databases"]) == 22
    assert len(many.captured_queries) == len(few.captured_queries)


def test_ledger_pages_cost_the_same_whatever_the_page(
    api_client, user_with_role, estate, django_assert_max_num_queries
):
    client = api_client(user_with_role("Viewers"))
    url = "/api/v1/capacity/databases/"
    client.get(url, {"limit": 1})
    with django_assert_max_num_queries(6) as first:
        page = client.get(url, {"limit": 1})
    for _ in range(3):
        page = client.get(page.json()["next"])
    with django_assert_max_num_queries(6) as later:
        page = client.get(page.json()["next"])
    assert page.json()["results"]
    assert len(later.captured_queries) == len(first.captured_queries)


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/capacity/databases/",
        "/api/v1/capacity/database-samples/",
        "/api/v1/capacity/instance-samples/",
        "/api/v1/capacity/database-aggregates/",
        "/api/v1/capacity/instance-aggregates/",
        "/api/v1/capacity/instances/",
    ],
)
def test_a_scoped_member_without_instances_is_refused_as_in_the_admin(
    api_client, scoped_user, estate, url
):
    assert api_client(scoped_user("Viewers", [])).get(url).status_code == 403
    assert api_client(scoped_user("Viewers", [estate["b"]])).get(url).status_code == 200


def test_a_keyset_needs_several_columns_in_one_direction(rf):
    from django.core.exceptions import ImproperlyConfigured
    from rest_framework.request import Request

    class Mixed(CompositeKeysetPagination):
        ordering = ("-day", "database_id")  # no single index range serves it

    with pytest.raises(ImproperlyConfigured):
        Mixed().paginate_queryset(DatabaseSizeSample.objects.all(), Request(rf.get("/")))

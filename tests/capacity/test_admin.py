"""Capacity admin: who sees what (Viewers see capacity, not accounts; scoped users only their
instances), the ledger with growth and forecast, trend pages, actions, the dashboard panel."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from guardian.shortcuts import assign_perm

from capacity.models import AggregatePeriod, Database, TableSizeSnapshot
from capacity.services import database_growth_refresh
from inventory.engines.base import Unreachable
from syncjobs.models import Run, RunKind
from tests.capacity.factories import (
    GIB,
    DatabaseFactory,
    DatabaseSizeAggregateFactory,
    DatabaseSizeSampleFactory,
    InstanceCapacityFactory,
    InstanceSizeSampleFactory,
    TableSizeSnapshotFactory,
)
from tests.inventory.factories import InstanceFactory

pytestmark = pytest.mark.django_db

ROLES = ["Administrators", "DBAs", "Auditors", "Schedulers", "Viewers"]
READERS = {"Administrators", "DBAs", "Auditors", "Viewers"}
MIB = 1024**2


@pytest.fixture
def estate():
    today = timezone.localdate()
    a = InstanceFactory(name="mysql-a", engine="mysql")
    b = InstanceFactory(name="pg-b", engine="postgresql", port=5432)
    shop = DatabaseFactory(
        instance=a, name="Shop", total_bytes=12 * GIB, capacity_limit_bytes=20 * GIB,
        collected_at=timezone.now(),
    )  # fmt: skip
    logs = DatabaseFactory(instance=b, name="logs", total_bytes=3 * GIB)
    # Shop grows 100 MiB a day for the last 30 days.
    for age in range(30):
        day = today - timedelta(days=age)
        DatabaseSizeSampleFactory(database=shop, day=day, total_bytes=12 * GIB - age * 100 * MIB)
        InstanceSizeSampleFactory(instance=a, day=day, total_bytes=15 * GIB - age * 100 * MIB)
    database_growth_refresh(instance_ids=[a.pk, b.pk])
    InstanceCapacityFactory(instance=a, total_bytes=15 * GIB, database_count=1)
    InstanceCapacityFactory(instance=b, total_bytes=3 * GIB, database_count=1)
    return {"a": a, "b": b, "shop": shop, "logs": logs}


@pytest.mark.parametrize("role", ROLES)
def test_who_may_read_capacity(client, user_with_role, estate, role):
    client.force_login(user_with_role(role))
    pages = [
        "/admin/capacity/database/",
        f"/admin/capacity/database/{estate['shop'].pk}/change/",
        "/admin/capacity/instancecapacity/",
        f"/admin/capacity/instancecapacity/{estate['a'].pk}/change/",
    ]
    expected = 200 if role in READERS else 403
    assert [client.get(url).status_code for url in pages] == [expected] * 4


def test_viewers_see_capacity_but_no_accounts(client, user_with_role, estate):
    client.force_login(user_with_role("Viewers"))
    assert client.get("/admin/capacity/database/").status_code == 200
    assert client.get("/admin/accounts/account/").status_code == 403
    page = client.get(f"/admin/capacity/database/{estate['shop'].pk}/change/").content.decode()
    assert 'name="capacity_limit_bytes"' not in page  # read-only for Viewers
    assert "21474836480" not in page  # the limit is shown as a size


def test_a_scoped_dba_sees_only_its_instances(client, user_with_role, estate):
    dba = user_with_role("DBAs (scoped)")
    assign_perm("inventory.view_instance", dba, estate["a"])
    client.force_login(dba)
    ledger = client.get("/admin/capacity/database/")
    assert [d.name for d in ledger.context["cl"].result_list] == ["Shop"]
    assert client.get(f"/admin/capacity/database/{estate['logs'].pk}/change/").status_code in (
        302,
        403,
    )
    capacities = client.get("/admin/capacity/instancecapacity/").context["cl"].result_list
    assert [c.instance.name for c in capacities] == ["mysql-a"]


def test_ledger_shows_size_growth_and_forecast(client, user_with_role, estate):
    client.force_login(user_with_role("Auditors"))
    response = client.get("/admin/capacity/database/")
    rows = {row.name: row for row in response.context["cl"].result_list}
    assert rows["Shop"].growth_bytes_per_day == pytest.approx(100 * MIB)
    # 8 GiB left at 100 MiB a day: 82 more days.
    assert rows["Shop"].limit_date == timezone.localdate() + timedelta(days=82)
    assert rows["logs"].growth_bytes_per_day is None
    page = response.content.decode()
    assert "12.0\xa0GB" in page
    assert "+100.0\xa0MB/day" in page


def test_ledger_queries_do_not_grow_with_the_page(client, user_with_role, estate):
    client.force_login(user_with_role("Auditors"))
    client.get("/admin/capacity/database/")
    with CaptureQueriesContext(connection) as few:
        client.get("/admin/capacity/database/")
    for n in range(20):
        database = DatabaseFactory(instance=estate["b"], name=f"more{n}", total_bytes=GIB)
        DatabaseSizeSampleFactory(database=database, total_bytes=GIB)
    with CaptureQueriesContext(connection) as many:
        client.get("/admin/capacity/database/")
    assert len(many) == len(few)
    # Counting is capped by the paginator, never a full COUNT(*) of the ledger.
    counts = [q["sql"] for q in many if "COUNT(*)" in q["sql"] and "capacity_database" in q["sql"]]
    assert all("LIMIT" in sql for sql in counts)


def test_removed_databases_are_hidden_unless_asked(client, user_with_role, estate):
    Database.objects.filter(pk=estate["logs"].pk).update(removed_at=timezone.now())
    client.force_login(user_with_role("Auditors"))
    names = lambda url: [d.name for d in client.get(url).context["cl"].result_list]  # noqa: E731
    assert names("/admin/capacity/database/") == ["Shop"]
    assert names("/admin/capacity/database/?presence=removed") == ["logs"]
    assert sorted(names("/admin/capacity/database/?presence=all")) == ["Shop", "logs"]


def test_database_page_has_chart_forecast_aggregates_and_tables(client, user_with_role, estate):
    DatabaseSizeAggregateFactory(
        database=estate["shop"], period_type=AggregatePeriod.MONTH, change_bytes=3 * GIB
    )
    TableSizeSnapshotFactory(database=estate["shop"], table_name="orders")
    client.force_login(user_with_role("Viewers"))
    page = client.get(f"/admin/capacity/database/{estate['shop'].pk}/change/").content.decode()
    assert '<svg class="wf-chart"' in page
    assert "<polyline" in page
    assert "+100.0\xa0MB/day" in page  # the forecast's growth
    assert "+3.0\xa0GB (" in page  # the month's change
    assert "orders" in page
    assert "Month" in page
    assert "Read table sizes now" not in page  # Viewers may not trigger remote reads


def test_instance_page_charts_the_total_and_largest_databases(client, user_with_role, estate):
    client.force_login(user_with_role("DBAs"))
    url = f"/admin/capacity/instancecapacity/{estate['a'].pk}/change/"
    with CaptureQueriesContext(connection) as queries:
        page = client.get(url).content.decode()
    assert page.count("<polyline") == 2  # the instance total and Shop
    assert "instance total" in page
    sample_queries = [q for q in queries if "sizesample" in q["sql"]]
    assert len(sample_queries) <= 3


def test_dbas_set_capacity_limits(client, user_with_role, estate):
    client.force_login(user_with_role("DBAs"))
    response = client.post(
        f"/admin/capacity/database/{estate['logs'].pk}/change/",
        {"capacity_limit_bytes": str(5 * GIB)},
    )
    assert response.status_code == 302
    estate["logs"].refresh_from_db()
    assert estate["logs"].capacity_limit_bytes == 5 * GIB
    client.force_login(user_with_role("Auditors"))
    client.post(
        f"/admin/capacity/database/{estate['logs'].pk}/change/", {"capacity_limit_bytes": "1"}
    )
    estate["logs"].refresh_from_db()
    assert estate["logs"].capacity_limit_bytes == 5 * GIB


@pytest.mark.parametrize("page", ["database", "instancecapacity"])
def test_capacity_limits_are_typed_as_sizes(client, user_with_role, estate, page):
    obj = estate["logs"] if page == "database" else estate["b"].capacity
    url = f"/admin/capacity/{page}/{obj.pk}/change/"
    client.force_login(user_with_role("DBAs"))
    assert client.post(url, {"capacity_limit_bytes": "1.5 TB"}).status_code == 302
    obj.refresh_from_db()
    assert obj.capacity_limit_bytes == 1536 * GIB
    # Shown back exactly, so that saving the form again changes nothing.
    assert 'value="1536 GB"' in client.get(url).content.decode()

    response = client.post(url, {"capacity_limit_bytes": "lots"})
    assert response.status_code == 200
    assert "Enter a size such as 500 GB, 1.5 TB or a number of bytes." in response.content.decode()
    assert 'value="lots"' in response.content.decode()  # what was typed stays to be fixed
    obj.refresh_from_db()
    assert obj.capacity_limit_bytes == 1536 * GIB

    client.post(url, {"capacity_limit_bytes": ""})
    obj.refresh_from_db()
    assert obj.capacity_limit_bytes is None


def test_table_sizes_on_demand(client, user_with_role, estate, monkeypatch):
    calls = []

    def refresh(*, database):
        calls.append(database.pk)
        TableSizeSnapshotFactory(database=database, table_name="fresh")
        return 1

    monkeypatch.setattr("capacity.services.table_sizes_refresh", refresh)
    url = f"/admin/capacity/database/{estate['shop'].pk}/table-sizes/"
    client.force_login(user_with_role("Viewers"))
    assert client.post(url).status_code == 403
    client.force_login(user_with_role("DBAs"))
    assert (
        "Read table sizes now"
        in client.get(f"/admin/capacity/database/{estate['shop'].pk}/change/").content.decode()
    )
    response = client.post(url, follow=True)
    assert calls == [estate["shop"].pk]
    assert "1 table sizes read." in response.content.decode()
    assert TableSizeSnapshot.objects.filter(table_name="fresh").exists()


def test_table_sizes_failure_is_a_clear_message(client, user_with_role, estate, monkeypatch):
    def refresh(*, database):
        raise Unreachable("mysql-a (127.0.0.1:3306) is unreachable")

    monkeypatch.setattr("capacity.services.table_sizes_refresh", refresh)
    client.force_login(user_with_role("DBAs"))
    response = client.post(
        f"/admin/capacity/database/{estate['shop'].pk}/table-sizes/", follow=True
    )
    assert "Table sizes could not be read: mysql-a (127.0.0.1:3306) is unreachable" in (
        response.content.decode()
    )


def test_collect_now_starts_a_capacity_run(client, user_with_role, estate):
    client.force_login(user_with_role("DBAs"))
    response = client.post(
        "/admin/inventory/instance/",
        {"action": "collect_capacity_now", "_selected_action": [estate["a"].pk]},
    )
    assert response.status_code == 302
    run = Run.objects.get()
    assert run.kind == RunKind.CAPACITY
    assert list(run.items.values_list("instance_id", flat=True)) == [estate["a"].pk]
    client.force_login(user_with_role("Viewers"))
    client.post(
        "/admin/inventory/instance/",
        {"action": "collect_capacity_now", "_selected_action": [estate["b"].pk]},
    )
    assert Run.objects.count() == 1


def test_aggregate_now_is_for_those_who_sync_everything(
    client, user_with_role, estate, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr(
        "capacity.admin.aggregate_capacity.delay", lambda **kwargs: sent.append(kwargs)
    )
    client.force_login(user_with_role("DBAs"))
    assert "Aggregate now" in client.get("/admin/capacity/instancecapacity/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/capacity/instancecapacity/aggregate/")
    assert sent == [{"current": True, "user_id": int(client.session["_auth_user_id"])}]
    scoped = user_with_role("DBAs (scoped)")
    assign_perm("inventory.sync", scoped, estate["a"])
    client.force_login(scoped)
    assert client.post("/admin/capacity/instancecapacity/aggregate/").status_code == 403


def test_aggregate_now_with_the_queue_down_says_so_and_sends_nothing(
    client, user_with_role, estate, monkeypatch
):
    from syncjobs.services import QueueUnavailable

    sent = []
    monkeypatch.setattr(
        "capacity.admin.aggregate_capacity.delay", lambda **kwargs: sent.append(kwargs)
    )

    def broker_down():
        raise QueueUnavailable("Unreachable: connection refused")

    monkeypatch.setattr("capacity.admin.queue_check", broker_down)
    client.force_login(user_with_role("DBAs"))
    response = client.post("/admin/capacity/instancecapacity/aggregate/", follow=True)
    assert response.status_code == 200
    assert "The task queue is unavailable; nothing was started." in response.content.decode()
    assert sent == []


def test_partition_status_is_shown(client, user_with_role, estate):
    client.force_login(user_with_role("Administrators"))
    page = client.get("/admin/capacity/instancecapacity/").content.decode()
    assert "Sample partitions" in page
    assert f"{timezone.localdate():%Y-%m}" in page


def test_top_growers_on_the_dashboard(client, user_with_role, estate):
    DatabaseSizeAggregateFactory(database=estate["shop"], change_bytes=3 * GIB)
    DatabaseSizeAggregateFactory(database=estate["logs"], change_bytes=GIB)
    scoped = user_with_role("Viewers (scoped)")
    assign_perm("inventory.view_instance", scoped, estate["b"])
    client.force_login(scoped)
    page = client.get("/admin/").content.decode()
    assert "Top growing databases" in page
    assert ">logs</a>" in page
    assert ">Shop</a>" not in page
    client.force_login(user_with_role("Schedulers"))
    assert "Top growing databases" not in client.get("/admin/").content.decode()


def test_ledger_export(client, user_with_role, estate):
    client.force_login(user_with_role("Viewers"))
    response = client.post(
        "/admin/capacity/database/export/?presence=all",
        {"format": "0", "resource": "0", "databaseresource_name": "on",
         "databaseresource_total_bytes": "on", "databaseresource_instance": "on"},
    )  # fmt: skip
    body = response.content.decode()
    assert response["Content-Type"].startswith("text/csv")
    assert "Shop" in body
    assert str(12 * GIB) in body


def test_ledger_sorts_by_growth(client, user_with_role, estate):
    client.force_login(user_with_role("Auditors"))
    response = client.get("/admin/capacity/database/?o=5")
    assert [d.name for d in response.context["cl"].result_list] == ["Shop", "logs"]


def test_instance_filter_is_a_drop_down_for_an_estate(client, admin_user):
    from inventory.admin import VisibleInstanceFilter

    instances = [
        InstanceFactory(name=f"db-{n:02d} <&>")
        for n in range(VisibleInstanceFilter.links_up_to + 1)
    ]  # fmt: skip
    for instance in instances:
        DatabaseFactory(instance=instance, name="shop", total_bytes=GIB)
    client.force_login(admin_user)
    chosen = instances[3]
    page = client.get(f"/admin/capacity/database/?engine=mysql&o=2&p=2&instance={chosen.pk}")
    html = page.content.decode()
    form = html[html.index('<form method="get" class="wf-select-filter">') :]
    form = form[: form.index("</form>")]
    assert '<select name="instance" aria-label="instance">' in form
    assert f'<option value="{chosen.pk}" selected>db-03 &lt;&amp;&gt;</option>' in form
    assert '<option value="">All</option>' in form
    # The form keeps the other parameters but not the page number.
    assert '<input type="hidden" name="engine" value="mysql">' in form
    assert '<input type="hidden" name="o" value="2">' in form
    assert 'name="p"' not in form
    assert '<input type="hidden" name="instance"' not in form
    assert [d.instance_id for d in page.context["cl"].result_list] == [chosen.pk]


def test_instance_filter_links_a_few_instances(client, admin_user, estate):
    client.force_login(admin_user)
    html = client.get("/admin/capacity/database/").content.decode()
    assert '<select name="instance"' not in html
    assert f'href="?instance={estate["a"].pk}"' in html


@pytest.mark.parametrize("page", ["instancecapacity", "database"])
def test_detail_pages_read_their_row_once(client, admin_user, estate, page):
    obj = estate["a"].capacity if page == "instancecapacity" else estate["shop"]
    client.force_login(admin_user)
    url = f"/admin/capacity/{page}/{obj.pk}/change/"
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    table = f'"capacity_{page}"'
    reads = [
        q["sql"] for q in queries if q["sql"].startswith("SELECT") and f"FROM {table}" in q["sql"]
    ]
    assert len(reads) == 1, reads
    assert not [q for q in queries if 'FROM "inventory_instance" WHERE' in q["sql"]]

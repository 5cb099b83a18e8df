"""The dashboard a DBA lead opens every morning (issue 16): each panel's content for a user
who sees every instance and for one limited to some, every figure a link to the list of the
same rows, and a number of queries that does not grow with the data."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm

from accounts.models import AccountChange
from capacity.models import Database
from inventory.models import Instance
from syncjobs.models import ItemStatus, Run, RunStatus, failing_sync
from tests.accounts.factories import make_account
from tests.capacity.factories import GIB, DatabaseFactory
from tests.inventory.factories import InstanceFactory
from tests.syncjobs.factories import RunFactory, RunItemFactory

pytestmark = pytest.mark.django_db

SUPER = {"grants": [("global", "", "SUPER", "GRANT")], "attributes": {"superuser": True}}


@pytest.fixture(autouse=True)
def _no_platform_checks(monkeypatch):
    """The system health panel probes the broker; these tests are about the other panels."""
    monkeypatch.setattr("whalefall.admin.checks_for", lambda request: {})


def _finished(status: str) -> dict:
    return {"status": status, "finished_at": timezone.now()}


def add_instance(name: str, engine: str = "mysql", *, failing: bool = True) -> Instance:
    """An instance with a failed connection, a failed account sync in a failed run of
    today, a privileged account (hence a privileged change) and a database at 95 % of its
    limit."""
    instance = InstanceFactory(name=name, engine=engine, last_connection_ok=not failing)
    run = RunFactory(**_finished(RunStatus.FAILED), items_total=1, items_failed=1)
    RunItemFactory(run=run, instance=instance, **_finished(ItemStatus.FAILED), error="boom")
    make_account(instance, f"root_{name}", host="%", **SUPER)
    make_account(instance, f"app_{name}", host="%", grants=[("global", "", "SELECT", "")])
    DatabaseFactory(
        instance=instance,
        name=f"db_{name}",
        total_bytes=19 * GIB,
        capacity_limit_bytes=20 * GIB,
        collected_at=timezone.now(),
    )
    return instance


@pytest.fixture
def estate():
    own = add_instance("own-db")
    hidden = add_instance("hidden-db", "postgresql")
    healthy = InstanceFactory(name="healthy-db", last_connection_ok=True)
    old = RunFactory(**_finished(RunStatus.FAILED))
    Run.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    RunItemFactory(run=old, instance=healthy, **_finished(ItemStatus.FAILED))
    ok_run = RunFactory(**_finished(RunStatus.SUCCEEDED), items_total=1, items_succeeded=1)
    RunItemFactory(run=ok_run, instance=healthy, **_finished(ItemStatus.SUCCEEDED))
    return {"own": own, "hidden": hidden, "healthy": healthy, "old_run": old}


@pytest.fixture
def scoped_dba(user_with_role, estate):
    user = user_with_role("DBAs (scoped)")
    for perm in ("inventory.view_instance", "inventory.sync"):
        assign_perm(perm, user, estate["own"])
    return user


def panels(client) -> dict:
    response = client.get("/admin/")
    assert response.status_code == 200
    return {
        panel.template.rsplit("/", 1)[-1]: panel.context for panel in response.context["panels"]
    }


def figure_links(found: dict) -> list[tuple[int, str]]:
    """Every (figure, link) pair the panels show."""
    links = []
    estate = found["estate.html"]
    for row in estate["rows"]:
        links += row["cells"]
    links += estate["footer"]
    links += [(s["count"], s["url"]) for s in found["attention.html"]["sections"]]
    runs = found["recent_runs.html"]
    links += [(s["count"], s["url"]) for s in runs["statuses"]]
    links.append((runs["total"], runs["all_url"]))
    privileged = found["privileged.html"]
    links += [(f["count"], f["url"]) for f in privileged["accounts"]]
    links.append((privileged["changes_count"], privileged["changes_url"]))
    links += [(s["count"], s["url"]) for s in found["nearest_limit.html"]["steps"]]
    return links


def test_the_whole_estate_is_summed_up_for_an_administrator(client, admin_user, estate):
    client.force_login(admin_user)
    found = panels(client)
    labels = {row["label"] for row in found["estate.html"]["rows"]}
    assert labels == {"MySQL / MariaDB", "PostgreSQL"}
    total, _url = found["estate.html"]["footer"][0]
    failing, _url = found["estate.html"]["footer"][4]
    assert (total, failing) == (3, 2)
    connection, sync = found["attention.html"]["sections"]
    assert [r["name"] for r in connection["rows"]] == ["hidden-db", "own-db"]
    # The healthy instance's failure was two days ago, and a success followed it.
    assert [r["name"] for r in sync["rows"]] == ["hidden-db", "own-db"]
    runs = found["recent_runs.html"]
    assert runs["total"] == 3  # the old run is outside the 24 hours
    assert [r.shown_status for r in runs["rows"]][:2] == [RunStatus.FAILED] * 2
    assert runs["rows"][-1].shown_status == RunStatus.SUCCEEDED
    privileged = found["privileged.html"]
    assert privileged["accounts"][0]["count"] == 2  # superusers
    assert privileged["changes_count"] == 2
    assert {c.instance.name for c in privileged["changes"]} == {"own-db", "hidden-db"}
    limits = found["nearest_limit.html"]
    assert [s["count"] for s in limits["steps"]] == [2, 2, 0]
    assert [round(db.usage) for db in limits["rows"]] == [95, 95]
    assert "partitions.html" in found
    page = client.get("/admin/").content.decode()
    titles = [
        "Estate",
        "Instances needing attention",
        "Runs of the last 24 hours",
        "Privileged accounts",
        "Nearest their capacity limit",
        "Sample partitions",
    ]
    for title in titles:
        assert title in page


def test_a_scoped_dba_sees_nothing_of_hidden_instances(client, scoped_dba, estate):
    client.force_login(scoped_dba)
    page = client.get("/admin/").content.decode()
    for hidden in ("hidden-db", "healthy-db", "db_hidden-db", "root_hidden-db", "PostgreSQL"):
        assert hidden not in page
    assert "own-db" in page
    found = panels(client)
    assert [row["label"] for row in found["estate.html"]["rows"]] == ["MySQL / MariaDB"]
    assert found["estate.html"]["footer"][0][0] == 1
    assert [[r["name"] for r in s["rows"]] for s in found["attention.html"]["sections"]] == [
        ["own-db"],
        ["own-db"],
    ]
    assert found["recent_runs.html"]["total"] == 1
    assert found["privileged.html"]["changes_count"] == 1
    assert [s["count"] for s in found["nearest_limit.html"]["steps"]] == [1, 1, 0]
    # Partition figures are about the whole estate's tables.
    assert "partitions.html" not in found


@pytest.mark.parametrize("who", ["admin", "scoped"])
def test_every_figure_links_to_a_list_of_as_many_rows(client, admin_user, scoped_dba, who):
    client.force_login(admin_user if who == "admin" else scoped_dba)
    links = figure_links(panels(client))
    assert len(links) > 20
    for count, url in links:
        response = client.get(url)
        assert response.status_code == 200, url
        changelist = response.context["cl"]
        # A parameter the list does not know would be dropped with an error flag (?e=1).
        assert "e=1" not in response.get("Location", ""), url
        query = urlsplit(url).query
        assert not query or changelist.has_filters, url
        assert len(changelist.result_list) == count, url


def test_the_linked_lists_show_the_same_rows(client, admin_user, estate):
    client.force_login(admin_user)
    found = panels(client)
    sync = found["attention.html"]["sections"][1]
    listed = client.get(sync["url"]).context["cl"].result_list
    assert [i.name for i in listed] == [r["name"] for r in sync["rows"]]
    changes = found["privileged.html"]
    listed = client.get(changes["changes_url"]).context["cl"].result_list
    assert {c.pk for c in listed} == {c.pk for c in changes["changes"]}
    failed = next(s for s in found["recent_runs.html"]["statuses"] if s["status"] == "failed")
    listed = client.get(failed["url"]).context["cl"].result_list
    assert {r.pk for r in listed} == {
        r.pk for r in found["recent_runs.html"]["rows"] if r.shown_status == "failed"
    }
    step = found["nearest_limit.html"]["steps"][0]
    listed = client.get(step["url"]).context["cl"].result_list
    assert {d.pk for d in listed} == {d.pk for d in found["nearest_limit.html"]["rows"]}


def test_a_later_success_of_the_same_kind_clears_a_failing_sync(estate):
    own = estate["own"]
    capacity = RunFactory(kind=Run.Kind.CAPACITY, **_finished(RunStatus.SUCCEEDED))
    RunItemFactory(run=capacity, instance=own, **_finished(ItemStatus.SUCCEEDED))
    assert own in failing_sync(Instance.objects.all())  # another kind succeeded
    accounts = RunFactory(**_finished(RunStatus.SUCCEEDED))
    RunItemFactory(run=accounts, instance=own, **_finished(ItemStatus.SUCCEEDED))
    assert own not in failing_sync(Instance.objects.all())
    Instance.objects.filter(pk=estate["hidden"].pk).update(retired_at=timezone.now())
    assert not failing_sync(Instance.objects.all()).exists()


def test_an_unreadable_limit_share_lists_nothing(client, admin_user, estate):
    client.force_login(admin_user)
    response = client.get("/admin/capacity/database/?usage=ninety")
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []
    assert Database.objects.count() == 2


def test_a_member_without_instances_gets_no_estate_panels(client, user_with_role, estate):
    client.force_login(user_with_role("DBAs (scoped)"))
    found = panels(client)
    assert not {"estate.html", "attention.html", "privileged.html", "nearest_limit.html"} & set(
        found
    )


def test_viewers_get_no_account_panel_nor_links_to_runs(client, user_with_role, estate):
    client.force_login(user_with_role("Viewers"))
    found = panels(client)
    assert "privileged.html" not in found
    assert "nearest_limit.html" in found
    for section in found["attention.html"]["sections"]:
        assert section["rows"]
        assert all("items_url" not in row for row in section["rows"])
        assert client.get(section["url"]).status_code == 200


@pytest.mark.parametrize("who", ["admin", "scoped"])
def test_dashboard_queries_do_not_grow_with_the_data(
    client, admin_user, scoped_dba, django_assert_max_num_queries, who
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(admin_user if who == "admin" else scoped_dba)
    client.get("/admin/")  # session and permission caches warmed as on any later page
    with CaptureQueriesContext(connection) as small:
        client.get("/admin/")
    for index in range(12):
        instance = add_instance(f"more-{index}", "postgresql" if index % 2 else "mysql")
        if who == "scoped":
            assign_perm("inventory.view_instance", scoped_dba, instance)
    assert AccountChange.objects.count() > 20
    with CaptureQueriesContext(connection) as large:
        client.get("/admin/")
    assert len(large) == len(small)
    with django_assert_max_num_queries(40):
        client.get("/admin/")


def test_figures_over_big_tables_stop_at_a_cap(client, admin_user, estate, monkeypatch):
    monkeypatch.setattr("whalefall.dashboard.COUNT_CAP", 1)
    client.force_login(admin_user)
    found = panels(client)
    assert found["privileged.html"]["changes_count"] == 2
    assert str(found["privileged.html"]["changes_count"]) == "1+"
    assert "1+ privileged changes in the last 7 days" in client.get("/admin/").content.decode()

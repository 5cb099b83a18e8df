"""The branded admin site and the role matrix for the pages that exist so far (SPEC §1)."""

import pytest

pytestmark = pytest.mark.django_db

PAGES = {
    "periodic tasks": "/admin/django_celery_beat/periodictask/",
    "add periodic task": "/admin/django_celery_beat/periodictask/add/",
    "crontab schedules": "/admin/django_celery_beat/crontabschedule/",
    "audit log": "/admin/auditlog/logentry/",
    "users": "/admin/auth/user/",
    "add user": "/admin/auth/user/add/",
    "groups": "/admin/auth/group/",
}

ALLOWED = {
    "Administrators": set(PAGES),
    "DBAs": set(),
    "Auditors": {"audit log"},
    "Schedulers": {"periodic tasks", "add periodic task", "crontab schedules"},
    "Viewers": set(),
}


def test_anonymous_users_are_sent_to_the_login_page(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_root_redirects_to_the_admin(client):
    assert client.get("/")["Location"] == "/admin/"


def test_index_is_branded_and_shows_the_health_panel(client, admin_user):
    client.force_login(admin_user)
    response = client.get("/admin/")
    assert response.status_code == 200
    content = response.content.decode()
    assert "<title>Database estate | WhaleFall</title>" in content
    assert "System health" in content
    assert "Beat heartbeat" in content
    assert "no heartbeat recorded yet" in content


def test_the_health_panel_speaks_the_readers_language(client, admin_user):
    from whalefall.language import user_language_set

    user_language_set(user=admin_user, language="zh-hans")
    client.force_login(admin_user)
    content = client.get("/admin/").content.decode()
    assert "调度心跳" in content
    assert "尚未记录心跳" in content
    assert "no heartbeat recorded yet" not in content


def test_security_headers_on_admin_pages(client):
    response = client.get("/admin/login/")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize("role", sorted(ALLOWED))
@pytest.mark.parametrize("page", sorted(PAGES))
def test_role_matrix(client, user_with_role, role, page):
    client.force_login(user_with_role(role))
    status = client.get(PAGES[page]).status_code
    assert status == (200 if page in ALLOWED[role] else 403), (role, page, status)


def test_non_staff_users_cannot_enter_the_admin(client, user_with_role):
    client.force_login(user_with_role("Administrators", is_staff=False))
    assert client.get("/admin/").status_code == 302


def big_table_admins():
    from django.contrib import admin as django_admin

    from whalefall.admin import BigTableMixin

    return [ma for ma in django_admin.site._registry.values() if isinstance(ma, BigTableMixin)]


@pytest.mark.parametrize("model_admin", big_table_admins(), ids=lambda ma: ma.opts.label)
def test_big_tables_are_never_counted_in_full_even_with_facets_asked(
    client, admin_user, model_admin
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    opts = model_admin.opts
    client.force_login(admin_user)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/admin/{opts.app_label}/{opts.model_name}/?_facets=True")
    assert response.status_code == 200
    table = f'"{opts.db_table}"'
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"] and table in q["sql"]]
    assert all("LIMIT" in sql for sql in counts), counts
    assert "Show counts" not in response.content.decode()


@pytest.mark.parametrize("model_admin", big_table_admins(), ids=lambda ma: ma.opts.label)
def test_big_tables_have_no_filter_that_scans_them_whole(model_admin):
    from django.contrib import admin as django_admin

    assert model_admin.date_hierarchy is None  # a DISTINCT over the table for its links
    for spec in model_admin.list_filter:
        if isinstance(spec, tuple):
            assert spec[1] is not django_admin.RelatedOnlyFieldListFilter, spec


def test_the_favicon_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith("whalefall/favicon.svg")

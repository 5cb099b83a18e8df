"""Rows written by compiled columns are exactly the rows Django's admin writes, and what the
compiler does not cover is left to Django."""

from datetime import timedelta

import pytest
from django.contrib import admin as django_admin
from django.contrib.admin.templatetags import admin_list
from django.contrib.sessions.models import Session
from django.test import RequestFactory
from django.urls import resolve
from django.utils import timezone

from accounts.models import Account, AccountChange
from capacity.models import Database
from classification.models import Assignment, AssignmentSource, Classification
from tests.accounts.factories import make_account
from tests.capacity.factories import GIB, DatabaseFactory
from tests.factories import UserFactory
from tests.inventory.factories import InstanceFactory
from whalefall.admin import FastChangeListMixin
from whalefall.templatetags.whalefall_list import compile_row, fast_result_list

pytestmark = pytest.mark.django_db


def changelist(model_admin, url: str, user):
    request = RequestFactory().get(url)
    request.user = user
    request.resolver_match = resolve(request.path)
    cl = model_admin.get_changelist_instance(request)
    cl.formset = None  # as changelist_view sets it for lists without editable columns
    return cl


def stock_rows(cl) -> list[str]:
    return ["".join(items) for items in admin_list.results(cl)]


def fast_rows(cl) -> list[str]:
    context = fast_result_list(cl)
    return ["".join(items) for items in context["results"]]


@pytest.fixture
def superuser():
    return UserFactory(username="root", is_superuser=True)


@pytest.fixture
def estate():
    """Rows with awkward values: markup in names, missing sizes, limits, removed rows."""
    now = timezone.now()
    mysql = InstanceFactory(name='mysql <"a">', engine="mysql")
    pg = InstanceFactory(name="pg & b", engine="postgresql", port=5432)
    DatabaseFactory(
        instance=mysql, name='<b>"Shop"</b> & co', total_bytes=12 * GIB,
        capacity_limit_bytes=20 * GIB, growth_bytes_per_day=100 * 1024**2, collected_at=now,
    )  # fmt: skip
    DatabaseFactory(instance=mysql, name="empty", total_bytes=None, collected_at=None)
    DatabaseFactory(
        instance=pg, name="shrinking", total_bytes=5 * GIB, growth_bytes_per_day=-2048.5,
        capacity_limit_bytes=4 * GIB, collected_at=now - timedelta(days=3),
    )  # fmt: skip
    DatabaseFactory(instance=pg, name="gone", total_bytes=1, removed_at=now)
    app = make_account(mysql, "app<&>", host="%", grants=[("global", "", "SELECT", "")])
    make_account(
        pg, "postgres", grants=[("global", "", "SUPER", "GRANT")], attributes={"superuser": True}
    )
    flagged = Classification.objects.create(code="flagged", name='Flagged <"x">')
    Assignment.objects.create(account=app, classification=flagged, source=AssignmentSource.MANUAL)
    return mysql, pg


FAST_ADMINS = [Database, Account, AccountChange, Assignment]


@pytest.mark.parametrize("model", FAST_ADMINS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("query", ["", "?o=-2", "filtered"])
def test_rows_match_djangos(estate, superuser, model, query):
    if query == "filtered":
        query = "?presence=all&o=1" if model in (Database, Account) else "?o=1&p=1"
    model_admin = django_admin.site._registry[model]
    assert isinstance(model_admin, FastChangeListMixin)
    opts = model._meta
    cl = changelist(model_admin, f"/admin/{opts.app_label}/{opts.model_name}/{query}", superuser)
    assert cl.result_list
    assert compile_row(cl) is not None, "every fast changelist's columns compile"
    assert fast_rows(cl) == stock_rows(cl)
    if model is Database:
        assert len(cl.result_list) >= 3
        # The change links keep the filters, as Django's do.
        if query:
            assert "_changelist_filters=" in fast_rows(cl)[0]


def test_headers_are_djangos(estate, superuser):
    model_admin = django_admin.site._registry[Database]
    cl = changelist(model_admin, "/admin/capacity/database/?o=4", superuser)
    context = fast_result_list(cl)
    assert context["result_headers"] == list(admin_list.result_headers(cl))
    assert context["num_sorted_fields"] == 1


def test_text_keys_are_quoted_like_djangos(superuser):
    """A primary key with characters the admin and the URL both quote."""
    Session.objects.create(
        session_key='a b/ü_"<x>', session_data="", expire_date=timezone.now()
    )  # fmt: skip

    class SessionAdmin(FastChangeListMixin, django_admin.ModelAdmin):
        list_display = ["session_key", "expire_date"]

    site = django_admin.AdminSite(name="admin")
    model_admin = SessionAdmin(Session, site)
    site._registry[Session] = model_admin
    cl = changelist(model_admin, "/admin/", superuser)
    cl.opts, cl.model_admin = Session._meta, model_admin
    assert compile_row(cl) is not None
    assert fast_rows(cl) == stock_rows(cl)


@pytest.mark.parametrize(
    "list_display",
    [["__str__", "size"], ["name", "instance__name"], ["name", lambda obj: obj.name]],
    ids=["__str__", "related lookup", "callable"],
)
def test_columns_it_does_not_cover_are_left_to_django(estate, superuser, list_display):
    model_admin = django_admin.site._registry[Database]
    cl = changelist(model_admin, "/admin/capacity/database/", superuser)
    cl.list_display = ["action_checkbox", *list_display]
    assert compile_row(cl) is None
    assert fast_rows(cl) == stock_rows(cl)


def test_popups_are_left_to_django(estate, superuser):
    model_admin = django_admin.site._registry[Database]
    cl = changelist(model_admin, "/admin/capacity/database/?_popup=1", superuser)
    assert cl.is_popup
    assert compile_row(cl) is None


def test_the_ledger_page_renders_its_rows(estate, superuser, client):
    client.force_login(superuser)
    response = client.get("/admin/capacity/database/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "&lt;b&gt;&quot;Shop&quot;&lt;/b&gt; &amp; co" in html
    assert html.count('<tr><td class="action-checkbox">') == 3  # removed rows are hidden

"""The 403 page: WhaleFall's own, saying in general words what is missing and leading home
(issue 16), not Django's bare "403 Forbidden"."""

import pytest

pytestmark = pytest.mark.django_db


def test_a_refused_page_is_branded_and_leads_home(client, user_with_role):
    client.force_login(user_with_role("Viewers"))
    response = client.get("/admin/accounts/account/")
    assert response.status_code == 403
    page = response.content.decode()
    assert "<h1>403 Forbidden</h1>" not in page
    assert "WhaleFall" in page
    assert "You may not open this page" in page
    # What may be missing, in general words: a role's permission or access to instances.
    assert "Your role does not include the permission" in page
    assert "instances outside those you may see" in page
    assert 'href="/admin/"' in page
    assert "Ask an administrator" in page


def test_the_forbidden_page_names_no_user_detail_for_anonymous(client):
    # Anonymous visitors of admin pages are sent to the login page, never shown a 403.
    response = client.get("/admin/accounts/account/")
    assert response.status_code == 302

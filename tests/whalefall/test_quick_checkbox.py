"""The hand-written action checkbox renders exactly what Django's widget renders."""

import pytest
from django.contrib import admin as django_admin

from tests.inventory.factories import TagFactory
from whalefall.admin import QuickCheckboxMixin


@pytest.mark.django_db
def test_same_markup_as_the_stock_checkbox():
    tag = TagFactory(name='A "quoted" <tag>')
    stock = django_admin.ModelAdmin(type(tag), django_admin.site).action_checkbox(tag)

    class Quick(QuickCheckboxMixin, django_admin.ModelAdmin):
        pass

    quick = Quick(type(tag), django_admin.site).action_checkbox(tag)
    assert quick == stock

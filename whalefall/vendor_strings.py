"""Messages of the libraries WhaleFall's pages show that ship no Simplified Chinese
(django-auditlog; the app list's table headings Django 5.2 added): listed here so that
makemessages puts them in WhaleFall's catalogue, whose translations Django uses for every
app. Never imported."""

from django.utils.translation import gettext_noop

VENDOR_MESSAGES = [
    # django-auditlog: the audit log's app, model, fields and actions.
    gettext_noop("Audit log"),
    gettext_noop("log entry"),
    gettext_noop("log entries"),
    gettext_noop("create"),
    gettext_noop("update"),
    gettext_noop("delete"),
    gettext_noop("access"),
    gettext_noop("content type"),
    gettext_noop("object pk"),
    gettext_noop("object id"),
    gettext_noop("object representation"),
    gettext_noop("action"),
    gettext_noop("change message"),
    gettext_noop("actor"),
    gettext_noop("Correlation ID"),
    gettext_noop("remote address"),
    gettext_noop("remote port"),
    gettext_noop("timestamp"),
    gettext_noop("additional data"),
    gettext_noop("actor email"),
    # Django admin's app list, read out by screen readers.
    gettext_noop("Model name"),
    gettext_noop("Add link"),
    gettext_noop("Change or view list link"),
]

"""The one export base of WhaleFall's admins (django-import-export's export action and page)."""

from django.contrib.admin.options import IncorrectLookupParameters
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from import_export.admin import ExportActionMixin as StockExportActionMixin


class ExportActionMixin(StockExportActionMixin):
    """import-export's export, where a query parameter that is no filter of the list is a
    clear 400 instead of an unhandled IncorrectLookupParameters (a 500 for every role).

    The export applies the list's filters from its query string; ignoring an unknown one
    would silently export more than the link meant, so the page says which parameter it
    does not know and links back to the unfiltered list, as Django's changelist refuses
    such a query (with its ``?e=1`` redirect).
    """

    def export_action(self, request):
        try:
            return super().export_action(request)
        except IncorrectLookupParameters:
            return self.bad_export_filter_response(request)

    def bad_export_filter_response(self, request):
        known = {"q", "o", "p", "all", "_changelist_filters", "_facets"}
        unknown = sorted(key for key in request.GET if key not in known)
        opts = self.model._meta
        return TemplateResponse(
            request,
            "admin/whalefall_bad_export_filter.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Export"),
                "opts": opts,
                "message": _(
                    "The export of %(things)s does not know how to apply %(params)s: a "
                    "parameter that is no filter of this list, or a value it cannot take. "
                    "Nothing was exported."
                )
                % {"things": opts.verbose_name_plural, "params": ", ".join(unknown)},
                "list_url": reverse(
                    f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_changelist"
                ),
            },
            status=400,
        )

"""The one export base of WhaleFall's admins (django-import-export's export action and page):
CSV and XLSX, the XLSX written with typed cells in a sheet named after its content."""

import io
import re

from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from import_export.admin import ExportActionMixin as StockExportActionMixin
from import_export.formats import base_formats
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font

# Characters a sheet title may not hold, and its length (Excel's rules).
_TITLE_FORBIDDEN = re.compile(r"[\\/*?:\[\]]")
_TITLE_MAX = 31


def sheet_title(text: str) -> str:
    """``text`` as an XLSX sheet title: forbidden characters replaced, at most 31 long."""
    return _TITLE_FORBIDDEN.sub("-", str(text)).strip()[:_TITLE_MAX] or _("Export")


def _printable(value: str) -> str:
    # Control characters XML cannot hold, shown as escapes rather than failing the file.
    return ILLEGAL_CHARACTERS_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", value)


def xlsx_document(*datasets) -> bytes:
    """``datasets`` as an XLSX workbook, one sheet each named after ``dataset.title``, a
    bold header row, and every text as a typed string cell (never read as a formula, so no
    guard character is needed, unlike CSV); booleans and numbers keep their types."""
    book = Workbook(write_only=True)
    for dataset in datasets:
        _sheet_write(book, dataset)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _sheet_write(book, dataset) -> None:
    sheet = book.create_sheet(sheet_title(dataset.title or ""))
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for name in dataset.headers or []:
        cell = WriteOnlyCell(sheet, value=_printable(str(name)))
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for row in dataset:
        cells = []
        for value in row:
            if isinstance(value, str):
                cell = WriteOnlyCell(sheet, value=None)
                cell.value = _printable(value)
                cell.data_type = "s"
            else:
                cell = WriteOnlyCell(sheet, value=value)
            cells.append(cell)
        sheet.append(cells)


class TypedXLSX(base_formats.XLSX):
    """import-export's XLSX format written by :func:`xlsx_document`."""

    def export_data(self, dataset, **kwargs):
        return xlsx_document(dataset)


EXPORT_FORMATS = [base_formats.CSV, TypedXLSX]


class ExportActionMixin(StockExportActionMixin):
    """import-export's export, where a query parameter that is no filter of the list is a
    clear 400 instead of an unhandled IncorrectLookupParameters (a 500 for every role).

    The export applies the list's filters from its query string; ignoring an unknown one
    would silently export more than the link meant, so the page says which parameter it
    does not know and links back to the unfiltered list, as Django's changelist refuses
    such a query (with its ``?e=1`` redirect).
    """

    export_formats = EXPORT_FORMATS

    def get_export_data(self, file_format, request, queryset, **kwargs):
        # import-export decides typed cells by the exact class of the format, which would
        # leave TypedXLSX with CSV's text cells: here any binary format gets them.
        if not self.has_export_permission(request):
            raise PermissionDenied
        kwargs["force_native_type"] = file_format.is_binary()
        data = self.get_data_for_export(request, queryset, **kwargs)
        document = file_format.export_data(data)
        encoding = kwargs.get("encoding")
        if not file_format.is_binary() and encoding:
            document = document.encode(encoding)
        return document

    def get_data_for_export(self, request, queryset, **kwargs):
        dataset = super().get_data_for_export(request, queryset, **kwargs)
        if not dataset.title:
            dataset.title = capfirst(str(self.model._meta.verbose_name_plural))
        return dataset

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

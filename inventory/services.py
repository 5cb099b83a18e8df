"""Writes to the inventory and remote connection tests.

Remote work (connecting to instances) happens outside any transaction and in worker
threads that never touch the ORM; results are written afterwards by the caller's thread.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import structlog
import tablib
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import QuerySet
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.translation import gettext as _
from guardian.shortcuts import assign_perm
from import_export import fields, resources, widgets
from import_export.formats import base_formats

from inventory.engines.base import (
    ConnectionTarget,
    EngineError,
    VersionInfo,
    engine_class,
    target_for,
)
from inventory.models import (
    CREDENTIAL_PERMISSIONS,
    USE_CREDENTIAL,
    VIEW_CREDENTIAL,
    Credential,
    Instance,
    Tag,
)
from whalefall.exports import xlsx_document
from whalefall.moments import iso_moment
from whalefall.text import unstorable_character

log = structlog.get_logger(__name__)

# Connection tests run in parallel, but never more than this many at once.
MAX_PARALLEL_CONNECTION_TESTS = 8


# --- Connection tests -------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionCheck:
    """Outcome of one connection test."""

    instance_id: int
    ok: bool
    kind: str = ""
    message: str = ""
    version: VersionInfo | None = None


def _probe(instance_id: int, target: ConnectionTarget) -> ConnectionCheck:
    """Connect and read the version (remote only: no ORM in this function)."""
    try:
        with engine_class(target.engine)(target) as engine:
            version = engine.server_version()
    except EngineError as exc:
        return ConnectionCheck(instance_id, ok=False, kind=exc.kind, message=str(exc))
    return ConnectionCheck(instance_id, ok=True, version=version)


def _record(check: ConnectionCheck) -> None:
    now = timezone.now()
    changes: dict = {"last_checked_at": now, "last_connection_ok": check.ok}
    if check.ok and check.version is not None:
        changes |= {
            "last_connected_at": now,
            "last_connection_error": "",
            "version_raw": check.version.raw,
            "version_major_minor": check.version.major_minor,
            "version_full": check.version.full,
        }
    else:
        changes["last_connection_error"] = check.message[:2000]
    # update(): a connection test is not a configuration change for the audit log.
    Instance.objects.filter(pk=check.instance_id).update(**changes)
    if check.ok:
        log.info(
            "instance_connection_ok", instance_id=check.instance_id, version=check.version.full
        )
    else:
        log.warning(
            "instance_connection_failed",
            instance_id=check.instance_id,
            kind=check.kind,
            error=check.message,
        )


def instance_test_connections(*, instances: Iterable[Instance], user=None) -> list[ConnectionCheck]:
    """Connect to each instance, read and store its version, record success or the error.

    With ``user``, an instance whose credential that user may not use is not connected to
    (and nothing is recorded on it): testing sends the credential's secret to the instance.
    """
    instances = list(instances)
    refused: list[ConnectionCheck] = []
    if user is not None:
        usable = set(
            Credential.objects.visible_to(user, USE_CREDENTIAL)
            .filter(pk__in={i.credential_id for i in instances if i.credential_id})
            .values_list("pk", flat=True)
        )
        refused = [
            ConnectionCheck(
                instance.pk,
                ok=False,
                kind="not_allowed",
                message=_("Not tested: you may not use the credential of this instance."),
            )
            for instance in instances
            if instance.credential_id and instance.credential_id not in usable
        ]
        refused_ids = {check.instance_id for check in refused}
        instances = [instance for instance in instances if instance.pk not in refused_ids]
    checks: list[ConnectionCheck] = []
    probes: dict[int, ConnectionTarget] = {}
    for instance in instances:
        try:
            probes[instance.pk] = target_for(instance)
        except EngineError as exc:
            checks.append(ConnectionCheck(instance.pk, ok=False, kind=exc.kind, message=str(exc)))
    if probes:
        workers = min(MAX_PARALLEL_CONNECTION_TESTS, len(probes))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="conntest") as pool:
            checks.extend(pool.map(_probe, probes.keys(), probes.values()))
    for check in checks:
        _record(check)
    return refused + checks


def instance_test_connection(*, instance: Instance, user=None) -> ConnectionCheck:
    """Connection test of one instance."""
    return instance_test_connections(instances=[instance], user=user)[0]


# --- Credentials: who may use them --------------------------------------------------------


def instance_connection_check(*, user, instance: Instance) -> None:
    """Refuse to save ``instance`` (as it is about to be saved) when it would connect with a
    credential ``user`` may not use: a new instance with a credential, or a change of its
    credential or of where and how it connects (``Instance.CONNECTION_FIELDS``).

    The one check behind the instance form, the import and any other writer: pointing an
    instance at a host of one's choice and testing it hands the credential's secret to that
    host. Raises ``ValidationError`` on the credential field.
    """
    if instance.credential_id is None:
        return
    if instance.pk is not None:
        before = Instance.objects.filter(pk=instance.pk).values(*Instance.CONNECTION_FIELDS).first()
        if before is not None and all(
            before[name] == getattr(instance, name) for name in Instance.CONNECTION_FIELDS
        ):
            return
    usable = Credential.objects.visible_to(user, USE_CREDENTIAL)
    if not usable.filter(pk=instance.credential_id).exists():
        raise ValidationError(
            {
                "credential": _(
                    "You may not use this credential: connecting an instance with it, or "
                    "changing where or how an instance that uses it connects, needs the "
                    "right to use it."
                )
            }
        )


def credential_grant_to_creator(*, credential: Credential, user) -> list[str]:
    """Give the person who created ``credential`` the credential permissions they hold on
    the model but would not reach it with (a new credential is used by no instance yet, so
    a member scoped to instances would not see it). Returns the permissions granted."""
    granted = []
    for permission in CREDENTIAL_PERMISSIONS:
        if not user.has_perm(permission):
            continue
        if Credential.objects.visible_to(user, permission).filter(pk=credential.pk).exists():
            continue
        assign_perm(permission, user, credential)
        granted.append(permission)
    if granted:
        log.info(
            "credential_granted_to_creator",
            credential_id=credential.pk,
            user_id=user.pk,
            permissions=granted,
        )
    return granted


# --- Lifecycle, tags, permissions -------------------------------------------------------


def instance_retire(*, instances: QuerySet[Instance]) -> int:
    """Retire (soft-delete) instances: kept with their history, never synced."""
    now = timezone.now()
    with transaction.atomic():
        retired = list(instances.filter(retired_at__isnull=True).select_for_update(of=("self",)))
        for instance in retired:  # one save each: every retirement is an audit entry
            instance.retired_at = now
            instance.save(update_fields=["retired_at", "updated_at"])
    log.info("instances_retired", instance_ids=[i.pk for i in retired])
    return len(retired)


def instance_restore(*, instances: QuerySet[Instance]) -> int:
    """Bring retired instances back."""
    with transaction.atomic():
        restored = list(instances.filter(retired_at__isnull=False).select_for_update(of=("self",)))
        for instance in restored:
            instance.retired_at = None
            instance.save(update_fields=["retired_at", "updated_at"])
    log.info("instances_restored", instance_ids=[i.pk for i in restored])
    return len(restored)


def instance_add_tags(*, instances: QuerySet[Instance], tags: Iterable[Tag]) -> int:
    """Add tags to instances (tags they already carry are left alone)."""
    tags = list(tags)
    with transaction.atomic():
        selected = list(instances)
        for instance in selected:  # through tags.add: each change reaches the audit log
            instance.tags.add(*tags)
    return len(selected)


def instance_permissions_grant(*, group, permissions: Iterable[str], tags: Iterable[Tag]) -> int:
    """Grant ``group`` object permissions on every instance carrying one of ``tags``.

    Returns the number of instances. Grants already held stay as they are.
    """
    instances = list(Instance.objects.filter(tags__in=list(tags)).distinct())
    permissions = list(permissions)
    with transaction.atomic():
        for instance in instances:  # one row per grant: each is an audit entry
            for permission in permissions:
                assign_perm(permission, group, instance)
    log.info(
        "instance_permissions_granted",
        group=group.name,
        permissions=permissions,
        instance_ids=[i.pk for i in instances],
    )
    return len(instances)


# --- Import and export ------------------------------------------------------------------

# A spreadsheet runs a cell as a formula when it starts with one of these, also after
# leading spaces; some read the fullwidth forms (as typed with an East Asian input method)
# the same way. A leading tab or line break hides what follows in the cell.
FORMULA_STARTS = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")
FORMULA_HIDING_STARTS = ("\t", "\r", "\n")
_NUMBER = re.compile(r"^[+-]?[0-9]+(\.[0-9]+)?$")


def looks_like_formula(value) -> bool:
    """Whether a spreadsheet could run ``value`` as a formula: the one test behind the
    exports' escaping (:func:`formula_safe`) and the import's refusal. A plain signed
    number (``-1``, ``+31``) is a number, not a formula."""
    if not isinstance(value, str):
        return False
    if value.startswith(FORMULA_HIDING_STARTS):
        return True
    stripped = value.lstrip()
    return stripped.startswith(FORMULA_STARTS) and not _NUMBER.match(stripped)


def formula_safe(value):
    """Neutralise a cell a spreadsheet would run as a formula (prefix it with ')."""
    return "'" + value if looks_like_formula(value) else value


def export_cell(value, *, native: bool):
    """A value as every export writes it: ``native`` for XLSX (typed cells: booleans as
    TRUE/FALSE cells, text as string cells the workbook writer never reads as formulas,
    ``whalefall.exports``), otherwise text for CSV (booleans TRUE/FALSE, which spreadsheets
    and the instance import read back, and formula-like text guarded by :func:`formula_safe`).
    Moments are ISO 8601 with their offset in both, so one sheet has one format."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return value if native else ("TRUE" if value else "FALSE")
    if isinstance(value, datetime):
        return iso_moment(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and not native:
        return formula_safe(value)
    return value


# What :func:`typed_value` answers for a cell its widget must write.
WIDGET_WRITES = object()


def typed_value(resource, field, instance):
    """The object's own value of ``field`` when it is a boolean or a moment (for
    :func:`export_cell`: import-export's widgets write 1/0, True/False, naive local times
    or Python's ``str``), else :data:`WIDGET_WRITES`. A dehydrate method always decides."""
    method = field.get_dehydrate_method(resource.get_field_name(field))
    if callable(method) or getattr(resource, method, None) is not None or not field.attribute:
        return WIDGET_WRITES
    try:
        value = field.get_value(instance)
    except Exception:  # noqa: BLE001  the widget path reports it as it always did
        return WIDGET_WRITES
    return value if isinstance(value, bool | date) else WIDGET_WRITES


# Import limits: the one place that reads them (whalefall/settings.py) and words the refusal;
# the instance import and the rule import both call these.


def import_size_check(size: int) -> None:
    """Refuse a file larger than ``WHALEFALL_IMPORT_MAX_BYTES``; called before it is read."""
    limit = settings.WHALEFALL_IMPORT_MAX_BYTES
    if size > limit:
        raise ValidationError(
            _("The file is %(size)s: an import takes files of at most %(limit)s.")
            % {"size": filesizeformat(size), "limit": filesizeformat(limit)},
            code="file_too_large",
        )


def import_rows_check(count: int) -> None:
    """Refuse the ``count``-th row when it is past ``WHALEFALL_IMPORT_MAX_ROWS``; called as
    rows are read, so reading stops at the first row too many."""
    limit = settings.WHALEFALL_IMPORT_MAX_ROWS
    if count > limit:
        raise ValidationError(
            _("The file has more than %(limit)d rows: an import takes at most %(limit)d. "
              "Split it into smaller files.") % {"limit": limit},
            code="too_many_rows",
        )  # fmt: skip


# Cells past this column are never read (an instance row has 16 columns).
MAX_IMPORT_COLUMNS = 64
# An XLSX file is a zip archive: its parts may unpack to at most this many times the file
# size limit (a workbook of the most rows an import takes unpacks to a few MB; a zip bomb
# to thousands of times its size).
XLSX_MAX_UNPACKED_RATIO = 4
# Cells one worksheet row may hold, formatted empty ones included: far more than any
# instance sheet, few enough that no row is costly to parse.
XLSX_MAX_ROW_CELLS = 1024
# The start of a row or cell element, with or without a namespace prefix.
_XLSX_ROW_OR_CELL = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(row|c)[\s/>]")


def _csv_rows(data: bytes | str) -> Iterator[list]:
    if isinstance(data, bytes | bytearray):
        try:
            data = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError(
                _('The file is not UTF-8 text: save it as "CSV UTF-8" and import it again.'),
                code="not_utf8",
            ) from None
    reader = csv.reader(io.StringIO(data, newline=""))
    try:
        yield from reader
    except csv.Error as exc:
        raise ValidationError(
            _("Line %(line)d is not valid CSV (%(error)s).")
            % {"line": reader.line_num, "error": exc},
            code="bad_csv",
        ) from None


def _xlsx_value(cell):
    """A cell as import-export will read it: a formula as its formula text (never the value
    cached in the file), so that the formula check refuses it."""
    value = cell.value
    if cell.data_type == "f":
        text = value if isinstance(value, str) else getattr(value, "text", None) or ""
        return text if text.startswith("=") else "=" + text
    return value


def _xlsx_shape_check(archive: zipfile.ZipFile) -> None:
    """Count the rows and cells of every worksheet as it unpacks, without parsing its XML,
    and refuse more rows than an import takes or a row wider than any instance sheet.

    openpyxl reads every worksheet of a workbook in full when it opens it (to size each one
    that does not state its size) and parses a row's cells all at once: this scan keeps
    both bounded, and refuses a sheet of 200 000 rows in milliseconds.
    """
    rows = 0  # of all worksheets together: opening the workbook reads each of them
    for info in archive.infolist():
        if not (info.filename.startswith("xl/worksheets/") and info.filename.endswith(".xml")):
            continue
        cells, pending = 0, b""
        with archive.open(info) as part:
            while True:
                chunk = part.read(1 << 20)
                data = pending + chunk
                # A tag may straddle two chunks: the last bytes are scanned again with the next.
                cut = len(data) if not chunk else max(0, len(data) - 64)
                for match in _XLSX_ROW_OR_CELL.finditer(data):
                    if match.start() >= cut:
                        break
                    if match.group(1) == b"row":
                        rows, cells = rows + 1, 0
                        import_rows_check(rows - 1)  # the first row is the header
                    else:
                        cells += 1
                        if cells > XLSX_MAX_ROW_CELLS:
                            raise ValidationError(
                                _("A row of the workbook has more than %(count)d cells.")
                                % {"count": XLSX_MAX_ROW_CELLS},
                                code="wide_row",
                            )
                if not chunk:
                    break
                pending = data[cut:]


def _xlsx_rows(data: bytes | str) -> Iterator[list]:
    import openpyxl  # imported here: only an XLSX import needs it

    if not isinstance(data, bytes | bytearray):
        raise ValidationError(_("The file is not an XLSX workbook."), code="bad_xlsx")
    stream = io.BytesIO(data)
    try:
        with zipfile.ZipFile(stream) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
            if unpacked > XLSX_MAX_UNPACKED_RATIO * settings.WHALEFALL_IMPORT_MAX_BYTES:
                raise ValidationError(
                    _("The workbook unpacks to %(size)s, more than an import reads.")
                    % {"size": filesizeformat(unpacked)},
                    code="file_too_large",
                )
            _xlsx_shape_check(archive)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError, zlib.error):
        raise ValidationError(_("The file is not an XLSX workbook."), code="bad_xlsx") from None
    book = None
    try:
        # read_only streams the sheet row by row; without data_only a formula cell is read
        # as its formula, which the import refuses, not as whatever value the file caches.
        book = openpyxl.load_workbook(stream, read_only=True, data_only=False)
        sheet = book.worksheets[0]
        for row in sheet.iter_rows(max_col=MAX_IMPORT_COLUMNS):
            yield [_xlsx_value(cell) for cell in row]
    except ValidationError:
        raise
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds on a damaged file
        raise ValidationError(
            _("The file is not a readable XLSX workbook (%(error)s).")
            % {"error": type(exc).__name__},
            code="bad_xlsx",
        ) from None
    finally:
        if book is not None:
            book.close()


def _cell_text(value) -> str:
    """A cell as text, as a CSV file has it: an empty cell is "" (never None)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return str(value)


def instance_sheet_read(data: bytes | str, file_format: str) -> tablib.Dataset:
    """The rows of an instance sheet (CSV or XLSX) as text, read within the import limits.

    The size is checked before anything is parsed; rows are streamed (XLSX with openpyxl's
    read-only mode) and reading stops at the first row past the limit. The header must name
    the columns of :class:`InstanceResource`. Blank rows are skipped. No transaction is
    open meanwhile. Raises ``ValidationError`` with a message for the whole file.
    """
    import_size_check(len(data))
    if file_format == "csv":
        rows = _csv_rows(data)
    elif file_format == "xlsx":
        rows = _xlsx_rows(data)
    else:
        raise ValidationError(_("Only CSV and XLSX files can be imported."), code="bad_format")
    try:
        header = [_cell_text(cell).strip().lower() for cell in next(rows, [])]
        while header and not header[-1]:
            header.pop()  # spreadsheets pad the header row with empty cells
        if not header:
            raise ValidationError(_("The file is empty: it needs a header row."), code="empty")
        InstanceResource.columns_check(header)
        dataset = tablib.Dataset(headers=header)
        width = len(header)
        # Blank rows count too: a sheet of empty rows is no cheaper to read.
        for count, row in enumerate(rows, start=1):
            import_rows_check(count)
            cells = [_cell_text(cell) for cell in row]
            if any(cell.strip() for cell in cells[width:]):
                raise ValidationError(
                    _("Row %(line)d has values beyond the columns of the header.")
                    % {"line": count + 1},
                    code="wide_row",
                )
            cells = cells[:width] + [""] * (width - len(cells))
            if any(cell.strip() for cell in cells):
                dataset.append(cells)
    finally:
        rows.close()
    return dataset


class _InstanceSheetFormat:
    """An admin import format that reads through :func:`instance_sheet_read`: raw bytes in,
    the import limits applied before anything else."""

    file_format = ""

    def create_dataset(self, in_stream, **kwargs):
        return instance_sheet_read(in_stream, self.file_format)

    def is_binary(self):
        return True  # decoded (strictly, as UTF-8) by the reader, not on the way in

    def get_read_mode(self):
        return "rb"


class InstanceCSV(_InstanceSheetFormat, base_formats.CSV):
    file_format = "csv"


class InstanceXLSX(_InstanceSheetFormat, base_formats.XLSX):
    file_format = "xlsx"


# The only formats instances are imported from (no TSV, JSON, YAML, HTML, ODS, XLS).
INSTANCE_IMPORT_FORMATS = [InstanceCSV, InstanceXLSX]


class WholeNumber(widgets.IntegerWidget):
    """A whole number in plain digits; anything else is a clear field error."""

    def clean(self, value, row=None, **kwargs):
        text = str(value).strip() if value is not None else ""
        if not text:
            return None
        if not re.fullmatch(r"[+-]?[0-9]{1,18}", text):
            raise ValueError(_("enter a whole number, not %(value)s") % {"value": text[:40]})
        return int(text)


class YesNo(widgets.BooleanWidget):
    """true/false (also yes/no, 1/0); an empty cell keeps the default; anything else is an
    error rather than a silent false."""

    WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}

    def clean(self, value, row=None, **kwargs):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower() if value is not None else ""
        if not text:
            return None
        if text not in self.WORDS:
            raise ValueError(_("enter true or false, not %(value)s") % {"value": text[:40]})
        return self.WORDS[text]


class CredentialByName(widgets.ForeignKeyWidget):
    def __init__(self):
        super().__init__(Credential, field="name")

    def get_queryset(self, value, row, *args, **kwargs):
        # A credential outside the importing user's scope reads as unknown: an import must
        # not tell which credential names exist elsewhere.
        user = kwargs.get("user")
        if user is None:
            return super().get_queryset(value, row, *args, **kwargs)
        return Credential.objects.visible_to(user, VIEW_CREDENTIAL)

    def clean(self, value, row=None, **kwargs):
        if not value:
            return None
        try:
            return super().clean(value, row, **kwargs)
        except Credential.DoesNotExist:
            raise ValueError(_("no credential named %(name)s") % {"name": value}) from None


class TagsBySlug(widgets.ManyToManyWidget):
    def __init__(self):
        super().__init__(Tag, field="slug", separator=",")

    def clean(self, value, row=None, **kwargs):
        slugs = {s.strip() for s in str(value or "").split(",") if s.strip()}
        tags = list(Tag.objects.filter(slug__in=slugs))
        unknown = slugs - {tag.slug for tag in tags}
        if unknown:
            raise ValueError(_("unknown tag(s): %(slugs)s") % {"slugs": ", ".join(sorted(unknown))})
        return tags


class InstanceResource(resources.ModelResource):
    """Instances as rows of a CSV/XLSX sheet; ``name`` identifies the instance."""

    credential = fields.Field(
        attribute="credential", column_name="credential", widget=CredentialByName()
    )
    tags = fields.Field(attribute="tags", column_name="tags", widget=TagsBySlug())
    port = fields.Field(attribute="port", column_name="port", widget=WholeNumber())
    is_active = fields.Field(
        attribute="is_active", column_name="is_active", widget=YesNo(), saves_null_values=False
    )
    deep_privileges = fields.Field(
        attribute="deep_privileges",
        column_name="deep_privileges",
        widget=YesNo(),
        saves_null_values=False,
    )
    version = fields.Field(attribute="version_full", column_name="version", readonly=True)
    last_connected_at = fields.Field(
        attribute="last_connected_at", column_name="last_connected_at", readonly=True
    )
    status = fields.Field(column_name="status", readonly=True)

    class Meta:
        model = Instance
        import_id_fields = ["name"]
        fields = [
            "name",
            "engine",
            "host",
            "port",
            "database_name",
            "credential",
            "tls_mode",
            "tags",
            "environment",
            "owner",
            "description",
            "is_active",
            "deep_privileges",
            "version",
            "last_connected_at",
            "status",
        ]
        export_order = fields
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True
        use_transactions = True

    REQUIRED_COLUMNS = ("name", "engine", "host")

    def __init__(self, user=None, **kwargs):
        super().__init__(**kwargs)
        self.user = user
        # Filled by before_import; empty until then, so a row is never checked against
        # attributes that do not exist.
        self._duplicates: set[str] = set()
        self._existing: set[str] = set()
        self._changeable: set[str] = set()
        self._tag_slugs: set[str] = set()
        self._may_add = False

    @classmethod
    def widget_from_django_field(cls, f, default=widgets.Widget):
        # Long text too: an empty cell is "", as Django stores blank text, never NULL.
        if isinstance(f, models.TextField):
            return widgets.CharWidget
        return super().widget_from_django_field(f, default)

    @classmethod
    def columns_check(cls, headers: list[str]) -> None:
        """Refuse a header row that is not this resource's: unknown, missing, unnamed or
        repeated columns, each named, with the columns expected."""
        resource = cls()
        readonly = [f.column_name for f in resource.get_export_fields() if f.readonly]
        known = [f.column_name for f in resource.get_export_fields() if not f.readonly]
        problems = []
        unknown = [h for h in dict.fromkeys(headers) if h and h not in known + readonly]
        if unknown:
            problems.append(_("Unknown column(s): %(columns)s.") % {"columns": ", ".join(unknown)})
        missing = [c for c in cls.REQUIRED_COLUMNS if c not in headers]
        if missing:
            problems.append(_("Missing column(s): %(columns)s.") % {"columns": ", ".join(missing)})
        if "" in headers:
            problems.append(
                _("Column %(number)d has no name in the header row.")
                % {"number": headers.index("") + 1}
            )
        repeated = [h for h, n in Counter(headers).items() if h and n > 1]
        if repeated:
            problems.append(
                _("Column(s) named twice: %(columns)s.") % {"columns": ", ".join(repeated)}
            )
        if problems:
            problems.append(
                _("Expected columns: %(required)s (required), %(optional)s; the export's "
                  "%(readonly)s are accepted and ignored.")
                % {
                    "required": ", ".join(cls.REQUIRED_COLUMNS),
                    "optional": ", ".join(c for c in known if c not in cls.REQUIRED_COLUMNS),
                    "readonly": ", ".join(readonly),
                }
            )  # fmt: skip
            raise ValidationError(problems, code="columns")

    def dehydrate_status(self, instance: Instance) -> str:
        if instance.is_retired:
            return "retired"
        return "active" if instance.is_active else "inactive"

    def before_import(self, dataset, **kwargs):
        self.user = kwargs.get("user", self.user)
        self.columns_check(list(dataset.headers or []))
        # Names that cannot be stored cannot be looked up either; their rows are refused.
        names = [str(n or "").strip() for n in dataset["name"]]
        names = [name for name in names if unstorable_character(name) is None]
        self._duplicates = {name for name, count in Counter(names).items() if name and count > 1}
        self._tag_slugs = set(Tag.objects.values_list("slug", flat=True))
        existing = set(Instance.objects.filter(name__in=names).values_list("name", flat=True))
        changeable = existing
        if self.user is not None:
            changeable = set(
                Instance.objects.visible_to(self.user, "inventory.change_instance")
                .filter(name__in=names)
                .values_list("name", flat=True)
            )
        self._existing, self._changeable = existing, changeable
        self._may_add = self.user is None or self.user.has_perm("inventory.add_instance")

    def before_import_row(self, row, **kwargs):
        """Refuse, as field errors, what must not reach the database: formulas, text it
        cannot store, unknown tags, and names the user may not add or change."""
        errors: dict[str, list[str]] = {}
        for column, value in row.items():
            if not isinstance(value, str):
                continue
            bad = unstorable_character(value)
            if bad == "\x00":
                errors.setdefault(column, []).append(
                    _("contains a NUL character, which cannot be stored")
                )
            elif bad is not None:
                errors.setdefault(column, []).append(
                    _("contains a character that is not valid Unicode")
                )
            elif looks_like_formula(value):
                errors.setdefault(column, []).append(
                    _("starts with %(char)s, which a spreadsheet would run as a formula")
                    % {"char": _start_shown(value)}
                )
        if errors:
            raise ValidationError(errors)
        slugs = {s.strip() for s in str(row.get("tags") or "").split(",") if s.strip()}
        unknown_tags = slugs - self._tag_slugs
        if unknown_tags:
            errors["tags"] = [
                _("unknown tag(s): %(slugs)s") % {"slugs": ", ".join(sorted(unknown_tags))}
            ]
        name = str(row.get("name") or "").strip()
        if name in self._duplicates:
            errors.setdefault("name", []).append(_("appears more than once in the file"))
        if name in self._existing and name not in self._changeable:
            errors.setdefault("name", []).append(_("you may not change this instance"))
        if name and name not in self._existing and not self._may_add:
            errors.setdefault("name", []).append(_("you may not add instances"))
        if errors:
            raise ValidationError(errors)

    def export_field(self, field, instance, **kwargs):
        value = typed_value(self, field, instance)
        if value is WIDGET_WRITES:
            value = super().export_field(field, instance, **kwargs)
        return export_cell(value, native=bool(kwargs.get("force_native_type")))

    def before_save_instance(self, instance, row, **kwargs):
        # An import changes hosts and credentials like the form does: same check. Without a
        # user (a management command) the caller is trusted, as in before_import.
        if self.user is not None:
            instance_connection_check(user=self.user, instance=instance)


def _start_shown(value: str) -> str:
    """The start of a formula-like cell, named so that invisible characters show."""
    names = {"\t": _("a tab"), "\r": _("a line break"), "\n": _("a line break")}
    return names.get(value[0]) or repr(value.lstrip()[0])


def instance_import(*, data: bytes | str, file_format: str, user, dry_run: bool):
    """Import instances from CSV/XLSX: all rows or none; an existing name updates that row.

    The file is read by :func:`instance_sheet_read` (limits, columns), which raises
    ``ValidationError`` for the whole file. Returns import-export's result;
    ``result.has_errors()`` or ``result.has_validation_errors()`` means nothing was written.
    """
    dataset = instance_sheet_read(data, file_format)
    resource = InstanceResource(user=user)
    result = resource.import_data(
        dataset,
        dry_run=dry_run,
        use_transactions=True,
        rollback_on_validation_errors=True,
        user=user,
    )
    log.info(
        "instances_imported",
        dry_run=dry_run,
        rows=len(dataset),
        errors=result.has_errors() or result.has_validation_errors(),
        totals=dict(result.totals),
    )
    return result


def instance_export(*, queryset: QuerySet[Instance], file_format: str) -> bytes | str:
    """The instances of ``queryset`` as a CSV or XLSX document, formula-safe."""
    native = file_format != "csv"
    dataset = InstanceResource().export(
        queryset.select_related("credential").prefetch_related("tags"), force_native_type=native
    )
    dataset.title = str(Instance._meta.verbose_name_plural)
    return xlsx_document(dataset) if native else dataset.export(file_format)

"""Admin pages of accounts: the account list and page, and the change history (read-only)."""

import datetime

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from import_export import fields

from accounts.facts import stored_capabilities
from accounts.models import Account, AccountChange, ChangeType
from accounts.reports import AccessReview, access_review_rows, effective_view, group_grants
from classification.models import Assignment, Classification
from inventory.admin import (
    EngineFilter,
    FormulaSafeResource,
    InstanceScopedMixin,
    TagFilter,
    VisibleInstanceFilter,
    visible_instance_ids,
)
from inventory.models import Instance, Tag
from whalefall.admin import BigTableMixin, FastChangeListMixin
from whalefall.exports import ExportActionMixin, xlsx_document

# --- Scope and shared behaviour ---------------------------------------------------------


class InstanceScopedReadOnlyAdmin(
    BigTableMixin, InstanceScopedMixin, FastChangeListMixin, ExportActionMixin, admin.ModelAdmin
):
    """Rows that hang off an instance: filtered by the visible instances, never edited."""

    list_per_page = 50

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_export_permission(self, request):
        return self.has_view_permission(request)

    def get_valid_export_item_pks(self, request):
        return self.get_queryset(request).values_list("pk", flat=True)


# --- Exports ----------------------------------------------------------------------------


class AccountResource(FormulaSafeResource):
    instance = fields.Field(attribute="instance__name", column_name="instance")
    engine = fields.Field(attribute="instance__engine", column_name="engine")
    account = fields.Field(attribute="identity", column_name="account")
    superuser = fields.Field(attribute="snapshot__is_superuser", column_name="superuser")
    grant_admin = fields.Field(attribute="snapshot__can_grant", column_name="grant_admin")
    escalation = fields.Field(attribute="snapshot__can_escalate", column_name="escalation")
    capabilities = fields.Field(column_name="capabilities")
    locked = fields.Field(attribute="snapshot__is_locked", column_name="locked")
    roles = fields.Field(column_name="roles")
    grants = fields.Field(column_name="grants")
    classifications = fields.Field(column_name="classifications")
    changed_at = fields.Field(attribute="snapshot__changed_at", column_name="privileges_changed_at")

    class Meta:
        model = Account
        fields = [
            "instance", "engine", "account", "kind", "superuser", "grant_admin", "escalation",
            "capabilities", "locked",
            "roles", "grants", "classifications", "first_seen_at", "last_seen_at", "removed_at",
            "changed_at",
        ]  # fmt: skip
        export_order = fields

    def dehydrate_capabilities(self, account: Account) -> str:
        snapshot = getattr(account, "snapshot", None)
        return ", ".join(stored_capabilities(snapshot.facts)) if snapshot else ""

    def dehydrate_roles(self, account: Account) -> str:
        snapshot = getattr(account, "snapshot", None)
        return ", ".join(snapshot.privileges["roles"]) if snapshot else ""

    def dehydrate_grants(self, account: Account) -> int:
        snapshot = getattr(account, "snapshot", None)
        return len(snapshot.privileges["grants"]) if snapshot else 0

    def dehydrate_classifications(self, account: Account) -> str:
        return ", ".join(a.classification.name for a in assignments_by_risk(account))


class AccountChangeResource(FormulaSafeResource):
    instance = fields.Field(attribute="instance__name", column_name="instance")
    account = fields.Field(attribute="account__identity", column_name="account")

    class Meta:
        model = AccountChange
        fields = [
            "detected_at",
            "instance",
            "engine",
            "account",
            "change_type",
            "summary",
            "privileged",
            "run_id",
        ]
        export_order = fields


# --- Accounts ---------------------------------------------------------------------------


def last_quarter() -> tuple[datetime.date, datetime.date]:
    """The quarter before this one: the access review's default period."""
    today = timezone.localdate()
    first_of_quarter = datetime.date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    end = first_of_quarter - datetime.timedelta(days=1)
    return datetime.date(end.year, 3 * ((end.month - 1) // 3) + 1, 1), end


# Accounts matched by a classification of this risk level or higher (1 is the highest)
# belong in the access review whatever their capabilities (SPEC §5.4).
ACCESS_REVIEW_RISK_LEVEL = 2


class AccessReviewForm(forms.Form):
    instances = forms.ModelMultipleChoiceField(
        queryset=Instance.objects.none(),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 8}),
        help_text=_("Leave empty for every instance you may see."),
    )
    tags = forms.ModelMultipleChoiceField(queryset=Tag.objects.all(), required=False)
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    file_format = forms.ChoiceField(
        choices=[
            ("xlsx", _("XLSX workbook: privileged accounts and changes, a sheet each")),
            ("csv-accounts", _("CSV: privileged accounts")),
            ("csv-changes", _("CSV: changes of the period")),
        ],
        initial="xlsx",
        label=_("Format"),
        widget=forms.RadioSelect,
        help_text=_("A CSV file holds one table: download each one you need."),
    )

    def __init__(self, *args, instances, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["instances"].queryset = instances
        start, end = last_quarter()
        self.fields["start"].initial, self.fields["end"].initial = start, end

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("start") and cleaned.get("end") and cleaned["start"] > cleaned["end"]:
            raise forms.ValidationError(_("The period ends before it starts."))
        return cleaned


def assignments_prefetch() -> Prefetch:
    """The accounts' assignments with what a list shows of their classification."""
    return Prefetch(
        "assignments",
        queryset=Assignment.objects.select_related("classification").only(
            "account_id",
            "source",
            "classification__code",
            "classification__name",
            "classification__colour",
            "classification__risk_level",
            "classification__priority",
        ),
    )


def assignments_by_risk(account: Account) -> list[Assignment]:
    """The account's assignments, prefetched (:func:`assignments_prefetch`), highest risk
    first."""
    return sorted(
        account.assignments.all(),
        key=lambda a: (a.classification.risk_level, -a.classification.priority),
    )


UNCLASSIFIED = "none"


def classified_as(queryset: QuerySet[Account], code: str) -> QuerySet[Account]:
    """Accounts a classification (by code) is assigned to; :data:`UNCLASSIFIED`: none is."""
    assigned = Assignment.objects.filter(account=OuterRef("pk"))
    if code == UNCLASSIFIED:
        return queryset.filter(~Exists(assigned))
    return queryset.filter(Exists(assigned.filter(classification__code=code)))


def access_review_of(accounts: QuerySet[Account], *, instances, tags, start, end) -> AccessReview:
    """The access review of ``accounts`` (those the user may see) on ``instances`` (those
    chosen, or every visible one) carrying one of ``tags`` if any, for a period: privileged
    accounts and those a classification of high risk matched."""
    if tags:
        instances = instances.filter(tags__in=tags).distinct()
    accounts = accounts.filter(instance__in=instances)
    high_risk = Assignment.objects.filter(
        classification__risk_level__lte=ACCESS_REVIEW_RISK_LEVEL, account__in=accounts
    )
    names: dict[int, list[str]] = {}
    for account_id, name in high_risk.order_by(
        "classification__risk_level", "classification__name"
    ).values_list("account_id", "classification__name"):
        names.setdefault(account_id, []).append(name)
    return access_review_rows(
        accounts=accounts,
        start=start,
        end=end,
        classified=high_risk.values("account_id"),
        classification_names=names,
    )


ACCESS_REVIEW_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv",
}


# The tables of the access review, as a CSV file holds one.
ACCESS_REVIEW_TABLES = ("accounts", "changes")


def access_review_file(
    review: AccessReview, *, start, end, file_format: str, table: str = "accounts"
) -> HttpResponse:
    """The access review as a download: one XLSX workbook of both tables, or one table
    (``table``: privileged accounts or changes) as CSV, never two tables in one CSV."""
    if file_format == "xlsx":
        content = xlsx_document(*review.databook(native=True).sheets())
        suffix = ""
    else:
        people, changes = review.databook().sheets()
        content = (changes if table == "changes" else people).export("csv")
        suffix = "-changes" if table == "changes" else "-accounts"
    response = HttpResponse(content, content_type=ACCESS_REVIEW_TYPES[file_format])
    filename = f"access-review-{start:%Y%m%d}-{end:%Y%m%d}{suffix}.{file_format}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class ClassificationFilter(admin.SimpleListFilter):
    title = _("classification")
    parameter_name = "classification"

    def lookups(self, request, model_admin):
        return [
            *Classification.objects.in_priority_order().values_list("code", "name"),
            (UNCLASSIFIED, _("Unclassified")),
        ]

    def queryset(self, request, queryset):
        return classified_as(queryset, self.value()) if self.value() else queryset


class PresenceFilter(admin.SimpleListFilter):
    title = _("presence")
    parameter_name = "presence"

    def lookups(self, request, model_admin):
        return [("present", _("Present")), ("removed", _("Removed"))]

    def queryset(self, request, queryset):
        if self.value() == "present":
            return queryset.filter(removed_at__isnull=True)
        if self.value() == "removed":
            return queryset.filter(removed_at__isnull=False)
        return queryset


@admin.register(Account)
class AccountAdmin(InstanceScopedReadOnlyAdmin):
    resource_classes = [AccountResource]
    # The export's object tools plus the access review's (import-export sets the changelist
    # template from this, over the per-model one Django would otherwise find).
    import_export_change_list_template = "admin/accounts/account/change_list.html"
    change_form_template = "admin/accounts/account/change_form.html"
    list_display = [
        "identity",
        "instance",
        "kind",
        "is_superuser",
        "can_grant",
        "can_escalate",
        "is_locked",
        "classifications",
        "privileges_changed_at",
        "removed_at",
    ]
    list_display_links = ["identity"]
    list_filter = [
        ClassificationFilter,
        VisibleInstanceFilter,
        EngineFilter,
        TagFilter,
        ("snapshot__is_superuser", admin.BooleanFieldListFilter),
        ("snapshot__can_grant", admin.BooleanFieldListFilter),
        ("snapshot__can_escalate", admin.BooleanFieldListFilter),
        ("snapshot__is_anonymous", admin.BooleanFieldListFilter),
        ("snapshot__no_password", admin.BooleanFieldListFilter),
        ("snapshot__is_locked", admin.BooleanFieldListFilter),
        PresenceFilter,
        "kind",
    ]
    search_fields = ["^name"]
    list_select_related = ["instance", "snapshot"]
    fields = ["instance", "name", "host", "kind", "first_seen_at", "last_seen_at", "removed_at"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related(assignments_prefetch())

    @admin.display(description=_("account"), ordering="name")
    def identity(self, obj: Account) -> str:
        return obj.identity

    @admin.display(description=_("classifications"))
    def classifications(self, obj: Account) -> str:
        return format_html_join(
            " ",
            '<span class="wf-tag" data-tag-colour="{}" title="{}">{}</span>',
            (
                (a.classification.colour, a.get_source_display(), a.classification.name)
                for a in assignments_by_risk(obj)
            ),
        ) or format_html('<span class="wf-muted">{}</span>', "—")

    @admin.display(description=_("superuser"), boolean=True, ordering="snapshot__is_superuser")
    def is_superuser(self, obj: Account) -> bool | None:
        return getattr(getattr(obj, "snapshot", None), "is_superuser", None)

    @admin.display(description=_("locked"), boolean=True, ordering="snapshot__is_locked")
    def is_locked(self, obj: Account) -> bool | None:
        return getattr(getattr(obj, "snapshot", None), "is_locked", None)

    @admin.display(description=_("can grant"), boolean=True, ordering="snapshot__can_grant")
    def can_grant(self, obj: Account) -> bool | None:
        return getattr(getattr(obj, "snapshot", None), "can_grant", None)

    @admin.display(description=_("can escalate"), boolean=True, ordering="snapshot__can_escalate")
    def can_escalate(self, obj: Account) -> bool | None:
        return getattr(getattr(obj, "snapshot", None), "can_escalate", None)

    @admin.display(description=_("privileges changed"), ordering="snapshot__changed_at")
    def privileges_changed_at(self, obj: Account):
        return getattr(getattr(obj, "snapshot", None), "changed_at", None)

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_access_review": self.has_access_review_permission(request),
        }
        return super().changelist_view(request, extra_context)

    def has_access_review_permission(self, request) -> bool:
        return request.user.has_perm("accounts.access_review") and self.has_view_permission(request)

    def get_urls(self):
        return [
            path(
                "access-review/",
                self.admin_site.admin_view(self.access_review_view),
                name="accounts_account_access_review",
            ),
            *super().get_urls(),
        ]

    def access_review_view(self, request):
        if not self.has_access_review_permission(request):
            raise PermissionDenied
        ids = visible_instance_ids(request)
        instances = Instance.objects.all() if ids is None else Instance.objects.filter(pk__in=ids)
        form = AccessReviewForm(request.POST or None, instances=instances)
        if request.method == "POST" and form.is_valid():
            start, end = form.cleaned_data["start"], form.cleaned_data["end"]
            review = access_review_of(
                self.get_queryset(request),
                instances=form.cleaned_data["instances"] or instances,
                tags=form.cleaned_data["tags"],
                start=start,
                end=end,
            )
            file_format, _sep, table = form.cleaned_data["file_format"].partition("-")
            return access_review_file(
                review, start=start, end=end, file_format=file_format, table=table or "accounts"
            )
        return TemplateResponse(
            request,
            "admin/accounts/account/access_review.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Access review"),
                "opts": self.model._meta,
                "form": form,
            },
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        account = self.get_object(request, object_id)
        extra_context = extra_context or {}
        if account is not None:
            snapshot = getattr(account, "snapshot", None)
            extra_context |= {
                "assignments": Assignment.objects.filter(account=account)
                .select_related("classification", "rule", "assigned_by")
                .order_by("classification__risk_level"),
                "snapshot": snapshot,
                "grant_groups": group_grants(snapshot.privileges["grants"]) if snapshot else [],
                "timeline": account.changes.order_by("-detected_at", "-id")[:100],
            }
            if snapshot is not None:
                extra_context |= self._effective_context(account, snapshot)
        return super().change_view(request, object_id, form_url, extra_context)

    def _effective_context(self, account: Account, snapshot) -> dict:
        """What the account can do through its roles and PUBLIC, grouped by scope."""
        view = effective_view(account, snapshot)
        return {
            "effective_groups": group_grants(view.grants),
            "effective_capabilities": view.capabilities,
            "direct_capabilities": view.direct_capabilities,
            "role_paths": view.role_paths,
            "effective_resolved": view.resolved,
            "public_account": view.public_account,
        }


# --- Change history ---------------------------------------------------------------------


class PrivilegedFilter(admin.SimpleListFilter):
    title = _("privileged")
    parameter_name = "privileged"

    def lookups(self, request, model_admin):
        return [("yes", _("Privileged only"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(privileged=True)
        return queryset


class ChangeEngineFilter(EngineFilter):
    def queryset(self, request, queryset):
        return queryset.filter(engine=self.value()) if self.value() else queryset


@admin.register(AccountChange)
class AccountChangeAdmin(InstanceScopedReadOnlyAdmin):
    resource_classes = [AccountChangeResource]
    change_form_template = "admin/accounts/accountchange/change_form.html"
    list_display = [
        "detected_at",
        "account_identity",
        "instance",
        "change_type",
        "summary",
        "privileged",
    ]
    list_filter = [
        VisibleInstanceFilter,
        ChangeEngineFilter,
        "change_type",
        PrivilegedFilter,
        ("detected_at", admin.DateFieldListFilter),
    ]
    # No date_hierarchy: its year/month links scan the whole history table on every page.
    search_fields = ["^account__name"]
    list_select_related = ["account", "instance"]
    fields = [
        "detected_at",
        "account",
        "instance",
        "engine",
        "change_type",
        "summary",
        "privileged",
        "run",
    ]
    readonly_fields = fields

    @admin.display(description=_("account"), ordering="account__name")
    def account_identity(self, obj: AccountChange) -> str:
        return obj.account.identity

    def get_object(self, request, object_id, from_field=None):
        change = super().get_object(request, object_id, from_field)
        if change is not None and change.run_id and request.user.has_perm("syncjobs.view_run"):
            # The run touched this change's instance, which the user sees: they may open it.
            change.run_url = reverse("admin:syncjobs_run_change", args=[change.run_id])
        return change

    @admin.display(description=_("run"))
    def run(self, obj: AccountChange) -> str:
        if not obj.run_id:
            return "—"
        url = getattr(obj, "run_url", None)
        if url is None:
            return f"#{obj.run_id}"
        return format_html('<a href="{}">#{}</a>', url, obj.run_id)

    def get_search_results(self, request, queryset, search_term):
        # A search also matches the account id directly: links from other pages use it.
        queryset, duplicates = super().get_search_results(request, queryset, search_term)
        if search_term.isdigit():
            queryset = queryset | self.get_queryset(request).filter(Q(account_id=int(search_term)))
        return queryset, duplicates

    def change_view(self, request, object_id, form_url="", extra_context=None):
        change = self.get_object(request, object_id)
        extra_context = extra_context or {}
        if change is not None:
            diff = change.diff
            extra_context |= {
                "added_groups": group_grants(diff.get("grants_added", [])),
                "removed_groups": group_grants(diff.get("grants_removed", [])),
                "effective_added_groups": group_grants(diff.get("effective_added", [])),
                "effective_removed_groups": group_grants(diff.get("effective_removed", [])),
                "diff": diff,
                "is_removal": change.change_type == ChangeType.REMOVED,
            }
        return super().change_view(request, object_id, form_url, extra_context)

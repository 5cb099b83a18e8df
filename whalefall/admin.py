"""Admin of the project package: dashboard panel, audit trail, login events and the
application event log."""

import json

from auditlog.admin import LogEntryAdmin as StockLogEntryAdmin
from auditlog.models import LogEntry
from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from import_export import fields

from inventory.admin import FormulaSafeResource
from whalefall import audit, mfa, scope
from whalefall.api.tokens import api_token_issue, api_token_revoke
from whalefall.exports import ExportActionMixin
from whalefall.health import CHECK_LABELS, checks_for
from whalefall.models import ApiToken, EventLogEntry, LoginEvent, SingleSignOnIdentity
from whalefall.moments import moment
from whalefall.paginator import EstimatedCountPaginator
from whalefall.sites import DashboardPanel


@admin.site.register_panel
def system_health_panel(request: HttpRequest) -> DashboardPanel | None:
    """Readiness of the platform, shown to staff on the dashboard."""
    if not request.user.is_staff:
        return None
    return DashboardPanel(
        title=_("System health"),
        template="admin/panels/system_health.html",
        context={
            "checks": [
                (CHECK_LABELS.get(name, name), result)
                for name, result in checks_for(request).items()
            ]
        },
        order=0,
    )


class QuickCheckboxMixin:
    """The action checkbox of each row written directly, not rendered through the form
    widget templates: the same markup at a fraction of the cost on long changelists."""

    def action_checkbox(self, obj):
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME,
            str(obj.pk),
            format_html(_("Select this object for an action - {}"), str(obj)),
        )


class FastChangeListMixin(QuickCheckboxMixin):
    """Long changelists rendered cheaply: each row written in one piece by columns compiled
    once per page (``whalefall_list``), with the same markup as Django's."""

    change_list_template = "admin/whalefall_change_list.html"


class BigTableMixin:
    """Changelists of tables that grow without bound: counted from statistics or up to a cap,
    never in full, no facet counts (one more COUNT for every filter choice) and no date
    hierarchy (its links are a DISTINCT over the whole table); time ranges are list filters."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    date_hierarchy = None


class ReadOnlyAdminMixin:
    """A record nobody edits or deletes through the admin, not even a superuser."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.unregister(LogEntry)


class AuditedModelFilter(admin.SimpleListFilter):
    """The models whose entries the user may read, from the small content type table."""

    title = _("content type")
    parameter_name = "content_type__id__exact"

    def lookups(self, request, model_admin):
        readable = audit.readable_content_types(request)
        if readable is None:
            readable = ContentType.objects.all()
        types = sorted(readable, key=lambda ct: (ct.app_label, ct.model))
        return [(str(ct.pk), f"{ct.app_label} | {ct.name}") for ct in types]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(content_type_id=int(value))


class AuditLogResource(FormulaSafeResource):
    """The audit log as exported: who, when, what and from which request."""

    actor = fields.Field(column_name=_("actor"))
    action = fields.Field(column_name=_("action"))
    content_type = fields.Field(column_name=_("content type"))
    changes = fields.Field(column_name=_("changes"))

    class Meta:
        model = LogEntry
        fields = [
            "timestamp", "actor", "action", "content_type", "object_pk", "object_repr",
            "changes", "remote_addr", "cid",
        ]  # fmt: skip
        export_order = fields

    def dehydrate_actor(self, entry) -> str:
        return entry.actor.get_username() if entry.actor_id else ""

    def dehydrate_action(self, entry) -> str:
        return str(entry.get_action_display())

    def dehydrate_content_type(self, entry) -> str:
        content_type = ContentType.objects.get_for_id(entry.content_type_id)
        return f"{content_type.app_label} | {content_type.name}"

    def dehydrate_changes(self, entry) -> str:
        return json.dumps(entry.changes_dict, ensure_ascii=False, sort_keys=True, default=str)


@admin.register(LogEntry)
class AuditLogAdmin(BigTableMixin, ReadOnlyAdminMixin, ExportActionMixin, StockLogEntryAdmin):
    """Who changed what, when and from which request: read-only for everyone, and for a
    person limited to some instances only the entries about what they may see
    (:func:`whalefall.audit.entries_visible_to`); exported (CSV, XLSX) by those who read
    it, with the list's scope and filters."""

    resource_classes = [AuditLogResource]

    list_filter = [
        "action",
        AuditedModelFilter,
        # Every user, from the small user table: the "only related" variant is a DISTINCT
        # over the whole log.
        ("actor", admin.RelatedFieldListFilter),
        "timestamp",
    ]
    # Exact or prefix matches only: the audit log grows without bound.
    search_fields = ["=object_pk", "object_repr__startswith", "=actor__username", "=cid"]
    actions = None

    def get_queryset(self, request):
        return audit.entries_visible_to(request, super().get_queryset(request))

    def get_list_filter(self, request):
        if scope.sees_whole_estate(request):
            return self.list_filter
        # The user list is for those who see the whole estate.
        return [f for f in self.list_filter if not isinstance(f, tuple) or f[0] != "actor"]

    def has_delete_permission(self, request, obj=None):
        return False

    def has_export_permission(self, request):
        return self.has_view_permission(request)

    def get_export_queryset(self, request):
        return super().get_export_queryset(request).select_related("actor")

    def get_search_results(self, request, queryset, search_term):
        # The kind of object ("credential", "Instances") finds the entries about it, among
        # those the reader may see (``queryset`` is already the reader's).
        results, duplicates = super().get_search_results(request, queryset, search_term)
        named = audit.content_types_named(search_term)
        if named:
            results = results | queryset.filter(content_type_id__in=named)
        return results, duplicates

    def get_object(self, request, object_id, from_field=None):
        entry = super().get_object(request, object_id, from_field)
        if entry is not None:
            # Rendered here, where the reader is known: links only to what they may open.
            entry.changes_html = audit.changes_html(entry, request)
        return entry

    @admin.display(description=_("Created"))
    def created(self, obj):
        return moment(obj.timestamp)

    @admin.display(description=_("Changes"))
    def msg(self, obj):
        html = getattr(obj, "changes_html", None)
        return html if html is not None else audit.changes_html(obj)


class LoginEventResource(FormulaSafeResource):
    """Login events as exported."""

    class Meta:
        model = LoginEvent
        fields = ["created_at", "kind", "username", "ip_address", "request_id"]
        export_order = fields


@admin.register(LoginEvent)
class LoginEventAdmin(BigTableMixin, ReadOnlyAdminMixin, ExportActionMixin, admin.ModelAdmin):
    """Login attempts: every one for those who see the whole estate, otherwise one's own
    (the names and addresses of the other staff are not for a person limited to some
    instances); exported (CSV, XLSX) with the same scope."""

    resource_classes = [LoginEventResource]

    list_display = ["created_at", "kind", "username", "user", "ip_address", "request_id"]
    list_filter = ["kind", "created_at"]
    search_fields = ["=username", "=ip_address", "=request_id"]
    list_select_related = ["user"]
    actions = None
    readonly_fields = [f.name for f in LoginEvent._meta.fields]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if scope.sees_whole_estate(request):
            return queryset
        user = request.user
        return queryset.filter(Q(user=user) | Q(user=None, username=user.get_username()))

    def has_export_permission(self, request):
        return self.has_view_permission(request)


class EventLogResource(FormulaSafeResource):
    class Meta:
        model = EventLogEntry
        fields = [
            "created_at", "level", "event", "logger", "request_id", "run_id", "instance_id",
            "context",
        ]  # fmt: skip
        export_order = fields


@admin.register(EventLogEntry)
class EventLogAdmin(BigTableMixin, ReadOnlyAdminMixin, ExportActionMixin, admin.ModelAdmin):
    """Warnings, errors and job events of the application: read-only, and only for those
    who read the whole estate (Administrators and Auditors)."""

    resource_classes = [EventLogResource]
    list_display = ["created_at", "level", "event", "logger", "request_id", "run_id", "instance_id"]
    list_filter = ["level", ("created_at", admin.DateFieldListFilter)]
    # Prefix and exact matches only: the log grows without bound.
    search_fields = ["event__startswith", "=request_id"]
    readonly_fields = [f.name for f in EventLogEntry._meta.fields]

    def get_queryset(self, request):
        # The scoped roles are not granted this log; should someone limited to some
        # instances hold it anyway, they read the entries of those instances only.
        queryset = super().get_queryset(request)
        ids = scope.visible_instance_ids(request)
        return queryset if ids is None else queryset.filter(instance_id__in=ids)

    def has_export_permission(self, request):
        return self.has_view_permission(request)


# django-otp's own device pages edit keys and list backup codes: replaced by a read-only list
# whose one action is the reset.
admin.site.unregister(TOTPDevice)
admin.site.unregister(StaticDevice)


@admin.register(TOTPDevice)
class AuthenticatorAdmin(admin.ModelAdmin):
    """Users' authenticator apps: listed and reset by administrators, never shown or edited.
    A reset removes the user's app and backup codes; the user sets them up again."""

    list_display = ["user", "name", "confirmed", "created_at", "last_used_at"]
    list_filter = ["confirmed"]
    search_fields = ["=user__username"]
    list_select_related = ["user"]
    fields = ["user", "name", "confirmed", "created_at", "last_used_at"]
    readonly_fields = fields
    actions = ["reset_two_factor"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # the reset replaces a bare deletion
        return actions

    def delete_model(self, request, obj):
        mfa.devices_reset(user=obj.user, actor=request.user)

    @admin.action(
        description=_("Reset two-factor sign-in of the selected users"), permissions=["delete"]
    )
    def reset_two_factor(self, request, queryset):
        users = {device.user for device in queryset.select_related("user")}
        for user in users:
            mfa.devices_reset(user=user, actor=request.user)
        self.message_user(
            request,
            _("Two-factor sign-in reset for %(count)d user(s).") % {"count": len(users)},
        )


@admin.register(SingleSignOnIdentity)
class SingleSignOnIdentityAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Which directory account signs in as which user: created by single sign-on."""

    list_display = ["user", "issuer", "subject", "created_at"]
    search_fields = ["=user__username", "=subject"]
    list_select_related = ["user"]
    readonly_fields = ["user", "issuer", "subject", "created_at"]


class ApiTokenForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["name", "can_write", "expires_at"]

    def clean_expires_at(self):
        expires_at = self.cleaned_data.get("expires_at")
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError(_("The expiry must be in the future."))
        return expires_at


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Personal API tokens: each user creates and revokes their own; the token is shown
    once, when created. Administrators see and revoke everyone's."""

    form = ApiTokenForm
    list_display = [
        "name",
        "prefix",
        "user",
        "can_write",
        "expires_at",
        "last_used_at",
        "last_used_ip",
        "revoked_at",
    ]
    list_filter = ["can_write", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "=prefix", "=user__username"]
    list_select_related = ["user"]
    readonly_fields = [
        "user",
        "prefix",
        "created_at",
        "last_used_at",
        "last_used_ip",
        "revoked_at",
    ]
    actions = ["revoke"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.has_perm("whalefall.manage_api_tokens"):
            return queryset
        return queryset.filter(user=request.user)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "can_write", "expires_at"]
        return ["name", "user", "prefix", "can_write", "expires_at", *self.readonly_fields[2:]]

    def get_readonly_fields(self, request, obj=None):
        # A token is immutable once issued: revoke it and create another.
        return [] if obj is None else self.get_fields(request, obj)

    def save_model(self, request, obj, form, change):
        if change:
            return
        obj.user = request.user
        request._wf_new_token = api_token_issue(obj)

    def response_add(self, request, obj, post_url_continue=None):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("API token created"),
            "token": request._wf_new_token,
            "row": obj,
        }
        return TemplateResponse(request, "admin/whalefall/apitoken/created.html", context)

    @admin.action(description=_("Revoke the selected tokens"), permissions=["change"])
    def revoke(self, request, queryset):
        revoked = api_token_revoke(tokens=queryset)
        self.message_user(request, _("%(count)d token(s) revoked.") % {"count": revoked})

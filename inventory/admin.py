"""Admin pages of the inventory: instances, credentials and tags."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_post_parameters
from guardian.admin import GuardedModelAdminMixin
from import_export import resources
from import_export.admin import ImportExportMixin
from import_export.forms import ImportForm

from inventory import services
from inventory.models import (
    CHANGE_CREDENTIAL,
    DELETE_CREDENTIAL,
    USE_CREDENTIAL,
    VIEW_CREDENTIAL,
    Credential,
    Engine,
    Instance,
    Tag,
)
from inventory.services import WIDGET_WRITES, export_cell, typed_value
from whalefall.exports import ExportActionMixin
from whalefall.moments import moment

# --- Per-instance scope -----------------------------------------------------------------


def visible_instance_ids(
    request: HttpRequest, perm: str = "inventory.view_instance"
) -> set[int] | None:
    """Ids of the instances ``request.user`` holds ``perm`` on; None means all of them.

    Computed once per request and permission, and shared by every admin page that lists
    things hanging off an instance.
    """
    cache = request.__dict__.setdefault("_wf_visible_instances", {})
    if perm not in cache:
        user = request.user
        if user.is_active and user.has_perm(perm):
            cache[perm] = None
        else:
            cache[perm] = set(Instance.objects.visible_to(user, perm).values_list("pk", flat=True))
    return cache[perm]


INSTANCE_PERMISSIONS = {
    "view": "inventory.view_instance",
    "change": "inventory.change_instance",
    "delete": "inventory.delete_instance",
    "test_connection": "inventory.test_connection",
    "sync": "inventory.sync",
}


def instance_permitted(request: HttpRequest, action: str, instance: Instance | None) -> bool:
    """Whether the user may ``action`` an instance (or, without one, at least one instance)."""
    ids = visible_instance_ids(request, INSTANCE_PERMISSIONS[action])
    if ids is None:
        return True
    return bool(ids) if instance is None else instance.pk in ids


def visible_credential_ids(request: HttpRequest, perm: str = VIEW_CREDENTIAL) -> set[int]:
    """Ids of the credentials ``request.user`` holds ``perm`` on
    (``Credential.objects.visible_to``), computed once per request and permission."""
    cache = request.__dict__.setdefault("_wf_visible_credentials", {})
    if perm not in cache:
        visible = Credential.objects.visible_to(request.user, perm)
        cache[perm] = set(visible.values_list("pk", flat=True))
    return cache[perm]


def can_manage_object_permissions(request: HttpRequest) -> bool:
    """Only holders of guardian's permission models (Administrators) assign object permissions."""
    user = request.user
    return all(
        user.has_perm(f"guardian.{verb}_{model}objectpermission")
        for verb in ("view", "add", "change", "delete")
        for model in ("user", "group")
    )


class ObjectPermissionsMixin(GuardedModelAdminMixin):
    """Guardian's per-object permission pages, for Administrators only, and the flag the
    change form's link to them reads."""

    def obj_perms_manage_view(self, request, object_pk):
        if not can_manage_object_permissions(request):
            raise PermissionDenied
        return super().obj_perms_manage_view(request, object_pk)

    def obj_perms_manage_user_view(self, request, object_pk, user_id):
        if not can_manage_object_permissions(request):
            raise PermissionDenied
        return super().obj_perms_manage_user_view(request, object_pk, user_id)

    def obj_perms_manage_group_view(self, request, object_pk, group_id):
        if not can_manage_object_permissions(request):
            raise PermissionDenied
        return super().obj_perms_manage_group_view(request, object_pk, group_id)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["can_manage_object_permissions"] = (
            obj is not None and can_manage_object_permissions(request)
        )
        return super().render_change_form(request, context, add, change, form_url, obj)


# --- Rows hanging off an instance (accounts, capacity, …) --------------------------------


class FormulaSafeResource(resources.ModelResource):
    """Exports whose cells can never be read as spreadsheet formulas, written one way
    (``inventory.services.export_cell``): CSV text guarded against formulas, XLSX typed
    cells; booleans TRUE/FALSE, moments ISO 8601 with their offset."""

    def export_field(self, field, instance, **kwargs):
        value = typed_value(self, field, instance)
        if value is WIDGET_WRITES:
            value = super().export_field(field, instance, **kwargs)
        return export_cell(value, native=bool(kwargs.get("force_native_type")))


class InstanceImportForm(ImportForm):
    """The upload step of the instance import: a file over the size limit is refused here,
    before it is stored or read."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["import_file"].help_text = _(
            "CSV (UTF-8) or XLSX, at most %(size)s and %(rows)d rows; the first row names "
            "the columns. Nothing is written unless every row is valid."
        ) % {
            "size": filesizeformat(settings.WHALEFALL_IMPORT_MAX_BYTES),
            "rows": settings.WHALEFALL_IMPORT_MAX_ROWS,
        }

    def clean_import_file(self):
        upload = self.cleaned_data["import_file"]
        services.import_size_check(upload.size)
        return upload


class InstanceScopedMixin:
    """Admin of rows that hang off an instance: only those of the instances the user may see,
    through the request's cached :func:`visible_instance_ids`."""

    instance_field = "instance"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        ids = visible_instance_ids(request)
        return queryset if ids is None else queryset.filter(**{f"{self.instance_field}__in": ids})

    def on_visible_instance(self, request, obj) -> bool:
        """Whether ``obj`` (or, without one, at least one instance) is visible."""
        ids = visible_instance_ids(request)
        if ids is None:
            return True
        return bool(ids) if obj is None else getattr(obj, f"{self.instance_field}_id") in ids

    def has_view_permission(self, request, obj=None):
        allowed = super().has_view_permission(request, obj)
        return allowed and self.on_visible_instance(request, obj)

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        return allowed and self.on_visible_instance(request, obj)


class VisibleInstanceFilter(admin.SimpleListFilter):
    """Instances the user may see (from the small instance table, not a DISTINCT scan): a
    link each for a few, a drop-down for an estate (a link per instance is a long page of
    links, and a query string built for each)."""

    title = _("instance")
    parameter_name = "instance"
    links_up_to = 15

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        self.drop_down = len(self.lookup_choices) > self.links_up_to
        if self.drop_down:
            self.template = "admin/whalefall_select_filter.html"

    def lookups(self, request, model_admin):
        ids = visible_instance_ids(request)
        instances = Instance.objects.all() if ids is None else Instance.objects.filter(pk__in=ids)
        return [(str(pk), name) for pk, name in instances.values_list("pk", "name")]

    def choices(self, changelist):
        if not self.drop_down:
            yield from super().choices(changelist)
            return
        current = self.value()
        # The drop-down's form resubmits every other parameter of the page but its number.
        keep = [(k, v) for k, v in changelist.params.items() if k != self.parameter_name]
        yield {"value": "", "display": _("All"), "selected": current is None, "keep": keep}
        for value, display in self.lookup_choices:
            yield {"value": value, "display": display, "selected": value == current}

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(instance_id=self.value())
        return queryset


class EngineFilter(admin.SimpleListFilter):
    title = _("engine")
    parameter_name = "engine"

    def lookups(self, request, model_admin):
        return Engine.choices

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(instance__engine=self.value())
        return queryset


class TagFilter(admin.SimpleListFilter):
    title = _("tag")
    parameter_name = "tag"

    def lookups(self, request, model_admin):
        return [(t.slug, t.name) for t in Tag.objects.order_by("name")]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(instance__tags__slug=self.value())
        return queryset


# --- Instances --------------------------------------------------------------------------


class StatusFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [
            ("active", _("Active")),
            ("inactive", _("Inactive")),
            ("retired", _("Retired")),
            ("failing", _("Last connection failed")),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "active":
            return queryset.filter(retired_at__isnull=True, is_active=True)
        if value == "inactive":
            return queryset.filter(retired_at__isnull=True, is_active=False)
        if value == "retired":
            return queryset.filter(retired_at__isnull=False)
        if value == "failing":
            return queryset.filter(retired_at__isnull=True, last_connection_ok=False)
        return queryset


class AddTagsForm(forms.Form):
    tags = forms.ModelMultipleChoiceField(
        queryset=Tag.objects.all(), widget=forms.CheckboxSelectMultiple, label=_("Tags to add")
    )


class InstanceForm(forms.ModelForm):
    """Offers only the credentials the user may use, and refuses to connect an instance
    anywhere new with a credential they may not use (``services.instance_connection_check``)."""

    user = None  # set per request by InstanceAdmin.get_form

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields.get("credential")
        if field is not None and self.user is not None:
            usable = Q(pk__in=Credential.objects.visible_to(self.user, USE_CREDENTIAL).values("pk"))
            if self.instance.credential_id:  # keeping the current one is no new use
                usable |= Q(pk=self.instance.credential_id)
            field.queryset = field.queryset.filter(usable)

    def _post_clean(self):
        super()._post_clean()  # the instance now holds the submitted values
        if self.user is None:
            return
        try:
            services.instance_connection_check(user=self.user, instance=self.instance)
        except ValidationError as exc:
            field = "credential" if "credential" in self.fields else None
            self.add_error(field, exc.message_dict["credential"])


@admin.register(Instance)
class InstanceAdmin(ObjectPermissionsMixin, ImportExportMixin, ExportActionMixin, admin.ModelAdmin):
    resource_classes = [services.InstanceResource]
    form = InstanceForm
    change_form_template = "admin/inventory/instance/change_form.html"
    list_display = [
        "name",
        "engine",
        "address",
        "tag_badges",
        "version_major_minor",
        "last_connected_at",
        "status",
    ]
    list_filter = [
        "engine",
        ("tags", admin.RelatedOnlyFieldListFilter),
        "environment",
        StatusFilter,
    ]
    search_fields = ["name", "host"]
    autocomplete_fields = ["credential", "tags"]
    list_select_related = ["credential"]
    list_per_page = 50
    readonly_fields = [
        "version_raw",
        "version_major_minor",
        "version_full",
        "last_checked_at",
        "last_connected_at",
        "last_connection_ok",
        "last_connection_error",
        "retired_at",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["name", "engine", "host", "port", "database_name", "credential"]}),
        (
            _("Connection"),
            {"fields": ["tls_mode", "allow_md5_auth", "is_active", "deep_privileges"]},
        ),
        (_("Organisation"), {"fields": ["tags", "environment", "owner", "description"]}),
        (
            _("Last connection"),
            {
                "fields": [
                    "last_checked_at",
                    "last_connected_at",
                    "last_connection_ok",
                    "last_connection_error",
                    "version_major_minor",
                    "version_full",
                    "version_raw",
                ]
            },
        ),
        (_("Record"), {"fields": ["retired_at", "created_at", "updated_at"]}),
    ]
    actions = ["test_connection", "add_tags", "retire", "restore"]

    # Scope: model permission = every instance; object permission = that instance.

    def get_queryset(self, request):
        queryset = super().get_queryset(request).prefetch_related("tags")
        ids = visible_instance_ids(request)
        return queryset if ids is None else queryset.filter(pk__in=ids)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)  # a new class per call
        form.user = request.user
        return form

    def get_object(self, request, object_id, from_field=None):
        # An instance outside the user's scope does not exist for them: 404, no redirect
        # that would tell it apart from an unknown id.
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            if not self.has_view_or_change_permission(request):
                raise PermissionDenied
            raise Http404(_("No such instance."))
        return obj

    def has_view_permission(self, request, obj=None):
        return instance_permitted(request, "view", obj) or instance_permitted(
            request, "change", obj
        )

    def has_change_permission(self, request, obj=None):
        return instance_permitted(request, "change", obj)

    def has_delete_permission(self, request, obj=None):
        return instance_permitted(request, "delete", obj)

    def has_add_permission(self, request):
        return request.user.has_perm("inventory.add_instance")

    def has_test_connection_permission(self, request, obj=None):
        return instance_permitted(request, "test_connection", obj)

    def has_export_permission(self, request):
        return self.has_view_permission(request)

    def get_valid_export_item_pks(self, request):
        # Ids a user may name in an export: the visible ones (the stock answer is "all").
        return self.get_queryset(request).values_list("pk", flat=True)

    # Import: CSV and XLSX only, read within the limits by services.instance_sheet_read;
    # checked in full (dry run) first, then written all or nothing.

    import_formats = services.INSTANCE_IMPORT_FORMATS
    import_form_class = InstanceImportForm

    def add_data_read_fail_error_to_form(self, form, e):
        if isinstance(e, ValidationError):
            for message in e.messages:  # limits, columns, format: said in words
                form.add_error("import_file", message)
        else:
            super().add_data_read_fail_error_to_form(form, e)

    def get_import_data_kwargs(self, **kwargs):
        # The confirmed import rolls back on any invalid row too, not only on errors: the
        # data may have changed since the check.
        return {**super().get_import_data_kwargs(**kwargs), "rollback_on_validation_errors": True}

    def process_result(self, result, request):
        if result.has_errors() or result.has_validation_errors():
            self.message_user(
                request,
                _(
                    "Nothing was imported: the file no longer passes the check (the instances "
                    "changed meanwhile). Import it again to see why."
                ),
                messages.ERROR,
            )
            return HttpResponseRedirect(reverse("admin:inventory_instance_import"))
        return super().process_result(result, request)

    # Columns.

    @admin.display(description=_("address"), ordering="host")
    def address(self, obj: Instance) -> str:
        return obj.address

    @admin.display(description=_("tags"))
    def tag_badges(self, obj: Instance) -> str:
        return format_html_join(
            " ",
            '<span class="wf-tag" data-tag-colour="{}">{}</span>',
            ((tag.colour, tag.name) for tag in obj.tags.all()),
        )

    @admin.display(description=_("status"))
    def status(self, obj: Instance) -> str:
        if obj.is_retired:
            return format_html('<span class="wf-status wf-muted">{}</span>', _("retired"))
        if not obj.is_active:
            return format_html('<span class="wf-status wf-muted">{}</span>', _("inactive"))
        if obj.last_connection_ok is False:
            return format_html(
                '<span class="wf-status wf-bad" title="{}">{}</span>',
                obj.last_connection_error,
                _("connection failing"),
            )
        if obj.last_connection_ok:
            return format_html('<span class="wf-status wf-good">{}</span>', _("connected"))
        return format_html('<span class="wf-status wf-muted">{}</span>', _("not tested"))

    # Actions.

    def _report(self, request, checks) -> None:
        names = dict(
            Instance.objects.filter(pk__in=[c.instance_id for c in checks]).values_list(
                "pk", "name"
            )
        )
        for check in checks:
            name = names.get(check.instance_id, check.instance_id)
            if check.ok:
                self.message_user(
                    request,
                    _("%(name)s: connected (version %(version)s).")
                    % {"name": name, "version": check.version.full or check.version.major_minor},
                    messages.SUCCESS,
                )
            else:
                self.message_user(request, f"{name}: {check.message}", messages.ERROR)

    @admin.action(description=_("Test connection"), permissions=["test_connection"])
    def test_connection(self, request, queryset):
        ids = visible_instance_ids(request, "inventory.test_connection")
        allowed = queryset if ids is None else queryset.filter(pk__in=ids)
        refused = queryset.count() - allowed.count()
        if refused:
            self.message_user(
                request,
                ngettext(
                    "%(count)d instance skipped: you may not test its connection.",
                    "%(count)d instances skipped: you may not test their connections.",
                    refused,
                )
                % {"count": refused},
                messages.WARNING,
            )
        self._report(
            request,
            services.instance_test_connections(
                instances=allowed.select_related("credential"), user=request.user
            ),
        )

    def _changeable(self, request, queryset):
        ids = visible_instance_ids(request, "inventory.change_instance")
        return queryset if ids is None else queryset.filter(pk__in=ids)

    @admin.action(description=_("Retire (keep history, stop syncing)"), permissions=["change"])
    def retire(self, request, queryset):
        count = services.instance_retire(instances=self._changeable(request, queryset))
        self.message_user(
            request,
            ngettext("%(count)d instance retired.", "%(count)d instances retired.", count)
            % {"count": count},
        )

    @admin.action(description=_("Restore retired instances"), permissions=["change"])
    def restore(self, request, queryset):
        count = services.instance_restore(instances=self._changeable(request, queryset))
        self.message_user(
            request,
            ngettext("%(count)d instance restored.", "%(count)d instances restored.", count)
            % {"count": count},
        )

    @admin.action(description=_("Add tags"), permissions=["change"])
    def add_tags(self, request, queryset):
        queryset = self._changeable(request, queryset)
        form = AddTagsForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            count = services.instance_add_tags(instances=queryset, tags=form.cleaned_data["tags"])
            self.message_user(
                request,
                ngettext(
                    "Tags added to %(count)d instance.", "Tags added to %(count)d instances.", count
                )
                % {"count": count},
            )
            return None
        return TemplateResponse(
            request,
            "admin/inventory/instance/add_tags.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Add tags to instances"),
                "opts": self.model._meta,
                "form": form,
                "queryset": queryset,
                "action": "add_tags",
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )

    # The per-instance "test connection" button.

    def get_urls(self):
        return [
            path(
                "<path:object_id>/test-connection/",
                self.admin_site.admin_view(self.test_connection_view),
                name="inventory_instance_test_connection",
            ),
            *super().get_urls(),
        ]

    def test_connection_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        instance = get_object_or_404(self.get_queryset(request), pk=object_id)
        if not self.has_test_connection_permission(request, instance):
            raise PermissionDenied
        self._report(
            request, [services.instance_test_connection(instance=instance, user=request.user)]
        )
        return HttpResponseRedirect(reverse("admin:inventory_instance_change", args=[instance.pk]))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["can_test_connection"] = obj is not None and self.has_test_connection_permission(
            request, obj
        )
        return super().render_change_form(request, context, add, change, form_url, obj)


# --- Credentials ------------------------------------------------------------------------


class CredentialForm(forms.ModelForm):
    """The secret is write-only: typed in, encrypted, never rendered back."""

    secret = forms.CharField(
        label=_("Secret"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Password of the monitoring account. Leave empty to keep the stored one."),
    )

    class Meta:
        model = Credential
        fields = ["name", "username", "secret", "engine", "description"]

    def clean(self):
        cleaned = super().clean()
        if not self.instance.has_secret and not cleaned.get("secret"):
            self.add_error("secret", _("A new credential needs a secret."))
        return cleaned

    def save(self, commit=True):
        if self.cleaned_data.get("secret"):
            self.instance.set_secret(self.cleaned_data["secret"])
        return super().save(commit)


@admin.register(Credential)
class CredentialAdmin(ObjectPermissionsMixin, admin.ModelAdmin):
    form = CredentialForm
    change_form_template = "admin/inventory/credential/change_form.html"
    ordering = ["name"]  # explicit: the counting annotation drops Meta.ordering
    list_display = ["name", "username", "engine", "secret_status", "instance_count", "updated_at"]
    list_filter = ["engine"]
    search_fields = ["name", "username"]
    readonly_fields = ["secret_status", "created_at", "updated_at"]
    fields = [
        "name",
        "username",
        "secret",
        "secret_status",
        "engine",
        "description",
        "created_at",
        "updated_at",
    ]

    # Scope: Credential.objects.visible_to, per permission (see there).

    def get_queryset(self, request):
        queryset = super().get_queryset(request).visible_to(request.user, VIEW_CREDENTIAL)
        ids = visible_instance_ids(request)  # count only the instances the user may see
        counted = None if ids is None else Q(instances__in=ids)
        return queryset.annotate(_instances=Count("instances", filter=counted))

    def get_object(self, request, object_id, from_field=None):
        # A credential outside the user's scope does not exist for them (as for instances).
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            if not self.has_view_or_change_permission(request):
                raise PermissionDenied
            raise Http404(_("No such credential."))
        return obj

    def _permitted(self, request, perm: str, obj) -> bool:
        ids = visible_credential_ids(request, perm)
        if obj is None:
            return request.user.has_perm(perm) or bool(ids)
        return obj.pk in ids

    def has_view_permission(self, request, obj=None):
        return self._permitted(request, VIEW_CREDENTIAL, obj) or self._permitted(
            request, CHANGE_CREDENTIAL, obj
        )

    def has_change_permission(self, request, obj=None):
        return self._permitted(request, CHANGE_CREDENTIAL, obj)

    def has_delete_permission(self, request, obj=None):
        return self._permitted(request, DELETE_CREDENTIAL, obj)

    def get_search_results(self, request, queryset, search_term):
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if getattr(request.resolver_match, "url_name", None) == "autocomplete":
            # Choices to pick for an instance: only the credentials the user may use.
            usable = Credential.objects.visible_to(request.user, USE_CREDENTIAL)
            queryset = queryset.filter(pk__in=usable.values("pk"))
        return queryset, may_have_duplicates

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:  # used by no instance yet: its creator would not reach it otherwise
            services.credential_grant_to_creator(credential=obj, user=request.user)

    @method_decorator(sensitive_post_parameters("secret"))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if not self.has_change_permission(request, obj):
            fields.remove("secret")  # a read-only page has nothing to type into
        return fields

    @admin.display(description=_("secret"))
    def secret_status(self, obj: Credential) -> str:
        if not obj.has_secret:
            return _("not set")
        if obj.secret_changed_at:
            return _("set (changed %(when)s)") % {"when": moment(obj.secret_changed_at)}
        return _("set")

    @admin.display(description=_("instances"), ordering="_instances")
    def instance_count(self, obj: Credential) -> int:
        return obj._instances


# --- Tags -------------------------------------------------------------------------------


INSTANCE_PERMISSION_CHOICES = [
    ("inventory.view_instance", _("view")),
    ("inventory.change_instance", _("change")),
    ("inventory.delete_instance", _("delete")),
    ("inventory.test_connection", _("test connection")),
    ("inventory.sync", _("run syncs")),
]


class GrantPermissionsForm(forms.Form):
    group = forms.ModelChoiceField(queryset=Group.objects.order_by("name"), label=_("Group"))
    permissions = forms.MultipleChoiceField(
        choices=INSTANCE_PERMISSION_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        initial=["inventory.view_instance"],
        label=_("Permissions"),
        help_text=_("View is always included: the other permissions act on instances one can see."),
    )


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["badge", "slug", "category", "instance_count"]
    list_filter = ["category"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    actions = ["grant_permissions"]

    def get_queryset(self, request):
        # Tags are shared; the instances counted on them are only those the user may see.
        ids = visible_instance_ids(request)
        visible = None if ids is None else Q(instances__in=ids)
        return super().get_queryset(request).annotate(_instances=Count("instances", filter=visible))

    @admin.display(description=_("tag"), ordering="name")
    def badge(self, obj: Tag) -> str:
        return format_html(
            '<span class="wf-tag" data-tag-colour="{}">{}</span>', obj.colour, obj.name
        )

    @admin.display(description=_("instances"), ordering="_instances")
    def instance_count(self, obj: Tag) -> int:
        return obj._instances

    def has_grant_permission(self, request):
        return can_manage_object_permissions(request)

    @admin.action(
        description=_("Grant a group permissions on every instance with these tags"),
        permissions=["grant"],
    )
    def grant_permissions(self, request, queryset):
        form = GrantPermissionsForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            permissions = {"inventory.view_instance", *form.cleaned_data["permissions"]}
            group = form.cleaned_data["group"]
            count = services.instance_permissions_grant(
                group=group, permissions=sorted(permissions), tags=queryset
            )
            self.message_user(
                request,
                ngettext(
                    "%(group)s now holds the chosen permissions on %(count)d instance.",
                    "%(group)s now holds the chosen permissions on %(count)d instances.",
                    count,
                )
                % {"group": group.name, "count": count},
            )
            return None
        return TemplateResponse(
            request,
            "admin/inventory/tag/grant_permissions.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Grant permissions on tagged instances"),
                "opts": self.model._meta,
                "form": form,
                "queryset": queryset,
                "action": "grant_permissions",
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )

"""Admin pages of classification: classifications, versioned rules with a validating editor
and a live preview, assignments (manual ones editable), statistics and rule import/export.
"""

import json
from collections import defaultdict
from datetime import timedelta

from django import forms
from django.contrib import admin
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, Sum
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from accounts.models import Account
from classification import dsl, services
from classification.models import (
    Assignment,
    AssignmentSource,
    Classification,
    ClassificationDailyStat,
    Rule,
)
from classification.transfer import RulesImportError, rules_export, rules_import, rules_load
from inventory.admin import EngineFilter, visible_instance_ids
from inventory.models import Engine
from whalefall.admin import BigTableMixin, FastChangeListMixin
from whalefall.charts import Series, line_chart
from whalefall.text import printable

STATISTICS_DAYS = 90


def _badge(classification: Classification) -> str:
    return format_html(
        '<span class="wf-tag" data-tag-colour="{}">{}</span>',
        classification.colour,
        classification.name,
    )


def on_visible_instances(request, instance_field: str) -> Q | None:
    """Counts follow the scope: rows of the instances the user may see (None: all rows)."""
    ids = visible_instance_ids(request)
    return None if ids is None else Q(**{f"{instance_field}__in": ids})


def _visible_accounts(request):
    ids = visible_instance_ids(request)
    accounts = Account.objects.all()
    return accounts if ids is None else accounts.filter(instance_id__in=ids)


# --- Classifications ----------------------------------------------------------------------


@admin.register(Classification)
class ClassificationAdmin(admin.ModelAdmin):
    list_display = [
        "badge",
        "code",
        "risk_level",
        "priority",
        "is_system",
        "is_active",
        "rule_count",
        "assignment_count",
    ]
    list_display_links = ["badge"]
    list_filter = ["risk_level", "is_system", "is_active"]
    search_fields = ["name", "code"]
    fields = ["code", "name", "description", "risk_level", "priority", "colour", "is_active"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_rules=Count("rules", filter=Q(rules__superseded_at__isnull=True), distinct=True),
                n_assignments=Count(
                    "assignments",
                    filter=on_visible_instances(request, "assignments__account__instance_id"),
                    distinct=True,
                ),
            )
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["code", "risk_level"] if obj.is_system else ["code"]

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_system:
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request, queryset):
        # The bulk action offers the whole selection; system rows are never deleted.
        super().delete_queryset(request, queryset.filter(is_system=False))

    @admin.display(description=_("classification"), ordering="name")
    def badge(self, obj: Classification) -> str:
        return _badge(obj)

    @admin.display(description=_("rules"), ordering="n_rules")
    def rule_count(self, obj: Classification) -> int:
        return obj.n_rules

    @admin.display(description=_("assignments"), ordering="n_assignments")
    def assignment_count(self, obj: Classification) -> int:
        return obj.n_assignments

    # Statistics page ----------------------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "statistics/",
                self.admin_site.admin_view(self.statistics_view),
                name="classification_classification_statistics",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_view_statistics": self._may_see_stats(request),
        }
        return super().changelist_view(request, extra_context)

    def _may_see_stats(self, request) -> bool:
        return request.user.has_perm("classification.view_classificationdailystat")

    def statistics_view(self, request):
        if not self._may_see_stats(request):
            raise PermissionDenied
        end = timezone.localdate()
        start = end - timedelta(days=STATISTICS_DAYS - 1)
        stats = ClassificationDailyStat.objects.filter(day__gte=start, day__lte=end)
        ids = visible_instance_ids(request)
        if ids is not None:
            stats = stats.filter(instance_id__in=ids)
        engine = request.GET.get("engine", "")
        if engine in Engine.values:
            stats = stats.filter(engine=engine)
        else:
            engine = ""
        per_day = defaultdict(list)
        for row in (
            stats.values("classification_id", "day")
            .annotate(matched=Sum("matched"), assigned=Sum("assigned"))
            .order_by("classification_id", "day")
        ):
            per_day[row["classification_id"]].append(row)
        panels = []
        for classification in Classification.objects.in_priority_order():
            rows = per_day.get(classification.pk, [])
            latest = rows[-1] if rows else None
            panels.append(
                {
                    "classification": classification,
                    "badge": _badge(classification),
                    "latest": latest,
                    "chart": line_chart(
                        [
                            Series(
                                str(_("assigned")),
                                "#94a3b8",
                                [(r["day"], r["assigned"]) for r in rows],
                            ),
                            Series(
                                str(_("matched by rules")),
                                classification.colour,
                                [(r["day"], r["matched"]) for r in rows],
                            ),
                        ],
                        start=start,
                        end=end,
                        title=str(classification.name),
                        integer=True,
                        zero=True,
                    ),
                }
            )
        return TemplateResponse(
            request,
            "admin/classification/statistics.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Classification statistics"),
                "opts": self.model._meta,
                "panels": panels,
                "start": start,
                "end": end,
                "engines": Engine.choices,
                "engine": engine,
            },
        )


# --- Rules ----------------------------------------------------------------------------------


def _expression_errors(errors: list[dsl.DslError]) -> forms.ValidationError:
    return forms.ValidationError(
        [
            forms.ValidationError(
                "%(path)s: %(message)s (%(code)s)",
                code=error.code,
                params={
                    "path": error.path or _("expression"),
                    "message": error.message,
                    "code": error.code,
                },
            )
            for error in errors
        ]
    )


def _json_error(text: str) -> forms.ValidationError | None:
    """Where ``text`` stops being JSON, as a form error naming the line and column, or None
    when it parses (the error was something else)."""
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        return forms.ValidationError(
            _("Not valid JSON at line %(line)d, column %(column)d: %(problem)s."),
            code="invalid",
            params={"line": error.lineno, "column": error.colno, "problem": error.msg},
        )
    except (ValueError, RecursionError):
        return None
    return None


class ExpressionField(forms.JSONField):
    """The DSL expression as JSON text; every validation error is shown with its path.

    Text longer than the DSL's limit is refused before it is parsed, nesting too deep for
    the JSON parser is refused with the DSL's error, and :func:`dsl.validate` (run on the
    parsed value) applies the other limits without recursion: a hostile text (900 levels of
    nesting, a 10⁶-element list) is a form error, never a RecursionError.
    """

    widget = forms.Textarea(
        attrs={
            "rows": 14,
            "cols": 90,
            "class": "wf-code",
            "spellcheck": "false",
            "maxlength": dsl.MAX_LENGTH,
        }
    )

    def to_python(self, value):
        if self.disabled or not isinstance(value, str) or value in self.empty_values:
            return super().to_python(value)
        if len(value) > dsl.MAX_LENGTH:  # refused before it is parsed
            raise _expression_errors(dsl.validate(value))
        try:
            return super().to_python(value)
        except RecursionError:
            raise _expression_errors(dsl.validate(value)) from None
        except forms.ValidationError as error:
            raise _json_error(value) or error from None

    def bound_data(self, data, initial):
        # Shown again with the errors: never more than the limit, never parsed unbounded.
        if isinstance(data, str) and (len(data) > dsl.MAX_LENGTH or dsl.validate(data)):
            return forms.fields.InvalidJSONInput(data[: dsl.MAX_LENGTH])
        return super().bound_data(data, initial)

    def prepare_value(self, value):
        if value is None:
            return ""  # a new rule: an empty box, not the JSON text "null"
        if isinstance(value, dict | list):
            return printable(json.dumps(value, indent=2, ensure_ascii=False))
        prepared = super().prepare_value(value)
        return printable(prepared) if isinstance(prepared, str) else prepared

    def validate(self, value):
        super().validate(value)
        errors = dsl.validate(value)
        if errors:
            raise _expression_errors(errors)


class RuleForm(forms.ModelForm):
    expression = ExpressionField(
        label=_("expression"),
        help_text=_(
            'DSL v4, e.g. {"version": 4, "expr": {"op": "OR", "args": [{"fn": "is_superuser"}, '
            '{"fn": "has_privilege", "args": {"name": "SUPER", "scope": "global"}}]}}. '
            "Saving a changed expression or engine creates a new version."
        ),
    )

    class Meta:
        model = Rule
        fields = ["classification", "name", "engine", "expression", "is_active"]


class RuleVersionFilter(admin.SimpleListFilter):
    """Current versions unless asked otherwise: superseded ones are history."""

    title = _("version")
    parameter_name = "versions"

    def lookups(self, request, model_admin):
        return [("superseded", _("Superseded")), ("all", _("All versions"))]

    def choices(self, changelist):
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": _("Current"),
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        if self.value() == "all":
            return queryset
        if self.value() == "superseded":
            return queryset.filter(superseded_at__isnull=False)
        return queryset.filter(superseded_at__isnull=True)


class RulesImportForm(forms.Form):
    file = forms.FileField(
        label=_("rules file"),
        help_text=_("JSON exported by WhaleFall, or a list of rules in the predecessor's shape."),
    )
    dry_run = forms.BooleanField(
        label=_("only check"), required=False, initial=True, help_text=_("Change nothing.")
    )


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    form = RuleForm
    change_form_template = "admin/classification/rule/change_form.html"
    change_list_template = "admin/classification/rule/change_list.html"
    list_display = [
        "name",
        "classification",
        "engine_display",
        "readable",
        "version",
        "is_active",
        "updated_at",
    ]
    list_filter = [RuleVersionFilter, "classification", "engine", "is_active"]
    list_select_related = ["classification"]
    search_fields = ["name"]
    actions = ["export_rules", "activate", "deactivate"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ["readable"]
        return ["classification", "readable", "version_info"]

    def get_fields(self, request, obj=None):
        fields = ["classification", "name", "engine", "expression", "is_active", "readable"]
        return fields if obj is None else [*fields, "version_info"]

    def has_change_permission(self, request, obj=None):
        if obj is not None and not obj.is_current:
            return False
        return super().has_change_permission(request, obj)

    def has_preview_permission(self, request) -> bool:
        return self.has_add_permission(request) or self.has_change_permission(request)

    @admin.display(description=_("engine"), ordering="engine")
    def engine_display(self, obj: Rule) -> str:
        return obj.get_engine_display() if obj.engine else _("all engines")

    @admin.display(description=_("readable form"))
    def readable(self, obj: Rule) -> str:
        if obj is None or obj.expression is None:
            return "—"
        return format_html('<code class="wf-readable">{}</code>', dsl.render(obj.expression))

    @admin.display(description=_("version"))
    def version_info(self, obj: Rule) -> str:
        if obj.is_current:
            return format_html("v{} · {}", obj.version, _("current"))
        return format_html("v{} · {} {}", obj.version, _("superseded"), obj.superseded_at)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            saved = services.rule_create(
                classification=data["classification"],
                name=data["name"],
                engine=data["engine"],
                expression=data["expression"],
                is_active=data["is_active"],
                user=request.user,
            )
        else:
            saved = services.rule_update(
                rule=obj,
                name=data["name"],
                engine=data["engine"],
                expression=data["expression"],
                is_active=data["is_active"],
                user=request.user,
            )
            if saved.pk != obj.pk:
                self.message_user(
                    request,
                    _("Saved as version %(version)d; version %(old)d is kept as history.")
                    % {"version": saved.version, "old": saved.version - 1},
                )
            request._wf_new_version = saved.pk != obj.pk
        # The response (redirects, the admin log) speaks of the version now current.
        obj.__dict__.update(saved.__dict__)

    def response_change(self, request, obj):
        if "_continue" in request.POST and getattr(request, "_wf_new_version", False):
            # "Save and continue editing" goes on with the new version; the old is read-only.
            url = add_preserved_filters(
                {"preserved_filters": self.get_preserved_filters(request), "opts": self.opts},
                reverse("admin:classification_rule_change", args=[obj.pk]),
            )
            return HttpResponseRedirect(url)
        return super().response_change(request, obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        rule = self.get_object(request, object_id)
        extra_context = extra_context or {}
        if rule is not None:
            versions = list(
                Rule.objects.filter(lineage=rule.lineage)
                .select_related("created_by")
                .annotate(
                    n_assignments=Count(
                        "assignments",
                        filter=on_visible_instances(request, "assignments__account__instance_id"),
                    )
                )
                .order_by("-version")
            )
            for version in versions:
                version.readable = dsl.render(version.expression)
            extra_context["versions"] = versions
        return super().change_view(request, object_id, form_url, extra_context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # Only an editable form has an expression to preview.
        context["can_preview"] = self.has_preview_permission(request) and (
            add or self.has_change_permission(request, obj)
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

    # Actions -------------------------------------------------------------------------------

    @admin.action(description=_("Export selected rules as JSON"), permissions=["view"])
    def export_rules(self, request, queryset):
        document = rules_export(queryset.current().select_related("classification"))
        response = HttpResponse(
            json.dumps(document, indent=2, ensure_ascii=False), content_type="application/json"
        )
        stamp = timezone.localtime().strftime("%Y%m%d_%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="rules_{stamp}.json"'
        return response

    def _set_active(self, request, queryset, active: bool) -> int:
        changed = 0
        for rule in queryset.current().filter(is_active=not active):
            rule.is_active = active
            rule.save(update_fields=["is_active", "updated_at"])  # audited row by row
            changed += 1
        return changed

    @admin.action(description=_("Activate selected rules"), permissions=["change"])
    def activate(self, request, queryset):
        count = self._set_active(request, queryset, True)
        self.message_user(
            request, ngettext("%d rule activated.", "%d rules activated.", count) % count
        )

    @admin.action(description=_("Deactivate selected rules"), permissions=["change"])
    def deactivate(self, request, queryset):
        count = self._set_active(request, queryset, False)
        self.message_user(
            request, ngettext("%d rule deactivated.", "%d rules deactivated.", count) % count
        )

    # Preview and import ----------------------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "preview/",
                self.admin_site.admin_view(require_POST(self.preview_view)),
                name="classification_rule_preview",
            ),
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="classification_rule_import",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request):
        """The accounts an unsaved expression would match, among the user's instances."""
        if not self.has_preview_permission(request):
            raise PermissionDenied
        engine = request.POST.get("engine", "")
        if engine and engine not in Engine.values:
            engine = ""
        text = request.POST.get("expression", "")
        result = services.rule_preview(
            expression=text, engine=engine, accounts=_visible_accounts(request)
        )
        return TemplateResponse(
            request,
            "admin/classification/rule/_preview.html",
            {"result": result, "readable": dsl.render(text) if not result["errors"] else ""},
        )

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_import": self.has_add_permission(request) and self.has_change_permission(request),
        }
        return super().changelist_view(request, extra_context)

    def import_view(self, request):
        if not (self.has_add_permission(request) and self.has_change_permission(request)):
            raise PermissionDenied
        form = RulesImportForm(request.POST or None, request.FILES or None)
        report, problems = None, []
        if request.method == "POST" and form.is_valid():
            try:
                document = rules_load(form.cleaned_data["file"])
                report = rules_import(
                    document, user=request.user, dry_run=form.cleaned_data["dry_run"]
                )
            except RulesImportError as exc:
                problems = exc.problems
            if report is not None and not form.cleaned_data["dry_run"]:
                self.message_user(
                    request,
                    _("Rules imported: %(created)d new, %(versioned)d new versions, "
                      "%(updated)d updated, %(unchanged)d unchanged.") % report,
                )  # fmt: skip
                return redirect("admin:classification_rule_changelist")
        return TemplateResponse(
            request,
            "admin/classification/rule/import.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Import rules"),
                "opts": self.model._meta,
                "form": form,
                "report": report,
                "problems": problems,
            },
        )


# --- Assignments --------------------------------------------------------------------------


class AssignmentForm(forms.ModelForm):
    """Assign by hand; an automatic assignment of the same pair becomes manual."""

    class Meta:
        model = Assignment
        fields = ["account", "classification", "note"]

    def clean(self):
        cleaned = super().clean()
        account, classification = cleaned.get("account"), cleaned.get("classification")
        if account is not None and classification is not None and self.instance.pk is None:
            existing = Assignment.objects.filter(
                account=account, classification=classification
            ).first()
            if existing is not None and existing.source == AssignmentSource.MANUAL:
                raise forms.ValidationError(
                    _("%(account)s is already assigned to %(classification)s by hand.")
                    % {"account": account, "classification": classification}
                )
            if existing is not None:
                # Validated as an edit of that row, so the unique pair is not a conflict.
                self.instance = existing
        return cleaned


class AssignmentEngineFilter(EngineFilter):
    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(account__instance__engine=self.value())
        return queryset


@admin.register(Assignment)
class AssignmentAdmin(BigTableMixin, FastChangeListMixin, admin.ModelAdmin):
    form = AssignmentForm
    list_display = [
        "account",
        "instance",
        "classification_badge",
        "source",
        "rule_version",
        "run_id",
        "assigned_at",
    ]
    list_filter = ["classification", "source", AssignmentEngineFilter]
    list_select_related = ["account__instance", "classification", "rule"]
    search_fields = ["^account__name"]
    autocomplete_fields = ["account"]
    list_per_page = 50

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        ids = visible_instance_ids(request)
        return queryset if ids is None else queryset.filter(account__instance_id__in=ids)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "account":
            kwargs["queryset"] = _visible_accounts(request).filter(removed_at__isnull=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["account", "classification", "source", "rule", "run_id", "assigned_by",
                "assigned_at", "note"]  # fmt: skip

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["account", "classification", "note"]
        return self.get_readonly_fields(request, obj)

    def has_change_permission(self, request, obj=None):
        return False if obj is not None else super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        # Automatic assignments follow the rules; only manual ones are removed by hand.
        if obj is not None and obj.source != AssignmentSource.MANUAL:
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request, queryset):
        services.assignments_remove_manual(assignments=queryset, user=request.user)

    def delete_model(self, request, obj):
        services.assignments_remove_manual(
            assignments=Assignment.objects.filter(pk=obj.pk), user=request.user
        )

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        saved = services.assignment_add_manual(
            account=data["account"],
            classification=data["classification"],
            user=request.user,
            note=data.get("note", ""),
        )
        obj.__dict__.update(saved.__dict__)

    @admin.display(description=_("instance"), ordering="account__instance__name")
    def instance(self, obj: Assignment):
        return obj.account.instance

    @admin.display(description=_("classification"), ordering="classification__name")
    def classification_badge(self, obj: Assignment) -> str:
        return _badge(obj.classification)

    @admin.display(description=_("rule version"))
    def rule_version(self, obj: Assignment) -> str:
        return f"{obj.rule.name} v{obj.rule.version}" if obj.rule else "—"

"""API v1 of classification: classifications, versioned rules (with a validator of rule
expressions), and the assignments of accounts — with the rules of the admin's pages.

Writes go through :mod:`classification.services` as the admin's ``save_model`` and actions
do: a rule edit that changes the expression or engine makes a new version and supersedes
the old one (superseded versions are read-only); manual assignments are added and removed
by the same functions, automatic ones only by the rules.
"""

import django_filters
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, ProtectedError, Q
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.models import Account
from classification import dsl, services
from classification.admin import on_visible_instances
from classification.models import Assignment, AssignmentSource, Classification, RiskLevel, Rule
from inventory.models import Engine
from whalefall.api import router
from whalefall.api.errors import Conflict, conflict_response
from whalefall.api.fields import StorableInputMixin
from whalefall.api.filters import IdFilter
from whalefall.api.permissions import InstanceScopedMixin, TokenScope
from whalefall.scope import VIEW_INSTANCE, visible_instance_ids
from whalefall.text import printable

ENGINE_CHOICES = [("", _("all engines")), *Engine.choices]

_CONFLICT = conflict_response(
    "Still referenced: assignments record a rule version as their evidence."
)


def _drf_errors(exc: DjangoValidationError) -> exceptions.ValidationError:
    """A model validation error (``full_clean``) as the API's field errors."""
    if hasattr(exc, "error_dict"):
        detail = {
            ("non_field_errors" if field == NON_FIELD_ERRORS else field): [
                exceptions.ErrorDetail(str(message), code=error.code or "invalid")
                for error in errors
                for message in error.messages
            ]
            for field, errors in exc.error_dict.items()
        }
    else:
        detail = [
            exceptions.ErrorDetail(message, code=error.code or "invalid")
            for error in exc.error_list
            for message in error.messages
        ]
    return exceptions.ValidationError(detail)


def _expression_errors(errors: list[dsl.DslError]) -> dict:
    """DSL errors keyed by the DSL's own path, so the envelope says
    ``expression.expr.args[1].args.scope`` (the whole expression: ``expression``)."""
    detail: dict[str, list] = {}
    for error in errors:
        key = error.path or "non_field_errors"
        detail.setdefault(key, []).append(exceptions.ErrorDetail(error.message, code=error.code))
    return detail


# --- Classifications ----------------------------------------------------------------------


class ClassificationSerializer(StorableInputMixin, serializers.ModelSerializer):
    colour = serializers.RegexField(
        r"^#[0-9a-fA-F]{6}$",
        max_length=7,
        required=False,
        help_text=_("Badge colour as #rrggbb."),
    )
    risk_level = serializers.ChoiceField(
        choices=RiskLevel.choices,
        default=RiskLevel.MEDIUM,
        help_text=_("1 is the highest risk, 6 the lowest; fixed for system classifications."),
    )
    rule_count = serializers.IntegerField(
        source="n_rules", read_only=True, help_text=_("Current rule versions.")
    )
    assignment_count = serializers.IntegerField(
        source="n_assignments",
        read_only=True,
        help_text=_("Assignments of accounts of the instances you may see."),
    )

    class Meta:
        model = Classification
        fields = [
            "id", "code", "name", "description", "risk_level", "priority", "colour",
            "is_system", "is_active", "rule_count", "assignment_count", "created_at",
            "updated_at",
        ]  # fmt: skip
        read_only_fields = ["is_system", "created_at", "updated_at"]

    def validate(self, attrs):
        obj = self.instance
        risk = attrs.get("risk_level")
        if obj is not None and obj.is_system and risk is not None and risk != obj.risk_level:
            raise exceptions.ValidationError(
                {"risk_level": [_("The risk level of a system classification is fixed.")]}
            )
        return attrs

    def _save(self, obj: Classification, values: dict) -> Classification:
        for name, value in values.items():
            setattr(obj, name, value)
        try:
            obj.full_clean()  # what the admin's ModelForm checks, constraints included
        except DjangoValidationError as exc:
            raise _drf_errors(exc) from None
        obj.save()
        return obj

    def create(self, validated_data):
        return self._save(Classification(), validated_data)

    def update(self, instance, validated_data):
        return self._save(instance, validated_data)


class ClassificationUpdateSerializer(ClassificationSerializer):
    """The code is a stable identifier: set once, never changed."""

    class Meta(ClassificationSerializer.Meta):
        read_only_fields = ["code", *ClassificationSerializer.Meta.read_only_fields]


class ClassificationFilter(django_filters.FilterSet):
    risk_level = django_filters.TypedChoiceFilter(choices=RiskLevel.choices, coerce=int)
    is_system = django_filters.BooleanFilter()
    is_active = django_filters.BooleanFilter()
    search = django_filters.CharFilter(
        method="filter_search", label=_("Name or code contains (case-insensitive).")
    )

    class Meta:
        model = Classification
        fields = ["risk_level", "is_system", "is_active"]

    def filter_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(code__icontains=value))


class ReloadAnnotatedMixin:
    """After a write, answer with the row as a read would show it (its counts included)."""

    def _reload(self, serializer):
        serializer.instance = self.get_queryset().get(pk=serializer.instance.pk)

    def perform_create(self, serializer):
        serializer.save()
        self._reload(serializer)

    def perform_update(self, serializer):
        serializer.save()
        self._reload(serializer)


@extend_schema_view(
    list=extend_schema(summary="List classifications"),
    retrieve=extend_schema(summary="One classification"),
    create=extend_schema(summary="Create a classification"),
    update=extend_schema(summary="Replace a classification (the code stays)"),
    partial_update=extend_schema(summary="Change a classification (the code stays)"),
    destroy=extend_schema(
        summary="Delete a classification (not a system one)",
        responses={204: None, 409: _CONFLICT},
    ),
)
class ClassificationViewSet(ReloadAnnotatedMixin, viewsets.ModelViewSet):
    """Classifications, with their current rule count and the assignments you may see."""

    queryset = Classification.objects.all()
    filterset_class = ClassificationFilter

    def get_queryset(self):
        return (
            super()
            .get_queryset()
            .annotate(
                n_rules=Count("rules", filter=Q(rules__superseded_at__isnull=True), distinct=True),
                n_assignments=Count(
                    "assignments",
                    filter=on_visible_instances(self.request, "assignments__account__instance_id"),
                    distinct=True,
                ),
            )
        )

    def get_serializer_class(self):
        if self.action in ("update", "partial_update"):
            return ClassificationUpdateSerializer
        return ClassificationSerializer

    def perform_destroy(self, instance):
        if instance.is_system:
            raise exceptions.PermissionDenied(
                _("%(name)s is a system classification and cannot be deleted.")
                % {"name": instance.name}
            )
        try:
            instance.delete()
        except ProtectedError:
            raise Conflict(
                _("Assignments still record rule versions of this classification.")
            ) from None


router.register("classifications", ClassificationViewSet, basename="classification")


# --- Accounts, as rules' previews and assignments show them --------------------------------


class AssignedInstanceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    engine = serializers.ChoiceField(choices=Engine.choices)


class AssignedAccountSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    host = serializers.CharField()
    instance = AssignedInstanceSerializer()


# --- Rules --------------------------------------------------------------------------------


class ExpressionField(serializers.JSONField):
    """A DSL v4 expression; every problem is reported at its path inside the expression."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        errors = dsl.validate(value)
        if errors:
            raise exceptions.ValidationError(_expression_errors(errors))
        return value


EXPRESSION_HELP = _(
    'DSL v4: {"version": 4, "expr": NODE}, as an object or as JSON text. Changing it (or the '
    "engine) creates a new version of the rule."
)


class RuleSerializer(StorableInputMixin, serializers.ModelSerializer):
    classification = serializers.PrimaryKeyRelatedField(queryset=Classification.objects.all())
    engine = serializers.ChoiceField(
        choices=ENGINE_CHOICES,
        default="",
        allow_blank=True,
        help_text=_("Only accounts of this engine are evaluated; empty for every engine."),
    )
    expression = ExpressionField(help_text=EXPRESSION_HELP)
    readable = serializers.SerializerMethodField(
        help_text=_('The expression in readable form: is_superuser() OR has_role("dba").')
    )
    is_current = serializers.BooleanField(
        read_only=True, help_text=_("False for superseded versions, which are read-only.")
    )
    created_by = serializers.CharField(
        source="created_by.username", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = Rule
        fields = [
            "id", "lineage", "version", "classification", "name", "engine", "expression",
            "readable", "is_active", "is_current", "created_by", "created_at", "updated_at",
            "superseded_at",
        ]  # fmt: skip
        read_only_fields = [
            "lineage", "version", "created_at", "updated_at", "superseded_at",
        ]  # fmt: skip
        # Names are unique among current versions only: checked by the model's constraint.
        validators = []

    @extend_schema_field(OpenApiTypes.STR)
    def get_readable(self, obj: Rule) -> str:
        return dsl.render(obj.expression)

    def create(self, validated_data):
        return _rule_call(
            services.rule_create,
            classification=validated_data["classification"],
            name=validated_data["name"],
            engine=validated_data.get("engine", ""),
            expression=validated_data["expression"],
            is_active=validated_data.get("is_active", True),
            user=self.context["request"].user,
        )

    def update(self, instance, validated_data):
        if not instance.is_current:
            raise exceptions.PermissionDenied(
                _("Version %(version)d is superseded and read-only; edit the current version.")
                % {"version": instance.version}
            )
        return _rule_call(
            services.rule_update,
            rule=instance,
            name=validated_data.get("name", instance.name),
            engine=validated_data.get("engine", instance.engine),
            expression=validated_data.get("expression", instance.expression),
            is_active=validated_data.get("is_active", instance.is_active),
            user=self.context["request"].user,
        )


class RuleUpdateSerializer(RuleSerializer):
    """A rule stays in its classification, as in the admin's change form."""

    class Meta(RuleSerializer.Meta):
        read_only_fields = ["classification", *RuleSerializer.Meta.read_only_fields]


class RuleVersionSerializer(RuleSerializer):
    assignment_count = serializers.IntegerField(
        source="n_assignments",
        read_only=True,
        help_text=_("Assignments (of accounts you may see) that this version matched."),
    )

    class Meta(RuleSerializer.Meta):
        fields = [*RuleSerializer.Meta.fields, "assignment_count"]
        read_only_fields = fields


def _rule_call(service, **kwargs) -> Rule:
    """A rule service, its refusals as the API's errors (what the admin's form shows)."""
    try:
        return service(**kwargs)
    except services.RuleInvalid as exc:
        raise exceptions.ValidationError({"expression": _expression_errors(exc.errors)}) from None
    except services.RuleSuperseded as exc:
        raise exceptions.PermissionDenied(str(exc)) from None
    except DjangoValidationError as exc:
        raise _drf_errors(_name_taken_on_name(exc)) from None


def _name_taken_on_name(exc: DjangoValidationError) -> DjangoValidationError:
    """The model reports a duplicate name (a conditional unique constraint) for the whole
    rule; the API says which field it is about."""
    if not hasattr(exc, "error_dict"):
        return exc
    taken = str(_NAME_UNIQUE.violation_error_message)
    errors = dict(exc.error_dict)
    rest = [e for e in errors.pop(NON_FIELD_ERRORS, []) if taken not in e.messages]
    if len(rest) == len(exc.error_dict.get(NON_FIELD_ERRORS, [])):
        return exc
    errors["name"] = [*errors.get("name", []), DjangoValidationError(taken, code="unique")]
    if rest:
        errors[NON_FIELD_ERRORS] = rest
    return DjangoValidationError(errors)


_NAME_UNIQUE = next(
    c for c in Rule._meta.constraints if c.name == "classification_rule_name_unique"
)


class RuleFilter(django_filters.FilterSet):
    include_superseded = django_filters.BooleanFilter(
        method="filter_versions",
        label=_("Also list superseded versions (default: current versions only)."),
    )
    classification = django_filters.ModelChoiceFilter(queryset=Classification.objects.all())
    engine = django_filters.ChoiceFilter(
        choices=ENGINE_CHOICES, label=_("Engine; an empty value means rules for every engine.")
    )
    is_active = django_filters.BooleanFilter()
    lineage = django_filters.UUIDFilter(label=_("Versions of one rule."))
    search = django_filters.CharFilter(
        field_name="name", lookup_expr="icontains", label=_("Name contains.")
    )

    class Meta:
        model = Rule
        fields = ["classification", "engine", "is_active", "lineage"]

    def filter_versions(self, queryset, name, value):
        # Applied by RuleViewSet.filter_queryset: leaving it out means "current only" for
        # the list, while one version is found by its id whatever it is.
        return queryset


class RuleValidationSerializer(serializers.Serializer):
    expression = serializers.JSONField(help_text=EXPRESSION_HELP)
    engine = serializers.ChoiceField(
        choices=ENGINE_CHOICES,
        required=False,
        allow_blank=True,
        help_text=_("The rule's engine, as in the rule form; empty for every engine."),
    )


class ExpressionErrorSerializer(serializers.Serializer):
    path = serializers.CharField(
        help_text=_(
            "Where, from the request body: `expression` (the whole of it), "
            "`expression.expr.args[1].args.scope` (the DSL's path inside it), `engine`."
        )
    )
    code = serializers.CharField(
        help_text=_("DSL_V4_REQUIRED, INVALID_DSL_EXPRESSION, UNKNOWN_DSL_FUNCTION, "
                    "MISSING_DSL_ARGS, INVALID_DSL_ARGS; `invalid_choice` for the engine.")
    )  # fmt: skip
    message = serializers.CharField()


class RuleValidationResultSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    errors = ExpressionErrorSerializer(many=True)
    readable = serializers.CharField(
        allow_null=True, help_text=_("The readable form of a valid expression.")
    )


class RulePreviewSerializer(RuleValidationResultSerializer):
    total = serializers.IntegerField(help_text=_("Accounts matched."))
    evaluated = serializers.IntegerField(help_text=_("Accounts the expression was evaluated on."))
    accounts = AssignedAccountSerializer(
        many=True, help_text=_("Up to 200 of the matched accounts, by instance and name.")
    )


@extend_schema_view(
    list=extend_schema(summary="List rules (current versions unless include_superseded)"),
    retrieve=extend_schema(summary="One rule version (current or superseded)"),
    create=extend_schema(summary="Create a rule (version 1)"),
    update=extend_schema(
        summary="Edit a rule",
        description=(
            "A new expression or engine makes a new version and supersedes this one; the "
            "answer is the version now current (its id differs then). Superseded versions "
            "are read-only (403)."
        ),
    ),
    partial_update=extend_schema(
        summary="Edit a rule in part",
        description="As PUT: a new expression or engine makes a new version.",
    ),
    destroy=extend_schema(summary="Delete a rule version", responses={204: None, 409: _CONFLICT}),
)
class RuleViewSet(viewsets.ModelViewSet):
    """Classification rules. Each version is a row; versions of one rule share a lineage."""

    queryset = Rule.objects.select_related("created_by")
    filterset_class = RuleFilter
    action_permissions = {
        "validate": ["classification.view_rule"],
        "preview": ["classification.view_rule"],
    }

    def get_serializer_class(self):
        if self.action in ("update", "partial_update"):
            return RuleUpdateSerializer
        if self.action == "versions":
            return RuleVersionSerializer
        return RuleSerializer

    def get_permissions(self):
        if self.action in ("validate", "preview"):
            # They write nothing, so a read-only token may.
            return [cls() for cls in self.permission_classes if cls is not TokenScope]
        return super().get_permissions()

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        if self.action == "list":
            shown = self.request.query_params.get("include_superseded", "").lower()
            if shown not in ("true", "1"):
                queryset = queryset.filter(superseded_at__isnull=True)
        return queryset

    def perform_destroy(self, instance):
        try:
            instance.delete()
        except ProtectedError:
            raise Conflict(
                _("Assignments record this rule version as their evidence; deactivate it.")
            ) from None

    @extend_schema(
        summary="Every version of a rule, newest first",
        responses=RuleVersionSerializer(many=True),
        filters=False,
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def versions(self, request, pk=None):
        rule = self.get_object()
        versions = (
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
        return Response(self.get_serializer(versions, many=True).data)

    @extend_schema(
        summary="Validate a rule expression",
        description=(
            "Checks an expression (and engine) as the rule form does, and reports every "
            "problem with its path. Saves nothing."
        ),
        request=RuleValidationSerializer,
        responses=RuleValidationResultSerializer,
        filters=False,
    )
    @action(detail=False, methods=["post"], pagination_class=None, filter_backends=[])
    def validate(self, request):
        draft = _RuleDraft(request.data)
        return Response(
            {"valid": not draft.errors, "errors": draft.errors, "readable": draft.readable()}
        )

    @extend_schema(
        summary="The accounts an unsaved expression would match",
        description=(
            "As the rule editor's preview: the expression (and engine) evaluated against the "
            "present accounts of the instances you may see. Errors as in validate; nothing "
            "is evaluated then. Saves nothing. For those who may add or change rules."
        ),
        request=RuleValidationSerializer,
        responses=RulePreviewSerializer,
        filters=False,
    )
    @action(detail=False, methods=["post"], pagination_class=None, filter_backends=[])
    def preview(self, request):
        user = request.user
        if not (
            user.has_perm("classification.add_rule") or user.has_perm("classification.change_rule")
        ):
            raise exceptions.PermissionDenied()
        draft = _RuleDraft(request.data)
        result = {"total": 0, "evaluated": 0, "accounts": []}
        if not draft.errors:
            accounts = Account.objects.all()
            ids = visible_instance_ids(request)
            if ids is not None:
                accounts = accounts.filter(instance_id__in=ids)
            result = services.rule_preview(
                expression=draft.expression, engine=draft.engine, accounts=accounts
            )
        return Response(
            {
                "valid": not draft.errors,
                "errors": draft.errors,
                "readable": draft.readable(),
                "total": result["total"],
                "evaluated": result["evaluated"],
                "accounts": AssignedAccountSerializer(result["accounts"], many=True).data,
            }
        )


class _RuleDraft:
    """An expression and engine from a request body, checked as the rule form checks them;
    ``errors`` have paths from the body (``engine``, ``expression.expr.args[1]``)."""

    def __init__(self, body):
        body = body if isinstance(body, dict) else {}
        if "expression" not in body:
            raise exceptions.ValidationError(
                {"expression": [exceptions.ErrorDetail(_("This field is required."), "required")]}
            )
        self.errors: list[dict] = []
        engine = body.get("engine") or ""
        if not isinstance(engine, str) or engine not in ("", *Engine.values):
            self.errors.append(
                {
                    "path": "engine",
                    "code": "invalid_choice",
                    "message": _("“%(value)s” is not a valid engine.")
                    % {"value": printable(str(engine))},
                }
            )
            engine = ""
        self.engine = engine
        self.expression = body["expression"]
        self.dsl_errors = dsl.validate(self.expression)
        self.errors += [
            {
                "path": f"expression.{error.path}" if error.path else "expression",
                "code": error.code,
                "message": error.message,
            }
            for error in self.dsl_errors
        ]

    def readable(self) -> str | None:
        return None if self.dsl_errors else dsl.render(self.expression)


router.register("rules", RuleViewSet, basename="rule")


# --- Assignments ----------------------------------------------------------------------------


class AssignmentSerializer(serializers.ModelSerializer):
    account = AssignedAccountSerializer(read_only=True)
    classification_code = serializers.CharField(source="classification.code", read_only=True)
    source = serializers.ChoiceField(choices=AssignmentSource.choices, read_only=True)
    rule_version = serializers.IntegerField(
        source="rule.version", read_only=True, allow_null=True, default=None
    )
    assigned_by = serializers.CharField(
        source="assigned_by.username", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = Assignment
        fields = [
            "id", "account", "classification", "classification_code", "source", "rule",
            "rule_version", "run_id", "assigned_by", "assigned_at", "note",
        ]  # fmt: skip
        read_only_fields = fields


class AssignmentCreateSerializer(StorableInputMixin, serializers.Serializer):
    """Assign by hand, as the admin's form: an automatic assignment of the pair becomes
    manual, a manual one is refused."""

    account = serializers.PrimaryKeyRelatedField(queryset=Account.objects.none())
    classification = serializers.PrimaryKeyRelatedField(queryset=Classification.objects.all())
    note = serializers.CharField(
        max_length=500, required=False, allow_blank=True, default="",
        help_text=_("Why it was assigned by hand."),
    )  # fmt: skip

    def get_fields(self):
        fields = super().get_fields()
        # Only present accounts of the instances the user may see: others do not exist here.
        request = self.context.get("request")
        if request is not None:
            accounts = Account.objects.filter(removed_at__isnull=True)
            ids = visible_instance_ids(request)
            if ids is not None:
                accounts = accounts.filter(instance_id__in=ids)
            fields["account"].queryset = accounts
        return fields

    def validate(self, attrs):
        if Assignment.objects.filter(
            account=attrs["account"],
            classification=attrs["classification"],
            source=AssignmentSource.MANUAL,
        ).exists():
            raise exceptions.ValidationError(
                _("%(account)s is already assigned to %(classification)s by hand.")
                % {"account": attrs["account"], "classification": attrs["classification"]}
            )
        return attrs

    def create(self, validated_data):
        return services.assignment_add_manual(
            account=validated_data["account"],
            classification=validated_data["classification"],
            user=self.context["request"].user,
            note=validated_data.get("note", ""),
        )


class AssignmentFilter(django_filters.FilterSet):
    classification = IdFilter()
    source = django_filters.ChoiceFilter(choices=AssignmentSource.choices)
    engine = django_filters.ChoiceFilter(
        field_name="account__instance__engine", choices=Engine.choices
    )
    instance = IdFilter(field_name="account__instance_id")
    account = IdFilter()
    rule = IdFilter()
    search = django_filters.CharFilter(
        field_name="account__name", lookup_expr="startswith", label=_("Account name starts with.")
    )

    class Meta:
        model = Assignment
        fields = ["classification", "source", "engine", "instance", "account", "rule"]


@extend_schema_view(
    list=extend_schema(summary="List assignments of accounts you may see"),
    retrieve=extend_schema(summary="One assignment"),
    create=extend_schema(
        summary="Assign a classification by hand",
        request=AssignmentCreateSerializer,
        responses={201: AssignmentSerializer},
    ),
    destroy=extend_schema(summary="Remove a manual assignment (automatic ones follow the rules)"),
)
class AssignmentViewSet(
    InstanceScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Accounts placed in classifications, by a rule version or by hand."""

    queryset = Assignment.objects.select_related(
        "account__instance", "classification", "rule", "assigned_by"
    )
    filterset_class = AssignmentFilter
    instance_field = "account__instance"
    # The admin scopes assignments, and the accounts offered, by the instances one may see.
    write_permission = VIEW_INSTANCE

    def get_serializer_class(self):
        return AssignmentCreateSerializer if self.action == "create" else AssignmentSerializer

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        assignment = serializer.save()
        shown = self.get_queryset().get(pk=assignment.pk)
        return Response(AssignmentSerializer(shown).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        if instance.source != AssignmentSource.MANUAL:
            raise exceptions.PermissionDenied(
                _("Automatic assignments follow the rules; only manual ones are removed by hand.")
            )
        services.assignments_remove_manual(
            assignments=Assignment.objects.filter(pk=instance.pk), user=self.request.user
        )


router.register("assignments", AssignmentViewSet, basename="assignment")

"""REST API of accounts: accounts with their canonical and effective privileges, the change
history and its feed, and the access review — with the admin's permissions and instance
scope (SPEC §12)."""

import functools
import re

import structlog
from django.db.models import TextField
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django_filters import rest_framework as filters
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, viewsets
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.response import Response

from accounts.admin import (
    ACCESS_REVIEW_TYPES,
    UNCLASSIFIED,
    access_review_file,
    access_review_of,
    assignments_by_risk,
    assignments_prefetch,
    classified_as,
    last_quarter,
)
from accounts.facts import stored_capabilities
from accounts.models import Account, AccountChange, AccountKind, ChangeType, account_identity
from accounts.reports import effective_view, provenance
from inventory.models import Engine, Instance, Tag
from whalefall.api import router
from whalefall.api.fields import iso_datetime
from whalefall.api.filters import BooleanFilter, DateTimeRangeFilter, IdFilter, IdInFilter
from whalefall.api.pagination import FeedPagination
from whalefall.api.permissions import InstanceScopedMixin, on_some_instance
from whalefall.scope import VIEW_INSTANCE, visible_instance_ids

log = structlog.get_logger(__name__)


SCOPED_READ = on_some_instance()


# --- Accounts ---------------------------------------------------------------------------


class AccountFilterSet(filters.FilterSet):
    """The filters of the admin's account list."""

    instance = IdInFilter(field_name="instance_id", help_text="Instance ids, comma-separated.")
    engine = filters.ChoiceFilter(field_name="instance__engine", choices=Engine.choices)
    tag = filters.CharFilter(field_name="instance__tags__slug", help_text="A tag's slug.")
    kind = filters.ChoiceFilter(choices=AccountKind.choices)
    removed = BooleanFilter(
        field_name="removed_at",
        lookup_expr="isnull",
        exclude=True,
        help_text="true: accounts a sync found gone; false: present ones.",
    )
    superuser = BooleanFilter(field_name="snapshot__is_superuser")
    can_grant = BooleanFilter(field_name="snapshot__can_grant")
    can_escalate = BooleanFilter(field_name="snapshot__can_escalate")
    anonymous = BooleanFilter(field_name="snapshot__is_anonymous")
    no_password = BooleanFilter(field_name="snapshot__no_password")
    locked = BooleanFilter(field_name="snapshot__is_locked")
    privileged = BooleanFilter(
        method="filter_privileged",
        help_text="Effective SUPERUSER, GRANT_ADMIN or ESCALATION.",
    )
    classification = filters.CharFilter(
        method="filter_classification",
        help_text=f"A classification's code; `{UNCLASSIFIED}` for accounts none matched.",
    )
    search = filters.CharFilter(
        field_name="name", lookup_expr="istartswith", help_text="Start of the account name."
    )

    class Meta:
        model = Account
        fields = []

    def filter_privileged(self, queryset, name, value):
        if value:
            return queryset.privileged()
        return queryset.exclude(pk__in=Account.objects.privileged().values("pk"))

    def filter_classification(self, queryset, name, value):
        return classified_as(queryset, value)


class AssignedClassificationSerializer(serializers.Serializer):
    code = serializers.CharField(source="classification.code")
    name = serializers.CharField(source="classification.name")
    risk_level = serializers.IntegerField(source="classification.risk_level")
    source = serializers.CharField()


class GrantSerializer(serializers.Serializer):
    """One grant of the canonical form (SPEC §5.1)."""

    scope = serializers.CharField()
    object = serializers.CharField(help_text="What it is on; empty for global grants.")
    privilege = serializers.CharField()
    option = serializers.CharField(help_text="``, `GRANT` or `DENY`.")


class CanonicalSerializer(serializers.Serializer):
    """The canonical privilege set of the account itself (its snapshot)."""

    engine = serializers.CharField()
    attributes = serializers.DictField(child=serializers.JSONField())
    roles = serializers.ListField(child=serializers.CharField())
    grants = GrantSerializer(many=True)


class EffectiveGrantSerializer(GrantSerializer):
    via = serializers.ListField(
        child=serializers.CharField(),
        help_text="Roles it comes through (`PUBLIC` first for PUBLIC's); empty: direct.",
    )
    set_role = serializers.BooleanField(help_text="Taking it needs SET ROLE.")
    provenance = serializers.CharField(help_text="`direct`, `via r1 → r2`, `via PUBLIC`, …")


class RolePathSerializer(serializers.Serializer):
    role = serializers.CharField()
    via = serializers.ListField(child=serializers.CharField(), help_text="Roles in between.")
    set_role = serializers.BooleanField(help_text="Active only after SET ROLE.")


class EffectiveSerializer(serializers.Serializer):
    """What the account can really do: own grants, those of roles it reaches, PUBLIC's."""

    resolved = serializers.BooleanField(
        help_text="false until a sync resolved its roles: own and PUBLIC's grants only."
    )
    capabilities = serializers.ListField(child=serializers.CharField())
    direct_capabilities = serializers.ListField(child=serializers.CharField())
    roles = serializers.ListField(child=serializers.CharField(), help_text="Roles reached.")
    role_paths = RolePathSerializer(many=True)
    grants = EffectiveGrantSerializer(many=True)
    public_account = serializers.IntegerField(
        allow_null=True, help_text="Id of the instance's PUBLIC account, if any."
    )


class CapabilitiesField(serializers.ListField):
    """The effective capabilities of the account's snapshot (null: no snapshot yet)."""

    def __init__(self, **kwargs):
        super().__init__(
            child=serializers.CharField(), source="snapshot.facts", allow_null=True, **kwargs
        )

    def to_representation(self, facts):
        return stored_capabilities(facts)


class AccountSerializer(serializers.ModelSerializer):
    """An account, with the flags of its effective capabilities (null: no snapshot yet)."""

    instance_name = serializers.CharField(source="instance.name", read_only=True)
    engine = serializers.ChoiceField(source="instance.engine", choices=Engine.choices)
    identity = serializers.CharField(read_only=True, help_text="`name@host`, or the name.")
    superuser = serializers.BooleanField(source="snapshot.is_superuser", allow_null=True)
    can_grant = serializers.BooleanField(source="snapshot.can_grant", allow_null=True)
    can_escalate = serializers.BooleanField(source="snapshot.can_escalate", allow_null=True)
    locked = serializers.BooleanField(source="snapshot.is_locked", allow_null=True)
    anonymous = serializers.BooleanField(source="snapshot.is_anonymous", allow_null=True)
    no_password = serializers.BooleanField(source="snapshot.no_password", allow_null=True)
    privileged = serializers.SerializerMethodField()
    privileges_changed_at = serializers.DateTimeField(source="snapshot.changed_at", allow_null=True)
    classifications = serializers.SerializerMethodField()
    # Only with ?expand=privileges (hence not required in the schema).
    privileges = CanonicalSerializer(source="snapshot.privileges", required=False, allow_null=True)
    capabilities = CapabilitiesField(required=False)

    class Meta:
        model = Account
        fields = [
            "id", "instance", "instance_name", "engine", "kind", "name", "host", "identity",
            "first_seen_at", "last_seen_at", "removed_at",
            "superuser", "can_grant", "can_escalate", "locked", "anonymous", "no_password",
            "privileged", "privileges_changed_at", "classifications", "privileges",
            "capabilities",
        ]  # fmt: skip
        read_only_fields = fields

    def get_fields(self):
        fields = super().get_fields()
        # The schema documents them (optional); a list row has them only when asked for.
        view = self.context.get("view")
        if not self.context.get("expand") and not getattr(view, "swagger_fake_view", False):
            fields.pop("privileges")
            fields.pop("capabilities")
        return fields

    def to_representation(self, account):
        if self.context.get("expand") or type(self) is not AccountSerializer:
            return super().to_representation(account)
        # A list row written directly, as DRF's fields would write it: the per-field
        # machinery costs more than the rest of a page (tests compare both).
        zone = self._timezone
        snapshot = getattr(account, "snapshot", None)
        return {
            "id": account.pk,
            "instance": account.instance_id,
            "instance_name": account.instance.name,
            "engine": account.instance.engine,
            "kind": account.kind,
            "name": account.name,
            "host": account.host,
            "identity": account.identity,
            "first_seen_at": iso_datetime(account.first_seen_at, zone),
            "last_seen_at": iso_datetime(account.last_seen_at, zone),
            "removed_at": iso_datetime(account.removed_at, zone),
            "superuser": snapshot.is_superuser if snapshot else None,
            "can_grant": snapshot.can_grant if snapshot else None,
            "can_escalate": snapshot.can_escalate if snapshot else None,
            "locked": snapshot.is_locked if snapshot else None,
            "anonymous": snapshot.is_anonymous if snapshot else None,
            "no_password": snapshot.no_password if snapshot else None,
            "privileged": self.get_privileged(account),
            "privileges_changed_at": iso_datetime(snapshot.changed_at, zone) if snapshot else None,
            "classifications": self.get_classifications(account),
        }

    @cached_property
    def _timezone(self):
        return timezone.get_current_timezone()

    def get_privileged(self, account) -> bool | None:
        snapshot = getattr(account, "snapshot", None)
        if snapshot is None:
            return None
        return snapshot.is_superuser or snapshot.can_grant or snapshot.can_escalate

    @extend_schema_field(AssignedClassificationSerializer(many=True))
    def get_classifications(self, account) -> list[dict]:
        # Plain dicts in the shape of AssignedClassificationSerializer: a nested serializer
        # per row costs more than the rest of the row.
        return [
            {
                "code": a.classification.code,
                "name": a.classification.name,
                "risk_level": a.classification.risk_level,
                "source": a.source,
            }
            for a in assignments_by_risk(account)
        ]


class AccountDetailSerializer(AccountSerializer):
    """An account with its canonical privileges, facts and effective privileges."""

    privileges = CanonicalSerializer(source="snapshot.privileges", allow_null=True)
    capabilities = CapabilitiesField()
    facts = serializers.JSONField(
        source="snapshot.facts", allow_null=True, help_text="Derived facts (SPEC §5.1)."
    )
    fingerprint = serializers.CharField(source="snapshot.fingerprint", allow_null=True)
    collected_at = serializers.DateTimeField(source="snapshot.collected_at", allow_null=True)
    effective = serializers.SerializerMethodField()

    class Meta(AccountSerializer.Meta):
        fields = [
            *AccountSerializer.Meta.fields,
            "facts",
            "fingerprint",
            "collected_at",
            "effective",
        ]
        read_only_fields = fields

    def get_fields(self):
        return super(AccountSerializer, self).get_fields()

    @extend_schema_field(EffectiveSerializer(allow_null=True))
    def get_effective(self, account):
        snapshot = getattr(account, "snapshot", None)
        if snapshot is None:
            return None
        view = effective_view(account, snapshot)
        grants = [
            {
                **grant,
                "via": list(grant.get("via", ())),
                "set_role": bool(grant.get("set_role")),
                "provenance": provenance(grant),
            }
            for grant in view.grants
        ]
        return EffectiveSerializer(
            {
                "resolved": view.resolved,
                "capabilities": view.capabilities,
                "direct_capabilities": view.direct_capabilities,
                "roles": view.roles,
                "role_paths": view.role_paths,
                "grants": grants,
                "public_account": view.public_account.pk if view.public_account else None,
            }
        ).data


EXPAND = OpenApiParameter(
    "expand",
    str,
    enum=["privileges"],
    description="`privileges`: each account with its canonical privileges and capabilities.",
)


class AccountViewSet(InstanceScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Accounts of the instances you may see, with their privileges."""

    queryset = Account.objects.select_related("instance", "snapshot")
    permission_classes = SCOPED_READ
    filterset_class = AccountFilterSet

    def expand(self) -> bool:
        return self.action == "list" and self.request.query_params.get("expand") == "privileges"

    def get_queryset(self):
        queryset = super().get_queryset().prefetch_related(assignments_prefetch())
        if self.action == "list" and not self.expand():
            # A list row shows flags, not the privilege sets.
            queryset = queryset.defer("snapshot__privileges", "snapshot__facts")
        return queryset

    def get_serializer_class(self):
        return AccountDetailSerializer if self.action == "retrieve" else AccountSerializer

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "expand": self.expand()}

    @extend_schema(parameters=[EXPAND])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


router.register("accounts", AccountViewSet, basename="account")


# --- Account changes --------------------------------------------------------------------


class AccountChangeFilterSet(filters.FilterSet):
    """The filters of the admin's change history."""

    instance = IdInFilter(field_name="instance_id", help_text="Instance ids, comma-separated.")
    account = IdFilter(field_name="account_id")
    engine = filters.ChoiceFilter(choices=Engine.choices)
    change_type = filters.MultipleChoiceFilter(choices=ChangeType.choices)
    privileged = BooleanFilter()
    run = IdFilter(field_name="run_id", help_text="Id of the run that detected it.")
    detected_at = DateTimeRangeFilter(
        help_text="`detected_at_after` / `detected_at_before`: ISO 8601 bounds, inclusive."
    )
    search = filters.CharFilter(
        field_name="account__name",
        lookup_expr="istartswith",
        help_text="Start of the account name.",
    )

    class Meta:
        model = AccountChange
        fields = []


class RawJSON:
    """JSON text read from the database, written into the answer as it is: a diff is not
    parsed only to be encoded again."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


class _RawJSONEncoder(JSONRenderer.encoder_class):
    def __init__(self, *args, raws: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.raws = raws

    def default(self, o):
        if isinstance(o, RawJSON):
            self.raws.append(o.text)
            return f"\x00{len(self.raws) - 1}\x00"
        return super().default(o)


# A NUL-delimited placeholder as JSON writes it. No stored text can contain NUL (PostgreSQL
# refuses it in text and jsonb), so no value can be mistaken for one.
_RAW_PLACEHOLDER = re.compile(rb'"\\u0000(\d+)\\u0000"')


class RawJSONRenderer(JSONRenderer):
    """DRF's JSON renderer, writing :class:`RawJSON` values as the JSON they hold."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        raws: list[str] = []
        self.encoder_class = functools.partial(_RawJSONEncoder, raws=raws)
        rendered = super().render(data, accepted_media_type, renderer_context)
        if not raws:
            return rendered
        # As DRF does for the rest of the answer: U+2028/2029 escaped (a JavaScript subset).
        texts = [
            text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode() for text in raws
        ]
        return _RAW_PLACEHOLDER.sub(lambda match: texts[int(match[1])], rendered)


class AccountChangeSerializer(serializers.ModelSerializer):
    """One detected change; ``diff`` is the structured diff (SPEC §5.3)."""

    account_identity = serializers.CharField(source="account.identity")
    instance_name = serializers.CharField(source="instance.name")
    diff = serializers.JSONField(
        help_text="grants_added, grants_removed, roles_added, roles_removed, attributes; "
        "effective changes: effective_added, effective_removed, roles_reached_added, …"
    )

    class Meta:
        model = AccountChange
        fields = [
            "id", "detected_at", "change_type", "summary", "privileged", "run_id", "engine",
            "account", "account_identity", "instance", "instance_name", "diff",
        ]  # fmt: skip
        read_only_fields = fields

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The request's time zone, read once: not once a row.
        self._timezone = timezone.get_current_timezone()

    def to_representation(self, change):
        # The feed streams thousands of rows a call: a row of FEED_COLUMNS (no model
        # instances), one dict, no per-field machinery.
        return {
            "id": change.pk,
            "detected_at": iso_datetime(change.detected_at, self._timezone),
            "change_type": change.change_type,
            "summary": change.summary,
            "privileged": change.privileged,
            "run_id": change.run_id,
            "engine": change.engine,
            "account": change.account_id,
            "account_identity": account_identity(change.account__name, change.account__host),
            "instance": change.instance_id,
            "instance_name": change.instance__name,
            "diff": RawJSON(change.diff_text),
        }


FEED_COLUMNS = (
    "pk", "txid", "detected_at", "change_type", "summary", "privileged", "run_id", "engine",
    "diff_text", "account_id", "instance_id", "account__name", "account__host",
    "instance__name",
)  # fmt: skip


class AccountChangeViewSet(InstanceScopedMixin, viewsets.ReadOnlyModelViewSet):
    """The change history of the instances you may see: newest first, or with ``?since=``
    the change feed, in commit order with no gaps or repeats."""

    queryset = AccountChange.objects.all()
    permission_classes = SCOPED_READ
    serializer_class = AccountChangeSerializer
    filterset_class = AccountChangeFilterSet
    pagination_class = FeedPagination
    renderer_classes = [RawJSONRenderer, BrowsableAPIRenderer]

    def get_queryset(self):
        # Rows as named tuples: three model instances a row (change, account, instance) cost
        # more than everything else the feed does. Still an AccountChangeQuerySet, with the
        # scope applied, for the filters and feed_after(); FeedPagination reads txid and pk.
        queryset = super().get_queryset().annotate(diff_text=Cast("diff", TextField()))
        return queryset.values_list(*FEED_COLUMNS, named=True)


router.register("account-changes", AccountChangeViewSet, basename="accountchange")


# --- Access review ----------------------------------------------------------------------


class AccessReviewQuerySerializer(serializers.Serializer):
    """What the review covers: as in the admin's form."""

    instance = serializers.PrimaryKeyRelatedField(
        many=True,
        required=False,
        queryset=Instance.objects.none(),
        help_text="Instance ids (repeat the parameter); none: every instance you may see.",
    )
    tag = serializers.ListField(
        child=serializers.SlugField(),
        required=False,
        help_text="Only instances with one of these tags (slugs; repeat the parameter).",
    )
    start = serializers.DateField(required=False, help_text="Default: last quarter's start.")
    end = serializers.DateField(required=False, help_text="Default: last quarter's end.")

    def __init__(self, *args, instances=None, **kwargs):
        super().__init__(*args, **kwargs)
        if instances is not None:
            self.fields["instance"].child_relation.queryset = instances

    def validate_tag(self, slugs: list[str]) -> list[Tag]:
        tags = list(Tag.objects.filter(slug__in=slugs))
        unknown = sorted(set(slugs) - {tag.slug for tag in tags})
        if unknown:
            raise serializers.ValidationError(
                _("No such tag: %(slugs)s.") % {"slugs": ", ".join(unknown)}, code="does_not_exist"
            )
        return tags

    def validate(self, attrs):
        default_start, default_end = last_quarter()
        attrs.setdefault("start", default_start)
        attrs.setdefault("end", default_end)
        if attrs["start"] > attrs["end"]:
            raise serializers.ValidationError({"end": _("The period ends before it starts.")})
        return attrs


class AccessReviewAccountSerializer(serializers.Serializer):
    """A row of the "Privileged accounts" sheet, with the ids of what it is about."""

    account_id = serializers.IntegerField()
    instance_id = serializers.IntegerField()
    instance = serializers.CharField()
    engine = serializers.ChoiceField(choices=Engine.choices)
    account = serializers.CharField()
    kind = serializers.ChoiceField(choices=AccountKind.choices)
    privileged_because = serializers.CharField(
        help_text="Capabilities and high-risk classifications, comma-separated."
    )
    capabilities = serializers.CharField(help_text="Effective capabilities, comma-separated.")
    superuser = serializers.BooleanField()
    grant_admin = serializers.BooleanField()
    escalation = serializers.BooleanField()
    locked = serializers.BooleanField()
    roles = serializers.CharField(help_text="Roles reached, comma-separated.")
    grants = serializers.CharField(help_text="Effective grants with provenance, `; `-separated.")
    first_seen = serializers.DateTimeField()
    last_seen = serializers.DateTimeField()


class AccessReviewChangeSerializer(serializers.Serializer):
    """A row of the "Changes" sheet, with the ids of what it is about."""

    change_id = serializers.IntegerField()
    account_id = serializers.IntegerField()
    instance_id = serializers.IntegerField()
    detected_at = serializers.DateTimeField()
    instance = serializers.CharField()
    account = serializers.CharField()
    # Plain text: the enum is the account changes' change_type, named once in the schema.
    change = serializers.CharField(help_text="The change type, as `change_type` of a change.")
    summary = serializers.CharField()
    privileged = serializers.BooleanField()


class AccessReviewSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    accounts = AccessReviewAccountSerializer(many=True)
    changes = AccessReviewChangeSerializer(many=True)


class FileRenderer(BaseRenderer):
    """A file the view builds itself (the admin's export); chosen by ``?format=`` or Accept."""

    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


class XLSXRenderer(FileRenderer):
    media_type = ACCESS_REVIEW_TYPES["xlsx"]
    format = "xlsx"


class CSVRenderer(FileRenderer):
    media_type = ACCESS_REVIEW_TYPES["csv"]
    format = "csv"


class OneDocumentSchema(AutoSchema):
    """The view's ``list`` answers one document, not a list of them."""

    def _is_list_view(self, serializer=None) -> bool:
        return False


@extend_schema(
    summary="Access review",
    description=(
        "Every privileged account of the chosen instances — superuser, grant admin, able to "
        "escalate, or matched by a classification of risk level 1 or 2 — what it can do and "
        "through what, and every change of the period: the admin's access review, as JSON, "
        "or with `?format=xlsx` the same workbook the admin exports (`?format=csv`: its "
        "privileged accounts table; a CSV holds one table). Needs the "
        "`accounts.access_review` permission."
    ),
    parameters=[
        AccessReviewQuerySerializer,
        OpenApiParameter("format", str, enum=["json", "xlsx", "csv"], description="Default: json."),
    ],
    responses={
        (200, "application/json"): AccessReviewSerializer,
        (200, ACCESS_REVIEW_TYPES["xlsx"]): OpenApiResponse(
            OpenApiTypes.BINARY, description="The workbook: two sheets."
        ),
        (200, ACCESS_REVIEW_TYPES["csv"]): OpenApiResponse(OpenApiTypes.STR),
    },
)
class AccessReviewViewSet(viewsets.ViewSet):
    """The access review (SPEC §5.4)."""

    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, XLSXRenderer, CSVRenderer]
    action_permissions = {"list": ["accounts.access_review", "accounts.view_account"]}
    permission_classes = SCOPED_READ
    schema = OneDocumentSchema()

    def list(self, request):
        visible = visible_instance_ids(request, VIEW_INSTANCE)
        instances = (
            Instance.objects.all() if visible is None else Instance.objects.filter(pk__in=visible)
        )
        query = AccessReviewQuerySerializer(data=request.query_params, instances=instances)
        query.is_valid(raise_exception=True)
        start, end = query.validated_data["start"], query.validated_data["end"]
        chosen = query.validated_data.get("instance")
        if chosen:
            instances = instances.filter(pk__in=[instance.pk for instance in chosen])
        accounts = Account.objects.all()
        if visible is not None:
            accounts = accounts.filter(instance_id__in=visible)
        review = access_review_of(
            accounts,
            instances=instances,
            tags=query.validated_data.get("tag", []),
            start=start,
            end=end,
        )
        log.info(
            "access_review_produced",
            user_id=request.user.pk,
            file_format=request.accepted_renderer.format,
            accounts=len(review.accounts),
            changes=len(review.changes),
        )
        if request.accepted_renderer.format in ACCESS_REVIEW_TYPES:
            return access_review_file(
                review, start=start, end=end, file_format=request.accepted_renderer.format
            )
        return Response(
            AccessReviewSerializer(
                {"start": start, "end": end, "accounts": review.accounts, "changes": review.changes}
            ).data
        )

    def finalize_response(self, request, response, *args, **kwargs):
        # Errors are JSON (the envelope) whatever format was asked for, or could not be.
        if getattr(response, "exception", False):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


router.register("access-review", AccessReviewViewSet, basename="access-review")

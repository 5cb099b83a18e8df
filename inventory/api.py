"""API v1 resources of the inventory: instances, credentials and tags, with the admin's rules.

Instances follow the instance scope (``whalefall.scope.visible_instance_ids``, the admin's
choke point): a hidden instance is a 404, a visible one the user may not change, delete or
test is a 403, as on its admin page. Credentials follow ``Credential.objects.visible_to``
per permission; their secret is accepted on writes and never returned. Tags are shared, and
count only the instances the user may see.
"""

import copy

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Count, Prefetch, ProtectedError, Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from inventory import services
from inventory.admin import visible_credential_ids
from inventory.models import (
    CHANGE_CREDENTIAL,
    DELETE_CREDENTIAL,
    USE_CREDENTIAL,
    VIEW_CREDENTIAL,
    Credential,
    Engine,
    Instance,
    Tag,
    TagCategory,
)
from whalefall.api import router
from whalefall.api.errors import Conflict, conflict_response
from whalefall.api.fields import StorableInputMixin
from whalefall.api.permissions import InstanceScopedMixin, ModelPermissions, TokenScope
from whalefall.scope import VIEW_INSTANCE

CHANGE_INSTANCE = "inventory.change_instance"
DELETE_INSTANCE = "inventory.delete_instance"
TEST_CONNECTION = "inventory.test_connection"

# Tags one instance may be given in one request (each is looked up).
MAX_TAGS_PER_INSTANCE = 100
# The longest secret accepted: far beyond any engine's password limit.
MAX_SECRET_LENGTH = 4096

# --- Instances --------------------------------------------------------------------------


class InstanceStatus:
    RETIRED = "retired"
    INACTIVE = "inactive"
    FAILING = "failing"
    CONNECTED = "connected"
    NOT_TESTED = "not_tested"
    CHOICES = [RETIRED, INACTIVE, FAILING, CONNECTED, NOT_TESTED]


@extend_schema_field(
    serializers.ListField(child=serializers.SlugField(), max_length=MAX_TAGS_PER_INSTANCE)
)
class TagSlugsField(serializers.ListField):
    """Tags by slug: written as a list of slugs (every one must exist), read the same way."""

    child = serializers.SlugField(max_length=64)

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", MAX_TAGS_PER_INSTANCE)
        super().__init__(**kwargs)

    def to_representation(self, data):
        return [tag.slug for tag in data.all()]

    def to_internal_value(self, data):
        slugs = super().to_internal_value(data)
        found = {tag.slug: tag for tag in Tag.objects.filter(slug__in=set(slugs))}
        if any(slug not in found for slug in slugs):
            raise serializers.ValidationError(
                [
                    []
                    if slug in found
                    else [
                        serializers.ErrorDetail(_("No tag with this slug."), code="does_not_exist")
                    ]
                    for slug in slugs
                ]
            )
        return list({slug: found[slug] for slug in slugs}.values())


class VersionSerializer(serializers.Serializer):
    raw = serializers.CharField(help_text="The version as the server reported it.")
    major_minor = serializers.CharField()
    full = serializers.CharField()


class ConnectionCheckSerializer(serializers.Serializer):
    """Outcome of a connection test (``inventory.services.ConnectionCheck``)."""

    instance = serializers.IntegerField(source="instance_id")
    ok = serializers.BooleanField()
    kind = serializers.CharField(
        help_text="Why it failed: authentication, unreachable, not_allowed, …; empty on success."
    )
    message = serializers.CharField(help_text="What went wrong, for people; empty on success.")
    version = VersionSerializer(allow_null=True, help_text="The version read on success.")


class InstanceSerializer(StorableInputMixin, serializers.ModelSerializer):
    """An instance as on its admin page; the credential must be one the user may use."""

    url = serializers.HyperlinkedIdentityField(view_name="instance-detail")
    tags = TagSlugsField(required=False, help_text="Slugs of the instance's tags.")
    status = serializers.SerializerMethodField()

    class Meta:
        model = Instance
        fields = [
            "id",
            "url",
            "name",
            "engine",
            "host",
            "port",
            "database_name",
            "credential",
            "tls_mode",
            "allow_md5_auth",
            "tags",
            "environment",
            "owner",
            "description",
            "is_active",
            "deep_privileges",
            "status",
            "retired_at",
            "version_raw",
            "version_major_minor",
            "version_full",
            "last_checked_at",
            "last_connected_at",
            "last_connection_ok",
            "last_connection_error",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def get_fields(self):
        fields = super().get_fields()
        field = fields.get("credential")
        if field is not None:
            request = self.context.get("request")
            user = getattr(request, "user", None)
            # The admin form's choices: the credentials the user may use, and the current one
            # (keeping it is no new use).
            usable = Q(pk__in=Credential.objects.visible_to(user, USE_CREDENTIAL).values("pk"))
            if isinstance(self.instance, Instance) and self.instance.credential_id:
                usable |= Q(pk=self.instance.credential_id)
            field.queryset = Credential.objects.filter(usable)
        return fields

    @extend_schema_field(serializers.ChoiceField(choices=InstanceStatus.CHOICES))
    def get_status(self, obj: Instance) -> str:
        if obj.is_retired:
            return InstanceStatus.RETIRED
        if not obj.is_active:
            return InstanceStatus.INACTIVE
        if obj.last_connection_ok is False:
            return InstanceStatus.FAILING
        if obj.last_connection_ok:
            return InstanceStatus.CONNECTED
        return InstanceStatus.NOT_TESTED

    def validate(self, attrs):
        attrs = super().validate(attrs)
        values = {name: value for name, value in attrs.items() if name != "tags"}
        if self.instance is None:
            candidate = Instance(**values)
        else:
            candidate = copy.copy(self.instance)
            for name, value in values.items():
                setattr(candidate, name, value)
        try:
            # The model's rules as the admin form applies them: default port, the
            # credential's engine, the outbound guard (host grammar and allowed targets).
            candidate.clean()
            # Connecting somewhere new with a credential needs the right to use it.
            services.instance_connection_check(
                user=self.context["request"].user, instance=candidate
            )
        except DjangoValidationError as exc:
            detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
            raise serializers.ValidationError(detail) from None
        attrs["port"] = candidate.port
        attrs["host"] = candidate.host
        return attrs


class InstanceFilter(filters.FilterSet):
    """The admin's list filters and search."""

    engine = filters.ChoiceFilter(choices=Engine.choices)
    environment = filters.CharFilter(help_text="Exact environment, e.g. production.")
    tag = filters.CharFilter(field_name="tags__slug", help_text="Slug of a tag.")
    status = filters.ChoiceFilter(
        choices=[
            ("active", gettext_lazy("Active")),
            ("inactive", gettext_lazy("Inactive")),
            ("retired", gettext_lazy("Retired")),
            ("failing", gettext_lazy("Last connection failed")),
        ],
        method="filter_status",
        help_text="active, inactive (both not retired), retired, or failing.",
    )
    search = filters.CharFilter(
        method="filter_search", help_text="Part of the name or the host (case-insensitive)."
    )

    class Meta:
        model = Instance
        fields = ["engine", "environment", "tag", "status", "search"]

    def filter_status(self, queryset, name, value):
        current = Q(retired_at__isnull=True)
        return queryset.filter(
            {
                "active": current & Q(is_active=True),
                "inactive": current & Q(is_active=False),
                "retired": Q(retired_at__isnull=False),
                "failing": current & Q(last_connection_ok=False),
            }[value]
        )

    def filter_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(host__icontains=value))


@extend_schema(tags=["inventory"])
class InstanceViewSet(InstanceScopedMixin, viewsets.ModelViewSet):
    """Instances the user may see. Changing, deleting, retiring, restoring and testing one
    need that permission on the instance itself (403 otherwise); hidden ones are 404."""

    queryset = Instance.objects.prefetch_related(Prefetch("tags", Tag.objects.order_by("slug")))
    serializer_class = InstanceSerializer
    filterset_class = InstanceFilter
    lookup_value_regex = "[0-9]+"
    instance_scoped = True
    instance_field = "pk"
    # Rows are those the user sees for every verb; the verb's permission is then asked of
    # the instance (InstanceAdmin.get_queryset and has_*_permission).
    read_permission = VIEW_INSTANCE
    write_permission = VIEW_INSTANCE
    action_permissions = {
        "retire": [CHANGE_INSTANCE],
        "restore": [CHANGE_INSTANCE],
        "test_connection": [TEST_CONNECTION],
    }
    object_permissions = {
        "update": CHANGE_INSTANCE,
        "partial_update": CHANGE_INSTANCE,
        "destroy": DELETE_INSTANCE,
        "retire": CHANGE_INSTANCE,
        "restore": CHANGE_INSTANCE,
        "test_connection": TEST_CONNECTION,
    }

    def get_object(self):
        instance = super().get_object()
        perm = self.object_permissions.get(self.action)
        if perm is not None:
            ids = self.scope_ids(perm)
            if ids is not None and instance.pk not in ids:
                raise exceptions.PermissionDenied()
        return instance

    def perform_create(self, serializer):
        # InstanceAdmin.has_add_permission: the model permission itself.
        if not self.request.user.has_perm("inventory.add_instance"):
            raise exceptions.PermissionDenied()
        with transaction.atomic():
            serializer.save()

    def perform_update(self, serializer):
        with transaction.atomic():
            serializer.save()

    @extend_schema(
        responses={
            204: None,
            409: conflict_response("Other records protect it: retire the instance instead."),
        }
    )
    def destroy(self, request, *args, **kwargs):
        return super().destroy(request, *args, **kwargs)

    def perform_destroy(self, instance):
        try:
            with transaction.atomic():
                instance.delete()
        except ProtectedError:
            raise Conflict(
                _("The instance has history that must be kept: retire it instead.")
            ) from None

    def _fresh(self, pk: int) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=pk)).data)

    @extend_schema(request=None, responses=InstanceSerializer)
    @action(detail=True, methods=["post"])
    def retire(self, request, pk=None):
        """Retire the instance: kept with its history, never synced (no-op if retired)."""
        instance = self.get_object()
        services.instance_retire(instances=Instance.objects.filter(pk=instance.pk))
        return self._fresh(instance.pk)

    @extend_schema(request=None, responses=InstanceSerializer)
    @action(detail=True, methods=["post"])
    def restore(self, request, pk=None):
        """Bring a retired instance back (no-op if it is not retired)."""
        instance = self.get_object()
        services.instance_restore(instances=Instance.objects.filter(pk=instance.pk))
        return self._fresh(instance.pk)

    @extend_schema(request=None, responses=ConnectionCheckSerializer)
    @action(detail=True, methods=["post"], url_path="test-connection")
    def test_connection(self, request, pk=None):
        """Connect, read and store the version; the outcome says whether it worked."""
        instance = self.get_object()
        check = services.instance_test_connection(instance=instance, user=request.user)
        return Response(ConnectionCheckSerializer(check).data)


# --- Credentials ------------------------------------------------------------------------


class CredentialPermissions(ModelPermissions):
    """CredentialAdmin's verbs: the model permission, or the credential permission held on
    at least one credential (``Credential.objects.visible_to``); reading also with change."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not user or not user.is_authenticated or not user.is_active:
            return False
        if request.method == "POST":
            return user.has_perm("inventory.add_credential")
        perms = {
            "PUT": [CHANGE_CREDENTIAL],
            "PATCH": [CHANGE_CREDENTIAL],
            "DELETE": [DELETE_CREDENTIAL],
        }.get(request.method, [VIEW_CREDENTIAL, CHANGE_CREDENTIAL])
        return any(user.has_perm(perm) or visible_credential_ids(request, perm) for perm in perms)


class CredentialSerializer(StorableInputMixin, serializers.ModelSerializer):
    """A credential; ``secret`` is write-only: required to create, left out (or empty) to
    keep the stored one."""

    url = serializers.HyperlinkedIdentityField(view_name="credential-detail")
    secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=MAX_SECRET_LENGTH,
        style={"input_type": "password"},
        help_text="Password of the monitoring account; never returned. Omit it (or send an "
        "empty string) on updates to keep the stored one.",
    )
    engine = serializers.ChoiceField(
        choices=Engine.choices,
        required=False,
        allow_blank=True,
        help_text="Optional: the engine this account exists on.",
    )
    has_secret = serializers.BooleanField(read_only=True)
    instance_count = serializers.IntegerField(
        read_only=True, source="_instances", help_text="Instances you may see that use it."
    )

    class Meta:
        model = Credential
        fields = [
            "id",
            "url",
            "name",
            "username",
            "secret",
            "has_secret",
            "secret_changed_at",
            "engine",
            "description",
            "instance_count",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["secret_changed_at", "created_at", "updated_at"]

    def validate(self, attrs):
        attrs = super().validate(attrs)
        has_secret = self.instance is not None and self.instance.has_secret
        if not has_secret and not attrs.get("secret"):
            raise serializers.ValidationError(
                {"secret": [_("A new credential needs a secret.")]}, code="required"
            )
        return attrs

    def _save(self, credential: Credential, validated_data) -> Credential:
        secret = validated_data.pop("secret", "")
        for name, value in validated_data.items():
            setattr(credential, name, value)
        if secret:
            credential.set_secret(secret)
        credential.save()
        return credential

    def create(self, validated_data):
        return self._save(Credential(), validated_data)

    def update(self, instance, validated_data):
        return self._save(instance, validated_data)


class CredentialFilter(filters.FilterSet):
    engine = filters.ChoiceFilter(choices=Engine.choices)
    search = filters.CharFilter(
        method="filter_search", help_text="Part of the name or the username (case-insensitive)."
    )

    class Meta:
        model = Credential
        fields = ["engine", "search"]

    def filter_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(username__icontains=value))


@extend_schema(tags=["inventory"])
class CredentialViewSet(InstanceScopedMixin, viewsets.ModelViewSet):
    """Credentials the user may see (``Credential.objects.visible_to``); changing or deleting
    one needs that permission on it (403 when visible, 404 when not)."""

    queryset = Credential.objects.all()
    serializer_class = CredentialSerializer
    filterset_class = CredentialFilter
    permission_classes = [TokenScope, CredentialPermissions]
    lookup_value_regex = "[0-9]+"
    object_permissions = {
        "update": CHANGE_CREDENTIAL,
        "partial_update": CHANGE_CREDENTIAL,
        "destroy": DELETE_CREDENTIAL,
    }

    def get_queryset(self):
        # CredentialAdmin.get_queryset: the visible credentials, counting only the
        # instances the user may see (scope_ids: the request's cached instance scope).
        queryset = Credential.objects.visible_to(self.request.user, VIEW_CREDENTIAL)
        ids = self.scope_ids(VIEW_INSTANCE)
        counted = None if ids is None else Q(instances__in=ids)
        return queryset.annotate(_instances=Count("instances", filter=counted))

    def get_object(self):
        credential = super().get_object()
        perm = self.object_permissions.get(self.action)
        if perm is not None and credential.pk not in visible_credential_ids(self.request, perm):
            raise exceptions.PermissionDenied()
        return credential

    def perform_create(self, serializer):
        with transaction.atomic():
            credential = serializer.save()
            # Used by no instance yet: its creator would not reach it otherwise.
            services.credential_grant_to_creator(credential=credential, user=self.request.user)
        # The representation counts the instances using it: none yet.
        credential._instances = 0

    def perform_update(self, serializer):
        with transaction.atomic():
            serializer.save()

    @extend_schema(
        responses={204: None, 409: conflict_response("Instances still connect with it.")}
    )
    def destroy(self, request, *args, **kwargs):
        return super().destroy(request, *args, **kwargs)

    def perform_destroy(self, instance):
        try:
            with transaction.atomic():
                instance.delete()
        except ProtectedError:
            raise Conflict(_("Instances still use this credential.")) from None


# --- Tags -------------------------------------------------------------------------------


class TagSerializer(StorableInputMixin, serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="tag-detail")
    category = serializers.ChoiceField(choices=TagCategory.choices, required=False)
    instance_count = serializers.IntegerField(
        read_only=True, source="_instances", help_text="Instances you may see with this tag."
    )

    class Meta:
        model = Tag
        fields = ["id", "url", "slug", "name", "category", "colour", "instance_count"]


class TagFilter(filters.FilterSet):
    category = filters.ChoiceFilter(choices=TagCategory.choices)
    search = filters.CharFilter(
        method="filter_search", help_text="Part of the name or the slug (case-insensitive)."
    )

    class Meta:
        model = Tag
        fields = ["category", "search"]

    def filter_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(slug__icontains=value))


@extend_schema(tags=["inventory"])
class TagViewSet(InstanceScopedMixin, viewsets.ModelViewSet):
    """Tags are shared by everyone who may see them; the instances counted on each are only
    those the user may see."""

    queryset = Tag.objects.all()
    serializer_class = TagSerializer
    filterset_class = TagFilter
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        # TagAdmin.get_queryset.
        ids = self.scope_ids(VIEW_INSTANCE)
        visible = None if ids is None else Q(instances__in=ids)
        return Tag.objects.annotate(_instances=Count("instances", filter=visible))

    def perform_create(self, serializer):
        serializer.save()._instances = 0

    def perform_destroy(self, instance):
        with transaction.atomic():
            instance.delete()


router.register("instances", InstanceViewSet, basename="instance")
router.register("credentials", CredentialViewSet, basename="credential")
router.register("tags", TagViewSet, basename="tag")

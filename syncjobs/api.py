"""API v1 resources of runs: runs and their items to read and poll, cancel and run-again,
and the manual runs over chosen instances (sync accounts, collect capacity, classify).

Scope is RunAdmin's: a user limited to some instances sees the runs with an item on one of
them, with the figures of those items alone, and only those items; holders of
``syncjobs.view_all_runs`` read every run. Starting a run needs the sync permission on every
instance named, as the admin's "… now" actions; cancelling needs it on every instance the
run touches.
"""

from collections.abc import Iterable

from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from inventory.models import Instance
from syncjobs import services
from syncjobs.admin import figures_scope, runs_actionable, sync_scope
from syncjobs.models import ItemStatus, Run, RunItem, RunKind, RunStatus, RunTrigger
from whalefall.api import router
from whalefall.api.errors import ERROR_REF, Conflict, conflict_response
from whalefall.api.fields import StorableInputMixin
from whalefall.api.filters import IdFilter, UTCDateTimeFilter
from whalefall.api.permissions import InstanceScopedMixin
from whalefall.db import MAX_BIGINT
from whalefall.scope import visible_instance_ids

# The kinds a person starts over chosen instances (the instance list's "… now" actions).
STARTABLE_KINDS = [RunKind.ACCOUNTS, RunKind.CAPACITY, RunKind.CLASSIFICATION]
# Instances one request may name: an estate's worth.
MAX_RUN_INSTANCES = 10_000


class QueueUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "queue_unavailable"
    default_detail = gettext_lazy("The task queue is unavailable; nothing was started.")


def _queue_unavailable(exc: services.QueueUnavailable) -> QueueUnavailable:
    """The admin's message for a run that could not be started."""
    if exc.run is None:
        return QueueUnavailable(_("The task queue is unavailable; nothing was started."))
    return QueueUnavailable(
        _(
            "The task queue is unavailable; nothing was started. Run #%(id)d could not be "
            "queued and has failed."
        )
        % {"id": exc.run.pk}
    )


QUEUE_UNAVAILABLE = OpenApiResponse(
    response=ERROR_REF, description="The task queue is unavailable; nothing was started."
)


def _seconds(value) -> float | None:
    return None if value is None else round(value.total_seconds(), 3)


# --- Runs -------------------------------------------------------------------------------


class RunSerializer(serializers.ModelSerializer):
    """A run with the figures the user is shown (those of their instances' items when they
    see only some instances)."""

    url = serializers.HyperlinkedIdentityField(view_name="run-detail")
    items_url = serializers.SerializerMethodField()
    kind = serializers.ChoiceField(choices=RunKind.choices, read_only=True)
    trigger = serializers.ChoiceField(choices=RunTrigger.choices, read_only=True)
    status = serializers.ChoiceField(choices=RunStatus.choices, read_only=True)
    requested_by = serializers.SlugRelatedField(
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="Who started the run; null for scheduled runs.",
    )
    duration = serializers.SerializerMethodField()
    summary = serializers.DictField(
        child=serializers.JSONField(),
        read_only=True,
        help_text="Outcome figures of the whole run (retried_items, items_with_problems, "
        "retry_of, cancelled_by, and what each kind of work adds).",
    )

    class Meta:
        model = Run
        fields = [
            "id",
            "url",
            "items_url",
            "kind",
            "trigger",
            "status",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
            "duration",
            "cancel_requested",
            "items_total",
            "items_succeeded",
            "items_failed",
            "items_skipped",
            "items_cancelled",
            "created_count",
            "changed_count",
            "removed_count",
            "restored_count",
            "unchanged_count",
            "summary",
            "error",
        ]
        read_only_fields = fields

    def get_items_url(self, obj: Run) -> str:
        """The run's items you may see."""
        request = self.context["request"]
        return request.build_absolute_uri(reverse("runitem-list") + f"?run={obj.pk}")

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_duration(self, obj: Run) -> float | None:
        """Seconds from the first item's start to the end (or to now while running)."""
        return _seconds(obj.duration)


class RunStartSerializer(StorableInputMixin, serializers.Serializer):
    """What to start and where: the instance list's "Sync accounts now", "Collect capacity
    now" and "Classify accounts now"."""

    kind = serializers.ChoiceField(choices=[(k.value, k.label) for k in STARTABLE_KINDS])
    instances = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_BIGINT),
        min_length=1,
        max_length=MAX_RUN_INSTANCES,
        help_text="Ids of the instances; you need the sync permission on each, and each must "
        "be active and not retired.",
    )


class RunFilter(filters.FilterSet):
    """RunAdmin's list filters; ``status`` is the status as shown to you."""

    kind = filters.ChoiceFilter(choices=RunKind.choices)
    status = filters.ChoiceFilter(choices=RunStatus.choices, field_name="shown_status")
    trigger = filters.ChoiceFilter(choices=RunTrigger.choices)
    created_after = UTCDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UTCDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Run
        fields = ["kind", "status", "trigger", "created_after", "created_before"]


@extend_schema(tags=["runs"])
class RunViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Runs to poll; ``POST`` starts one over chosen instances (202, with the run's URL)."""

    queryset = Run.objects.select_related("requested_by")
    serializer_class = RunSerializer
    filterset_class = RunFilter
    lookup_value_regex = "[0-9]+"
    # "inventory.sync" on at least one instance lets a scoped member start runs, as in the
    # admin; the instances named are then checked one by one.
    instance_scoped = True
    action_permissions = {
        "create": ["inventory.sync"],
        "cancel": ["syncjobs.cancel_run"],
        "rerun": ["syncjobs.rerun_run"],
    }

    def get_queryset(self):
        # RunAdmin.get_queryset.
        queryset = super().get_queryset()
        ids = figures_scope(self.request)
        if ids is not None:
            queryset = queryset.with_items_on(ids)
        return queryset.seen_on(ids)

    def _shown(self, runs) -> list[Run]:
        """Runs with the figures of the items the user sees (RunAdmin's change list)."""
        runs = list(runs)
        ids = figures_scope(self.request)
        if ids is not None:
            services.runs_show_items_on(runs, instance_ids=ids)
        return runs

    def _started(self, run: Run) -> Response:
        shown = self._shown([self.get_queryset().get(pk=run.pk)])[0]
        data = RunSerializer(shown, context=self.get_serializer_context()).data
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": data["url"]})

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = self._shown(self.paginate_queryset(queryset))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, *args, **kwargs):
        run = self._shown([self.get_object()])[0]
        return Response(self.get_serializer(run).data)

    @extend_schema(
        request=RunStartSerializer,
        responses={202: RunSerializer, 503: QUEUE_UNAVAILABLE},
        summary="Start a run over chosen instances",
    )
    def create(self, request, *args, **kwargs):
        start = RunStartSerializer(data=request.data)
        start.is_valid(raise_exception=True)
        wanted = start.validated_data["instances"]
        visible = self._visible_instances(wanted)
        unknown = [[] if pk in visible else [_("No such instance.")] for pk in wanted]
        if any(unknown):
            raise exceptions.ValidationError({"instances": unknown}, code="does_not_exist")
        ids = sync_scope(request)
        if ids is not None and not set(wanted) <= ids:
            raise exceptions.PermissionDenied(
                _("You may not sync every instance named: nothing was started.")
            )
        syncable = set(
            Instance.objects.filter(pk__in=set(wanted)).syncable().values_list("pk", flat=True)
        )
        idle = [
            [] if pk in syncable else [_("Retired or inactive: never synced.")] for pk in wanted
        ]
        if any(idle):
            raise exceptions.ValidationError({"instances": idle}, code="not_syncable")
        try:
            run = services.run_create(
                kind=start.validated_data["kind"],
                trigger=RunTrigger.MANUAL,
                requested_by=request.user,
                instance_ids=sorted(syncable),
            )
        except services.QueueUnavailable as exc:
            raise _queue_unavailable(exc) from None
        return self._started(run)

    def _visible_instances(self, wanted: Iterable[int]) -> set[int]:
        ids = visible_instance_ids(self.request)
        found = Instance.objects.filter(pk__in=set(wanted))
        if ids is not None:
            found = found.filter(pk__in=ids)
        return set(found.values_list("pk", flat=True))

    @extend_schema(
        request=None,
        responses={200: RunSerializer, 409: conflict_response("The run has already finished.")},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel between instances: items not started are cancelled, running ones finish.
        Needs the sync permission on every instance the run touches."""
        run = self.get_object()
        if not runs_actionable(request, Run.objects.filter(pk=run.pk)).exists():
            raise exceptions.PermissionDenied(
                _("This run covers instances you may not sync: it cannot be cancelled by you.")
            )
        if not run.is_active:
            raise Conflict(_("Run #%(run)d has already finished.") % {"run": run.pk})
        services.run_cancel(run=Run.objects.get(pk=run.pk), requested_by=request.user)
        shown = self._shown([self.get_queryset().get(pk=run.pk)])[0]
        return Response(self.get_serializer(shown).data)

    @extend_schema(
        request=None,
        responses={
            202: RunSerializer,
            409: conflict_response("The run has no failed items you may run again."),
            503: QUEUE_UNAVAILABLE,
        },
    )
    @action(detail=True, methods=["post"])
    def rerun(self, request, pk=None):
        """Start a run over the failed items of this run that you may sync (202)."""
        run = self.get_object()
        # The admin's scope (instances one may sync), within those one sees: the new run
        # must be one its starter can poll.
        ids, seen = sync_scope(request), visible_instance_ids(request)
        if ids is not None and seen is not None:
            ids = ids & seen  # a new set: the scope sets are the request's cache
        elif ids is None:
            ids = seen
        try:
            new = services.run_retry_failed(
                run=Run.objects.get(pk=run.pk), requested_by=request.user, instance_ids=ids
            )
        except services.QueueUnavailable as exc:
            raise _queue_unavailable(exc) from None
        if new is None:
            raise Conflict(
                _("Run #%(run)d has no failed items you may run again.") % {"run": run.pk}
            )
        return self._started(new)


# --- Run items --------------------------------------------------------------------------


class RunItemSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="runitem-detail")
    run_url = serializers.HyperlinkedRelatedField(
        source="run", view_name="run-detail", read_only=True
    )
    run_kind = serializers.ChoiceField(source="run.kind", choices=RunKind.choices, read_only=True)
    instance_name = serializers.CharField(source="instance.name", read_only=True)
    status = serializers.ChoiceField(choices=ItemStatus.choices, read_only=True)
    duration = serializers.SerializerMethodField()
    detail = serializers.DictField(
        child=serializers.JSONField(),
        read_only=True,
        help_text="Further figures from the work (problems, per-kind counts).",
    )

    class Meta:
        model = RunItem
        fields = [
            "id",
            "url",
            "run",
            "run_url",
            "run_kind",
            "instance",
            "instance_name",
            "status",
            "created_count",
            "changed_count",
            "removed_count",
            "restored_count",
            "unchanged_count",
            "queued_at",
            "started_at",
            "finished_at",
            "duration",
            "heartbeat_at",
            "attempts",
            "error",
            "skip_reason",
            "detail",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_duration(self, obj: RunItem) -> float | None:
        """Seconds from the first start to the end."""
        return _seconds(obj.duration)


class RunItemFilter(filters.FilterSet):
    """RunItemAdmin's list filters and its instance-name prefix search."""

    run = IdFilter(field_name="run_id")
    instance = IdFilter(field_name="instance_id")
    status = filters.ChoiceFilter(choices=ItemStatus.choices)
    kind = filters.ChoiceFilter(field_name="run__kind", choices=RunKind.choices)
    search = filters.CharFilter(
        field_name="instance__name", lookup_expr="istartswith", help_text="Instance name prefix."
    )

    class Meta:
        model = RunItem
        fields = ["run", "instance", "status", "kind", "search"]


@extend_schema(tags=["runs"])
class RunItemViewSet(InstanceScopedMixin, viewsets.ReadOnlyModelViewSet):
    """The items of runs on the instances the user may see."""

    queryset = RunItem.objects.select_related("run", "instance").defer("run__summary")
    serializer_class = RunItemSerializer
    filterset_class = RunItemFilter
    lookup_value_regex = "[0-9]+"
    instance_field = "instance"


router.register("runs", RunViewSet, basename="run")
router.register("run-items", RunItemViewSet, basename="runitem")

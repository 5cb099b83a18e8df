"""What a run tells about its instances (issue 16, Found → Runs): a successful sync is a
successful connection, and the run's closing event names the run's instances, not the
instance of whichever item happened to finish last."""

import pytest
import structlog
from structlog.testing import capture_logs

from inventory.engines.base import Unreachable
from inventory.models import Instance
from syncjobs import services
from syncjobs.models import Run, RunKind
from tests.inventory.factories import InstanceFactory
from tests.syncjobs.handlers import raising

pytestmark = pytest.mark.django_db


def run_of(kind, *instances) -> Run:
    return services.run_create(
        kind=kind, trigger=Run.Trigger.SCHEDULED, instance_ids=[i.pk for i in instances]
    )


def execute(run: Run) -> None:
    for pk in run.items.order_by("pk").values_list("pk", flat=True):
        services.run_item_execute(item_id=pk)


@pytest.mark.parametrize("kind", [RunKind.ACCOUNTS, RunKind.CAPACITY])
def test_a_successful_sync_is_a_successful_connection(kind, fake_handlers):
    alpha = InstanceFactory(name="alpha", last_connection_ok=False, last_connection_error="old")
    beta = InstanceFactory(name="beta")
    fake_handlers["beta"] = raising(Unreachable("beta is unreachable"))
    execute(run_of(kind, alpha, beta))
    alpha.refresh_from_db()
    assert alpha.last_connected_at is not None
    assert alpha.last_connection_ok is True
    assert alpha.last_connection_error == ""
    assert Instance.objects.get(pk=beta.pk).last_connected_at is None


def test_classification_connects_to_nothing(fake_handlers):
    alpha = InstanceFactory(name="alpha")
    execute(run_of(RunKind.CLASSIFICATION, alpha))
    assert Instance.objects.get(pk=alpha.pk).last_connected_at is None


def test_run_finished_names_the_run_and_counts_its_instances(fake_handlers, monkeypatch):
    alpha, beta = InstanceFactory(name="alpha"), InstanceFactory(name="beta")
    run = run_of(RunKind.ACCOUNTS, alpha, beta)
    last = run.items.order_by("pk").last()
    for pk in run.items.order_by("pk").values_list("pk", flat=True)[:1]:
        services.run_item_execute(item_id=pk)
    # The last item's task has its instance bound to every line it logs.
    structlog.contextvars.bind_contextvars(run_id=run.pk, instance_id=last.instance_id)
    try:
        with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            # Loggers are cached on first use: one made now logs into the capture, whatever
            # earlier tests did with the module's.
            monkeypatch.setattr(services, "log", structlog.get_logger(services.__name__))
            services.run_item_execute(item_id=last.pk)
    finally:
        structlog.contextvars.clear_contextvars()
    [finished] = [e for e in logs if e["event"] == "run_finished"]
    assert finished["run_id"] == run.pk
    assert finished["instance_id"] is None
    assert finished["instance_count"] == 2

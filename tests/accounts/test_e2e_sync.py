"""The "sync all" task through a real worker against the local MariaDB and PostgreSQL."""

import time
import uuid

import pytest

from accounts.models import Account, AccountChange
from syncjobs.models import RUN_TERMINAL, Run, RunStatus
from tests import workers
from tests.accounts.conftest import PASSWORD, MariaDB, PostgreSQL
from tests.inventory.factories import CredentialFactory, InstanceFactory
from whalefall.celery import app as celery_app

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queue():
    name = f"e2e-accounts-{uuid.uuid4().hex[:8]}"
    yield name
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_delete(name)


@pytest.fixture
def worker(queue, tmp_path):
    with workers.worker("tests.accounts.worker_app", queue, tmp_path / "worker.log") as log:
        yield log


def test_sync_all_runs_through_a_real_worker(worker, queue):
    maria, pg = (
        MariaDB(prefix=f"wfe{uuid.uuid4().hex[:4]}_"),
        PostgreSQL(prefix=f"wfe{uuid.uuid4().hex[:4]}_"),
    )
    try:
        monitor, app = maria.user("monitor"), maria.user("app")
        maria.run(
            f"CREATE USER {monitor} IDENTIFIED BY '{PASSWORD}'",
            f"GRANT SELECT ON mysql.* TO {monitor}",
            f"CREATE USER {app} IDENTIFIED BY 'x'",
            f"GRANT PROCESS ON *.* TO {app}",
        )
        pg_monitor, pg_app = pg.role("monitor"), pg.role("app")
        pg.run(
            f"CREATE ROLE {pg_monitor} LOGIN PASSWORD '{PASSWORD}' IN ROLE whalefall_password_auth",
            f"CREATE ROLE {pg_app} LOGIN CREATEDB",
        )
        mariadb = InstanceFactory(
            engine="mysql", port=3306,
            credential=CredentialFactory(username=f"{maria.prefix}monitor", secret=PASSWORD),
        )  # fmt: skip
        postgres = InstanceFactory(
            engine="postgresql", port=5432, database_name="postgres",
            credential=CredentialFactory(username=pg_monitor, secret=PASSWORD),
        )  # fmt: skip

        celery_app.send_task("syncjobs.sync_accounts_all", queue=queue)
        deadline = time.monotonic() + 90
        run = None
        while time.monotonic() < deadline:
            run = Run.objects.filter(status__in=RUN_TERMINAL).first()
            if run:
                break
            time.sleep(0.5)
        assert run is not None, worker.read_text()[-4000:]
        assert run.status == RunStatus.SUCCEEDED, (run.error, list(run.items.values("error")))
        assert (run.items_total, run.items_succeeded) == (2, 2)
        assert run.created_count >= 4

        app_account = Account.objects.get(instance=mariadb, name=f"{maria.prefix}app")
        assert app_account.snapshot.privileges["grants"][0]["privilege"] == "PROCESS"
        assert Account.objects.get(instance=postgres, name=pg_app).snapshot.privileges[
            "attributes"
        ]["create_db"]
        assert (
            AccountChange.objects.filter(run_id=run.pk, change_type="created").count()
            == run.created_count
        )
    finally:
        maria.close()
        pg.close()

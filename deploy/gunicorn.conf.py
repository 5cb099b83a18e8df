"""gunicorn settings of the web container (``gunicorn -c deploy/gunicorn.conf.py``): the
hooks that keep the metrics directory shared with the Celery workers tidy and set each
worker's garbage collector. Bind address, workers and timeouts are given on the command line
(Dockerfile)."""

import os


def _metrics():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "whalefall.settings")
    import django

    django.setup()
    from whalefall import metrics

    return metrics


def on_starting(server):
    """Before the first worker: settings are checked (production refuses to start without
    its variables) and the files this host's previous workers left are deleted, so that a
    restart starts their counts afresh instead of piling up files."""
    removed = _metrics().clear_host_files()
    server.log.info("metrics files of earlier web workers removed: %d", removed)


def child_exit(server, worker):
    """A worker exited: its live gauges go, its counts stay in the sums."""
    _metrics().process_exited(worker.pid)


def post_worker_init(worker):
    """A worker has loaded the application: the garbage collector leaves that alone from
    now on (whalefall.collector)."""
    from whalefall.collector import collector_tune

    collector_tune()

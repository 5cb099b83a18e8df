"""gunicorn settings of the web container (``gunicorn -c deploy/gunicorn.conf.py``): the
hooks that keep the metrics directory shared with the Celery workers tidy. Bind address,
workers and timeouts are given on the command line (Dockerfile)."""

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

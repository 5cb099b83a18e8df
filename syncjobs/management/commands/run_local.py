"""``manage.py run_local``: web, worker and beat in one terminal; Ctrl-C stops all three.

The one worker consumes every queue (``WHALEFALL_QUEUES``). The three processes share a
metrics directory (``PROMETHEUS_MULTIPROC_DIR``, by default ``.data/metrics``, emptied
first), so ``/metrics`` shows the worker's counts beside the web's.

With ``--bootstrap`` it first installs roles, the default schedule and the administrator,
and shows the administrator's new password last, framed, once the web server answers.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from syncjobs.management.commands.bootstrap import bootstrap, framed, password_lines

STOP_GRACE_SECONDS = 15
WEB_START_SECONDS = 30


class Command(BaseCommand):
    help = "Run the web server, a Celery worker and celery beat together (local use)."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000", help="Web address:port.")
        parser.add_argument("--concurrency", type=int, default=2, help="Worker processes.")
        parser.add_argument(
            "--bootstrap",
            action="store_true",
            dest="run_bootstrap",
            help="Install roles, schedule and the administrator first (as manage.py bootstrap "
            "--admin); a new administrator's password is shown once everything is up.",
        )

    def handle(self, *args, addr: str, concurrency: int, run_bootstrap: bool, **options):
        done = None
        if run_bootstrap:
            done = bootstrap(admin=True)
            for line in done.lines:
                self.stdout.write(line)
            for line in done.warnings:
                self.stdout.write(self.style.WARNING(line))
        commands, child_env = self.commands(addr=addr, concurrency=concurrency)
        processes: dict[str, subprocess.Popen] = {}
        stopping = False

        def request_stop(_signum, _frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        try:
            for name, command in commands.items():
                # Own session: Ctrl-C reaches only this supervisor, which then stops each
                # child (and the runserver reloader's child) in an orderly way.
                processes[name] = subprocess.Popen(  # noqa: S603
                    command, start_new_session=True, env=child_env
                )
                self.stdout.write(f"started {name} (pid {processes[name].pid})")
            self._wait_for_web(addr, processes["web"])
            banner = [f"WhaleFall is up: http://{addr}/admin/  (Ctrl-C stops everything)"]
            if done is not None and done.password is not None:
                banner += password_lines(done)
            if settings.EMBEDDED_DEFAULTS:
                banner += ["Embedded defaults:", *(f"  {d}" for d in settings.EMBEDDED_DEFAULTS)]
            self.stdout.write(self.style.SUCCESS(framed(banner)))
            while not stopping:
                exited = [name for name, p in processes.items() if p.poll() is not None]
                if exited:
                    self.stderr.write(f"{', '.join(exited)} exited; stopping the others")
                    break
                time.sleep(0.5)
        finally:
            self._stop(processes)

    @staticmethod
    def commands(*, addr: str, concurrency: int) -> tuple[dict[str, list[str]], dict[str, str]]:
        """The command line of each process, and their environment."""
        metrics_dir = settings.PROMETHEUS_MULTIPROC_DIR or str(settings.DATA_DIR / "metrics")
        os.makedirs(metrics_dir, mode=0o700, exist_ok=True)
        # Every process writing there is started here: what a previous run left is stale.
        for stale in Path(metrics_dir).glob("*.db"):
            stale.unlink(missing_ok=True)
        child_env = {
            **os.environ,
            # The children would each repeat the embedded-defaults notice this process logged.
            "WHALEFALL_EMBEDDED_NOTICE": "0",
            "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
        }
        python = sys.executable
        celery = [python, "-m", "celery", "-A", "whalefall"]
        queues = ",".join(settings.WHALEFALL_QUEUES)
        commands = {
            "web": [python, "manage.py", "runserver", addr],
            "worker": [
                *celery,
                "worker",
                "--queues",
                queues,
                "--loglevel",
                "INFO",
                "--concurrency",
                str(concurrency),
            ],
            "beat": [*celery, "beat", "--loglevel", "INFO"],
        }
        return commands, child_env

    @staticmethod
    def _wait_for_web(addr: str, web: subprocess.Popen) -> None:
        """Until the web server accepts connections (or exits, or a deadline passes), so that
        the banner comes after the servers' start-up lines."""
        host, _, port = addr.rpartition(":")
        deadline = time.monotonic() + WEB_START_SECONDS
        while time.monotonic() < deadline and web.poll() is None:
            try:
                socket.create_connection((host or "127.0.0.1", int(port)), timeout=0.5).close()
            except OSError:
                time.sleep(0.3)
                continue
            time.sleep(1.5)  # the worker and beat finish their start-up banners meanwhile
            return

    def _stop(self, processes: dict[str, subprocess.Popen]) -> None:
        for name, process in processes.items():
            if process.poll() is None:
                if name == "web":
                    os.killpg(process.pid, signal.SIGINT)  # the reloader and its child
                else:
                    process.terminate()  # Celery's warm shutdown stops its own children
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for name, process in processes.items():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            self.stdout.write(f"stopped {name}")

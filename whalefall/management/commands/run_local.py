"""``manage.py run_local``: web, worker and beat in one terminal; Ctrl-C stops all three."""

import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand

STOP_GRACE_SECONDS = 15


class Command(BaseCommand):
    help = "Run the web server, a Celery worker and celery beat together (local use)."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000", help="Web address:port.")
        parser.add_argument("--concurrency", type=int, default=2, help="Worker processes.")

    def handle(self, *args, addr: str, concurrency: int, **options):
        python = sys.executable
        celery = [python, "-m", "celery", "-A", "whalefall"]
        commands = {
            "web": [python, "manage.py", "runserver", addr],
            "worker": [*celery, "worker", "--loglevel", "INFO", "--concurrency", str(concurrency)],
            "beat": [*celery, "beat", "--loglevel", "INFO"],
        }
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
                processes[name] = subprocess.Popen(command, start_new_session=True)  # noqa: S603
                self.stdout.write(f"started {name} (pid {processes[name].pid})")
            self.stdout.write(f"WhaleFall is up: http://{addr}/admin/  (Ctrl-C stops everything)")
            while not stopping:
                exited = [name for name, p in processes.items() if p.poll() is not None]
                if exited:
                    self.stderr.write(f"{', '.join(exited)} exited; stopping the others")
                    break
                time.sleep(0.5)
        finally:
            self._stop(processes)

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

"""Real server processes for fault tests: started on free ports, always cleaned up.

Every helper is a context manager that starts its own process (never the shared services on
5432/3306/6379), waits a bounded time for it to answer, yields a handle that can stop,
freeze (SIGSTOP), thaw (SIGCONT) or kill it, and removes the process and its files on exit,
also when the test fails::

    with servers.redis() as r:
        ...settings pointing at r.url...
        r.freeze()
        ...
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = START_TIMEOUT, process=None) -> None:
    """Until something accepts on 127.0.0.1:``port``; raises after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout}s")


@dataclass
class Process:
    """A running server process in its own session."""

    process: subprocess.Popen
    port: int
    frozen: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def freeze(self) -> None:
        """SIGSTOP: the port still accepts (the kernel does) but nothing answers."""
        os.killpg(self.process.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)
        self.frozen = False

    def kill(self) -> None:
        """SIGKILL the whole session, no shutdown."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT)
        self.frozen = False

    def terminate(self) -> None:
        """SIGTERM and a bounded wait, then SIGKILL."""
        if self.process.poll() is not None:
            return
        if self.frozen:
            self.thaw()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class Redis(Process):
    """A ``redis-server`` with no persistence on 127.0.0.1."""

    directory: Path = field(default=Path())

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.terminate()

    def start(self) -> None:
        """(Re)start on the same port after :meth:`stop` or :meth:`kill`."""
        if self.process.poll() is None:
            return
        self.process = _spawn_redis(self.port, self.directory)
        wait_for_port(self.port, process=self.process)


def _spawn_redis(port: int, directory: Path) -> subprocess.Popen:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    return subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(directory), "--protected-mode", "no", "--loglevel", "warning"],
        stdout=(directory / "redis.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


@contextlib.contextmanager
def redis() -> Iterator[Redis]:
    """A fresh redis-server on a free port; yields a :class:`Redis`."""
    directory = Path(tempfile.mkdtemp(prefix="wf-redis-"))
    port = free_port()
    server = Redis(process=_spawn_redis(port, directory), port=port, directory=directory)
    try:
        wait_for_port(port, process=server.process)
        yield server
    finally:
        server.kill()
        shutil.rmtree(directory, ignore_errors=True)


def postgres_bin(name: str) -> str:
    """Path of a PostgreSQL server program (the newest installed major version)."""
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda path: int(path.split("/")[4]) if path.split("/")[4].isdigit() else 0,
    )
    if not candidates:
        raise FileNotFoundError(f"no {name} under /usr/lib/postgresql/*/bin")
    return candidates[-1]


def _as_postgres(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the ``postgres`` user."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@dataclass
class Postgres(Process):
    """A throwaway PostgreSQL cluster (trust authentication, user ``postgres``)."""

    data_dir: Path = field(default=Path())
    socket_dir: Path = field(default=Path())

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def settings_dict(self, name: str = "postgres") -> dict:
        """Connection settings in the shape of ``settings.DATABASES[alias]``."""
        return {"ENGINE": "django.db.backends.postgresql", "NAME": name, "USER": "postgres",
                "PASSWORD": "", "HOST": "127.0.0.1", "PORT": str(self.port)}  # fmt: skip

    def freeze(self) -> None:
        """SIGSTOP the postmaster and every backend: connections hang, none is refused."""
        for pid in self._pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        for pid in self._pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.frozen = False

    def _pids(self) -> list[int]:
        """The postmaster and its children (backends fork from it)."""
        postmaster = self.postmaster_pid()
        if postmaster is None:
            return []
        pids = [postmaster]
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True,
                                 text=True, timeout=5).stdout  # fmt: skip
            pids += [int(pid) for pid in out.split()]
        return pids

    def postmaster_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        return None

    def start(self) -> None:
        if self.postmaster_pid() is not None and self.process.poll() is None:
            return
        self.process = _spawn_postgres(self.port, self.data_dir, self.socket_dir)
        _wait_postgres(self)

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m <mode>`` (thawing first), bounded; SIGKILL if it hangs."""
        if self.frozen:
            self.thaw()
        if self.process.poll() is not None:
            return
        with contextlib.suppress(subprocess.SubprocessError):
            subprocess.run(
                _as_postgres([postgres_bin("pg_ctl"), "stop", "-D", str(self.data_dir),
                              "-m", mode, "-w", "-t", str(int(STOP_TIMEOUT))]),
                capture_output=True, timeout=STOP_TIMEOUT + 5,
            )  # fmt: skip
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        pids = self._pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        super().kill()

    def terminate(self) -> None:
        self.stop()

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` through psql (bounded); returns its output."""
        return subprocess.run(
            [postgres_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
             "-d", database, "-XAtc", sql],
            capture_output=True, text=True, timeout=STOP_TIMEOUT, check=True,
        ).stdout  # fmt: skip


def _spawn_postgres(port: int, data_dir: Path, socket_dir: Path) -> subprocess.Popen:
    # The postmaster in the foreground (not pg_ctl start) so this Popen is the server and the
    # session it leads holds every backend.
    return subprocess.Popen(
        _as_postgres([postgres_bin("postgres"), "-D", str(data_dir), "-p", str(port),
                      "-c", "listen_addresses=127.0.0.1",
                      "-c", f"unix_socket_directories={socket_dir}",
                      "-c", "fsync=off", "-c", "full_page_writes=off",
                      "-c", "synchronous_commit=off", "-c", "shared_buffers=16MB",
                      "-c", "max_connections=30"]),
        stdout=(data_dir.parent / "postgres.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def _wait_postgres(server: Postgres) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    ready = postgres_bin("pg_isready")
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            log = (server.data_dir.parent / "postgres.log").read_text(errors="replace")
            raise RuntimeError(f"postgres exited with {server.process.returncode}: {log[-2000:]}")
        result = subprocess.run([ready, "-h", "127.0.0.1", "-p", str(server.port), "-t", "1"],
                                capture_output=True, timeout=5)  # fmt: skip
        if result.returncode == 0:
            return
        time.sleep(0.1)
    raise TimeoutError(f"postgres on port {server.port} not ready within {START_TIMEOUT}s")


@contextlib.contextmanager
def postgres() -> Iterator[Postgres]:
    """A fresh PostgreSQL cluster (initdb) on a free port; yields a :class:`Postgres`."""
    root = Path(tempfile.mkdtemp(prefix="wf-pg-"))
    data_dir, socket_dir = root / "data", root / "run"
    socket_dir.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(socket_dir, "postgres", "postgres")
    server = None
    try:
        subprocess.run(
            _as_postgres([postgres_bin("initdb"), "-D", str(data_dir), "-U", "postgres",
                          "-A", "trust", "-E", "UTF8", "--no-sync", "--locale", "C"]),
            capture_output=True, check=True, timeout=60,
        )  # fmt: skip
        if os.geteuid() == 0:
            Path(root / "postgres.log").touch()
            shutil.chown(root / "postgres.log", "postgres", "postgres")
        port = free_port()
        server = Postgres(process=_spawn_postgres(port, data_dir, socket_dir), port=port,
                          data_dir=data_dir, socket_dir=socket_dir)  # fmt: skip
        _wait_postgres(server)
        yield server
    finally:
        if server is not None:
            server.kill()  # a throwaway cluster: no shutdown to wait for
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Silent:
    """A listener that accepts connections and never sends a byte."""

    port: int = 0
    connections: int = 0
    _sockets: list[socket.socket] = field(default_factory=list)

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)


@contextlib.contextmanager
def silent_server() -> Iterator[Silent]:
    """A TCP server on a free port that accepts and never answers (reads and discards)."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.1)
    server = Silent(port=listener.getsockname()[1])
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            server.connections += 1
            server._sockets.append(conn)

    thread = threading.Thread(target=serve, name="silent-server", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stopping.set()
        thread.join(timeout=2)
        for conn in server._sockets:
            with contextlib.suppress(OSError):
                conn.close()
        listener.close()


@dataclass
class Stalling:
    """A TCP proxy to a real server that can stop passing bytes, as a network that goes
    silent after the login would (the connections stay open)."""

    port: int = 0
    stalled: threading.Event = field(default_factory=threading.Event)
    _sockets: list[socket.socket] = field(default_factory=list)

    def stall(self) -> None:
        self.stalled.set()


@contextlib.contextmanager
def stalling_proxy(target_port: int, target_host: str = "127.0.0.1") -> Iterator[Stalling]:
    """A proxy on a free port to ``target_host:target_port``; ``stall()`` holds every byte
    from then on, in both directions, until the proxy is closed."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    proxy = Stalling(port=listener.getsockname()[1])
    stopping = threading.Event()

    def pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                while proxy.stalled.is_set() and not stopping.is_set():
                    time.sleep(0.02)
                if stopping.is_set():
                    return
                sink.sendall(data)

    def serve() -> None:
        while not stopping.is_set():
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            upstream = socket.create_connection((target_host, target_port), timeout=5)
            upstream.settimeout(None)
            proxy._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=pump, args=(source, sink), daemon=True).start()

    thread = threading.Thread(target=serve, name="stalling-proxy", daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        stopping.set()
        thread.join(timeout=2)
        for conn in proxy._sockets:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()
        listener.close()

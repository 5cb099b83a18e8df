"""Fixtures of the inventory tests: fake SQL Server/Oracle servers and local sockets."""

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.fakedb import fake_oracle, fake_sqlserver  # noqa: F401  (fixtures)


@pytest.fixture
def closed_port() -> int:
    """A local TCP port nothing listens on (bound once to pick it, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SilentListener:
    """A local port that accepts TCP connections and never sends a byte."""

    port: int
    accepted: list[socket.socket] = field(default_factory=list)


@pytest.fixture
def silent_listener() -> Iterator[SilentListener]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    listener = SilentListener(port=server.getsockname()[1])
    stop = threading.Event()

    def hold_connections() -> None:
        while not stop.is_set():
            try:
                connection, _address = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            listener.accepted.append(connection)

    thread = threading.Thread(target=hold_connections, daemon=True)
    thread.start()
    yield listener
    stop.set()
    thread.join(timeout=2)
    server.close()
    for connection in listener.accepted:
        connection.close()

"""Hostile database servers on 127.0.0.1 that ask a client for its password.

Each server speaks just enough of one wire protocol to make a real driver (libpq through
psycopg, MariaDB Connector/C through mysqlclient, ODBC Driver 18 through mssql-python)
authenticate against it, asks for the password in the way an attacker would choose, and
records every byte it receives — and, where the protocol lets a server decode what it was
sent (MySQL's RSA exchange with a key the server chose, TDS's obfuscated LOGIN7
password), what it recovered. Tests then assert that a secret never arrives::

    with fake_servers.postgresql(auth="cleartext") as server:
        ...connect to 127.0.0.1:server.port with the secret...
    assert not server.received(secret)

Wire formats: PostgreSQL frontend/backend protocol 3.0 ("Message Formats", "SSL Session
Encryption", "SASL Authentication"); MySQL client/server protocol (Initial Handshake v10,
HandshakeResponse41, SSLRequest, AuthSwitchRequest, caching_sha2_password's
"perform full authentication" 0x04 and public-key request 0x02); MS-TDS (PRELOGIN and its
ENCRYPTION option, LOGIN7 and its password obfuscation).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import socket
import ssl
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

IO_TIMEOUT = 5.0


@dataclass
class FakeServer:
    """A listener on 127.0.0.1 and what reached it."""

    port: int = 0
    connections: int = 0
    # Every byte read from clients (after TLS, if any), in arrival order.
    data: bytearray = field(default_factory=bytearray)
    # Clear text the server could compute from what it received (e.g. an RSA-encrypted
    # password decrypted with its own key).
    recovered: list[bytes] = field(default_factory=list)
    # What a handler noticed on the way (for assertions about the exchange).
    events: list[str] = field(default_factory=list)

    def received(self, secret: str) -> bool:
        """Whether ``secret`` reached the server, as sent or as recovered."""
        needle = secret.encode()
        return needle in bytes(self.data) or any(needle in item for item in self.recovered)


class _Recorder:
    """A socket wrapper that appends everything read to the server's record."""

    def __init__(self, sock: socket.socket, server: FakeServer) -> None:
        self.sock = sock
        self.server = server

    def recv_exact(self, count: int) -> bytes:
        chunks = bytearray()
        while len(chunks) < count:
            chunk = self.sock.recv(count - len(chunks))
            if not chunk:
                raise ConnectionError("client closed the connection")
            chunks += chunk
            self.server.data += chunk
        return bytes(chunks)

    def drain(self) -> None:
        """Read whatever the client still sends until it closes or goes quiet."""
        with contextlib.suppress(OSError, ConnectionError):
            self.sock.settimeout(0.5)
            while chunk := self.sock.recv(4096):
                self.server.data += chunk

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def start_tls(self) -> None:
        self.sock = _server_tls_context().wrap_socket(self.sock, server_side=True)


@contextlib.contextmanager
def _serve(handler: Callable[[_Recorder, FakeServer], None]) -> Iterator[FakeServer]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    server = FakeServer(port=listener.getsockname()[1])
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def handle(connection: socket.socket) -> None:
        connection.settimeout(IO_TIMEOUT)
        recorder = _Recorder(connection, server)
        try:
            handler(recorder, server)
            recorder.drain()
        except (OSError, ConnectionError, ssl.SSLError) as exc:
            server.events.append(f"closed: {type(exc).__name__}")
        finally:
            with contextlib.suppress(OSError):
                recorder.sock.close()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _address = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            server.connections += 1
            worker = threading.Thread(target=handle, args=(connection,), daemon=True)
            worker.start()
            workers.append(worker)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield server
    finally:
        stop.set()
        acceptor.join(timeout=2)
        listener.close()
        for worker in workers:
            worker.join(timeout=IO_TIMEOUT + 1)


# --- TLS ------------------------------------------------------------------------------


_tls_lock = threading.Lock()
_tls_context: ssl.SSLContext | None = None


def _server_tls_context() -> ssl.SSLContext:
    """A TLS context with a throwaway self-signed certificate for 127.0.0.1."""
    global _tls_context
    with _tls_lock:
        if _tls_context is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rogue.invalid")])
            now = datetime.datetime.now(datetime.UTC)
            certificate = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(
                    x509.SubjectAlternativeName(
                        [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                    ),
                    critical=False,
                )
                .sign(key, hashes.SHA256())
            )
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            with tempfile.TemporaryDirectory() as folder:
                cert_path = os.path.join(folder, "cert.pem")
                key_path = os.path.join(folder, "key.pem")
                with open(cert_path, "wb") as handle:
                    handle.write(certificate.public_bytes(serialization.Encoding.PEM))
                with open(key_path, "wb") as handle:
                    handle.write(
                        key.private_bytes(
                            serialization.Encoding.PEM,
                            serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption(),
                        )
                    )
                context.load_cert_chain(cert_path, key_path)
            _tls_context = context
        return _tls_context


# --- PostgreSQL -------------------------------------------------------------------------

_PG_SSL_REQUEST = 80877103
_PG_GSSENC_REQUEST = 80877104
_PG_AUTH_CODES = {"cleartext": 3, "md5": 5, "scram": 10}


def _pg_message(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("!i", len(payload) + 4) + payload


def _pg_error(message: str) -> bytes:
    fields = b"SFATAL\0VFATAL\0C28P01\0M" + message.encode() + b"\0\0"
    return _pg_message(b"E", fields)


def postgresql(*, auth: str = "cleartext", tls: bool = False):
    """A PostgreSQL server that asks for the password with ``auth``: "cleartext" (the
    password itself), "md5" (a salted hash) or "scram" (SCRAM-SHA-256); with ``tls`` it
    accepts TLS (self-signed certificate), otherwise it answers SSLRequest with "N"."""
    code = _PG_AUTH_CODES[auth]

    def handle(client: _Recorder, server: FakeServer) -> None:
        while True:
            (length,) = struct.unpack("!i", client.recv_exact(4))
            body = client.recv_exact(length - 4)
            (request,) = struct.unpack("!i", body[:4])
            if request == _PG_SSL_REQUEST:
                server.events.append("ssl_request")
                client.send(b"S" if tls else b"N")
                if tls:
                    client.start_tls()
                    server.events.append("tls")
                continue
            if request == _PG_GSSENC_REQUEST:
                client.send(b"N")
                continue
            server.events.append("startup")
            break
        if auth == "md5":
            client.send(_pg_message(b"R", struct.pack("!i", code) + b"salt"))
        elif auth == "scram":
            client.send(_pg_message(b"R", struct.pack("!i", code) + b"SCRAM-SHA-256\0\0"))
        else:
            client.send(_pg_message(b"R", struct.pack("!i", code)))
        server.events.append(f"asked_{auth}")
        kind = client.recv_exact(1)
        (length,) = struct.unpack("!i", client.recv_exact(4))
        client.recv_exact(length - 4)
        server.events.append(f"answer_{kind.decode(errors='replace')}")
        client.send(_pg_error("password authentication failed"))

    return _serve(handle)


# --- MySQL ------------------------------------------------------------------------------

CLIENT_MYSQL = 0x1
CLIENT_CONNECT_WITH_DB = 0x8
CLIENT_PROTOCOL_41 = 0x200
CLIENT_SSL = 0x800
CLIENT_TRANSACTIONS = 0x2000
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_MULTI_STATEMENTS = 0x10000
CLIENT_MULTI_RESULTS = 0x20000
CLIENT_PLUGIN_AUTH = 0x80000
CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA = 0x200000

_SCRAMBLE = b"0123456789abcdefghij"  # 20 bytes, the server's nonce


class _MySQLPackets:
    """Packet framing: 3-byte little-endian length, 1-byte sequence number."""

    def __init__(self, client: _Recorder) -> None:
        self.client = client
        self.sequence = 0

    def send(self, payload: bytes) -> None:
        self.client.send(struct.pack("<I", len(payload))[:3] + bytes([self.sequence]) + payload)
        self.sequence = (self.sequence + 1) % 256

    def read(self) -> bytes:
        header = self.client.recv_exact(4)
        length = int.from_bytes(header[:3], "little")
        self.sequence = (header[3] + 1) % 256
        return self.client.recv_exact(length)


def _mysql_handshake(plugin: str, tls: bool) -> bytes:
    capabilities = (
        CLIENT_MYSQL
        | CLIENT_CONNECT_WITH_DB
        | CLIENT_PROTOCOL_41
        | CLIENT_TRANSACTIONS
        | CLIENT_SECURE_CONNECTION
        | CLIENT_MULTI_STATEMENTS
        | CLIENT_MULTI_RESULTS
        | CLIENT_PLUGIN_AUTH
        | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
        | (CLIENT_SSL if tls else 0)
    )
    return (
        b"\x0a"
        + b"8.0.36-rogue\0"
        + struct.pack("<I", 7)
        + _SCRAMBLE[:8]
        + b"\0"
        + struct.pack("<H", capabilities & 0xFFFF)
        + bytes([45])  # utf8mb4_general_ci
        + struct.pack("<H", 0x0002)  # autocommit
        + struct.pack("<H", capabilities >> 16)
        + bytes([len(_SCRAMBLE) + 1])
        + b"\0" * 10
        + _SCRAMBLE[8:]
        + b"\0"
        + plugin.encode()
        + b"\0"
    )


def _mysql_error(message: str) -> bytes:
    return b"\xff" + struct.pack("<H", 1045) + b"#28000" + message.encode()


def _client_plugin(response: bytes) -> str:
    """The plugin a HandshakeResponse41 says its authentication data was made with."""
    (flags,) = struct.unpack("<I", response[:4])
    position = response.index(b"\0", 32) + 1  # after the fixed part and the user name
    if flags & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA:
        length = response[position]  # short answers only: a one-byte length-encoded integer
        position += 1 + length
    else:
        position += 1 + response[position]
    if flags & CLIENT_CONNECT_WITH_DB:
        position = response.index(b"\0", position) + 1
    if not flags & CLIENT_PLUGIN_AUTH:
        return ""
    return response[position : response.index(b"\0", position)].decode()


def mysql(*, plugin: str = "mysql_clear_password", announce: str | None = None, tls: bool = False):
    """A MySQL server whose account authenticates with ``plugin``. Its handshake names
    ``announce`` (default: ``plugin``); when the client answers with another plugin, it
    asks it to switch to ``plugin`` (AuthSwitchRequest), as a real server does.
    "caching_sha2_password" asks for full authentication and, when the client requests the
    server's RSA key, hands it its own key and decrypts the password it gets. With ``tls``
    it offers TLS (self-signed certificate)."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def caching_sha2_full(packets: _MySQLPackets, server: FakeServer) -> None:
        packets.send(b"\x01\x04")  # perform full authentication
        answer = packets.read()
        if answer == b"\x02":  # the client asks for the server's public key
            server.events.append("public_key_requested")
            packets.send(b"\x01" + public_pem)
            encrypted = packets.read()
            with contextlib.suppress(ValueError):
                scrambled = private_key.decrypt(
                    encrypted,
                    # caching_sha2_password's RSA exchange is OAEP with SHA-1, as clients send it.
                    padding.OAEP(
                        mgf=padding.MGF1(algorithm=hashes.SHA1()),  # noqa: S303
                        algorithm=hashes.SHA1(),  # noqa: S303
                        label=None,
                    ),
                )
                server.recovered.append(
                    bytes(b ^ _SCRAMBLE[i % len(_SCRAMBLE)] for i, b in enumerate(scrambled))
                )
        else:
            server.recovered.append(answer)

    def handle(client: _Recorder, server: FakeServer) -> None:
        packets = _MySQLPackets(client)
        packets.send(_mysql_handshake(announce or plugin, tls))
        response = packets.read()
        (flags,) = struct.unpack("<I", response[:4])
        if flags & CLIENT_SSL and len(response) == 32:
            if not tls:
                server.events.append("ssl_request_without_offer")
                return
            server.events.append("tls")
            client.start_tls()
            response = packets.read()
        server.events.append("handshake_response")
        answered_with = _client_plugin(response)
        server.events.append(f"answered_with_{answered_with}")
        if answered_with != plugin:
            # dialog (PAM) sends its first question: type 4 (password) | 1 (last question).
            data = b"\x05Password: " if plugin == "dialog" else _SCRAMBLE + b"\0"
            packets.send(b"\xfe" + plugin.encode() + b"\0" + data)
            server.events.append(f"switch_{plugin}")
            answer = packets.read()
            server.events.append("switch_answer")
            server.recovered.append(answer)
        if plugin == "caching_sha2_password":
            caching_sha2_full(packets, server)
        packets.send(_mysql_error("Access denied"))

    return _serve(handle)


# --- SQL Server (TDS) -------------------------------------------------------------------

_TDS_PRELOGIN = 0x12
_TDS_LOGIN7 = 0x10
_TDS_REPLY = 0x04
_TDS_ENCRYPT_NOT_SUP = 0x02


def _tds_packet(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BBHHBB", kind, 0x01, 8 + len(payload), 0, 1, 0) + payload


def _tds_prelogin_reply(encryption: int) -> bytes:
    options = [(0, b"\x0f\x00\x07\xd0\x00\x00"), (1, bytes([encryption])), (2, b"\0"), (4, b"\0")]
    offset = 5 * len(options) + 1
    tokens, data = b"", b""
    for token, value in options:
        tokens += struct.pack(">BHH", token, offset + len(data), len(value))
        data += value
    return _tds_packet(_TDS_REPLY, tokens + b"\xff" + data)


def _tds_password(login7: bytes) -> bytes:
    """The password of a LOGIN7 message, undoing its obfuscation (each byte XOR 0xA5 with
    its nibbles swapped): what anyone who reads the packet learns."""
    offset, length = struct.unpack("<HH", login7[44:48])
    obfuscated = login7[offset : offset + 2 * length]
    plain = bytes((((b ^ 0xA5) & 0x0F) << 4) | ((b ^ 0xA5) >> 4) for b in obfuscated)
    return plain.decode("utf-16-le", errors="replace").encode()


def sqlserver():
    """A SQL Server that answers the pre-login handshake with "encryption not supported",
    then records the LOGIN7 message (and the password it carries) if the client sends it."""

    def handle(client: _Recorder, server: FakeServer) -> None:
        while True:
            kind, _status, length = struct.unpack(">BBH", client.recv_exact(4))
            client.recv_exact(4)
            body = client.recv_exact(length - 8)
            if kind == _TDS_PRELOGIN:
                server.events.append("prelogin")
                client.send(_tds_prelogin_reply(_TDS_ENCRYPT_NOT_SUP))
            elif kind == _TDS_LOGIN7:
                server.events.append("login7")
                server.recovered.append(_tds_password(body))
                return

    return _serve(handle)

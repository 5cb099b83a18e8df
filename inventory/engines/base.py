"""The engine interface, its records and errors, and the registry of engine modules.

An engine reads one external database server, read-only, through its driver. Records are
frozen dataclasses, never model instances. Every engine applies a connect timeout and a
statement/read timeout (``WHALEFALL_CONNECT_TIMEOUT``, ``WHALEFALL_QUERY_TIMEOUT``) and
turns driver exceptions into the :class:`EngineError` family, whose messages never carry
the secret.
"""

from __future__ import annotations

import contextlib
import functools
import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar

from django.conf import settings
from django.utils.module_loading import import_string

from inventory.crypto import SecretUnavailable
from inventory.engines import guard
from whalefall.logging import redact_text

if TYPE_CHECKING:
    from inventory.models import Instance

UNKNOWN_VERSION = "unknown"
MAX_ERROR_LENGTH = 500


# --- Errors -----------------------------------------------------------------------------


class EngineError(Exception):
    """A failure talking to an external instance; ``kind`` classifies it for people."""

    kind: ClassVar[str] = "other"
    label: ClassVar[str] = "Error"


class AuthenticationFailed(EngineError):
    kind = "authentication"
    label = "Authentication failed"


class Unreachable(EngineError):
    kind = "unreachable"
    label = "Unreachable"


class Timeout(EngineError):
    kind = "timeout"
    label = "Timed out"


class TlsError(EngineError):
    kind = "tls"
    label = "TLS error"


class InsufficientPrivileges(EngineError):
    kind = "insufficient_privileges"
    label = "Insufficient privileges"


class TargetRefused(EngineError):
    kind = "not_allowed"
    label = "Target not allowed"


class CredentialUnavailable(EngineError):
    kind = "credential"
    label = "Credential unavailable"


class EngineFailure(EngineError):
    kind = "other"
    label = "Error"


def scrub(message: str, *secrets: str) -> str:
    """A driver message made safe to store and show: no secret, no URL password, bounded."""
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    message = redact_text(" ".join(message.split()))
    return message[:MAX_ERROR_LENGTH]


def without_names(message: str, *names: str) -> str:
    """``message`` without the quoted names it echoes (host, user, database), so that a host
    called ``tls-db`` or a user called ``ssl_mon`` cannot make an error look like a TLS one."""
    for name in names:
        if name:
            for quote in ("'", '"'):
                message = message.replace(f"{quote}{name}{quote}", quote * 2)
    return message


# --- Records ----------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionInfo:
    """A server version as reported (raw), as major.minor, and in full."""

    raw: str
    major_minor: str
    full: str


def parse_version(raw: str, pattern: str, parts: int) -> VersionInfo:
    """Find ``pattern`` (a regex with ``parts`` numeric groups, minor optional) in ``raw``."""
    raw = (raw or "").strip()
    match = re.search(pattern, raw)
    if not match:
        return VersionInfo(raw=raw[:500], major_minor=UNKNOWN_VERSION, full="")
    numbers = [g for g in match.groups()[:parts]]
    major = numbers[0]
    minor = numbers[1] if len(numbers) > 1 and numbers[1] is not None else "0"
    full = ".".join(n for n in numbers if n is not None)
    return VersionInfo(raw=raw[:500], major_minor=f"{major}.{minor}", full=full)


AccountKey = tuple[str, str, str]  # (kind, name, host)
ACCOUNT_KINDS = ("user", "role", "login", "group", "public")
PUBLIC = "PUBLIC"


@dataclass(frozen=True)
class AccountRecord:
    """An account as an instance lists it: kind, name and host as separate values.

    ``key`` is the triple, so a MySQL user ``'k'@'h'`` and a role named ``k@h`` can never
    be taken for one another. ``kind`` is user, role, login (SQL Server), group (a Windows
    group login) or public (the one PUBLIC pseudo-account of an instance, which holds every
    grant made to PUBLIC).
    """

    name: str
    host: str = ""
    kind: str = "user"

    @property
    def key(self) -> AccountKey:
        return (self.kind, self.name, self.host)


PUBLIC_ACCOUNT = AccountRecord(name=PUBLIC, kind="public")

_BARE_PART = re.compile(r"[^.\"\s\x00-\x1f]+(?:[ ][^.\"\s\x00-\x1f]+)*")


def quote_part(part: str) -> str:
    """One part of an object name as written in a canonical grant: bare when it is not
    empty and holds no dot, double quote, control character or edge/double space;
    otherwise double-quoted with inner double quotes doubled (SQL's identifier quoting)."""
    if _BARE_PART.fullmatch(part):
        return part
    return '"' + part.replace('"', '""') + '"'


def object_name(*parts: str) -> str:
    """An unambiguous dotted object name: ``a.b`` and ``"a.b"`` are different objects, so
    `` `a.b`.`c` `` and `` `a`.`b.c` `` can never be taken for one another."""
    return ".".join(quote_part(str(part)) for part in parts)


def split_object_name(name: str) -> list[str]:
    """The parts of an :func:`object_name` (its inverse)."""
    parts, i, n = [], 0, len(name)
    while i <= n:
        if i < n and name[i] == '"':
            j, chars = i + 1, []
            while j < n:
                if name[j] == '"':
                    if j + 1 < n and name[j + 1] == '"':
                        chars.append('"')
                        j += 2
                        continue
                    break
                chars.append(name[j])
                j += 1
            parts.append("".join(chars))
            i = j + 2  # past the closing quote and the dot
        else:
            j = name.find(".", i)
            j = n if j < 0 else j
            parts.append(name[i:j])
            i = j + 1
    return parts


def like(pattern: str, value: str) -> bool:
    """SQL LIKE semantics, case-insensitive: ``%`` any run, ``_`` one character, ``\\`` escapes."""
    return _like_regex((pattern,)).fullmatch(value) is not None


@functools.lru_cache(maxsize=64)
def _like_regex(patterns: tuple[str, ...], ignore_case: bool = True) -> re.Pattern:
    """One compiled regex matching any of the LIKE ``patterns``."""
    flags = re.S | (re.I if ignore_case else 0)
    return re.compile("|".join(f"(?:{_like_to_regex(p)})" for p in patterns) or "(?!)", flags)


def _like_to_regex(pattern: str) -> str:
    regex, escaped = [], False
    for char in pattern:
        if escaped:
            regex.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            regex.append(".*")
        elif char == "_":
            regex.append(".")
        else:
            regex.append(re.escape(char))
    return "".join(regex)


# Engines whose account names compare without case (SQL Server, by its usual collations).
# Elsewhere a name differing only in case is another account — MySQL's 'MARIADB.SYS', a
# PostgreSQL role "PG_ADMIN", an Oracle user "sys" — and must never be hidden as a system one.
_CASE_INSENSITIVE_NAMES = {"sqlserver"}


def is_system_account(engine: str, name: str) -> bool:
    """Whether ``name`` is a system account of ``engine``: the engine's defaults plus
    ``WHALEFALL_SYSTEM_ACCOUNTS`` (LIKE patterns; exact names are patterns too), compared
    with the case rules of the engine's names (MySQL/MariaDB: ``user@host``, the host in
    lower case as the server compares it)."""
    patterns = tuple(settings.WHALEFALL_SYSTEM_ACCOUNTS.get(engine, ()))
    if engine == "mysql" and "@" in name:
        user, _, host = name.rpartition("@")
        name = f"{user}@{host.lower()}"
    regex = _like_regex(patterns, engine in _CASE_INSENSITIVE_NAMES)
    return regex.fullmatch(name) is not None


@dataclass(frozen=True)
class DatabaseRecord:
    """A database as an instance lists it, in its real case; on Oracle, a tablespace."""

    name: str
    # "database"; Oracle: "tablespace", "temporary tablespace" or "undo tablespace"
    kind: str = "database"


@dataclass(frozen=True)
class DatabaseSize:
    """The files of one database (Oracle: tablespace) in bytes: data, log and their total.

    Log bytes are those of the database's own log files (SQL Server); engines whose logs
    belong to the whole server (MySQL binlog and redo, PostgreSQL WAL, Oracle redo) report 0.
    """

    name: str
    data_bytes: int
    log_bytes: int = 0
    total_bytes: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "total_bytes", self.data_bytes + self.log_bytes)


@dataclass(frozen=True)
class TableSize:
    """The latest size of one table: the server's row estimate (None when it has none),
    data and index bytes, and the total the table takes (at least data plus index)."""

    schema: str  # MySQL: the database; Oracle: the owner
    table: str
    rows: int | None
    data_bytes: int
    index_bytes: int
    total_bytes: int


def is_system_database(engine: str, name: str) -> bool:
    """Whether ``name`` is a system database (Oracle: tablespace) of ``engine``, by the LIKE
    patterns of ``WHALEFALL_SYSTEM_DATABASES``."""
    patterns = tuple(settings.WHALEFALL_SYSTEM_DATABASES.get(engine, ()))
    return _like_regex(patterns).fullmatch(name) is not None


@dataclass(frozen=True)
class ConnectionTarget:
    """Everything needed to open one connection; the secret never shows in its repr."""

    engine: str
    host: str
    port: int
    database: str
    username: str
    secret: str = field(repr=False)
    tls_mode: str = "preferred"
    connect_timeout: float = 10.0
    query_timeout: float = 300.0
    # PostgreSQL: also answer md5 password authentication (never cleartext).
    allow_md5_auth: bool = False
    # The addresses the outbound guard checked for ``host``, in the resolver's order.
    addresses: tuple[str, ...] = ()

    @property
    def dial_host(self) -> str:
        """What a driver connects to: the first checked address, so that a DNS answer that
        changes between the check and the connection cannot redirect it — or the name
        itself when the TLS mode verifies the server's certificate against that name."""
        if self.addresses and self.tls_mode != "verify":
            return self.addresses[0]
        return self.host


# --- Engine -----------------------------------------------------------------------------


class Engine(ABC):
    """One open, read-only session with an external instance (a context manager)."""

    name: ClassVar[str]
    default_database: ClassVar[str] = ""

    def __init__(self, target: ConnectionTarget) -> None:
        self.target = target
        self.queries = 0  # remote round trips, for the budgets of SPEC §11
        self.remote_seconds = 0.0  # time spent waiting for the server, same purpose

    @contextlib.contextmanager
    def remote(self):
        """Count one remote query and the time spent in it (execute and fetch)."""
        self.queries += 1
        started = time.perf_counter()
        try:
            yield
        finally:
            self.remote_seconds += time.perf_counter() - started

    def __enter__(self) -> Engine:
        try:
            self.open()
        except BaseException as exc:
            self.__exit__(None, None, None)  # release whatever the failed open acquired
            if isinstance(exc, EngineError):
                raise
            if isinstance(exc, Exception):
                raise self.translate_error(exc) from None
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Closing a broken session must not mask the error that broke it.
        with contextlib.suppress(Exception):
            self.close()

    @property
    def database(self) -> str:
        return self.target.database or self.default_database

    @abstractmethod
    def open(self) -> None:
        """Connect, applying the connect and statement timeouts."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection."""

    @abstractmethod
    def fetch_version(self) -> str:
        """The raw version string the server reports."""

    @classmethod
    @abstractmethod
    def parse_version(cls, raw: str) -> VersionInfo:
        """Parse a raw version string of this engine."""

    @abstractmethod
    def classify(self, exc: BaseException) -> type[EngineError]:
        """The error class a driver exception belongs to."""

    def server_version(self) -> VersionInfo:
        return self.parse_version(self.run(self.fetch_version))

    def run(self, operation, *args, **kwargs):
        """Call ``operation`` translating driver errors into :class:`EngineError`."""
        try:
            return operation(*args, **kwargs)
        except EngineError:
            raise
        except Exception as exc:  # noqa: BLE001  every driver error becomes an EngineError
            raise self.translate_error(exc) from None

    def translate_error(self, exc: BaseException) -> EngineError:
        error_class = self.classify(exc)
        detail = scrub(str(exc) or type(exc).__name__, self.target.secret)
        return error_class(f"{error_class.label}: {detail}")


# --- Registry ---------------------------------------------------------------------------

ENGINE_CLASSES = {
    "mysql": "inventory.engines.mysql.MySQLEngine",
    "postgresql": "inventory.engines.postgresql.PostgreSQLEngine",
    "sqlserver": "inventory.engines.sqlserver.SQLServerEngine",
    "oracle": "inventory.engines.oracle.OracleEngine",
}


def engine_class(engine: str) -> type[Engine]:
    """The engine class for an engine name (imported on first use: drivers load lazily)."""
    try:
        return import_string(ENGINE_CLASSES[engine])
    except KeyError:
        raise EngineFailure(f"Unknown engine {engine!r}") from None


def target_for(instance: Instance) -> ConnectionTarget:
    """Check the outbound guard, then decrypt the secret: the one place it is decrypted.

    The guard resolves the host on every call and the target carries the addresses it
    checked, which the engines connect to (see :attr:`ConnectionTarget.dial_host`)."""
    try:
        addresses = guard.ensure_allowed(instance.host, instance.port)
    except guard.TargetNotAllowed as exc:
        raise TargetRefused(f"{TargetRefused.label}: {exc}") from None
    credential = instance.credential
    if credential is None:
        raise CredentialUnavailable(
            f"{CredentialUnavailable.label}: the instance has no credential"
        )
    try:
        secret = credential.decrypt_secret()
    except SecretUnavailable as exc:
        raise CredentialUnavailable(f"{CredentialUnavailable.label}: {exc}") from None
    return ConnectionTarget(
        engine=instance.engine,
        host=instance.host,
        port=instance.port,
        database=instance.database_name,
        username=credential.username,
        secret=secret,
        tls_mode=instance.tls_mode,
        allow_md5_auth=instance.allow_md5_auth,
        connect_timeout=float(settings.WHALEFALL_CONNECT_TIMEOUT),
        query_timeout=float(settings.WHALEFALL_QUERY_TIMEOUT),
        addresses=addresses,
    )


def connect(instance: Instance) -> Engine:
    """An unopened engine session for ``instance``; use it as ``with connect(i) as engine``."""
    return engine_class(instance.engine)(target_for(instance))

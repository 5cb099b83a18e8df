"""structlog set-up: one pipeline for structlog, stdlib and Celery log records.

Django calls :func:`configure` once during ``django.setup()`` (``LOGGING_CONFIG``); the
Celery worker and beat call it again through Celery's ``setup_logging`` signal, which keeps
Celery from installing handlers of its own.
"""

import logging
import logging.config
import re
import sys
from collections.abc import Mapping
from typing import Any

import structlog

REDACTED = "***"

# A key is sensitive when one of its words is one of these (api_key, set-cookie,
# X-Authorization, db_password ...).
_SENSITIVE_WORDS = {
    "password",
    "passwd",
    "pwd",
    "pass",
    "secret",
    "token",
    "key",
    "keys",
    "authorization",
    "cookie",
    "credential",
    "credentials",
    "dsn",
    "passphrase",
    "signature",
}
_SENSITIVE_FRAGMENTS = ("password", "secret", "token", "authorization", "cookie", "apikey")
_WORD_SPLIT = re.compile(r"[^a-z0-9]+|(?<=[a-z])(?=[A-Z])")
# scheme://user:password@host -> scheme://user:***@host
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]*@")
# Query parameters of a logged URL (Django logs a refused request with its full URL): an
# OpenID Connect callback carries the authorization code, others may carry tokens.
_QUERY_PARAMETER = re.compile(r"(?P<lead>[?&;](?P<name>[A-Za-z0-9_.-]+)=)(?P<value>[^&;#\s'\"<>]+)")
_SENSITIVE_PARAMETERS = {"code", "code_verifier", "nonce", "session_state", "otp_token"}
# libpq / ODBC style key=value secrets inside a DSN string.
_DSN_SECRET = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|secret|token)\s*=\s*)(?P<value>'[^']*'|\"[^\"]*\"|[^\s;]+)",
    re.IGNORECASE,
)


def is_sensitive_key(key: Any) -> bool:
    """Tell whether a mapping key names a secret."""
    if not isinstance(key, str):
        return False
    lowered = key.lower()
    if any(fragment in lowered for fragment in _SENSITIVE_FRAGMENTS):
        return True
    words = {w.lower() for w in _WORD_SPLIT.split(key) if w}
    return bool(words & _SENSITIVE_WORDS)


def redact_text(text: str) -> str:
    """Mask credentials embedded in URLs and DSN strings."""
    if "@" in text:
        text = _URL_USERINFO.sub(r"\g<scheme>\g<user>:" + REDACTED + "@", text)
    if "=" in text:
        text = _DSN_SECRET.sub(r"\g<key>" + REDACTED, text)
        text = _QUERY_PARAMETER.sub(_redact_parameter, text)
    return text


def _redact_parameter(match: re.Match) -> str:
    name = match["name"]
    if name.lower() in _SENSITIVE_PARAMETERS or is_sensitive_key(name):
        return match["lead"] + REDACTED
    return match[0]


def redact(value: Any, _depth: int = 0) -> Any:
    """Return ``value`` with sensitive keys and URL credentials masked, at any depth."""
    if _depth > 20:
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if is_sensitive_key(k) and v not in (None, "") else redact(v, _depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v, _depth + 1) for v in value]
    if isinstance(value, tuple | set | frozenset):
        return tuple(redact(v, _depth + 1) for v in value)
    if value is None or isinstance(value, bool | int | float):
        return value
    # Any other object is rendered by its repr (a request shows its URL): mask that text.
    return redact_text(repr(value))


def redact_processor(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor applying :func:`redact` to the whole event."""
    return redact(event_dict)


def _pre_chain() -> list[Any]:
    """Processors shared by structlog loggers and foreign (stdlib) records."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def build_formatter(*, use_json: bool) -> structlog.stdlib.ProcessorFormatter:
    """The formatter every handler uses: shared pre-chain, redaction, then rendering."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_pre_chain(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_processor,
            renderer,
        ],
    )


def configure(config: Mapping[str, Any] | None = None) -> None:
    """Configure stdlib logging and structlog; safe to call more than once."""
    config = config or {}
    level = str(config.get("level", "INFO")).upper()
    fmt = config.get("format", "auto")
    use_json = fmt == "json" or (fmt == "auto" and not sys.stdout.isatty())

    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "structlog": {"()": build_formatter, "use_json": use_json},
            },
            "handlers": {
                "stdout": {
                    "class": "logging.StreamHandler",
                    "stream": "ext://sys.stdout",
                    "formatter": "structlog",
                },
                # Warnings, errors and job events, also kept in the database (SPEC §8).
                "events": {"()": "whalefall.events.EventLogHandler"},
            },
            "root": {"handlers": ["stdout", "events"], "level": level},
            "loggers": {
                # Django's own handlers would print a second, unstructured copy.
                "django": {"handlers": [], "level": level, "propagate": True},
                # Our request log replaces the development server's access log.
                "django.server": {"handlers": [], "level": "CRITICAL", "propagate": True},
                "django.db.backends": {"level": "WARNING"},
                "celery": {"level": level},
                "kombu": {"level": "WARNING"},
                "amqp": {"level": "WARNING"},
            },
        }
    )
    structlog.configure(
        processors=[
            *_pre_chain(),
            structlog.stdlib.filter_by_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )

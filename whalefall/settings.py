"""Settings for WhaleFall: the only module that reads the environment.

``DJANGO_ENV`` selects one of three modes:

* ``development`` (default): everything has an embedded default (SQLite under ``.data/``,
  kombu's filesystem broker, local-memory cache), so ``make run`` needs no services;
* ``test``: PostgreSQL and Redis on localhost, fast password hashing;
* ``production``: refuses to start unless every required variable is present and valid.

Every variable is listed with a placeholder in ``.env.example``.
"""

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from inventory.engines import guard as _guard

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = BASE_DIR / ".data"

env = environ.Env()

# An optional .env file fills in variables the process environment does not set.
# WHALEFALL_ENV_FILE="" disables it (the settings tests rely on that).
_env_file = env.str("WHALEFALL_ENV_FILE", default=str(BASE_DIR / ".env"))
if _env_file and Path(_env_file).is_file():
    env.read_env(_env_file, overwrite=False)

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
if DJANGO_ENV not in {"development", "production", "test"}:
    raise ImproperlyConfigured(
        f"DJANGO_ENV must be development, production or test, not {DJANGO_ENV!r}."
    )
PRODUCTION = DJANGO_ENV == "production"
TESTING = DJANGO_ENV == "test"

# Components that fell back to their embedded default; logged once at start-up.
EMBEDDED_DEFAULTS: list[str] = []
# Log which embedded defaults are in use when the app starts; run_local turns it off in the
# processes it starts, having shown it once itself.
WHALEFALL_EMBEDDED_NOTICE = env.bool("WHALEFALL_EMBEDDED_NOTICE", default=True)
_problems: list[str] = []


PLACEHOLDER = "change-me"  # what .env.example puts where a secret belongs


def _required(name: str) -> str:
    """Return a variable that production requires, recording its absence, or the
    placeholder of ``.env.example`` left in it."""
    value = env.str(name, default="").strip()
    if not value:
        _problems.append(f"{name} is required in production")
    elif PLACEHOLDER in value:
        _problems.append(f"{name} still holds the placeholder from .env.example ({PLACEHOLDER})")
    return value


def _valid_fernet_keys(raw: str) -> list[str]:
    """Split WHALEFALL_CREDENTIAL_KEYS and record every key Fernet would reject."""
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            _problems.append(
                f"WHALEFALL_CREDENTIAL_KEYS: key #{position} is not a valid Fernet key "
                "(32 url-safe base64-encoded bytes)"
            )
    return keys


# --- Core -------------------------------------------------------------------------------

if PRODUCTION:
    SECRET_KEY = _required("SECRET_KEY")
    if SECRET_KEY and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5):
        _problems.append("SECRET_KEY must be at least 50 characters with 5 distinct ones")
    DEBUG = False
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
    if not ALLOWED_HOSTS:
        _problems.append("ALLOWED_HOSTS is required in production")
else:
    SECRET_KEY = env.str(
        "SECRET_KEY", default="insecure-development-key-never-use-in-production-0123456789"
    )
    DEBUG = env.bool("DEBUG", default=DJANGO_ENV == "development")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "whalefall.apps.WhaleFallAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "guardian",
    "auditlog",
    "import_export",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "whalefall",
    "whalefall.alerts",
    "inventory",
    "accounts",
    "capacity",
    "classification",
    "syncjobs",
]

MIDDLEWARE = [
    "whalefall.middleware.TrustedProxyMiddleware",
    "whalefall.middleware.RequestIDMiddleware",
    # Before the health probes, so that every response carries both policies.
    "csp.middleware.CSPMiddleware",
    "whalefall.middleware.PermissionsPolicyMiddleware",
    "whalefall.health.HealthCheckMiddleware",
    # Answers /metrics ahead of host validation and HTTPS redirects, as the probes are.
    "whalefall.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The signed-in user's chosen language, else LANGUAGE_CODE (not the browser's guess).
    "whalefall.language.UserLanguageMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "whalefall.mfa.SecondFactorMiddleware",
    "whalefall.middleware.BindUserMiddleware",
    "whalefall.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

if PRODUCTION:
    # Static files are collected only for production; runserver serves them otherwise.
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
        "whitenoise.middleware.WhiteNoiseMiddleware",
    )

ROOT_URLCONF = "whalefall.urls"
WSGI_APPLICATION = "whalefall.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------

_POSTGRES_SCHEMES = {"postgres", "postgresql", "pgsql", "postgis"}

if PRODUCTION:
    _database_url = _required("DATABASE_URL")
    if _database_url and urlsplit(_database_url).scheme not in _POSTGRES_SCHEMES:
        _problems.append("DATABASE_URL must be a PostgreSQL URL (postgres://…) in production")
elif TESTING:
    _database_url = env.str("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/whalefall")
else:
    _database_url = env.str("DATABASE_URL", default="")
    if not _database_url:
        EMBEDDED_DEFAULTS.append("database: SQLite at .data/whalefall.sqlite3")
        DATA_DIR.mkdir(mode=0o700, exist_ok=True)
        _database_url = f"sqlite:///{DATA_DIR / 'whalefall.sqlite3'}"

# Connections to PostgreSQL, per process (each gunicorn worker, each Celery worker child).
# By default a connection is kept WHALEFALL_DB_CONN_MAX_AGE seconds and checked before it is
# reused. WHALEFALL_DB_POOL_MAX > 0 uses Django's psycopg pool instead (needs psycopg[pool]):
# WHALEFALL_DB_POOL_MIN to WHALEFALL_DB_POOL_MAX connections, a request waiting at most
# WHALEFALL_DB_POOL_TIMEOUT seconds for one. WHALEFALL_DB_PGBOUNCER: the database is reached
# through PgBouncer in transaction pooling mode, where no state may outlive a transaction
# (no server-side cursors; WhaleFall takes only transaction-scoped advisory locks).
WHALEFALL_DB_CONN_MAX_AGE = env.int("WHALEFALL_DB_CONN_MAX_AGE", default=60)
WHALEFALL_DB_POOL_MIN = env.int("WHALEFALL_DB_POOL_MIN", default=0)
WHALEFALL_DB_POOL_MAX = env.int("WHALEFALL_DB_POOL_MAX", default=0)
WHALEFALL_DB_POOL_TIMEOUT = env.float("WHALEFALL_DB_POOL_TIMEOUT", default=10.0)
WHALEFALL_DB_PGBOUNCER = env.bool("WHALEFALL_DB_PGBOUNCER", default=False)
if WHALEFALL_DB_POOL_MAX and not 0 <= WHALEFALL_DB_POOL_MIN <= WHALEFALL_DB_POOL_MAX:
    _problems.append("WHALEFALL_DB_POOL_MIN must be from 0 to WHALEFALL_DB_POOL_MAX")


def _db_pool(min_size: int, max_size: int, timeout: float) -> dict:
    """The ``pool`` option of a PostgreSQL database (Django's psycopg pool)."""
    return {"min_size": min_size, "max_size": max_size, "timeout": timeout}


DATABASES = {"default": env.db_url_config(_database_url) if _database_url else {}}
_db = DATABASES["default"]
if _db.get("ENGINE") == "django.db.backends.postgresql":
    # JIT compile time dwarfs the short queries of an admin page.
    _db.setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
    _db["OPTIONS"].setdefault("connect_timeout", 5)
    if WHALEFALL_DB_POOL_MAX > 0:
        # A pooled connection goes back to the pool at the end of each request or task; with
        # health checks on, Django has the pool check each connection as it leaves the pool,
        # so one the server or a proxy closed meanwhile is replaced, never handed out.
        _db["CONN_MAX_AGE"] = 0
        _db["CONN_HEALTH_CHECKS"] = True
        _db["OPTIONS"]["pool"] = _db_pool(
            WHALEFALL_DB_POOL_MIN, WHALEFALL_DB_POOL_MAX, WHALEFALL_DB_POOL_TIMEOUT
        )
    else:
        _db.setdefault("CONN_MAX_AGE", WHALEFALL_DB_CONN_MAX_AGE)
        _db["CONN_HEALTH_CHECKS"] = True
    if WHALEFALL_DB_PGBOUNCER:
        _db["DISABLE_SERVER_SIDE_CURSORS"] = True
elif _db.get("ENGINE") == "django.db.backends.sqlite3":
    # Web, worker and beat share the file: WAL and immediate transactions avoid
    # "database is locked" between them.
    _db.setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )

# The application event log writes through a connection of its own, so an event logged in
# a transaction that then rolls back is kept (whalefall.events). Tests see the same
# database. SQLite has one writer at a time: an event waits at most a second for another
# process's transaction and is otherwise on stdout only.
if _db:
    DATABASES["events"] = {**_db, "TEST": {"MIRROR": "default"}}
    if _db.get("ENGINE") == "django.db.backends.postgresql":
        DATABASES["events"]["OPTIONS"] = {**_db["OPTIONS"], "connect_timeout": 2}
        if "pool" in _db["OPTIONS"]:
            # Events are written now and then: a small pool of their own.
            DATABASES["events"]["OPTIONS"]["pool"] = _db_pool(0, 2, 2.0)
    elif _db.get("ENGINE") == "django.db.backends.sqlite3":
        DATABASES["events"]["OPTIONS"] = {**_db["OPTIONS"], "timeout": 1}
        DATABASES["events"]["OPTIONS"].pop("transaction_mode", None)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Broker and cache -------------------------------------------------------------------

if PRODUCTION:
    REDIS_URL = _required("REDIS_URL")
    if REDIS_URL and urlsplit(REDIS_URL).scheme not in {"redis", "rediss"}:
        _problems.append("REDIS_URL must be a redis:// or rediss:// URL")
elif TESTING:
    REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/15")
else:
    REDIS_URL = env.str("REDIS_URL", default="")

BROKER_DIR = DATA_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # acks_late on Redis: a task not acknowledged within this window is redelivered,
        # so it must outlast the longest task.
        "visibility_timeout": env.int("WHALEFALL_TASK_TIME_LIMIT", default=3600) + 600,
        # A frozen Redis accepts connections and never answers: without these a publish
        # (a web request starting a run) waits forever.
        "socket_connect_timeout": env.float("WHALEFALL_BROKER_SOCKET_TIMEOUT", default=5.0),
        "socket_timeout": env.float("WHALEFALL_BROKER_SOCKET_TIMEOUT", default=5.0),
    }
else:
    EMBEDDED_DEFAULTS.append("broker: kombu filesystem transport at .data/broker")
    BROKER_DIR.mkdir(parents=True, mode=0o700, exist_ok=True)
    # The host is named only so that kombu does not warn about its absence on every start.
    CELERY_BROKER_URL = "filesystem://localhost//"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR),
        "data_folder_out": str(BROKER_DIR),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }

# Actions that start runs first check that the broker answers within this many seconds,
# and readiness gives its broker check the same time.
WHALEFALL_BROKER_CHECK_TIMEOUT = env.float("WHALEFALL_BROKER_CHECK_TIMEOUT", default=0.5)
# /health/ready answers within this many seconds whatever dependency hangs.
WHALEFALL_READY_TIMEOUT = env.float("WHALEFALL_READY_TIMEOUT", default=1.5)
# After a cache (Redis) error, the cache reads as empty for this many seconds before
# Redis is tried again (whalefall.cache).
WHALEFALL_CACHE_RETRY_SECONDS = env.float("WHALEFALL_CACHE_RETRY_SECONDS", default=10.0)
_cache_timeout = env.float("WHALEFALL_CACHE_SOCKET_TIMEOUT", default=0.5)

if PRODUCTION and REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "whalefall.cache.DegradingRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "whalefall",
            "OPTIONS": {"socket_timeout": _cache_timeout, "socket_connect_timeout": _cache_timeout},
        }
    }
else:
    if not TESTING:
        EMBEDDED_DEFAULTS.append("cache: local memory")
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery -----------------------------------------------------------------------------

TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_TZ = True

CELERY_TIMEZONE = TIME_ZONE
CELERY_ENABLE_UTC = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # outcomes live in Run rows, not a result backend
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("WHALEFALL_TASK_TIME_LIMIT", default=3600)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("WHALEFALL_TASK_SOFT_TIME_LIMIT", default=3300)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_SEND_TASK_EVENTS = False
# Celery's Django fixup closes a worker's database connections before and after every task
# unless they may be reused, so every task would open a new PostgreSQL session. Reused, the
# connections follow Django's own rules around each task as around a request (whalefall.celery:
# CONN_MAX_AGE, health checks, the pool); the fixup still renews them every 1 000 tasks.
CELERY_DB_REUSE_MAX = 1000
# django-celery-beat's database scheduler, sending only schedulable periodic tasks.
CELERY_BEAT_SCHEDULER = "syncjobs.beat:Scheduler"
DJANGO_CELERY_BEAT_TZ_AWARE = True

# Readiness fails when the beat heartbeat task has not run for this long.
WHALEFALL_HEARTBEAT_MAX_AGE = env.int("WHALEFALL_HEARTBEAT_MAX_AGE", default=180)

# --- Queues -----------------------------------------------------------------------------

# Account syncs (and the classification that follows them), capacity work and everything
# else each have a queue of their own, so that hours of capacity collection never delay an
# account sync: run a worker per queue (``celery -A whalefall worker -Q accounts``, ``-Q
# capacity``, ``-Q maintenance``; compose.yaml runs one service each). Every task is routed
# by name (whalefall.celery.route_task); a run's items go to the queue of the run's kind.
WHALEFALL_QUEUES = ("accounts", "capacity", "maintenance")
WHALEFALL_TASK_QUEUES = {
    "syncjobs.sync_accounts_all": "accounts",
    "syncjobs.sync_accounts_instance": "accounts",
    "syncjobs.classify_instances": "accounts",
    # Items sent without their run's kind (by an older release).
    "syncjobs.run_item": "accounts",
    "syncjobs.run_items_send": "accounts",
    "syncjobs.collect_capacity_all": "capacity",
    "syncjobs.collect_capacity_instances": "capacity",
    "syncjobs.aggregate_capacity": "capacity",
    "syncjobs.maintain_partitions": "capacity",
    "syncjobs.classification_statistics": "maintenance",
    "syncjobs.reap_runs": "maintenance",
    "syncjobs.purge_runs": "maintenance",
    "whalefall.beat_heartbeat": "maintenance",
    "whalefall.purge_events": "maintenance",
    "alerts.dispatch_events": "maintenance",
    "alerts.send_delivery": "maintenance",
    "alerts.send_digests": "maintenance",
    "alerts.purge": "maintenance",
    "celery.backend_cleanup": "maintenance",
}
# syncjobs.run_item, one task for the items of every kind of run.
WHALEFALL_RUN_KIND_QUEUES = {
    "accounts": "accounts",
    "classification": "accounts",
    "capacity": "capacity",
    "aggregation": "capacity",
    "maintenance": "maintenance",
}
CELERY_TASK_ROUTES = ("whalefall.celery.route_task",)
CELERY_TASK_DEFAULT_QUEUE = "maintenance"

# --- Runs -------------------------------------------------------------------------------

# The reaper fails a job run (aggregation, maintenance: no items) still running after
# this long; it must exceed the task time limit, so that only jobs of a worker that died
# qualify.
WHALEFALL_RUN_STALE_MINUTES = env.int("WHALEFALL_RUN_STALE_MINUTES", default=70)
# A running item writes a heartbeat every this many seconds while it works; the reaper
# fails it (worker stopped responding) and frees its instance when the heartbeat is older
# than the timeout, whatever the item's normal duration.
WHALEFALL_ITEM_HEARTBEAT_INTERVAL = env.int("WHALEFALL_ITEM_HEARTBEAT_INTERVAL", default=30)
WHALEFALL_ITEM_HEARTBEAT_TIMEOUT = env.int("WHALEFALL_ITEM_HEARTBEAT_TIMEOUT", default=180)
# The reaper fails a pending item whose task message was due this many seconds ago while
# the workers stayed idle for as long: its message never reached a worker.
WHALEFALL_PENDING_ITEM_TIMEOUT = env.int("WHALEFALL_PENDING_ITEM_TIMEOUT", default=300)
# Both timeouts read heartbeats: a live item must have beaten at least twice within each.
if not (
    0
    < 2 * WHALEFALL_ITEM_HEARTBEAT_INTERVAL
    <= min(WHALEFALL_ITEM_HEARTBEAT_TIMEOUT, WHALEFALL_PENDING_ITEM_TIMEOUT)
):
    raise ImproperlyConfigured(
        "WHALEFALL_ITEM_HEARTBEAT_TIMEOUT and WHALEFALL_PENDING_ITEM_TIMEOUT must each be at "
        "least twice WHALEFALL_ITEM_HEARTBEAT_INTERVAL, a positive number of seconds"
    )
# The reaper fails a run that no worker has started after this long.
WHALEFALL_RUN_QUEUED_MAX_MINUTES = env.int("WHALEFALL_RUN_QUEUED_MAX_MINUTES", default=360)
# Runs older than this are deleted by the retention job.
WHALEFALL_RUN_RETENTION_DAYS = env.int("WHALEFALL_RUN_RETENTION_DAYS", default=180)
# No purge, scheduled or run by hand, deletes runs younger than this.
WHALEFALL_RUN_RETENTION_MIN_DAYS = env.int("WHALEFALL_RUN_RETENTION_MIN_DAYS", default=30)
WHALEFALL_EVENT_RETENTION_DAYS = env.int("WHALEFALL_EVENT_RETENTION_DAYS", default=90)
# Retries of an item after a transient failure (instance unreachable, timeout, database
# connection lost), the first after this many seconds, doubling each time.
WHALEFALL_RUN_ITEM_RETRIES = env.int("WHALEFALL_RUN_ITEM_RETRIES", default=3)
WHALEFALL_RUN_RETRY_DELAY = env.int("WHALEFALL_RUN_RETRY_DELAY", default=30)

# --- Capacity ---------------------------------------------------------------------------

# Monthly partitions of the daily size tables created ahead of the current month.
WHALEFALL_CAPACITY_PARTITIONS_AHEAD = env.int("WHALEFALL_CAPACITY_PARTITIONS_AHEAD", default=3)
# Months of daily sizes kept; older whole months are dropped by the maintenance job.
WHALEFALL_CAPACITY_RETENTION_MONTHS = env.int("WHALEFALL_CAPACITY_RETENTION_MONTHS", default=24)

# --- Alerts -----------------------------------------------------------------------------

# Absolute address of WhaleFall as people reach it (e.g. https://whalefall.example.com):
# alert messages link to admin pages under it. Empty: messages carry site-relative links.
WHALEFALL_BASE_URL = env.str("WHALEFALL_BASE_URL", default="").rstrip("/")
# An event identical to one emitted within this many seconds (same kind, instance and
# deduplication key) is suppressed.
WHALEFALL_ALERT_DEDUP_SECONDS = env.int("WHALEFALL_ALERT_DEDUP_SECONDS", default=3600)
# More events than this for one rule and channel in one burst become one summary message.
WHALEFALL_ALERT_FLOOD_THRESHOLD = env.int("WHALEFALL_ALERT_FLOOD_THRESHOLD", default=10)
# Attempts of a delivery, the first retry after this many seconds, doubling each time.
WHALEFALL_ALERT_MAX_ATTEMPTS = env.int("WHALEFALL_ALERT_MAX_ATTEMPTS", default=5)
WHALEFALL_ALERT_RETRY_DELAY = env.int("WHALEFALL_ALERT_RETRY_DELAY", default=30)
# Seconds a webhook or chat service may take to answer.
WHALEFALL_ALERT_TIMEOUT = env.int("WHALEFALL_ALERT_TIMEOUT", default=10)
# Hosts alert webhooks may be posted to (the outbound guard's rules: CIDRs and host
# patterns); empty allows every public host.
WHALEFALL_ALERT_ALLOWED_TARGETS = env.list("WHALEFALL_ALERT_ALLOWED_TARGETS", default=[])
try:
    _guard.parse_rules(WHALEFALL_ALERT_ALLOWED_TARGETS)
except ValueError as _exc:
    _problems.append(f"WHALEFALL_ALERT_ALLOWED_TARGETS: {_exc}")

# Outgoing mail (alert e-mails): SMTP in production; development prints mails on stdout.
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends."
    + ("smtp.EmailBackend" if PRODUCTION else "console.EmailBackend"),
)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="whalefall@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    _problems.append("EMAIL_USE_TLS and EMAIL_USE_SSL are exclusive; set one of them")

# --- Credentials ------------------------------------------------------------------------

_credential_keys = env.str("WHALEFALL_CREDENTIAL_KEYS", default="")
if PRODUCTION:
    _credential_keys = _required("WHALEFALL_CREDENTIAL_KEYS")
WHALEFALL_CREDENTIAL_KEYS = _valid_fernet_keys(_credential_keys)
# Without configured keys (development, test) a key is generated once into this file.
WHALEFALL_CREDENTIAL_KEY_FILE = Path(
    env.str("WHALEFALL_CREDENTIAL_KEY_FILE", default=str(DATA_DIR / "credential.key"))
)
if not WHALEFALL_CREDENTIAL_KEYS and not PRODUCTION:
    EMBEDDED_DEFAULTS.append("credential key: generated into .data/credential.key")

# --- Authentication and permissions -----------------------------------------------------

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# No guardian anonymous user: anonymous visitors get nothing.
ANONYMOUS_USER_NAME = None
GUARDIAN_MONKEY_PATCH_USER = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LOGIN_URL = "admin:login"

# Login throttling (django-ratelimit): attempts per client address and per username.
WHALEFALL_LOGIN_RATE_IP = env.str("WHALEFALL_LOGIN_RATE_IP", default="20/5m")
WHALEFALL_LOGIN_RATE_USERNAME = env.str("WHALEFALL_LOGIN_RATE_USERNAME", default="5/5m")
RATELIMIT_IP_META_KEY = "whalefall.security.client_ip"
# What anonymous requests make WhaleFall log (failed logins, refused hosts, failing
# readiness probes) is stored at most once per kind and client address, and at most this
# many entries of one kind per window of this many seconds (whalefall.events).
WHALEFALL_ANONYMOUS_EVENTS_PER_WINDOW = env.int("WHALEFALL_ANONYMOUS_EVENTS_PER_WINDOW", default=50)
WHALEFALL_ANONYMOUS_EVENTS_WINDOW = env.int("WHALEFALL_ANONYMOUS_EVENTS_WINDOW", default=300)
if not (PRODUCTION and REDIS_URL):
    # The local-memory cache is per process: fine for one local web process.
    SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]

# Audit log (django-auditlog): entries carry the request id as their correlation id.
AUDITLOG_CID_GETTER = "whalefall.middleware.current_request_id"
AUDITLOG_INCLUDE_ALL_MODELS = False

# Instance import/export: importing needs the add permission, exporting the view one
# (the admins narrow both to the instances a user may see); imports are all-or-nothing.
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "add"
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "view"
IMPORT_EXPORT_USE_TRANSACTIONS = True
IMPORT_EXPORT_SKIP_ADMIN_LOG = False
# Limits of every import (instances as CSV/XLSX, rules as JSON): a larger file, or one with
# more rows (rules), is refused before it is read in full, with a clear message.
WHALEFALL_IMPORT_MAX_BYTES = env.int("WHALEFALL_IMPORT_MAX_BYTES", default=5 * 1024 * 1024)
WHALEFALL_IMPORT_MAX_ROWS = env.int("WHALEFALL_IMPORT_MAX_ROWS", default=10_000)

# --- Two-factor sign-in and single sign-on ----------------------------------------------

# Members of these groups must confirm an authenticator app (TOTP) before they can use the
# admin; superusers count as Administrators. Comma-separated group names.
WHALEFALL_MFA_REQUIRED_GROUPS = [
    name.strip()
    for name in env.list(
        "WHALEFALL_MFA_REQUIRED_GROUPS", default=["Administrators"] if PRODUCTION else []
    )
    if name.strip()
]
# The account name authenticator apps show next to the code.
OTP_TOTP_ISSUER = env.str("WHALEFALL_MFA_ISSUER", default="WhaleFall")
# django-otp's own admin pages never show a device's key or backup codes.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# OpenID Connect single sign-on (mozilla-django-oidc): off unless configured. Setting any of
# these variables turns it on, and then every one of them is required.
_OIDC_REQUIRED = {
    "WHALEFALL_OIDC_ISSUER": "",
    "WHALEFALL_OIDC_CLIENT_ID": "",
    "WHALEFALL_OIDC_CLIENT_SECRET": "",
    "WHALEFALL_OIDC_AUTHORIZATION_ENDPOINT": "",
    "WHALEFALL_OIDC_TOKEN_ENDPOINT": "",
    "WHALEFALL_OIDC_USERINFO_ENDPOINT": "",
    "WHALEFALL_OIDC_JWKS_ENDPOINT": "",
}
_OIDC_URLS = {name for name in _OIDC_REQUIRED if name.endswith(("_ISSUER", "_ENDPOINT"))}
_OIDC_SIGN_ALGOS = {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512"}
for _name in _OIDC_REQUIRED:
    _OIDC_REQUIRED[_name] = env.str(_name, default="").strip()
WHALEFALL_OIDC_ENABLED = any(_OIDC_REQUIRED.values())
WHALEFALL_OIDC_SIGN_ALGO = env.str("WHALEFALL_OIDC_SIGN_ALGO", default="RS256").strip()
_oidc_problems: list[str] = []
if WHALEFALL_OIDC_ENABLED:
    for _name, _value in _OIDC_REQUIRED.items():
        if not _value:
            _oidc_problems.append(f"{_name} is required when single sign-on is configured")
        elif _name in _OIDC_URLS and urlsplit(_value).scheme != "https" and PRODUCTION:
            _oidc_problems.append(f"{_name} must be an https:// URL")
    if WHALEFALL_OIDC_SIGN_ALGO not in _OIDC_SIGN_ALGOS:
        _oidc_problems.append(
            "WHALEFALL_OIDC_SIGN_ALGO must be one of " + ", ".join(sorted(_OIDC_SIGN_ALGOS))
        )


def _oidc_group_map(raw: str) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    """Parse ``directory-group=Role`` pairs, comma-separated (semicolon-separated when the
    value has a semicolon, for group names with commas such as LDAP DNs); a directory group
    may name several roles. Returns the mapping and the malformed entries."""
    mapping: dict[str, tuple[str, ...]] = {}
    problems = []
    separator = ";" if ";" in raw else ","
    for position, entry in enumerate(raw.split(separator), start=1):
        if not entry.strip():
            continue
        directory_group, equals, group = (part.strip() for part in entry.rpartition("="))
        if not (equals and directory_group and group):
            problems.append(
                f"WHALEFALL_OIDC_GROUP_MAP: entry #{position} is not directory-group=Role"
            )
            continue
        if group not in mapping.get(directory_group, ()):
            mapping[directory_group] = (*mapping.get(directory_group, ()), group)
    return mapping, problems


# The button on the login page reads "Sign in with <name>".
WHALEFALL_OIDC_PROVIDER_NAME = env.str("WHALEFALL_OIDC_PROVIDER_NAME", default="single sign-on")
# Claims naming the WhaleFall user (at first sign-in) and listing the directory groups.
WHALEFALL_OIDC_USERNAME_CLAIM = env.str(
    "WHALEFALL_OIDC_USERNAME_CLAIM", default="preferred_username"
)
WHALEFALL_OIDC_GROUPS_CLAIM = env.str("WHALEFALL_OIDC_GROUPS_CLAIM", default="groups")
# Directory groups -> WhaleFall groups, applied at every sign-in:
# "dba-team=DBAs,secops=Auditors".
WHALEFALL_OIDC_GROUP_MAP, _map_problems = _oidc_group_map(
    env.str("WHALEFALL_OIDC_GROUP_MAP", default="")
)
_oidc_problems.extend(_map_problems)
# Off: directory users follow the same two-factor rules as everyone. On only when the
# identity provider itself enforces multi-factor sign-in.
WHALEFALL_OIDC_SKIP_MFA = env.bool("WHALEFALL_OIDC_SKIP_MFA", default=False)

if _oidc_problems and not PRODUCTION:
    raise ImproperlyConfigured(
        "Single sign-on is misconfigured:\n  - " + "\n  - ".join(_oidc_problems)
    )
_problems.extend(_oidc_problems)

if WHALEFALL_OIDC_ENABLED:
    AUTHENTICATION_BACKENDS.append("whalefall.sso.OIDCBackend")
# mozilla-django-oidc's settings, derived from the ones above.
OIDC_OP_AUTHORIZATION_ENDPOINT = _OIDC_REQUIRED["WHALEFALL_OIDC_AUTHORIZATION_ENDPOINT"]
OIDC_OP_TOKEN_ENDPOINT = _OIDC_REQUIRED["WHALEFALL_OIDC_TOKEN_ENDPOINT"]
OIDC_OP_USER_ENDPOINT = _OIDC_REQUIRED["WHALEFALL_OIDC_USERINFO_ENDPOINT"]
OIDC_OP_JWKS_ENDPOINT = _OIDC_REQUIRED["WHALEFALL_OIDC_JWKS_ENDPOINT"]
OIDC_RP_CLIENT_ID = _OIDC_REQUIRED["WHALEFALL_OIDC_CLIENT_ID"]
OIDC_RP_CLIENT_SECRET = _OIDC_REQUIRED["WHALEFALL_OIDC_CLIENT_SECRET"]
WHALEFALL_OIDC_ISSUER = _OIDC_REQUIRED["WHALEFALL_OIDC_ISSUER"]
OIDC_RP_SIGN_ALGO = WHALEFALL_OIDC_SIGN_ALGO
OIDC_RP_SCOPES = " ".join(
    dict.fromkeys(["openid", *env.list("WHALEFALL_OIDC_SCOPES", default=["email", "profile"])])
).strip()
OIDC_USE_NONCE = True
OIDC_USE_PKCE = True
OIDC_TIMEOUT = env.int("WHALEFALL_OIDC_TIMEOUT", default=10)
OIDC_VERIFY_SSL = True
OIDC_STORE_ACCESS_TOKEN = False
OIDC_STORE_ID_TOKEN = False
OIDC_AUTHENTICATION_CALLBACK_URL = "sso-callback"
LOGIN_REDIRECT_URL = "admin:index"

# --- Security headers -------------------------------------------------------------------

WHALEFALL_HTTPS = env.bool("WHALEFALL_HTTPS", default=PRODUCTION)
# Addresses (CIDRs) of the reverse proxies in front of WhaleFall. Only requests from them
# may carry X-Forwarded-For/-Proto/-Host (whalefall.middleware.TrustedProxyMiddleware);
# the client is the right-most X-Forwarded-For address that is not one of them
# (whalefall.security.client_ip). Empty: the direct peer is the client.
WHALEFALL_TRUSTED_PROXIES = env.list("WHALEFALL_TRUSTED_PROXIES", default=[])
for _proxy in WHALEFALL_TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy.strip(), strict=False)
    except ValueError:
        _problems.append(f"WHALEFALL_TRUSTED_PROXIES: {_proxy!r} is not an address or CIDR")

# /metrics (whalefall.metrics): Prometheus scrapes it from one of these addresses (CIDRs;
# loopback by default outside production, none in production) or with the header
# "Authorization: Bearer <WHALEFALL_METRICS_TOKEN>"; neither set, it answers 404.
WHALEFALL_METRICS_ALLOWED = env.list(
    "WHALEFALL_METRICS_ALLOWED", default=[] if PRODUCTION else ["127.0.0.0/8", "::1/128"]
)
for _network in WHALEFALL_METRICS_ALLOWED:
    try:
        ipaddress.ip_network(_network.strip(), strict=False)
    except ValueError:
        _problems.append(f"WHALEFALL_METRICS_ALLOWED: {_network!r} is not an address or CIDR")
WHALEFALL_METRICS_TOKEN = env.str("WHALEFALL_METRICS_TOKEN", default="").strip()
if WHALEFALL_METRICS_TOKEN and (
    len(WHALEFALL_METRICS_TOKEN) < 32 or PLACEHOLDER in WHALEFALL_METRICS_TOKEN
):
    _problems.append("WHALEFALL_METRICS_TOKEN must be a random value of at least 32 characters")
# Where every process of one deployment (gunicorn workers, Celery workers) writes its
# metrics, so that /metrics adds them up: one directory that web and workers share, emptied
# before they start. Empty: each process reports only its own metrics.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
if PROMETHEUS_MULTIPROC_DIR:
    try:
        Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as _exc:
        _problems.append(f"PROMETHEUS_MULTIPROC_DIR cannot be created: {_exc.strerror}")
# Database and broker figures are read when /metrics is scraped, each query given at most
# this many seconds; alert deliveries are counted over the last WHALEFALL_METRICS_DELIVERY_HOURS.
WHALEFALL_METRICS_QUERY_TIMEOUT = env.float("WHALEFALL_METRICS_QUERY_TIMEOUT", default=2.0)
WHALEFALL_METRICS_DELIVERY_HOURS = env.int("WHALEFALL_METRICS_DELIVERY_HOURS", default=24)

X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env.int("WHALEFALL_SESSION_AGE", default=8 * 3600)
# Sessions live in the database only: the admin keeps working, and nobody is signed out,
# while Redis is down; and a session ended while Redis was unreachable cannot come back
# from a stale cached copy once it answers again (cached_db cannot delete what it cannot
# reach). The price is one primary-key lookup per request.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = WHALEFALL_HTTPS
CSRF_COOKIE_SECURE = WHALEFALL_HTTPS
SECURE_SSL_REDIRECT = WHALEFALL_HTTPS
if WHALEFALL_HTTPS:
    SECURE_HSTS_SECONDS = env.int("WHALEFALL_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("WHALEFALL_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("WHALEFALL_HSTS_PRELOAD", default=True)
    # Health probes come from the container runtime over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^health/"]
if WHALEFALL_TRUSTED_PROXIES:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True

# Content-Security-Policy (django-csp): scripts, styles, images and fonts from WhaleFall's
# own static files only — no inline script, no inline style, no event-handler attribute
# (templates load static files; per-object colours are set by whalefall/admin.js) —,
# no plugins, no <base>, no framing, forms posted to WhaleFall only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'none'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "manifest-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        **({"upgrade-insecure-requests": True} if WHALEFALL_HTTPS else {}),
    }
}
# Browser features no WhaleFall page uses, denied to every page and anything it embeds.
WHALEFALL_PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "encrypted-media",
        "fullscreen",
        "geolocation",
        "gyroscope",
        "hid",
        "idle-detection",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "picture-in-picture",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
)

# --- REST API v1 (whalefall.api) -------------------------------------------------------------

# Requests per token (per user for sessions) and period: second, minute, hour or day.
WHALEFALL_API_RATE = env.str("WHALEFALL_API_RATE", default="3000/min")
# A token's "last used" time and address are written at most this often.
WHALEFALL_API_TOKEN_TOUCH_SECONDS = env.int("WHALEFALL_API_TOKEN_TOUCH_SECONDS", default=60)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "whalefall.api.authentication.TokenAuthentication",
        "whalefall.api.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "whalefall.api.permissions.TokenScope",
        "whalefall.api.permissions.ModelPermissions",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "whalefall.api.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PAGINATION_CLASS": "whalefall.api.pagination.KeysetPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": ["whalefall.api.throttling.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"token": WHALEFALL_API_RATE},
    "EXCEPTION_HANDLER": "whalefall.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "WhaleFall API",
    "DESCRIPTION": (
        "The database estate for automation: instances, accounts and their privileges, the "
        "change feed, classifications, capacity and runs, with the admin's permissions and "
        "instance scope."
    ),
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.1.0",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Two choice sets share the field name "kind": name each after its model's choices.
    "ENUM_NAME_OVERRIDES": {
        "RunKindEnum": "syncjobs.models.RunKind",
        "AccountKindEnum": "accounts.models.AccountKind",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "whalefall.api.schema.add_error_responses",
    ],
}

# --- Internationalisation and static files ----------------------------------------------

LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="en")
USE_I18N = True
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
# Each app keeps its catalogue in <app>/locale; this one also receives the strings of the
# top-level templates/ when makemessages runs from the project root.
LOCALE_PATHS = [BASE_DIR / "whalefall" / "locale"]
# Dates and times written one way in every language, to the second with the zone named
# (whalefall.moments), in TIME_ZONE: nothing activates another zone.
FORMAT_MODULE_PATH = ["whalefall.formats"]

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("WHALEFALL_STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- Engines ----------------------------------------------------------------------------

WHALEFALL_CONNECT_TIMEOUT = env.int("WHALEFALL_CONNECT_TIMEOUT", default=10)
WHALEFALL_QUERY_TIMEOUT = env.int("WHALEFALL_QUERY_TIMEOUT", default=300)
# Outbound guard (inventory.engines.guard): CIDRs and host patterns WhaleFall may connect
# to; empty allows every host. Loopback, link-local and cloud metadata addresses are
# refused unless a CIDR inside them is listed here, or, for loopback, the switch below is
# on: on by default in development and test, whose instances are the local servers.
WHALEFALL_ALLOWED_TARGETS = env.list("WHALEFALL_ALLOWED_TARGETS", default=[])
try:
    _guard.parse_rules(WHALEFALL_ALLOWED_TARGETS)
except ValueError as _exc:
    _problems.append(f"WHALEFALL_ALLOWED_TARGETS: {_exc}")
WHALEFALL_ALLOW_LOOPBACK = env.bool("WHALEFALL_ALLOW_LOOPBACK", default=not PRODUCTION)

# System accounts never synced, as SQL LIKE patterns per engine (case-insensitive).
# WHALEFALL_EXTRA_SYSTEM_ACCOUNTS adds "engine:pattern" entries, comma-separated.
# MySQL/MariaDB entries are matched against user@host, e.g. "mysql:backup@localhost" ("%" is
# a LIKE wildcard, a backslash before it a literal %). The defaults are the servers' own
# locked accounts, exactly: anonymous accounts and accounts merely named mysql.* are listed.
# fmt: off
WHALEFALL_SYSTEM_ACCOUNTS = {
    "mysql": [
        "mariadb.sys@localhost", "mysql.sys@localhost", "mysql.session@localhost",
        "mysql.infoschema@localhost",
    ],
    "postgresql": ["pg\\_%", "rdsadmin", "rds\\_superuser", "rds\\_replication", "rds\\_password"],
    "sqlserver": [
        "public", "guest", "dbo", "sys", "INFORMATION_SCHEMA", "##%",
        "NT SERVICE\\\\%", "NT AUTHORITY\\\\%", "BUILTIN\\\\%", "NT %",
    ],
    "oracle": [
        "SYS", "SYSTEM", "SYS$%", "GSM%", "XDB%", "APEX%", "ORD%", "SPATIAL\\_%", "ANONYMOUS",
        "APPQOSSYS", "AUDSYS", "CTXSYS", "DBSFWUSER", "DBSNMP", "DIP", "DVF", "DVSYS",
        "FLOWS\\_FILES", "GGSYS", "LBACSYS", "MDDATA", "MDSYS", "OJVMSYS", "OLAPSYS",
        "OUTLN", "REMOTE\\_SCHEDULER\\_AGENT", "SI\\_INFORMTN\\_SCHEMA", "SYSBACKUP", "SYSDG",
        "SYSKM", "SYSRAC", "WMSYS", "OWBSYS", "OWBSYS\\_AUDIT", "MGMT\\_VIEW", "EXFSYS",
        "ORACLE\\_OCM", "XS$NULL", "PDBADMIN", "SCOTT", "HR", "OE", "PM", "IX", "SH", "BI",
        "DGPDB\\_INT", "GSMADMIN\\_INTERNAL", "GSMCATUSER", "GSMUSER", "GGSHAREDCAP",
    ],
}
# fmt: on
for _entry in env.list("WHALEFALL_EXTRA_SYSTEM_ACCOUNTS", default=[]):
    _engine, _, _pattern = _entry.partition(":")
    WHALEFALL_SYSTEM_ACCOUNTS.setdefault(_engine.strip(), []).append(_pattern.strip())

# System databases never inventoried (Oracle: tablespaces), as LIKE patterns per engine.
# Oracle's USERS tablespace holds users' data and is not one of them.
# WHALEFALL_EXTRA_SYSTEM_DATABASES adds "engine:pattern" entries, comma-separated.
# fmt: off
WHALEFALL_SYSTEM_DATABASES = {
    "mysql": [
        "information\\_schema", "performance\\_schema", "mysql", "sys", "tmp\\_%", "temp\\_%",
        "#sql%", "#mysql50#%",
    ],
    "postgresql": ["template0", "template1", "postgres", "pg\\_%", "rdsadmin"],
    "sqlserver": ["master", "model", "msdb", "tempdb", "ReportServer%"],
    "oracle": ["SYSTEM", "SYSAUX", "SYS%"],
}
# fmt: on
for _entry in env.list("WHALEFALL_EXTRA_SYSTEM_DATABASES", default=[]):
    _engine, _, _pattern = _entry.partition(":")
    WHALEFALL_SYSTEM_DATABASES.setdefault(_engine.strip(), []).append(_pattern.strip())

# --- Logging ----------------------------------------------------------------------------

LOGGING_CONFIG = "whalefall.logging.configure"
LOGGING = {
    "level": env.str("LOG_LEVEL", default="INFO").upper(),
    # auto: JSON lines unless stdout is a terminal.
    "format": env.str("LOG_FORMAT", default="auto"),
}

if _problems:
    raise ImproperlyConfigured(
        "WhaleFall cannot start in production:\n  - " + "\n  - ".join(_problems)
    )

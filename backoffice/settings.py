"""Settings, all from the environment.

With nothing set the app runs on its embedded defaults: SQLite (IMMEDIATE transactions,
WAL, busy timeout), Celery tasks run eagerly, email printed to the console. DEBUG is on
only for that embedded run; a production deployment sets SECRET_KEY, DATABASE_URL and
CELERY_BROKER_URL and gets DEBUG off. In production (DEBUG off, not under the test suite)
start-up fails without any of the three, and with a placeholder or short SECRET_KEY.
"""

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DATABASE_URL = os.environ.get("DATABASE_URL", "")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
# The embedded run: no database and no broker configured.
EMBEDDED = not DATABASE_URL and not CELERY_BROKER_URL

DEBUG = env_bool("DEBUG", EMBEDDED)
TESTING = env_bool("TESTING", False)
# Production defaults (HTTPS only, secure cookies, HSTS, JSON logs) whenever DEBUG is off,
# except under the test suite; each is still overridable from the environment.
PRODUCTION = not DEBUG and not TESTING

EMBEDDED_SECRET_KEY = "embedded-insecure-key-do-not-use-in-production"
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set outside the embedded run.")
    SECRET_KEY = EMBEDDED_SECRET_KEY
# A key copied from an example file or this repository, a short one, or one of too few
# distinct characters ('a' * 40) signs sessions anybody could forge.
_SECRET_KEY_PLACEHOLDERS = ("change-me", "change_me", "changeme", "replace", "django-insecure-")


def secret_key_problem(key: str) -> str | None:
    """Why a key may not sign anything in production (None: it may). The same bar as
    Django's check --deploy (security.W009: 50+ characters, 5+ distinct), less the
    length, which stays 32 so keys that started before keep working."""
    text = key.strip()
    if text == EMBEDDED_SECRET_KEY or text.lower().startswith(_SECRET_KEY_PLACEHOLDERS):
        return "is a placeholder or the embedded run's published key"
    if len(text) < 32:
        return "is shorter than 32 characters"
    if len(set(text)) < 5:
        return "has fewer than 5 distinct characters"
    return None


SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS")
if PRODUCTION:
    for _name, _key in [("SECRET_KEY", SECRET_KEY)] + [
        (f"SECRET_KEY_FALLBACKS[{i}]", k) for i, k in enumerate(SECRET_KEY_FALLBACKS)
    ]:
        if _problem := secret_key_problem(_key):
            raise ImproperlyConfigured(
                f"{_name} is a placeholder or shorter than 32 characters, or too plain "
                f"(it {_problem}); set it to 50 or more random characters, e.g. the output "
                "of python3 -c 'import secrets; print(secrets.token_urlsafe(64))'."
            )
# Production never falls back to the embedded run's SQLite file or in-process tasks.
if PRODUCTION and not DATABASE_URL:
    raise ImproperlyConfigured(
        "DATABASE_URL must be set in production (postgres://user:password@host:5432/name); "
        "the SQLite file is only for the embedded run."
    )
if PRODUCTION and not CELERY_BROKER_URL:
    raise ImproperlyConfigured(
        "CELERY_BROKER_URL must be set in production (redis://host:6379/0 or amqp://...); "
        "without a broker, tasks would run inside the web requests."
    )
# Rotation: the new key in SECRET_KEY, the old one(s) in SECRET_KEY_FALLBACKS (checked
# above like SECRET_KEY) until sessions have moved on.

# Django's test client's host only outside production (tests may still set it explicitly).
ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" + ("" if PRODUCTION else ",testserver")
)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

SHOP_NAME = os.environ.get("SHOP_NAME", "Demo Shop")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "csp",
    "rest_framework",
    "rest_framework_api_key",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "backoffice",
    "sales",
    "refunds",
]

MIDDLEWARE = [
    "backoffice.middleware.RequestIdMiddleware",
    "backoffice.middleware.ApiBodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "backoffice.middleware.AdminOddInputMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "backoffice.urls"
WSGI_APPLICATION = "backoffice.wsgi.application"

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

if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
            # A persistent connection is checked before reuse: a restarted PostgreSQL
            # (failover, upgrade) costs no failed request.
            conn_health_checks=True,
        )
    }
    _postgres = DATABASES["default"]["ENGINE"] in (
        "django.db.backends.postgresql",
        "django.contrib.gis.db.backends.postgis",
    )
    if PRODUCTION and not _postgres:
        raise ImproperlyConfigured(
            "DATABASE_URL must be a PostgreSQL URL in production (postgres://...): the "
            "refund rules rely on its constraints and row locks."
        )
    if _postgres:
        _db_options = DATABASES["default"].setdefault("OPTIONS", {})
        # libpq's connect_timeout (seconds): a database host that drops packets fails a
        # connection (and /readyz answers 503) within seconds, not after the kernel's TCP
        # timeout of minutes. A connect_timeout in DATABASE_URL's query string wins.
        _db_options.setdefault(
            "connect_timeout", int(os.environ.get("DB_CONNECT_TIMEOUT", "5"))
        )
        # Server-side binding with prepared statements: PostgreSQL parses and plans each
        # of the services' statements once per connection instead of once per execution.
        # Off behind a pooler in transaction mode (PgBouncer < 1.21), which can't keep them.
        if env_bool("DB_PREPARED_STATEMENTS", True):
            _db_options.update(
                server_side_binding=True,
                prepare_threshold=int(os.environ.get("DB_PREPARE_THRESHOLD", "2")),
            )
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            "OPTIONS": {
                # select_for_update() is a no-op on SQLite: IMMEDIATE transactions take
                # the write lock up front, so concurrent writers queue (busy timeout)
                # instead of racing; WAL lets readers go on meanwhile.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    # The suite creates thousands of users; PBKDF2 at its production cost made password
    # hashing most of the suite's time. Production keeps Django's default hashers.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Login protection (django-axes): after AXES_FAILURE_LIMIT failed logins the same
# username from the same address is locked out (429) for AXES_COOLOFF_MINUTES, even
# with the right password (0 = until `manage.py axes_reset`). Failures are counted in
# the database, so every web process sees them. AXES_LOCKOUT_PARAMETERS: "+" combines,
# "," gives alternatives, e.g. "username+ip_address" (default) or "ip_address,username".
AUTHENTICATION_BACKENDS = [
    "backoffice.security.AxesLoginBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = (
    timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "30")))
    if int(os.environ.get("AXES_COOLOFF_MINUTES", "30")) > 0
    else None
)
AXES_LOCKOUT_PARAMETERS = [
    [part.strip() for part in alternative.split("+")] if "+" in alternative else alternative.strip()
    for alternative in os.environ.get("AXES_LOCKOUT_PARAMETERS", "username+ip_address").split(",")
    if alternative.strip()
]
AXES_RESET_ON_SUCCESS = env_bool("AXES_RESET_ON_SUCCESS", True)
AXES_HTTP_RESPONSE_CODE = 429
# Behind N reverse proxies that append to X-Forwarded-For, the client's address is the
# entry the outermost trusted proxy appended; 0 = REMOTE_ADDR (no proxy). Production
# defaults to 1: the documented deployment (docs/production.md) is nginx in front, and
# with 0 every client would share nginx's address, so anyone could lock any account.
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "1" if PRODUCTION else "0"))
AXES_CLIENT_IP_CALLABLE = "backoffice.security.client_ip"

# Sessions on a shared back-office PC: gone when the browser closes, and after
# SESSION_COOKIE_AGE seconds (2 hours) without a request. Every request saves the
# session, which moves its expiry on: an idle timeout, not a cap on a working session.
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(2 * 3600)))
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = env_bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", True)

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            # Hashed names need `collectstatic` first: not for the embedded run or tests.
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if not PRODUCTION
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# HTTPS and browser hardening: on by default in production (DEBUG off), each one
# overridable. Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips any
# the client sent); SECURE_PROXY_SSL_HEADER="" when Django itself sees HTTPS.
_proxy_ssl_header = os.environ.get("SECURE_PROXY_SSL_HEADER", "HTTP_X_FORWARDED_PROTO,https")
SECURE_PROXY_SSL_HEADER = (
    tuple(_proxy_ssl_header.split(",", 1)) if "," in _proxy_ssl_header else None
)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
# Load balancers probe these over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000" if PRODUCTION else "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", PRODUCTION)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", PRODUCTION)
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = os.environ.get("SECURE_REFERRER_POLICY", "same-origin")
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# Content Security Policy (django-csp): everything from this origin, no inline script
# (a template that needs one gives it nonce="{{ request.csp_nonce }}"), fetch() only to
# this origin (the refund page's live preview), the chart library served locally.
# Inline styles stay allowed: the browsable API and the API docs use them.
# CSP_REPORT_ONLY=1 sends the policy as report-only; CSP_REPORT_URI collects reports.
_csp_directives: dict[str, Any] = {
    "default-src": [SELF],
    "script-src": [SELF, NONCE],
    "style-src": [SELF, "'unsafe-inline'"],
    "img-src": [SELF, "data:"],
    "font-src": [SELF, "data:"],
    "connect-src": [SELF],
    "worker-src": [SELF, "blob:"],
    "object-src": [NONE],
    "base-uri": [SELF],
    "form-action": [SELF],
    "frame-ancestors": [NONE],
}
if os.environ.get("CSP_REPORT_URI"):
    _csp_directives["report-uri"] = os.environ["CSP_REPORT_URI"]
if SECURE_SSL_REDIRECT:
    _csp_directives["upgrade-insecure-requests"] = True
if env_bool("CSP_REPORT_ONLY", False):
    CONTENT_SECURITY_POLICY = None
    CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": _csp_directives}
else:
    CONTENT_SECURITY_POLICY = {"DIRECTIVES": _csp_directives}

# Cache (API throttling counts, anything that must be shared by every process): Redis
# from CACHE_URL (redis://host:6379/1); in production without CACHE_URL, the Redis broker
# (CELERY_BROKER_URL, keys under CACHE_KEY_PREFIX). Production refuses a per-process cache:
# each gunicorn worker would count alone (2 workers let 88 of 120 calls through a
# 30/minute limit). Per-process memory outside production. A cache outage degrades
# (throttling lets requests through, logged `cache_unavailable`): see backoffice.health.
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
CACHE_URL = os.environ.get("CACHE_URL", "")
if not CACHE_URL and PRODUCTION and CELERY_BROKER_URL.startswith(_REDIS_SCHEMES):
    CACHE_URL = CELERY_BROKER_URL
# Seconds to connect to / wait for Redis: a cache that is down costs a request this much
# at most, and then is not tried again for CACHE_RETRY_SECONDS (backoffice.health).
CACHE_TIMEOUT = float(os.environ.get("CACHE_TIMEOUT", "0.25"))
CACHE_RETRY_SECONDS = float(os.environ.get("CACHE_RETRY_SECONDS", "5"))
if CACHE_URL.startswith(_REDIS_SCHEMES):
    DEFAULT_CACHE: dict[str, Any] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": CACHE_URL,
        "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "backoffice"),
        "OPTIONS": {"socket_connect_timeout": CACHE_TIMEOUT, "socket_timeout": CACHE_TIMEOUT},
    }
elif CACHE_URL in ("", "locmem://"):
    if PRODUCTION:
        raise ImproperlyConfigured(
            "CACHE_URL must be a shared Redis in production (redis://host:6379/1), or "
            "CELERY_BROKER_URL a Redis to share: with a per-process cache each web "
            "process counts API throttling alone."
        )
    DEFAULT_CACHE = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
else:
    raise ImproperlyConfigured("CACHE_URL must be redis://, rediss://, unix:// or locmem://")

# Email: console unless EMAIL_HOST is set.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "587"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "shop@example.com")
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)

# Celery: eager (in-process) only without a broker, which production refuses (above):
# the embedded run, the test suite without a broker (tests/conftest.py makes the test
# session eager anyway; tests/alerts start a real worker), a DEBUG run without Redis.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL and (EMBEDDED or TESTING or DEBUG)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_BROKER_URL = CELERY_BROKER_URL or "memory://"
CELERY_RESULT_BACKEND = None
# A task is acknowledged when it ends, so one held by a worker that dies (kill -9, OOM)
# is delivered again: by RabbitMQ as soon as the worker's connection drops; by Redis once
# the visibility timeout has passed. That timeout must exceed the longest a task may be
# held unacknowledged: its retry countdown (refunds.tasks.RETRY_MAX_COUNTDOWN, 120 s; an
# ETA task is held by the worker until it is due) plus its run time (the hard time limit,
# 120 s); 300 s leaves a margin, and a task of a dead worker runs again within ~5 minutes
# (plus the 10 s sweep below) instead of Redis's default hour. A redelivered task is
# harmless: settling and sending claim their rows first (refunds/services/settle.py,
# alerts.py). docs/production.md, "Faults".
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_TASK_TIME_LIMIT = int(os.environ.get("CELERY_TASK_TIME_LIMIT", "120"))
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 10
TASK_VISIBILITY_TIMEOUT = int(os.environ.get("TASK_VISIBILITY_TIMEOUT", "300"))
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "max_retries": 1,
    "visibility_timeout": TASK_VISIBILITY_TIMEOUT,
    # Redis: a worker looks for overdue unacknowledged tasks every 10 s (kombu's default
    # scans only every 10th time, ~100 s), so redelivery comes within the timeout + 10 s.
    "unacked_restore_interval": 10,
    "unacked_restore_throttle": 1,
}
# An alert claimed this long ago and still "sending" has an unknown outcome (its sender
# died): beat marks it so, for staff, instead of sending it again. Above EMAIL_TIMEOUT
# and the SMS backend's timeout.
ALERT_SEND_TIMEOUT = int(os.environ.get("ALERT_SEND_TIMEOUT", "300"))
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "30"))

# Payment gateways: name -> dotted path of a PaymentGateway class. The sandbox (a fake
# that "refunds" anything) only outside production, unless SANDBOX_ENABLED=1 (a demo).
SANDBOX_ENABLED = env_bool("SANDBOX_ENABLED", not PRODUCTION)
PAYMENT_GATEWAYS = {"manual": "refunds.gateways.ManualGateway"}
if SANDBOX_ENABLED:
    PAYMENT_GATEWAYS["sandbox"] = "refunds.gateways.SandboxGateway"
# The sandbox refuses any refund of exactly this amount (minor units), for demos and tests.
SANDBOX_FAIL_AMOUNT = int(os.environ.get("SANDBOX_FAIL_AMOUNT", "13"))
# For every sandbox payment: "" (normal), "fail", "timeout-once" or "unavailable".
SANDBOX_MODE = os.environ.get("SANDBOX_MODE", "")

# "sandbox": the sandbox gateway's ledger (one answer per idempotency key), a database
# table so every web and worker process shares it (created by refunds' migration 0002).
CACHES = {
    "default": DEFAULT_CACHE,
    "sandbox": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "sandbox_gateway_ledger",
        "TIMEOUT": None,
        "OPTIONS": {"MAX_ENTRIES": 10_000_000},
    },
}

# Customer alerts: email through EMAIL_BACKEND (filebased writes to EMAIL_FILE_PATH);
# SMS through backoffice.sms: console (default), locmem, file, or twilio.
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(BASE_DIR / "sent_email"))
SMS_BACKEND = os.environ.get("SMS_BACKEND", "backoffice.sms.ConsoleBackend")
SMS_FILE_PATH = os.environ.get("SMS_FILE_PATH", str(BASE_DIR / "sent_sms"))
SMS_FROM = os.environ.get("SMS_FROM", "")
TWILIO_ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "")

IDEMPOTENCY_KEY_TTL_DAYS = int(os.environ.get("IDEMPOTENCY_KEY_TTL_DAYS", "7"))

# REST API (/api/v2/): API keys or a staff session, one JSON envelope, per-key throttling.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "backoffice.api.auth.ApiKeyAuthentication",
        "backoffice.api.auth.StaffSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["backoffice.api.permissions.HasRequiredPermissions"],
    "DEFAULT_RENDERER_CLASSES": [
        "backoffice.api.renderers.EnvelopeRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["backoffice.api.parsers.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["backoffice.api.throttling.ApiKeyRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "backoffice.api.pagination.EnvelopePagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "backoffice.api.schema.EnvelopeAutoSchema",
    "EXCEPTION_HANDLER": "backoffice.api.exceptions.envelope_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "COERCE_DECIMAL_TO_STRING": True,
}
# Requests per key (or staff user); "N/second|minute|hour|day". Counted in the cache.
# "address": requests with no key or a bad key, per client address (TRUSTED_PROXY_COUNT).
API_THROTTLE_RATES = {
    "key": os.environ.get("API_THROTTLE_RATE", "600/minute"),
    "bulk": os.environ.get("API_BULK_THROTTLE_RATE", "30/minute"),
    "address": os.environ.get("API_ADDRESS_THROTTLE_RATE", "120/minute"),
}
API_PAGE_SIZE = int(os.environ.get("API_PAGE_SIZE", "50"))
API_MAX_PAGE_SIZE = int(os.environ.get("API_MAX_PAGE_SIZE", "500"))
# last_used_at is written at most once per this many seconds per key.
API_KEY_LAST_USED_RESOLUTION = int(os.environ.get("API_KEY_LAST_USED_RESOLUTION", "60"))
# How long a request waits for another one holding the same Idempotency-Key (then 409).
IDEMPOTENCY_LOCK_TIMEOUT_MS = int(os.environ.get("IDEMPOTENCY_LOCK_TIMEOUT_MS", "10000"))
BULK_IMPORT_MAX_RECORDS = 1000
# The largest request body read (bigger: 413 in the envelope on the API). 10 MiB, as the
# proxy's client_max_body_size: a batch of 1000 records with every text field at its
# cap fits.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("DATA_UPLOAD_MAX_MEMORY_SIZE",
                                                 str(10 * 1024 * 1024)))
SPECTACULAR_SETTINGS = {
    "TITLE": "Backoffice API",
    "DESCRIPTION": (
        "Sales, cancels and refunds. Authenticate with `Authorization: Bearer <key>` or "
        "`X-API-KEY: <key>`. Every response is one JSON envelope: "
        "`{status, message, data}` or `{status, error, code, errors}`. "
        "Money is an integer in minor units."
    ),
    "VERSION": "2",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "backoffice.api.schema.strict_request_bodies",
    ],
    "SCHEMA_PATH_PREFIX": "/api/v2",
    "ENUM_NAME_OVERRIDES": {
        "RefundReasonEnum": "refunds.models.RefundReason",
        "CancelReasonEnum": "sales.models.CancelReason",
        # Two `type` fields: the native refund's and the Nuweb dialect's (which cancels too).
        "TypeEnum": ["refund", "balance_refund"],
        "NuwebRefundTypeEnum": ["refund", "balance_refund", "cancellation"],
    },
}

# Logs: one JSON object per line on stderr in production (LOG_FORMAT=json), readable
# text in the embedded run; both carry the request id (backoffice/logging.py).
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "backoffice.logging.RequestContextFilter"}},
    "formatters": {
        "json": {"()": "backoffice.logging.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_context"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # Django's own loggers go through the root handler only: each error once.
    "loggers": {"django": {"handlers": [], "level": LOG_LEVEL, "propagate": True}},
}
# The Celery worker keeps this logging setup instead of installing its own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

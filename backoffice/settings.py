"""Settings, all from the environment.

With nothing set the app runs on its embedded defaults: SQLite (IMMEDIATE transactions,
WAL, busy timeout), Celery tasks run eagerly, email printed to the console. DEBUG is on
only for that embedded run; a production deployment sets SECRET_KEY, DATABASE_URL and
CELERY_BROKER_URL and gets DEBUG off.
"""

import os
from pathlib import Path

import dj_database_url
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

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not (DEBUG or EMBEDDED or env_bool("TESTING", False)):
        raise ImproperlyConfigured("SECRET_KEY must be set outside the embedded run.")
    SECRET_KEY = "embedded-insecure-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

SHOP_NAME = os.environ.get("SHOP_NAME", "Demo Shop")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
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
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
            DATABASE_URL, conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60"))
        )
    }
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

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

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

# Celery: eager (in-process) when no broker is configured.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_BROKER_URL = CELERY_BROKER_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 1}

# Payment gateways: name -> dotted path of a PaymentGateway class.
PAYMENT_GATEWAYS = {
    "manual": "refunds.gateways.ManualGateway",
    "sandbox": "refunds.gateways.SandboxGateway",
}
# The sandbox refuses any refund of exactly this amount (minor units), for demos and tests.
SANDBOX_FAIL_AMOUNT = int(os.environ.get("SANDBOX_FAIL_AMOUNT", "13"))
# For every sandbox payment: "" (normal), "fail", "timeout-once" or "unavailable".
SANDBOX_MODE = os.environ.get("SANDBOX_MODE", "")

# "sandbox": the sandbox gateway's ledger (one answer per idempotency key), a database
# table so every web and worker process shares it (created by refunds' migration 0002).
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
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
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["backoffice.api.throttling.ApiKeyRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "backoffice.api.pagination.EnvelopePagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "backoffice.api.schema.EnvelopeAutoSchema",
    "EXCEPTION_HANDLER": "backoffice.api.exceptions.envelope_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "COERCE_DECIMAL_TO_STRING": True,
}
# Requests per key (or staff user); "N/second|minute|hour|day". Counted in the cache.
API_THROTTLE_RATES = {
    "key": os.environ.get("API_THROTTLE_RATE", "600/minute"),
    "bulk": os.environ.get("API_BULK_THROTTLE_RATE", "30/minute"),
}
API_PAGE_SIZE = int(os.environ.get("API_PAGE_SIZE", "50"))
API_MAX_PAGE_SIZE = int(os.environ.get("API_MAX_PAGE_SIZE", "500"))
# last_used_at is written at most once per this many seconds per key.
API_KEY_LAST_USED_RESOLUTION = int(os.environ.get("API_KEY_LAST_USED_RESOLUTION", "60"))
# How long a request waits for another one holding the same Idempotency-Key (then 409).
IDEMPOTENCY_LOCK_TIMEOUT_MS = int(os.environ.get("IDEMPOTENCY_LOCK_TIMEOUT_MS", "10000"))
BULK_IMPORT_MAX_RECORDS = 1000
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
    "SCHEMA_PATH_PREFIX": "/api/v2",
    "ENUM_NAME_OVERRIDES": {
        "RefundReasonEnum": "refunds.models.RefundReason",
        "CancelReasonEnum": "sales.models.CancelReason",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

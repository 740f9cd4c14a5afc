"""`manage.py check --deploy` is clean under production settings, and those settings are
what a deployment behind a TLS-terminating proxy needs."""

from __future__ import annotations

import json

import pytest

from .conftest import BASE_DIR, production_env, run_manage, run_python

PRINT_SETTINGS = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({
    "DEBUG": s.DEBUG,
    "SECURE_SSL_REDIRECT": s.SECURE_SSL_REDIRECT,
    "SECURE_PROXY_SSL_HEADER": s.SECURE_PROXY_SSL_HEADER,
    "SECURE_HSTS_SECONDS": s.SECURE_HSTS_SECONDS,
    "SESSION_COOKIE_SECURE": s.SESSION_COOKIE_SECURE,
    "CSRF_COOKIE_SECURE": s.CSRF_COOKIE_SECURE,
    "SESSION_COOKIE_AGE": s.SESSION_COOKIE_AGE,
    "SESSION_EXPIRE_AT_BROWSER_CLOSE": s.SESSION_EXPIRE_AT_BROWSER_CLOSE,
    "SESSION_SAVE_EVERY_REQUEST": s.SESSION_SAVE_EVERY_REQUEST,
    "ALLOWED_HOSTS": s.ALLOWED_HOSTS,
    "CELERY_TASK_ALWAYS_EAGER": s.CELERY_TASK_ALWAYS_EAGER,
    "DB_ENGINE": s.DATABASES["default"]["ENGINE"],
    "DB_OPTIONS": s.DATABASES["default"].get("OPTIONS", {}),
    "X_FRAME_OPTIONS": s.X_FRAME_OPTIONS,
    "SECURE_CONTENT_TYPE_NOSNIFF": s.SECURE_CONTENT_TYPE_NOSNIFF,
    "SECURE_REFERRER_POLICY": s.SECURE_REFERRER_POLICY,
    "STATICFILES": s.STORAGES["staticfiles"]["BACKEND"],
    "CACHE": s.CACHES["default"]["BACKEND"],
    "CACHE_LOCATION": s.CACHES["default"].get("LOCATION"),
    "AXES_FAILURE_LIMIT": s.AXES_FAILURE_LIMIT,
    "AXES_LOCKOUT_PARAMETERS": s.AXES_LOCKOUT_PARAMETERS,
    "CSP": bool(s.CONTENT_SECURITY_POLICY),
    "LOG_FORMAT": s.LOGGING["handlers"]["console"]["formatter"],
}))
"""


def _settings(**env_overrides: str) -> dict:
    result = run_python(PRINT_SETTINGS, env=production_env(**env_overrides))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_check_deploy_passes_under_production_settings():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_fails_with_a_weak_secret_key():
    """The check really runs: a key good enough to start with (32+ characters, 5+
    distinct), but under Django's 50, is reported (security.W009)."""
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING",
        env=production_env(SECRET_KEY="abcde" * 8),
    )
    assert result.returncode != 0
    assert "security.W009" in result.stdout + result.stderr


@pytest.mark.parametrize(
    "key",
    [
        "change-me-to-50-or-more-random-characters-from-a-password-generator",
        "changeme" + "x" * 50,
        "CHANGE-ME" + "x" * 50,
        "replace-with-a-real-secret-key-of-fifty-characters-at-least",
        "django-insecure-" + "x" * 50,
        "only-31-characters-long-0123456",
    ],
)
def test_production_refuses_a_placeholder_or_short_secret_key(key):
    result = run_manage("check", env=production_env(SECRET_KEY=key))
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is a placeholder or shorter than 32" in result.stderr


@pytest.mark.parametrize(
    ("missing", "sentence"),
    [
        ("DATABASE_URL", "DATABASE_URL must be set in production"),
        ("CELERY_BROKER_URL", "CELERY_BROKER_URL must be set in production"),
    ],
)
def test_production_refuses_to_start_without_a_database_or_a_broker(missing, sentence):
    for value in ("", None):  # set empty, or not set at all
        result = run_manage("check", env=production_env(**{missing: value}))
        assert result.returncode != 0
        assert f"ImproperlyConfigured: {sentence}" in result.stderr


def test_production_refuses_sqlite():
    result = run_manage("check", env=production_env(DATABASE_URL="sqlite:////tmp/x.sqlite3"))
    assert result.returncode != 0
    assert "DATABASE_URL must be a PostgreSQL URL in production" in result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    result = run_manage("check", env=production_env(SECRET_KEY=""))
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_settings_are_hardened_by_default():
    s = _settings(CACHE_URL=None)
    assert s["DEBUG"] is False
    assert s["SECURE_SSL_REDIRECT"] is True
    assert s["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert s["SECURE_HSTS_SECONDS"] >= 31536000
    assert s["SESSION_COOKIE_SECURE"] is True
    assert s["CSRF_COOKIE_SECURE"] is True
    assert s["SESSION_COOKIE_AGE"] == 2 * 3600  # idle: every request moves it on
    assert s["SESSION_SAVE_EVERY_REQUEST"] is True
    assert s["SESSION_EXPIRE_AT_BROWSER_CLOSE"] is True
    assert s["X_FRAME_OPTIONS"] == "DENY"
    assert s["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert s["SECURE_REFERRER_POLICY"] == "same-origin"
    assert s["STATICFILES"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    assert s["CSP"] is True
    assert s["LOG_FORMAT"] == "json"
    # The broker's Redis, shared by every process (no CACHE_URL in production_env).
    assert s["CACHE"] == "django.core.cache.backends.redis.RedisCache"
    assert s["CACHE_LOCATION"] == "redis://127.0.0.1:6379/0"
    assert s["CELERY_TASK_ALWAYS_EAGER"] is False
    assert s["DB_ENGINE"] == "django.db.backends.postgresql"
    assert s["DB_OPTIONS"] == {
        "connect_timeout": 5,
        "server_side_binding": True,
        "prepare_threshold": 2,
    }


def test_production_allowed_hosts_default_leaves_out_the_test_client_host():
    assert _settings(ALLOWED_HOSTS=None)["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1", "[::1]"]
    assert "testserver" in _settings(ALLOWED_HOSTS="testserver")["ALLOWED_HOSTS"]


def test_database_connect_timeout_and_prepared_statements_from_the_environment():
    s = _settings(DB_CONNECT_TIMEOUT="2", DB_PREPARED_STATEMENTS="0")
    assert s["DB_OPTIONS"] == {"connect_timeout": 2}
    s = _settings(DATABASE_URL="postgres://postgres@127.0.0.1:5432/x?connect_timeout=9")
    assert s["DB_OPTIONS"]["connect_timeout"] == 9  # the URL's own value wins
    assert s["DB_OPTIONS"]["server_side_binding"] is True


def test_tasks_run_eagerly_only_without_a_broker_outside_production(tmp_path):
    """The embedded run and a test run without a broker run tasks in-process; with a
    broker (a test run starting a real worker, production) they are queued."""
    sqlite = str(tmp_path / "db.sqlite3")
    embedded = _settings(
        DEBUG=None, DATABASE_URL=None, CELERY_BROKER_URL=None, SECRET_KEY=None,
        ALLOWED_HOSTS=None, SQLITE_PATH=sqlite,
    )
    assert embedded["DEBUG"] is True
    assert embedded["CELERY_TASK_ALWAYS_EAGER"] is True
    assert "testserver" in embedded["ALLOWED_HOSTS"]
    assert _settings(TESTING="1", CELERY_BROKER_URL=None)["CELERY_TASK_ALWAYS_EAGER"] is True
    assert _settings(TESTING="1")["CELERY_TASK_ALWAYS_EAGER"] is False


def test_the_example_environment_file_has_no_secret_key_to_copy():
    """deploy/systemd/backoffice.env.example leaves SECRET_KEY empty (with how to make
    one): start-up fails until the operator sets a real one, and then passes
    `check --deploy`."""
    text = (BASE_DIR / "deploy/systemd/backoffice.env.example").read_text()
    example = dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert example["SECRET_KEY"] == ""
    assert "secrets.token_urlsafe" in text
    result = run_manage("check", env=production_env(**example))
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
    example.pop("SECRET_KEY")  # production_env's: a generated one
    result = run_manage("check", "--deploy", "--fail-level", "WARNING",
                        env=production_env(**example))
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_settings_are_overridable_from_the_environment():
    s = _settings(
        SECURE_SSL_REDIRECT="0",
        SECURE_PROXY_SSL_HEADER="",
        SECURE_HSTS_SECONDS="3600",
        SESSION_COOKIE_AGE="1800",
        AXES_FAILURE_LIMIT="10",
        AXES_LOCKOUT_PARAMETERS="ip_address,username",
        CACHE_URL="redis://127.0.0.1:6379/3",
        LOG_FORMAT="text",
    )
    assert s["SECURE_SSL_REDIRECT"] is False
    assert s["SECURE_PROXY_SSL_HEADER"] is None
    assert s["SECURE_HSTS_SECONDS"] == 3600
    assert s["SESSION_COOKIE_AGE"] == 1800
    assert s["AXES_FAILURE_LIMIT"] == 10
    assert s["AXES_LOCKOUT_PARAMETERS"] == ["ip_address", "username"]
    assert s["CACHE"] == "django.core.cache.backends.redis.RedisCache"
    assert s["CACHE_LOCATION"] == "redis://127.0.0.1:6379/3"
    assert s["LOG_FORMAT"] == "text"


def test_an_unknown_cache_url_is_refused():
    result = run_manage("check", env=production_env(CACHE_URL="memcached://x:11211"))
    assert result.returncode != 0
    assert "CACHE_URL" in result.stderr


def test_collectstatic_writes_hashed_names_for_whitenoise(collected_static):
    """The production storage (whitenoise, manifest) collects every static file, with
    hashed names: a CSS url() to a missing file, for one, would fail here."""
    manifest = json.loads((collected_static / "staticfiles.json").read_text())["paths"]
    chart = manifest["backoffice/vendor/chartjs/chart.umd.min.js"]
    assert chart != "backoffice/vendor/chartjs/chart.umd.min.js"
    assert (collected_static / chart).exists()
    assert (collected_static / (chart + ".gz")).exists()
    assert "admin/js/core.js" in manifest

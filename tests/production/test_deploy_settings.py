"""`manage.py check --deploy` is clean under production settings, and those settings are
what a deployment behind a TLS-terminating proxy needs."""

from __future__ import annotations

import json

from .conftest import production_env, run_manage, run_python

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
    """The check really runs: a short key is reported (security.W009)."""
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING", env=production_env(SECRET_KEY="short")
    )
    assert result.returncode != 0
    assert "security.W009" in result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    result = run_manage("check", env=production_env(SECRET_KEY=""))
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_settings_are_hardened_by_default():
    s = _settings()
    assert s["DEBUG"] is False
    assert s["SECURE_SSL_REDIRECT"] is True
    assert s["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert s["SECURE_HSTS_SECONDS"] >= 31536000
    assert s["SESSION_COOKIE_SECURE"] is True
    assert s["CSRF_COOKIE_SECURE"] is True
    assert s["SESSION_COOKIE_AGE"] == 8 * 3600
    assert s["SESSION_EXPIRE_AT_BROWSER_CLOSE"] is True
    assert s["X_FRAME_OPTIONS"] == "DENY"
    assert s["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert s["SECURE_REFERRER_POLICY"] == "same-origin"
    assert s["STATICFILES"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    assert s["CSP"] is True
    assert s["LOG_FORMAT"] == "json"
    assert s["CACHE"] == "django.core.cache.backends.locmem.LocMemCache"


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

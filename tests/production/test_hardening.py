"""Safe production defaults: refused keys, a shared cache, the sandbox off, the proxy of
the documented deployment trusted, no query strings in the access log."""

from __future__ import annotations

import json

import pytest

from .conftest import production_env, run_manage, run_python

PRINT = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({
    "CACHE": s.CACHES["default"]["BACKEND"],
    "CACHE_LOCATION": s.CACHES["default"].get("LOCATION"),
    "TRUSTED_PROXY_COUNT": s.TRUSTED_PROXY_COUNT,
    "GATEWAYS": sorted(s.PAYMENT_GATEWAYS),
}))
"""


def _settings(**env: str) -> dict:
    result = run_python(PRINT, env=production_env(**env))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _refused(**env: str) -> str:
    result = run_manage("check", env=production_env(**env))
    assert result.returncode != 0, result.stdout
    return result.stderr


@pytest.mark.parametrize("key", [
    "embedded-insecure-key-do-not-use-in-production",  # the repository's own
    "a" * 40,                                           # too few distinct characters
    "abab" * 12,
])
def test_production_refuses_a_weak_or_published_secret_key(key):
    assert "SECRET_KEY" in _refused(SECRET_KEY=key)


def test_production_refuses_a_weak_key_among_the_fallbacks():
    stderr = _refused(SECRET_KEY_FALLBACKS="Zx8v-Q2pLr9sT4wY6uB1nM3kJ7hG5fD0cVbNmQwE," + "a" * 40)
    assert "SECRET_KEY_FALLBACKS[1]" in stderr


def test_production_needs_a_shared_cache():
    # An AMQP broker gives no Redis to share: CACHE_URL is then required.
    assert "CACHE_URL" in _refused(CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:5672//",
                                   CACHE_URL=None)
    assert "CACHE_URL" in _refused(CACHE_URL="locmem://")
    s = _settings(CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:5672//",
                  CACHE_URL="redis://127.0.0.1:6379/5")
    assert s["CACHE"] == "django.core.cache.backends.redis.RedisCache"
    assert s["CACHE_LOCATION"] == "redis://127.0.0.1:6379/5"
    assert _settings(CACHE_URL=None)["CACHE_LOCATION"] == "redis://127.0.0.1:6379/0"


def test_production_trusts_the_documented_proxy_by_default():
    assert _settings()["TRUSTED_PROXY_COUNT"] == 1
    assert _settings(TRUSTED_PROXY_COUNT="0")["TRUSTED_PROXY_COUNT"] == 0


def test_the_sandbox_gateway_is_off_in_production_unless_enabled():
    assert _settings()["GATEWAYS"] == ["manual"]
    assert _settings(SANDBOX_ENABLED="1")["GATEWAYS"] == ["manual", "sandbox"]

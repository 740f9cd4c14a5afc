"""Helpers for the production-readiness tests: run manage.py or a snippet of Django in a
fresh process with a production-like environment."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
# Variables of the test run that must not leak into a "production" process.
_SCRUBBED = (
    "TESTING",
    "DEBUG",
    "DJANGO_SETTINGS_MODULE",
    "CACHE_URL",
    "CELERY_BROKER_URL",
    "DJANGO_ALLOW_ASYNC_UNSAFE",  # set by the browser tests; never in production
)


def production_env(**overrides: str) -> dict[str, str]:
    """The environment of a production deployment (no TESTING, DEBUG off)."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env.update(
        DJANGO_SETTINGS_MODULE="backoffice.settings",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(64),
        DATABASE_URL=os.environ.get(
            "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/backoffice"
        ),
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
        # The suite's cache database (production needs a shared cache; without CACHE_URL
        # it would take the broker's Redis database).
        CACHE_URL="redis://127.0.0.1:6379/12",
        ALLOWED_HOSTS="shop.example.com",
        CSRF_TRUSTED_ORIGINS="https://shop.example.com",
        PYTHONPATH=str(BASE_DIR),
    )
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def run_manage(*args: str, env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_python(
    code: str, *, env: dict[str, str], timeout: int = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def prod_env():
    return production_env


@pytest.fixture(scope="session")
def collected_static(tmp_path_factory):
    """STATIC_ROOT filled by `collectstatic` with the production storage (hashed names)."""
    root = tmp_path_factory.mktemp("static")
    result = run_manage("collectstatic", "--noinput", env=production_env(STATIC_ROOT=str(root)))
    assert result.returncode == 0, result.stdout + result.stderr
    return root

"""/healthz (process up) and /readyz (database reachable; cache and broker reported)."""

from __future__ import annotations

import json
import socket
import time

import pytest

from .conftest import closed_port, production_env, run_python

GET_READYZ = """
import json, django
django.setup()
from django.test import Client
response = Client().get("/readyz")
print(json.dumps({"status": response.status_code, "body": response.json()}))
"""


def _readyz_in_a_process(**env: str) -> dict:
    env = production_env(TESTING="1", DEBUG="0", ALLOWED_HOSTS="testserver", **env)
    result = run_python(GET_READYZ, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_healthz_answers_200_without_touching_anything(client):
    # No database access allowed in this test: /healthz must not need one.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_answers_200_when_database_and_broker_are_up(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True


def test_readyz_answers_503_naming_the_database_when_it_is_unreachable():
    # A broker URL as in production (nothing listens there either): the database is
    # checked first and named, whatever the broker does.
    result = _readyz_in_a_process(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{closed_port()}/nowhere",
        CELERY_BROKER_URL=f"redis://127.0.0.1:{closed_port()}/0",
    )
    assert result["status"] == 503
    assert result["body"]["status"] == "unavailable"
    assert result["body"]["failed"][0] == "database"
    assert result["body"]["checks"]["database"]["ok"] is False
    assert "connection" in result["body"]["checks"]["database"]["error"].lower()


@pytest.fixture
def silent_database():
    """A TCP port that accepts connections and never answers, like a database host
    whose replies are dropped: without a connect timeout, libpq would wait for ever."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"postgres://postgres@127.0.0.1:{sock.getsockname()[1]}/silent"


def test_readyz_answers_503_within_the_connect_timeout_when_the_database_is_silent(
    silent_database,
):
    started = time.monotonic()
    result = _readyz_in_a_process(
        DATABASE_URL=silent_database, DB_CONNECT_TIMEOUT="2", CELERY_BROKER_URL=""
    )
    elapsed = time.monotonic() - started
    assert result["status"] == 503
    assert result["body"]["failed"] == ["database"]
    assert "timeout" in result["body"]["checks"]["database"]["error"].lower()
    assert elapsed < 15, f"/readyz took {elapsed:.1f}s"


def test_readyz_names_the_broker_when_it_is_unreachable_and_stays_in_the_pool(tmp_path):
    """Without the broker the API still serves (alerts and gateway calls wait in
    PostgreSQL for beat): degraded, named apart from the cache, never a 503."""
    port = closed_port()
    result = _readyz_in_a_process(
        DATABASE_URL="",
        SQLITE_PATH=str(tmp_path / "db.sqlite3"),
        CELERY_BROKER_URL=f"redis://127.0.0.1:{port}/0",
    )
    assert result["status"] == 200
    assert result["body"]["status"] == "degraded"
    assert result["body"]["degraded"] == ["broker"]
    assert result["body"]["checks"]["broker"]["ok"] is False
    assert result["body"]["checks"]["cache"]["ok"] is True
    assert result["body"]["checks"]["database"]["ok"] is True


def test_health_urls_are_not_redirected_to_https(client, settings):
    """A load balancer probes them over plain HTTP, even with SECURE_SSL_REDIRECT on."""
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    assert client.get("/admin/login/").status_code == 301

"""gunicorn's config from the repo serves the app behind a proxy: workers from the CPU
count, JSON access log lines carrying the request id, HTTPS enforced unless the proxy
says the request came in over HTTPS."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .conftest import BASE_DIR, closed_port, production_env


def _load_config(**env: str) -> dict:
    code = (
        "import json, runpy; c = runpy.run_path('gunicorn.conf.py'); "
        "print(json.dumps({k: c[k] for k in ('workers', 'timeout', 'graceful_timeout', "
        "'bind', 'accesslog')} | {'logger_class': c['logger_class'].__name__}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env=production_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_gunicorn_workers_follow_the_cpu_count_and_the_environment():
    config = _load_config(WEB_CONCURRENCY="")
    assert config["workers"] == min(multiprocessing.cpu_count() * 2 + 1, 12)
    assert config["timeout"] == 30
    assert config["graceful_timeout"] == 30
    assert config["logger_class"] == "JsonLogger"
    assert config["accesslog"] == "-"
    config = _load_config(WEB_CONCURRENCY="3", WEB_TIMEOUT="60", PORT="9000")
    assert config["workers"] == 3
    assert config["timeout"] == 60
    assert config["bind"] == "127.0.0.1:9000"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _get(url: str, headers: dict[str, str]):
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, headers=headers)
    try:
        return opener.open(request, timeout=10)
    except urllib.error.HTTPError as error:
        return error


@pytest.fixture
def gunicorn_server(tmp_path, collected_static):
    port = closed_port()
    log_path = tmp_path / "gunicorn.log"
    env = production_env(
        ALLOWED_HOSTS="127.0.0.1",
        WEB_CONCURRENCY="1",
        PORT=str(port),
        # Production refuses to start without both; nothing served here touches them.
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{closed_port()}/unused",
        CELERY_BROKER_URL=f"redis://127.0.0.1:{closed_port()}/0",
        STATIC_ROOT=str(collected_static),
    )
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "backoffice.wsgi",
                "--config",
                "gunicorn.conf.py",
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    urllib.request.urlopen(f"{base}/healthz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.2)
            else:
                pytest.fail("gunicorn did not start:\n" + log_path.read_text())
            yield base, log_path
        finally:
            process.terminate()
            process.wait(timeout=30)


def test_gunicorn_serves_behind_a_proxy_with_json_access_logs(gunicorn_server, collected_static):
    base, log_path = gunicorn_server
    response = _get(f"{base}/healthz", {"X-Request-ID": "req-gunicorn-1"})
    assert response.status == 200
    assert response.headers["X-Request-ID"] == "req-gunicorn-1"

    # Plain HTTP is sent to HTTPS ...
    response = _get(f"{base}/admin/login/", {})
    assert response.status == 301
    assert response.headers["Location"].startswith("https://127.0.0.1")
    # ... unless the proxy in front says the client used HTTPS.
    response = _get(f"{base}/admin/login/", {"X-Forwarded-Proto": "https"})
    assert response.status == 200
    assert "max-age=31536000" in response.headers["Strict-Transport-Security"]
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "Secure" in response.headers["Set-Cookie"]
    # Static files come from whitenoise, under their hashed names, cached for ever.
    css = _get(f"{base}/static/admin/css/base.css", {"X-Forwarded-Proto": "https"})
    assert css.status == 200
    manifest = json.loads((collected_static / "staticfiles.json").read_text())["paths"]
    hashed = manifest["admin/css/base.css"]
    cached = _get(f"{base}/static/{hashed}", {"X-Forwarded-Proto": "https"})
    assert cached.status == 200
    assert "immutable" in cached.headers["Cache-Control"]

    time.sleep(0.5)
    entries = [json.loads(line) for line in log_path.read_text().splitlines() if line]
    access = [e for e in entries if e["logger"] == "gunicorn.access"]
    healthz = [e for e in access if e.get("request_id") == "req-gunicorn-1"]
    assert healthz and healthz[0]["status"] == 200 and healthz[0]["path"] == "/healthz"
    assert all(e["request_id"] for e in access)


def test_process_definitions_exist_for_web_worker_and_beat():
    procfile = (BASE_DIR / "Procfile").read_text()
    for process in ("web:", "worker:", "beat:"):
        assert process in procfile
    units = {p.name: p.read_text() for p in (BASE_DIR / "deploy/systemd").glob("*.service")}
    assert set(units) == {
        "backoffice-web.service",
        "backoffice-worker.service",
        "backoffice-beat.service",
    }
    assert "gunicorn backoffice.wsgi --config gunicorn.conf.py" in units["backoffice-web.service"]
    assert "celery -A backoffice worker" in units["backoffice-worker.service"]
    assert "celery -A backoffice beat" in units["backoffice-beat.service"]

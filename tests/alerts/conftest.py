"""Fixtures for alerts and gateways: eager Celery in-process, or a REAL worker on Redis.

`celery_worker` starts `celery -A backoffice worker --pool=solo` in a subprocess, on a
dedicated Redis database and a queue of its own, and on this session's PostgreSQL test
database, with email written by the filebased backend and SMS by the file backend into
temporary directories. The test process publishes to the same broker, not eagerly.
Without PostgreSQL or Redis these tests skip locally and FAIL when CI is set.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection

from backoffice import sms
from backoffice.celery import app

BROKER_DB = 5  # Redis database of these tests; each session also has a queue of its own.
DEAD_BROKER_URL = "redis://127.0.0.1:1/5"  # nothing listens on port 1
ROOT = Path(settings.BASE_DIR)


def need(what: str) -> None:
    """Skip locally, fail in CI: a missing service must never pass unnoticed there."""
    message = f"needs {what}"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must not skip it.")
    pytest.skip(message)


def wait_for(predicate: Callable[[], object], *, timeout: float = 30, what: str = "",
             interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


def _set_producer(url: str | None, eager: bool, queue: str) -> None:
    """Point this process's Celery app at another broker (forget its pooled connections;
    kombu keeps one pool per broker URL, so switching back finds the first one again)."""
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None
    # Producers connect with broker_write_url; the CELERY_BROKER_URL environment
    # variable would win over broker_url, not over this.
    app.conf.broker_write_url = url
    app.conf.task_always_eager = eager
    app.conf.task_default_queue = queue  # read by the router on every send


@contextmanager
def celery_producer(url: str, *, eager: bool = False, queue: str | None = None
                    ) -> Iterator[None]:
    old = (app.conf.get("broker_write_url"), app.conf.task_always_eager,
           app.conf.task_default_queue)
    _set_producer(url, eager, queue or app.conf.task_default_queue)
    try:
        yield
    finally:
        _set_producer(*old)


@pytest.fixture
def eager():
    """Tasks run in-process (the embedded default), whatever the environment says."""
    old = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = old


@pytest.fixture(autouse=True)
def sms_outbox(settings):
    settings.SMS_BACKEND = "backoffice.sms.LocmemBackend"
    sms.outbox.clear()
    return sms.outbox


@pytest.fixture(scope="session")
def redis_broker_url() -> str:
    url = os.environ.get("ALERTS_TEST_BROKER_URL", "")
    if not url:
        configured = urlsplit(os.environ.get("CELERY_BROKER_URL", ""))
        netloc = configured.netloc if configured.scheme == "redis" else "127.0.0.1:6379"
        url = urlunsplit(("redis", netloc, f"/{BROKER_DB}", "", ""))
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        need(f"Redis at {url} ({exc})")
    return url


def _database_url() -> str:
    db = connection.settings_dict
    user = quote(db.get("USER") or "", safe="")
    password = quote(str(db.get("PASSWORD") or ""), safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or "5432"
    return f"postgres://{auth}{host}:{port}/{quote(db['NAME'], safe='')}"


@dataclass
class Worker:
    process: subprocess.Popen
    name: str
    queue: str
    log: Path
    mail_dir: Path
    sms_dir: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def emails(self) -> list[str]:
        """Every message the worker sent, one string each (filebased backend)."""
        messages = []
        for path in sorted(self.mail_dir.glob("*.log")):
            for chunk in path.read_text(errors="replace").split("-" * 79):
                if "X-Customer-Alert:" in chunk:
                    messages.append(chunk)
        return messages

    def alert_ids_emailed(self) -> list[int]:
        return [int(m) for e in self.emails()
                for m in re.findall(r"^X-Customer-Alert: (\d+)", e, re.M)]

    def sms(self) -> list[str]:
        path = self.sms_dir / "sms.jsonl"
        return path.read_text().splitlines() if path.exists() else []

    def task_done(self, task_id: str) -> bool:
        return bool(re.search(rf"\[{re.escape(task_id)}\] (succeeded|raised|retry)",
                              self.output()))

    def clear(self) -> None:
        for path in [*self.mail_dir.glob("*"), *self.sms_dir.glob("*")]:
            path.unlink()

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"the worker died:\n{self.output()[-4000:]}")


@contextmanager
def running_worker(base: Path, broker_url: str, *, queue: str | None = None,
                   **env_extra: str) -> Iterator[Worker]:
    """A real `celery worker --pool=solo` in a subprocess, on a queue of its own (another
    run of these tests on the same Redis neither takes our messages nor gives us its
    own; or `queue`, to take over a dead worker's) and on this session's test database,
    with email and SMS written to files under `base`. `env_extra` overrides its
    environment (another email backend, say)."""
    if connection.vendor != "postgresql":
        need("PostgreSQL (set DATABASE_URL=postgres://...)")
    mail_dir, sms_dir = base / "mail", base / "sms"
    mail_dir.mkdir(parents=True)
    sms_dir.mkdir()
    queue = queue or f"alerts-test-{uuid.uuid4().hex[:12]}"
    name = f"{queue}-{uuid.uuid4().hex[:6]}@localhost"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "backoffice.settings",
        "TESTING": "1",
        "DATABASE_URL": _database_url(),  # this session's test database
        "CONN_MAX_AGE": "0",
        "CELERY_BROKER_URL": broker_url,
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
        "SMS_BACKEND": "backoffice.sms.FileBackend",
        "SMS_FILE_PATH": str(sms_dir),
        "SHOP_NAME": settings.SHOP_NAME,
        "SANDBOX_MODE": "",
        "ALERTS_TEST_QUEUE": queue,
        **env_extra,
    }
    log = base / "worker.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tests.alerts.worker_app", "worker",
             "--pool=solo",
             "--loglevel=INFO", "-n", name, "-Q", queue, "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    worker = Worker(process=process, name=name, queue=queue, log=log, mail_dir=mail_dir,
                    sms_dir=sms_dir)
    try:
        def ready() -> bool:
            worker.check_alive()
            return " ready." in worker.output()

        wait_for(ready, timeout=60, what="the Celery worker to be ready")
        yield worker
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # warm shutdown: finishes the task at hand
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture(scope="module")
def celery_worker(django_db_setup, django_db_blocker, redis_broker_url, tmp_path_factory):
    with running_worker(tmp_path_factory.mktemp("celery_worker"), redis_broker_url) as worker:
        yield worker


@pytest.fixture
def worker(celery_worker, redis_broker_url, transactional_db):
    """The module's worker, with empty mail and SMS directories for this test; this
    process publishes to its broker, never eagerly (whatever another fixture set)."""
    celery_worker.check_alive()
    celery_worker.clear()
    with celery_producer(redis_broker_url, eager=False, queue=celery_worker.queue):
        yield celery_worker
    celery_worker.check_alive()

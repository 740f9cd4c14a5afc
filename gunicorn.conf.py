"""gunicorn settings for the web process: `gunicorn backoffice.wsgi` reads this file.

Every value can be set from the environment (docs/production.md):

    WEB_CONCURRENCY   worker processes       (default: 2 x CPU cores + 1, at most 12)
    WEB_THREADS       threads per worker     (default: 1)
    PORT / BIND       where to listen        (default: 127.0.0.1:8000, behind the proxy)
    WEB_TIMEOUT       seconds a request may take before its worker is restarted (30)
    FORWARDED_ALLOW_IPS  proxies whose X-Forwarded-* headers are trusted (127.0.0.1,::1)

Logs go to stderr as JSON, one object per line: the access log carries the request id
that Django put on the response (X-Request-ID), so a request's access line and its
application lines can be joined. It never carries a query string (searches name
customers' emails and phones): the path only, and the referer without its query.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
from typing import Any

from gunicorn.glogging import Logger

from backoffice.logging import JsonFormatter


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


# Processes: CPU-bound Python + database round trips: the usual 2n+1, capped so a big
# machine doesn't open more database connections than PostgreSQL allows.
workers = _int("WEB_CONCURRENCY", min(multiprocessing.cpu_count() * 2 + 1, 12))
threads = _int("WEB_THREADS", 1)
bind = os.environ.get("BIND") or f"{os.environ.get('HOST', '127.0.0.1')}:{_int('PORT', 8000)}"

# Timeouts: a request longer than this is killed (refunds to gateways run in Celery, not
# here); workers get as long again to finish in-flight requests on restart/deploy.
timeout = _int("WEB_TIMEOUT", 30)
graceful_timeout = _int("WEB_GRACEFUL_TIMEOUT", 30)
keepalive = _int("WEB_KEEPALIVE", 5)
# Recycle workers now and then (bounded memory growth), not all at once.
max_requests = _int("WEB_MAX_REQUESTS", 1000)
max_requests_jitter = _int("WEB_MAX_REQUESTS_JITTER", 100)
# Heartbeat files in memory, not on a possibly slow disk.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# Header lines up to 32 KB (gunicorn's default, 8190 bytes, answers a bigger one with its
# own HTML page): the app refuses odd headers itself, in the API's JSON envelope.
limit_request_field_size = _int("WEB_LIMIT_REQUEST_FIELD_SIZE", 32768)

# Behind a reverse proxy on the same host by default.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
proxy_allow_ips = forwarded_allow_ips

accesslog = os.environ.get("WEB_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()


def _without_query(url: str | None) -> str | None:
    """A URL without its query string: searches carry customers' emails and phones, and
    the access log is no place for them (nor is the query string of the request itself,
    which the access log leaves out)."""
    return url.split("?", 1)[0] if url else url


class JsonLogger(Logger):
    """gunicorn's logger, writing its error log and access log as JSON lines."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(JsonFormatter())

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        headers = {name.lower(): value for name, value in resp.headers}
        duration_ms = request_time.seconds * 1000 + request_time.microseconds / 1000
        path = environ.get("PATH_INFO", "")
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "level": "INFO",
            "logger": "gunicorn.access",
            "message": f"{environ.get('REQUEST_METHOD')} {path} {status}",
            "request_id": headers.get("x-request-id"),
            "method": environ.get("REQUEST_METHOD"),
            "path": path,
            "status": int(status),
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(duration_ms, 1),
            "remote_addr": environ.get("REMOTE_ADDR"),
            "forwarded_for": environ.get("HTTP_X_FORWARDED_FOR"),
            "user_agent": environ.get("HTTP_USER_AGENT"),
            "referer": _without_query(environ.get("HTTP_REFERER")),
            "pid": os.getpid(),
        }
        try:
            self.access_log.info(json.dumps(entry, ensure_ascii=False, default=str))
        except Exception:  # noqa: BLE001 - never let logging break a response
            logging.getLogger("gunicorn.error").exception("could not write the access log")


logger_class = JsonLogger

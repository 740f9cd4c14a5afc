"""Structured logs: one JSON object per line, with the request id on every line.

`RequestIdMiddleware` (backoffice/middleware.py) puts the request's id into a context
variable; `RequestContextFilter` copies it (and anything bound with `log_context`) onto
every record; `JsonFormatter` writes the record as one line of JSON. Values passed with
``extra=`` (``refund_id``, ``sale_id``, …) become fields of that line:

    log.info("refund settled", extra={"refund_id": refund.pk, "sale_id": refund.sale_id})

or, for every line inside a block:

    with log_context(refund_id=refund.pk, sale_id=sale.pk):
        ...

or, for every line of the rest of the request (the API key's authentication binds
``api_key`` and ``user`` this way):

    bind_log_context(api_key=key.prefix, user=user.get_username())

The middleware gives each request a fresh context and resets it when the request ends,
so nothing bound in one request is carried into the next one on the same thread.

A record logged with ``exc_info`` carries its traceback in the ``exc`` field of the
same line, so an error is one line with its traceback, logged once.

Celery: the request id of the web request that queued a task travels in the task's
headers and is put back in context while the task runs, so a refund's lines in the
worker carry the same id as the request that made it; ``task_id`` is added too.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
_context_var: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "log_context", default=None
)

# Attributes every LogRecord has: anything else on a record came from `extra=`.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("n", logging.INFO, "p", 1, "m", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "request_id",
}
# Extras that are objects, not values: never dumped into a log line.
_SKIPPED_EXTRAS = frozenset({"request", "server_time", "socket"})


def new_request_id() -> str:
    return uuid.uuid4().hex


def get_request_id() -> str | None:
    return request_id_var.get()


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every log line written inside the block (this thread/task)."""
    token = _context_var.set({**(_context_var.get() or {}), **fields})
    try:
        yield
    finally:
        _context_var.reset(token)


def bind_log_context(**fields: Any) -> None:
    """Add ``fields`` to every log line written from here to the end of the request
    (outside a request: until the context is reset, so call it inside one)."""
    _context_var.set({**(_context_var.get() or {}), **fields})


def get_log_context() -> dict[str, Any]:
    """What is bound now (a copy)."""
    return dict(_context_var.get() or {})


@contextlib.contextmanager
def request_log_context() -> Iterator[None]:
    """A fresh, empty log context for one request, reset when it ends."""
    token = _context_var.set({})
    try:
        yield
    finally:
        _context_var.reset(token)


def _current_task_id() -> str | None:
    try:
        from celery import current_task
    except ImportError:  # pragma: no cover - celery is a dependency
        return None
    task = current_task
    if not task:
        return None
    task_id = getattr(task.request, "id", None)
    return str(task_id) if task_id else None


class RequestContextFilter(logging.Filter):
    """Put the request id, the bound log context and the Celery task id on each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            # Django logs some responses after the middleware has returned: the request
            # it passes along still carries its id.
            record.request_id = request_id_var.get() or getattr(
                getattr(record, "request", None), "request_id", None
            )
        context = _context_var.get()
        if context is None:
            # After the request's middleware returned (Django logs a 4xx/5xx response
            # there): what the request had bound, kept on it by RequestIdMiddleware.
            context = getattr(getattr(record, "request", None), "log_context", None) or {}
        for key, value in context.items():
            if not hasattr(record, key):
                setattr(record, key, value)
        if not hasattr(record, "task_id"):
            task_id = _current_task_id()
            if task_id:
                record.task_id = task_id
        return True


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        for key, value in record.__dict__.items():
            if key in _RECORD_ATTRS or key in _SKIPPED_EXTRAS or key.startswith("_"):
                continue
            entry[key] = _jsonable(value)
        request = record.__dict__.get("request")
        if request is not None and "path" not in entry:
            entry["path"] = getattr(request, "path", None)
            entry["method"] = getattr(request, "method", None)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _connect_celery_signals() -> None:
    """Carry the request id from the web process into the tasks it queues."""
    try:
        from celery import signals
    except ImportError:  # pragma: no cover - celery is a dependency
        return

    tokens: dict[str, contextvars.Token[str | None]] = {}

    def add_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
        request_id = request_id_var.get()
        if headers is not None and request_id:
            headers.setdefault("request_id", request_id)

    def restore_request_id(task_id: str | None = None, task: Any = None, **_: Any) -> None:
        request = getattr(task, "request", None)
        request_id = getattr(request, "request_id", None) or (
            getattr(request, "headers", None) or {}
        ).get("request_id")
        if task_id and request_id:  # eager tasks already run inside the request's context
            tokens[task_id] = request_id_var.set(str(request_id))

    def clear_request_id(task_id: str | None = None, **_: Any) -> None:
        token = tokens.pop(task_id or "", None)
        if token is not None:
            request_id_var.reset(token)

    signals.before_task_publish.connect(add_request_id, weak=False)
    signals.task_prerun.connect(restore_request_id, weak=False)
    signals.task_postrun.connect(clear_request_id, weak=False)


_connect_celery_signals()

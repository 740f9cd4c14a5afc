"""Structured logs: one JSON object per line, the request id on every line (and echoed in
the X-Request-ID header), refund and sale ids when given, a traceback logged once."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.http import HttpResponse
from django.urls import path
from rest_framework.views import APIView

from backoffice.logging import (
    JsonFormatter,
    RequestContextFilter,
    log_context,
    request_id_var,
)

log = logging.getLogger("tests.production")


def _logging_view(request):
    log.info("inside the view", extra={"refund_id": 7, "sale_id": 3})
    return HttpResponse("ok")


def _failing_view(request):
    raise RuntimeError("boom")


class _FailingApiView(APIView):
    """An API view (the envelope's exception handler) that fails unexpectedly."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []

    def get(self, request):
        raise RuntimeError("api boom")


urlpatterns = [
    path("log/", _logging_view),
    path("fail/", _failing_view),
    path("api/fail/", _FailingApiView.as_view()),
]


@pytest.fixture
def json_lines():
    """The root logger's output through the production formatter and filter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def test_the_configured_console_handler_writes_json_with_the_request_id():
    handlers = [h for h in logging.getLogger().handlers if h.get_name() == "console"]
    assert handlers, "LOGGING's console handler is installed on the root logger"
    assert any(isinstance(f, RequestContextFilter) for f in handlers[0].filters)


@pytest.mark.urls(__name__)
def test_request_id_from_the_header_is_echoed_and_on_every_log_line(client, json_lines):
    response = client.get("/log/", HTTP_X_REQUEST_ID="req-abc.123")
    assert response["X-Request-ID"] == "req-abc.123"
    lines = [line for line in json_lines() if line["logger"] == "tests.production"]
    assert lines == [
        {
            "ts": lines[0]["ts"],
            "level": "INFO",
            "logger": "tests.production",
            "message": "inside the view",
            "request_id": "req-abc.123",
            "refund_id": 7,
            "sale_id": 3,
        }
    ]


@pytest.mark.urls(__name__)
def test_a_request_id_is_made_when_none_is_sent(client, json_lines):
    response = client.get("/log/")
    request_id = response["X-Request-ID"]
    assert len(request_id) == 32
    assert [
        line["request_id"] for line in json_lines() if line["logger"] == "tests.production"
    ] == [request_id]
    assert client.get("/log/")["X-Request-ID"] != request_id


@pytest.mark.urls(__name__)
def test_a_forged_request_id_is_replaced(client):
    response = client.get("/log/", HTTP_X_REQUEST_ID='x" \n{"level": "ERROR"}')
    assert response["X-Request-ID"] != 'x" \n{"level": "ERROR"}'
    assert len(response["X-Request-ID"]) == 32


@pytest.mark.urls(__name__)
def test_django_s_own_lines_carry_the_request_id(client, json_lines):
    response = client.get("/nowhere/", HTTP_X_REQUEST_ID="req-404")
    assert response.status_code == 404
    lines = [line for line in json_lines() if line["logger"] == "django.request"]
    assert len(lines) == 1
    assert lines[0]["request_id"] == "req-404"
    assert lines[0]["status_code"] == 404


@pytest.mark.urls(__name__)
def test_an_error_is_logged_once_with_its_traceback_on_one_line(client, json_lines):
    client.raise_request_exception = False
    response = client.get("/fail/", HTTP_X_REQUEST_ID="req-500")
    assert response.status_code == 500
    assert response["X-Request-ID"] == "req-500"
    errors = [line for line in json_lines() if line["level"] == "ERROR"]
    assert len(errors) == 1
    assert errors[0]["request_id"] == "req-500"
    assert "Traceback" in errors[0]["exc"]
    assert "RuntimeError: boom" in errors[0]["exc"]


@pytest.mark.urls(__name__)
def test_an_api_error_is_logged_once_with_its_traceback(client, json_lines):
    """The API's exception handler logs the error with its traceback; django.request must
    not log the same 500 again as "Internal Server Error" (without the traceback)."""
    response = client.get("/api/fail/", HTTP_X_REQUEST_ID="req-api-500")
    assert response.status_code == 500
    assert response.json()["code"] == "server_error"
    errors = [line for line in json_lines() if line["level"] == "ERROR"]
    assert [line["logger"] for line in errors] == ["backoffice.api"]
    assert errors[0]["request_id"] == "req-api-500"
    assert "Traceback" in errors[0]["exc"]
    assert "RuntimeError: api boom" in errors[0]["exc"]


def test_log_context_puts_refund_and_sale_ids_on_every_line(json_lines):
    with log_context(refund_id=41, sale_id=12):
        log.info("first")
        log.warning("second")
    log.info("outside")
    lines = {line["message"]: line for line in json_lines()}
    assert lines["first"]["refund_id"] == lines["second"]["refund_id"] == 41
    assert lines["first"]["sale_id"] == lines["second"]["sale_id"] == 12
    assert "refund_id" not in lines["outside"]


def test_each_record_is_exactly_one_line_of_json():
    formatter = JsonFormatter()
    try:
        raise ValueError("multi\nline")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "a\nb %s", ("c",), sys.exc_info()
        )
    record.sale_id = object()  # not JSON: written as its str()
    text = formatter.format(record)
    assert "\n" not in text
    entry = json.loads(text)
    assert entry["message"] == "a\nb c"
    assert "ValueError: multi\nline" in entry["exc"]


def test_the_request_id_travels_with_a_queued_task():
    """The web request's id goes into the task's headers, and is back in context while
    the worker runs the task (then cleared)."""
    from types import SimpleNamespace

    from celery import signals

    class FakeTask:
        request = SimpleNamespace(request_id="req-task", headers=None)

    token = request_id_var.set("req-task")
    try:
        headers: dict = {}
        signals.before_task_publish.send(sender="refunds.tasks.x", headers=headers, body=None)
    finally:
        request_id_var.reset(token)
    assert headers["request_id"] == "req-task"

    task = FakeTask()
    signals.task_prerun.send(sender=task, task_id="t-1", task=task)
    assert request_id_var.get() == "req-task"
    signals.task_postrun.send(sender=task, task_id="t-1", task=task)
    assert request_id_var.get() is None

"""gunicorn's access log leaves query strings out (searches carry customers' emails)."""

from __future__ import annotations

import json
import logging
import runpy
from datetime import timedelta
from types import SimpleNamespace

from .conftest import BASE_DIR


def test_the_access_log_has_no_query_string():
    conf = runpy.run_path(str(BASE_DIR / "gunicorn.conf.py"))
    logger = object.__new__(conf["JsonLogger"])
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.access_log = logging.getLogger("test.gunicorn.access")
    logger.access_log.addHandler(handler)
    logger.access_log.setLevel(logging.INFO)
    logger._access_log_enabled = True
    environ = {
        "REQUEST_METHOD": "GET", "PATH_INFO": "/api/v2/customers/",
        "QUERY_STRING": "search=ada%40example.com", "REMOTE_ADDR": "127.0.0.1",
        "HTTP_REFERER": "https://shop.example.com/admin/sales/sale/?q=ada@example.com",
    }
    response = SimpleNamespace(status="200 OK", headers=[("X-Request-ID", "r-1")], sent=10)
    logger.access(response, None, environ, timedelta(milliseconds=3))
    line = records[0].getMessage()
    assert "ada" not in line
    entry = json.loads(line)
    assert entry["path"] == "/api/v2/customers/" and "query" not in entry
    assert entry["referer"] == "https://shop.example.com/admin/sales/sale/"

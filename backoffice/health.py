"""Health endpoints for load balancers and orchestrators.

- ``/healthz``: the process is up and serving (no dependency is touched).
- ``/readyz``: the database and the Celery broker are reachable; 503 with a JSON body
  naming what failed otherwise, so a load balancer takes the process out of rotation.

Both are plain Django views (no session, no authentication, never cached) and are
exempt from the HTTPS redirect, so a proxy can probe them over plain HTTP.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

log = logging.getLogger(__name__)


def check_database(alias: str = "default") -> None:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_broker() -> None:
    """Open (and close) a connection to the broker. The in-memory transport of the
    embedded run (tasks eager, no broker) is always reachable."""
    from backoffice.celery import app

    if app.conf.task_always_eager:
        return
    timeout = float(getattr(settings, "READYZ_BROKER_TIMEOUT", 2))
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=timeout)


CHECKS: dict[str, Callable[[], None]] = {"database": check_database, "broker": check_broker}


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, Any] = {}
    failed: list[str] = []
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            failed.append(name)
            checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
            log.warning("readiness check %s failed: %s", name, exc)
        else:
            checks[name] = {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}
    if failed:
        return JsonResponse(
            {"status": "unavailable", "failed": failed, "checks": checks}, status=503
        )
    return JsonResponse({"status": "ok", "checks": checks})

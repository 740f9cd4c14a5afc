"""Health endpoints for load balancers and orchestrators, and what the request path does
when the shared cache is down.

- ``/healthz``: the process is up and serving (no dependency is touched).
- ``/readyz``: the database is reachable: 503 with a JSON body naming it otherwise, so a
  load balancer takes the process out of rotation. The cache and the Celery broker are
  checked and reported each on its own (``checks``), but their loss only makes the
  answer ``"status": "degraded"`` (still 200): the API keeps serving without them
  (throttling is not enforced; alerts and gateway calls wait in PostgreSQL until beat
  queues them again), and taking every web process out would stop it for nothing.
  ``counters.cache_unavailable`` counts the requests this process served without the
  cache since it started.

Both are plain Django views (no session, no authentication, never cached) and are
exempt from the HTTPS redirect, so a proxy can probe them over plain HTTP.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

log = logging.getLogger(__name__)
T = TypeVar("T")

# Process-local counters of degraded service, shown by /readyz.
COUNTERS: Counter[str] = Counter()
_cache_down_until = 0.0


def cache_available() -> bool:
    """False for CACHE_RETRY_SECONDS after a cache failure: a cache that is down is not
    tried (and waited for) on every request."""
    return time.monotonic() >= _cache_down_until


def cache_unavailable(where: str, exc: BaseException | None = None) -> None:
    """The request goes on without the cache: one log line `cache_unavailable`, one more
    in COUNTERS, and the cache is left alone for CACHE_RETRY_SECONDS."""
    global _cache_down_until
    COUNTERS["cache_unavailable"] += 1
    if exc is not None:
        _cache_down_until = time.monotonic() + float(
            getattr(settings, "CACHE_RETRY_SECONDS", 5)
        )
    log.warning("cache_unavailable", extra={
        "where": where, "error": f"{type(exc).__name__}: {exc}"[:200] if exc else "skipped",
        "cache_unavailable_total": COUNTERS["cache_unavailable"],
    })


def cache_call(where: str, work: Callable[[], T], fallback: T) -> T:
    """work() against the cache, or fallback (and cache_unavailable) when it is down."""
    if not cache_available():
        cache_unavailable(where)
        return fallback
    try:
        return work()
    except Exception as exc:  # noqa: BLE001 - any cache failure: degrade, don't fail
        cache_unavailable(where, exc)
        return fallback


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


def check_cache() -> None:
    """Write and read a key in the default cache (raises when the cache is down)."""
    from django.core.cache import cache

    token = str(time.monotonic())
    cache.set("readyz", token, 10)
    if cache.get("readyz") != token:
        raise RuntimeError("the cache did not keep a value")


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database, "cache": check_cache, "broker": check_broker,
}
# Without these the process still serves: reported, never a 503.
DEGRADABLE = {"cache", "broker"}


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, Any] = {}
    failed: list[str] = []
    degraded: list[str] = []
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            (degraded if name in DEGRADABLE else failed).append(name)
            checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
            log.warning("readiness check %s failed: %s", name, exc)
        else:
            checks[name] = {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}
    counters = {"cache_unavailable": COUNTERS["cache_unavailable"]}
    if failed:
        return JsonResponse(
            {"status": "unavailable", "failed": failed, "degraded": degraded,
             "checks": checks, "counters": counters}, status=503
        )
    return JsonResponse({"status": "degraded" if degraded else "ok", "degraded": degraded,
                         "checks": checks, "counters": counters})

"""The one idempotency store (DESIGN §3.6): `IdempotencyKey` rows, claimed by `run_once`.

Every door that takes a key goes through `run_once`: the API (backoffice.api.idempotency
wraps it to store and replay the response), and the services themselves
(refunds.services.refund_create with `idempotency_key`, which the `refund_sale` command
sends). A key belongs to its owner ("key:<api key prefix>", "user:<id>", "" for a
command); one row per (owner, key) holds the request's hash and its outcome: the refund
it made and/or the response the API answered.

The row is claimed INSIDE the transaction of the work it guards: it is inserted first,
so a concurrent request with the same key blocks on the unique index until the first
commits, then finds the row and replays its outcome. A committed row therefore always
has one; a row without one belongs to a request still running. The same key with a
different request is a 422; waiting longer than settings.IDEMPOTENCY_LOCK_TIMEOUT_MS
(PostgreSQL `lock_timeout`) is a 409. A refused request rolls back with its key, so a
corrected retry is tried afresh. `purge_idempotency_keys` deletes rows past their
retention; the refunds they point at stay (only replay protection ends).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction

from .errors import IdempotencyKeyInUseError, IdempotencyKeyReusedError
from .models import IdempotencyKey

T = TypeVar("T")

IN_USE = "A request with this idempotency key is still being processed; retry later."
REUSED = "This idempotency key was already used for a different request."


@dataclass
class KeyOutcome:
    """What a key's first request produced, kept on its row for the repeats: the refund
    it made (a database link), and the API's answer (status and JSON text)."""

    refund: Any = None
    status: int | None = None
    body: str | None = None


def key_reused() -> IdempotencyKeyReusedError:
    return IdempotencyKeyReusedError(
        REUSED, extra={"Idempotency-Key": ["Already used for a different request."]})


def _set_lock_timeout(value: str) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [value])


def _claim(owner: str, key: str, fingerprint: str) -> tuple[IdempotencyKey, bool]:
    """(row, True) when this request claims the key; (the first request's row, False)
    when it already did its work. Raises 409 while it is still running, 422 when it was
    another request."""
    _set_lock_timeout(f"{int(settings.IDEMPOTENCY_LOCK_TIMEOUT_MS)}ms")
    try:
        with transaction.atomic():
            row = IdempotencyKey.objects.create(owner=owner, key=key, request_hash=fingerprint)
    except IntegrityError:
        first = IdempotencyKey.objects.filter(owner=owner, key=key).first()
        if first is None or not first.done:
            raise IdempotencyKeyInUseError(IN_USE) from None
        if first.request_hash != fingerprint:
            raise key_reused() from None
        return first, False
    except OperationalError as exc:
        if "lock" in str(exc).lower():
            raise IdempotencyKeyInUseError(IN_USE) from exc
        raise
    _set_lock_timeout("0")
    return row, True


def run_once(
    *,
    key: str | None,
    owner: str,
    fingerprint: str,
    work: Callable[[], T],
    replay: Callable[[IdempotencyKey], T],
    outcome: Callable[[T], KeyOutcome],
) -> T:
    """`work()` once per (owner, key), in one transaction with the key's row; a repeat of
    the same request gets `replay(row)` and changes nothing. `outcome(result)` says what
    the row keeps for the repeats. Without a key, just `work()`."""
    if not key:
        return work()
    with transaction.atomic():
        row, claimed = _claim(owner, key, fingerprint)
        if not claimed:
            return replay(row)
        result = work()
        kept = outcome(result)
        row.refund = kept.refund
        row.response_status = kept.status
        row.response_body = kept.body
        row.save(update_fields=["refund", "response_status", "response_body"])
    return result

"""Idempotency-Key for API writes (DESIGN §3.6).

The key is claimed INSIDE the transaction of the work it guards: its row is inserted
first, so a concurrent request with the same key blocks on the unique index until the
first commits, then finds the row and replays the stored response (same status, same
body). The same key with a different request is a 422; waiting longer than
settings.IDEMPOTENCY_LOCK_TIMEOUT_MS (PostgreSQL `lock_timeout`) is a 409. Only
successful responses are stored: a refused request rolls back with its key, so a retry
is tried afresh.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, OperationalError, connection, transaction

from backoffice.errors import IdempotencyKeyInUseError, IdempotencyKeyReusedError

from .auth import request_api_key
from .envelope import Envelope

MAX_KEY_LENGTH = 255


@dataclass
class Outcome:
    status: int
    body: dict
    refund: Any = None
    replayed: bool = False


def request_key(request) -> str | None:
    """The Idempotency-Key header, else a `uuid` field of the JSON body."""
    key = request.META.get("HTTP_IDEMPOTENCY_KEY", "").strip()
    if not key and isinstance(request.data, dict):
        value = request.data.get("uuid")
        if isinstance(value, str | int) and not isinstance(value, bool):
            key = str(value).strip()
    if not key:
        return None
    if len(key) > MAX_KEY_LENGTH:
        from rest_framework.exceptions import ValidationError

        raise ValidationError({"Idempotency-Key": [f"At most {MAX_KEY_LENGTH} characters."]})
    return key


def request_owner(request) -> str:
    """Whose idempotency keys a request uses: its API key's ("key:<prefix>"), or for a staff
    session its user's ("user:<id>"). Keys are unique per owner, as Stripe's are per
    account, so one integration can never replay, block or burn another's key."""
    api_key = request_api_key(request)
    if api_key is not None:
        return f"key:{api_key.prefix}"
    return f"user:{getattr(request.user, 'pk', None) or ''}"


def request_hash(request, *, who: Any = None) -> str:
    blob = json.dumps(
        {"method": request.method, "path": request.path, "who": str(who or ""),
         "body": request.data},
        sort_keys=True, cls=DjangoJSONEncoder, separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _encode(body: dict) -> str:
    # Kept as JSON text inside the JSON column: jsonb would reorder the keys, and a replay
    # must answer byte for byte what the first request answered.
    return json.dumps(body, cls=DjangoJSONEncoder)


def _decode(stored) -> Envelope:
    return Envelope(json.loads(stored) if isinstance(stored, str) else stored)


def run_idempotent(
    *, model, key: str | None, owner: str, fingerprint: str, work: Callable[[], Outcome]
) -> Outcome:
    """Run `work` once per (owner, key). `model` has owner, key, request_hash,
    response_status, response_body and refund (refunds.models.IdempotencyKey)."""
    if not key:
        return work()
    with transaction.atomic():
        postgres = connection.vendor == "postgresql"
        if postgres:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('lock_timeout', %s, true)",
                    [f"{int(settings.IDEMPOTENCY_LOCK_TIMEOUT_MS)}ms"],
                )
        try:
            with transaction.atomic():
                row = model.objects.create(owner=owner, key=key, request_hash=fingerprint)
        except IntegrityError:
            row = model.objects.filter(owner=owner, key=key).first()
            if row is None or row.response_status is None:
                raise IdempotencyKeyInUseError(
                    "A request with this idempotency key is still being processed; retry later."
                ) from None
            if row.request_hash != fingerprint:
                raise IdempotencyKeyReusedError(
                    "This idempotency key was already used for a different request.",
                    extra={"Idempotency-Key": ["Already used for a different request."]},
                ) from None
            return Outcome(row.response_status, _decode(row.response_body), replayed=True)
        except OperationalError as exc:
            if "lock" in str(exc).lower():
                raise IdempotencyKeyInUseError(
                    "A request with this idempotency key is still being processed; retry later."
                ) from exc
            raise
        if postgres:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('lock_timeout', '0', true)")
        outcome = work()
        row.response_status = outcome.status
        row.response_body = _encode(outcome.body)
        row.refund = outcome.refund
        row.save(update_fields=["response_status", "response_body", "refund"])
        outcome.body = _decode(row.response_body)
    return outcome

"""Idempotency-Key for API writes (DESIGN §3.6), on the one store.

The key is the request's `Idempotency-Key` header (or `uuid` field), its owner the API
key (a staff session: its user), its fingerprint a hash of method, path, user and body.
backoffice.idempotency.run_once claims it in the transaction of the work and keeps the
response (and the refund it made); a repeat gets the same status and body. Only
successful responses are kept: a refused request rolls back with its key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from backoffice.idempotency import KeyOutcome, key_reused, run_once
from backoffice.models import IdempotencyKey

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


def _replay(row: IdempotencyKey) -> Outcome:
    if row.response_status is None:
        # The key's first use was not an API request (a service's own key): nothing to
        # answer byte for byte, and never the same request.
        raise key_reused()
    return Outcome(row.response_status, _decode(row.response_body), replayed=True)


def run_idempotent(
    *, key: str | None, owner: str, fingerprint: str, work: Callable[[], Outcome]
) -> Outcome:
    """Run `work` once per (owner, key); a repeat answers what the first answered."""
    kept: list[str] = []

    def keep(done: Outcome) -> KeyOutcome:
        kept.append(_encode(done.body))
        return KeyOutcome(refund=done.refund, status=done.status, body=kept[0])

    outcome = run_once(key=key, owner=owner, fingerprint=fingerprint, work=work,
                       replay=_replay, outcome=keep)
    if kept:
        # What a repeat will answer, to the byte (dates as the encoder wrote them).
        outcome.body = _decode(kept[0])
    return outcome

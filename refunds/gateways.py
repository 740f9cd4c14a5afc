"""Payment gateways: how money goes back to a card or wallet.

A gateway is called outside any database transaction, with an idempotency key that is
the same on every retry of the same allocation, so a retry never refunds twice: a real
gateway (Stripe and the like) answers a repeated key with its first answer, and the
sandbox does the same.

Two kinds of failure:

- `GatewayError`: the gateway refused. Final: the refund fails and is rolled back.
- `GatewayUnavailableError`: timeout or outage. The outcome is unknown (the money may
  have moved): the caller asks again later with the same key, never rolls back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from django.core.cache import caches
from django.utils import timezone
from django.utils.module_loading import import_string

from sales.models import Payment


class GatewayError(Exception):
    """The gateway refused the refund: final, the refund fails and is rolled back."""


class GatewayUnavailableError(Exception):
    """Timeout or outage: the outcome is unknown; try again with the same key."""


@dataclass
class GatewayResult:
    reference: str


class PaymentGateway(Protocol):
    name: str

    def refund(self, payment: Payment, amount: int, idempotency_key: str) -> GatewayResult: ...


class ManualGateway:
    """Offline: staff give the money back by hand; nothing to call."""

    name = "manual"

    def refund(self, payment: Payment, amount: int, idempotency_key: str) -> GatewayResult:
        return GatewayResult(reference=f"manual-{idempotency_key}")


# Failure modes of the sandbox, chosen per payment (its gateway_reference) or for every
# payment (settings.SANDBOX_MODE).
SANDBOX_DECLINE = "fail"  # refuse: GatewayError
SANDBOX_TIMEOUT_ONCE = "timeout-once"  # refund, then lose the answer once (timeout)
SANDBOX_UNAVAILABLE = "unavailable"  # always down: GatewayUnavailableError, nothing moves
SANDBOX_MODES = (SANDBOX_DECLINE, SANDBOX_TIMEOUT_ONCE, SANDBOX_UNAVAILABLE)


class SandboxGateway:
    """Deterministic fake for demos and tests, with the idempotency of a real gateway.

    It keeps a ledger, one entry per idempotency key, in the `sandbox` cache (a database
    cache table: shared by every web and worker process). The first call with a key
    decides the outcome and "moves the money"; every later call with that key gets the
    same answer and moves nothing. Failure modes:

    - refuses a refund of exactly settings.SANDBOX_FAIL_AMOUNT minor units, or any
      refund of a payment whose gateway_reference is "fail" (or SANDBOX_MODE="fail");
    - "timeout-once": refunds, then raises GatewayUnavailableError as if the answer
      was lost on the way back; the retry with the same key gets the stored answer;
    - "unavailable": raises GatewayUnavailableError before doing anything.
    """

    name = "sandbox"
    cache_alias = "sandbox"

    @classmethod
    def ledger(cls, idempotency_key: str) -> dict | None:
        """What the sandbox remembers for a key: outcome, amount, reference, calls."""
        return caches[cls.cache_alias].get(cls._cache_key(idempotency_key))

    @staticmethod
    def _cache_key(idempotency_key: str) -> str:
        return "sbx:" + hashlib.sha256(idempotency_key.encode()).hexdigest()

    def _mode(self, payment: Payment) -> str:
        if payment.gateway_reference in SANDBOX_MODES:
            return payment.gateway_reference
        return getattr(settings, "SANDBOX_MODE", "")

    def refund(self, payment: Payment, amount: int, idempotency_key: str) -> GatewayResult:
        mode = self._mode(payment)
        if mode == SANDBOX_UNAVAILABLE:
            raise GatewayUnavailableError("sandbox gateway unavailable (simulated outage)")
        cache = caches[self.cache_alias]
        key = self._cache_key(idempotency_key)
        declined = amount == settings.SANDBOX_FAIL_AMOUNT or mode == SANDBOX_DECLINE
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]
        entry: dict[str, Any] = {
            "outcome": "declined" if declined else "refunded",
            "amount": amount,
            "payment_id": payment.pk,
            "reference": "" if declined else f"sbx_re_{digest}",
            "calls": 1,
            "at": timezone.now().isoformat(),
        }
        # add() is atomic (a unique key in one table): of two racing calls with the same
        # key, exactly one decides the outcome.
        first = cache.add(key, entry, timeout=None)
        if not first:
            entry = cache.get(key) or entry
            entry["calls"] = entry.get("calls", 1) + 1
            cache.set(key, entry, timeout=None)
            if entry["amount"] != amount:
                raise GatewayError(
                    f"idempotency key {idempotency_key} was used for {entry['amount']}, "
                    f"not {amount}"
                )
        if entry["outcome"] == "declined":
            raise GatewayError(f"sandbox declined the refund of {amount}")
        if first and mode == SANDBOX_TIMEOUT_ONCE:
            # The money moved, but the answer never reached us.
            raise GatewayUnavailableError("sandbox gateway timed out (simulated, once)")
        return GatewayResult(reference=entry["reference"])


def gateway_for(name: str) -> PaymentGateway:
    path = settings.PAYMENT_GATEWAYS.get(name or "manual")
    if path is None:
        raise GatewayError(f"no gateway named {name!r} is configured")
    return import_string(path)()

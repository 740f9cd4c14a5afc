"""Payment gateways: how money goes back to a card or wallet.

A gateway is called outside any database transaction, with an idempotency key that is
the same on every retry of the same allocation, so a retry never refunds twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
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


class SandboxGateway:
    """Deterministic fake for demos and tests.

    Refuses a refund of exactly settings.SANDBOX_FAIL_AMOUNT minor units, or any refund
    of a payment whose gateway_reference is 'fail'; times out once for a payment whose
    reference is 'timeout-once' (the retry then succeeds). The reference it returns is
    derived from the idempotency key, so asking twice gives the same answer.
    """

    name = "sandbox"

    def refund(self, payment: Payment, amount: int, idempotency_key: str) -> GatewayResult:
        if amount == settings.SANDBOX_FAIL_AMOUNT or payment.gateway_reference == "fail":
            raise GatewayError(f"sandbox declined the refund of {amount}")
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]
        return GatewayResult(reference=f"sbx_re_{digest}")


def gateway_for(name: str) -> PaymentGateway:
    path = settings.PAYMENT_GATEWAYS.get(name or "manual")
    if path is None:
        raise GatewayError(f"no gateway named {name!r} is configured")
    return import_string(path)()

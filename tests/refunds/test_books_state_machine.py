"""A state machine over the books: random sequences of refunds, partial refunds, cancels,
gateway failures (and the compensation or the staff's offline settlement that follow),
bulk imports, replacements and withdrawals, all through the real services; after every
step every counter must still be what the ledger rows say (refunds/services/audit.py).

It runs on whichever database the suite uses (SQLite by default, PostgreSQL with
DATABASE_URL). Each example runs in a transaction rolled back at its end. The gateway's
answer is what the settle task would do after the commit: here a rule of its own, so
hypothesis also tries refunds, imports and cancels while a refund is still pending.
"""

from __future__ import annotations

import os
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from backoffice.errors import DomainError
from refunds.gateways import SANDBOX_DECLINE
from refunds.models import Refund, RefundStatus
from refunds.services import (
    RefundOptions,
    refund_create,
    refund_settle,
    refunds_bulk_import,
    sale_cancel,
)
from refunds.services.audit import books_audit
from refunds.services.settle import refund_settle_offline, refunds_needing_attention
from sales.models import Payment, SaleLine
from sales.services import payment_record
from tests.factories import CustomerFactory, ProductFactory, SaleFactory

SOURCE = "state-machine"
# The three shapes of payment: one card, card and cash, two cards (one may be refused
# after the other went back: the refund then needs attention).
PAYMENTS = ["card", "card+cash", "card+card"]
# Mostly online and mostly answered at once: failures and compensations are the point.
MOSTLY = st.sampled_from([True, True, False])


class BooksMachine(RuleBasedStateMachine):
    sales = Bundle("sales")

    def __init__(self) -> None:
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.product = ProductFactory(stock=50)
        self.customer = CustomerFactory()
        self.steps: list[str] = []

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    def _try(self, what: str, call, *, settle: bool = False) -> None:
        """A refusal (a business rule) is a fine outcome; anything else is a failure.
        `settle`: the gateway answers at once (the settle task, after the commit)."""
        try:
            result = call()
        except DomainError as exc:
            self.steps.append(f"{what} -> {exc.code}")
            return
        self.steps.append(what)
        refund = getattr(result, "refund", None)
        if settle and refund is not None and refund.status == RefundStatus.PENDING:
            refund_settle(refund_id=refund.pk)
            self.steps.append(f"settled {refund.pk}")

    @rule(target=sales, lines=st.lists(st.tuples(st.integers(1, 4), st.integers(1, 3000)),
                                       min_size=1, max_size=3),
          payments=st.sampled_from(PAYMENTS), fees=st.tuples(*[st.sampled_from([0, 150])] * 3),
          discount=st.sampled_from([0, 1, 7]), refused=st.sampled_from([None, None, 0, 1]))
    def make_sale(self, lines, payments, fees, discount, refused):
        """A paid sale; `refused`: which of its card payments the gateway will refuse."""
        specs = [{"description": f"Item {i}", "sku": f"SKU-{i}", "quantity": q,
                  "unit_price": price, "discount": min(discount, q * price),
                  "tax_rate": Decimal("0.20"), "product_id": self.product.pk}
                 for i, (q, price) in enumerate(lines)]
        sale = SaleFactory(lines=specs, paid=False, customer=self.customer,
                           processing_fee=fees[0], reseller_fee=fees[1], shipping_fee=fees[2])
        first = sale.total // 2 if payments != "card" and sale.total > 1 else sale.total
        parts = [("card", "sandbox", first)] if first else []  # a free sale stays unpaid
        if sale.total - first:
            parts.append(("cash", "", sale.total - first) if payments == "card+cash"
                         else ("card", "sandbox", sale.total - first))
        for i, (method, gateway, amount) in enumerate(parts):
            payment_record(sale_id=sale.pk, amount=amount, method=method, gateway=gateway,
                           gateway_reference=SANDBOX_DECLINE if i == refused and gateway
                           else "")
        self.steps.append(f"sale {sale.pk}: {lines} {payments} fees {fees} refused {refused}")
        return sale.pk

    @rule(sale=sales, data=st.data(), restock=st.booleans(), online=MOSTLY,
          balance=st.booleans(), settle=MOSTLY)
    def partial_refund(self, sale, data, restock, online, balance, settle):
        left = [(pk, q - r) for pk, q, r in SaleLine.objects.filter(sale_id=sale).order_by("pk")
                .values_list("pk", "quantity", "refunded_quantity") if q > r]
        if not left:
            return
        named = data.draw(st.lists(st.sampled_from(left), min_size=1, unique=True))
        items = {pk: data.draw(st.integers(1, n)) for pk, n in named}
        options = RefundOptions(type="balance_refund" if balance else "refund",
                                restock=restock, online=online)
        self._try(f"refund {sale} {items} {options.type}",
                  lambda: refund_create(sale_id=sale, items=items, options=options),
                  settle=settle)

    @rule(sale=sales, online=MOSTLY, settle=MOSTLY)
    def full_refund(self, sale, online, settle):
        self._try(f"refund all of {sale}", lambda: refund_create(
            sale_id=sale, options=RefundOptions(online=online)), settle=settle)

    @rule(sale=sales, restock=st.booleans(), settle=MOSTLY)
    def cancel(self, sale, restock, settle):
        self._try(f"cancel {sale}", lambda: sale_cancel(sale_id=sale, restock=restock),
                  settle=settle)

    @rule(sale=sales, data=st.data())
    def gateway_refuses(self, sale, data):
        """The gateway will refuse the next refund of one of the sale's card payments."""
        cards = list(Payment.objects.filter(sale_id=sale, gateway="sandbox")
                     .order_by("pk").values_list("pk", flat=True))
        if cards:
            pk = data.draw(st.sampled_from(cards))
            Payment.objects.filter(pk=pk).update(gateway_reference=SANDBOX_DECLINE)
            self.steps.append(f"gateway refuses payment {pk}")

    @precondition(lambda self: Refund.objects.filter(status=RefundStatus.PENDING).exists())
    @rule(data=st.data())
    def gateway_answers(self, data):
        """What the settle task does after the commit: ask the gateway, then succeed, fail
        and compensate, or need attention."""
        pending = list(Refund.objects.filter(status=RefundStatus.PENDING).order_by("pk")
                       .values_list("pk", flat=True))
        refund_id = data.draw(st.sampled_from(pending))
        self._try(f"settle {refund_id}", lambda: refund_settle(refund_id=refund_id))

    @precondition(lambda self: refunds_needing_attention().exists())
    @rule(data=st.data())
    def settled_offline(self, data):
        ids = list(refunds_needing_attention().order_by("pk").values_list("pk", flat=True))
        refund_id = data.draw(st.sampled_from(ids))
        self._try(f"settle offline {refund_id}",
                  lambda: refund_settle_offline(refund_id=refund_id, note="cash"))

    @rule(sale=sales, data=st.data(), key=st.integers(0, 2), restock=st.booleans(),
          withdraw=st.booleans())
    def bulk_import(self, sale, data, key, restock, withdraw):
        """Create, replace (same id, other lines) or withdraw (no lines) an imported
        refund of the sale."""
        items = []
        if not withdraw:
            lines = list(SaleLine.objects.filter(sale_id=sale).order_by("pk")
                         .values_list("pk", "quantity"))
            named = data.draw(st.lists(st.sampled_from(lines), min_size=1, unique=True))
            items = [{"item_id": pk, "quantity": data.draw(st.integers(1, q))}
                     for pk, q in named]
        record = {"id": f"sm-{sale}-{key}", "sale_id": sale, "restock": restock,
                  "refunded_at": "2026-11-20T10:00:00Z", "line_items": items}
        self._try(f"import {record['id']} {items}", lambda: refunds_bulk_import(
            records=[record], import_source=SOURCE))

    @invariant()
    def books_balance(self):
        differences = books_audit()
        assert not differences, "\n".join(
            ["the books do not balance after:", *self.steps[-5:],
             *(d.line() for d in differences)])


@pytest.mark.django_db
def test_random_sequences_of_refunds_cancels_failures_and_imports_keep_the_books():
    run_state_machine_as_test(BooksMachine, settings=settings(
        max_examples=25, stateful_step_count=10, deadline=None,
        derandomize=bool(os.environ.get("CI")),
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    ))

"""Property test through the database: any sale, any sequence of partial refunds through
refund_create, then the rest — every counter and ledger row adds up exactly."""

from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from refunds.models import Refund, RefundLine, RefundPayment
from refunds.services import RefundOptions, refund_create
from sales.models import Payment, Sale
from sales.services import payment_record
from tests.books import assert_books_balance
from tests.factories import SaleFactory

RATES = ["0", "0.05", "0.2", "0.175"]


@st.composite
def sale_specs(draw):
    lines = []
    for i in range(draw(st.integers(2, 3))):
        qty = draw(st.integers(1, 6))
        price = draw(st.integers(1, 5000))
        lines.append({
            "description": f"Item {i + 1}", "sku": f"ITEM-{i + 1}", "quantity": qty,
            "unit_price": price, "discount": draw(st.integers(0, qty * price)),
            "tax_rate": Decimal(draw(st.sampled_from(RATES))),
        })
    shipping = draw(st.sampled_from([0, 0, 499]))
    return lines, shipping


def _payments(data, total: int) -> list[dict]:
    """1-3 payments (card online, cash offline) adding up to the total."""
    cuts = data.draw(st.lists(st.integers(1, total - 1), unique=True, max_size=2)
                     if total > 1 else st.just([]), label="cuts")
    bounds = [0, *sorted(cuts), total]
    return [
        {"amount": hi - lo, "method": method, "gateway": "sandbox" if method == "card" else ""}
        for lo, hi, method in zip(bounds, bounds[1:], ["card", "cash", "card"], strict=False)
    ]


def _check(sale: Sale) -> None:
    sale.refresh_from_db()
    refunds = list(Refund.objects.filter(sale=sale))
    for line in sale.lines.all():
        rls = RefundLine.objects.filter(sale_line=line)
        assert line.refunded_quantity == line.quantity == sum(rl.quantity for rl in rls)
        assert sum(rl.amount for rl in rls) == line.net_amount == line.refunded_amount
        assert sum(rl.tax_amount for rl in rls) == line.tax_amount == line.refunded_tax
    for refund in refunds:
        allocations = RefundPayment.objects.filter(refund=refund)
        assert sum(a.amount for a in allocations) == refund.total
    for payment in Payment.objects.filter(sale=sale):
        allocated = RefundPayment.objects.filter(payment=payment)
        assert payment.refunded_amount == sum(a.amount for a in allocated) == payment.amount
    assert sale.amount_refunded == sum(r.total for r in refunds) == sale.amount_paid
    assert sale.status == "refunded"


@pytest.mark.django_db
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=sale_specs(), data=st.data())
def test_any_partial_refunds_then_the_rest_add_up_to_the_sale(spec, data):
    lines, shipping = spec
    assume(sum(ln["quantity"] * ln["unit_price"] - ln["discount"] for ln in lines) > 0)
    with transaction.atomic():
        sale = SaleFactory(lines=lines, shipping_fee=shipping, paid=False)
        for payment in _payments(data, sale.total):
            payment_record(sale_id=sale.pk, **payment)
        sale.refresh_from_db()
        assert sale.status == "paid"
        while data.draw(st.booleans(), label="another partial refund?"):
            left = {pk: q - r for pk, q, r in sale.lines.values_list(
                "pk", "quantity", "refunded_quantity") if q > r}
            if not left:
                break
            named = data.draw(st.lists(st.sampled_from(sorted(left)), min_size=1,
                                       unique=True), label="lines")
            items = {pk: data.draw(st.integers(1, left[pk]), label="quantity") for pk in named}
            balance = data.draw(st.booleans(), label="balance refund?")
            refund_create(sale_id=sale.pk, items=items, options=RefundOptions(
                type="balance_refund" if balance else "refund"))
        sale.refresh_from_db()
        if sale.refunded_units < sale.units or sale.amount_refunded < sale.amount_paid:
            refund_create(sale_id=sale.pk, items=None)  # the rest, fees included
        _check(sale)
        assert_books_balance()
        transaction.set_rollback(True)

"""Every rule of DESIGN §3 (alerts and gateways aside), through the services."""

import pytest

from backoffice.errors import (
    IdempotencyKeyReusedError,
    NothingToRefundError,
    RefundExceedsPaidError,
    RefundQuantityExceededError,
    SaleCancelledError,
    SaleNotCancellableError,
    SaleNotRefundableError,
    SplitExceedsPaymentError,
    SplitMismatchError,
    StaleRefundStateError,
    UnknownLineError,
    UnknownPaymentError,
)
from refunds.models import Refund, RefundLine, RefundPayment
from refunds.services import (
    RefundOptions,
    refund_create,
    refund_preview,
    sale_cancel,
    sale_cancel_preview,
)
from sales.models import Customer, Product, Sale, SaleLine
from tests.factories import ProductFactory, SaleFactory

pytestmark = pytest.mark.django_db


def line_of(sale, index=0):
    return sale.lines.order_by("pk")[index]


def test_partial_refund_takes_amounts_from_the_sale(paid_sale):
    line = line_of(paid_sale)
    result = refund_create(sale_id=paid_sale.pk, items={line.pk: 2})
    refund = result.refund
    assert (refund.lines_amount, refund.tax_amount, refund.total) == (2400, 480, 2880)
    assert refund.status == "succeeded" and refund.type == "refund"
    line.refresh_from_db()
    assert line.refunded_quantity == 2
    paid_sale.refresh_from_db()
    assert paid_sale.status == "partially_refunded"
    assert paid_sale.amount_refunded == 2880


def test_refund_more_than_remaining_is_rejected(paid_sale):
    line = line_of(paid_sale)
    refund_create(sale_id=paid_sale.pk, items={line.pk: 2})
    with pytest.raises(RefundQuantityExceededError) as exc:
        refund_create(sale_id=paid_sale.pk, items=[(line.pk, 2)])
    assert exc.value.extra == {"items[0].quantity": ["only 1 left to refund"]}
    assert exc.value.status == 422
    line.refresh_from_db()
    assert line.refunded_quantity == 2
    assert Refund.objects.count() == 1


def test_unknown_line_is_rejected(paid_sale):
    other = SaleFactory()
    with pytest.raises(UnknownLineError):
        refund_create(sale_id=paid_sale.pk, items={line_of(other).pk: 1})


def test_zero_quantity_is_rejected(paid_sale):
    from backoffice.errors import ValidationFailedError

    with pytest.raises(ValidationFailedError) as exc:
        refund_create(sale_id=paid_sale.pk, items={line_of(paid_sale).pk: 0})
    assert "items[0].quantity" in exc.value.extra


def test_partial_refunds_add_up_exactly_to_what_was_charged():
    sale = SaleFactory(lines=[(3, 333)], tax_rate="0.175")
    line = line_of(sale)
    amounts = [refund_create(sale_id=sale.pk, items={line.pk: 1}).refund for _ in range(3)]
    assert sum(r.lines_amount for r in amounts) == line.net_amount == 999
    assert sum(r.tax_amount for r in amounts) == line.tax_amount
    assert [r.lines_amount for r in amounts] == [333, 333, 333]
    sale.refresh_from_db()
    assert sale.status == "refunded"
    assert sale.amount_refunded == sale.amount_paid


def test_rounding_never_loses_a_minor_unit_with_a_discount():
    sale = SaleFactory(lines=[{"description": "Pen", "quantity": 3, "unit_price": 100,
                              "discount": 1}], tax_rate="0")
    line = line_of(sale)
    parts = [refund_create(sale_id=sale.pk, items={line.pk: 1}).refund.lines_amount
             for _ in range(3)]
    assert parts == [99, 100, 100]
    assert sum(parts) == line.net_amount == 299


def test_no_items_refunds_everything_that_remains_with_fees():
    sale = SaleFactory(lines=[(2, 1000), (1, 500)], processing_fee=150, reseller_fee=50,
                       shipping_fee=499)
    refund_create(sale_id=sale.pk, items={line_of(sale).pk: 1})
    rest = refund_create(sale_id=sale.pk).refund
    assert rest.units == 2
    assert (rest.processing_fee, rest.reseller_fee, rest.shipping_fee) == (150, 50, 499)
    sale.refresh_from_db()
    assert sale.status == "refunded"
    assert sale.amount_refunded == sale.total
    with pytest.raises(NothingToRefundError):
        refund_create(sale_id=sale.pk)


def test_fees_default_to_false_when_the_refund_does_not_empty_the_sale():
    sale = SaleFactory(lines=[(2, 1000)], shipping_fee=499)
    plan = refund_preview(sale_id=sale.pk, items={line_of(sale).pk: 1})
    assert plan.shipping_fee == 0 and plan.options.refund_shipping is False
    plan = refund_preview(sale_id=sale.pk, items={line_of(sale).pk: 1},
                          options=RefundOptions(refund_shipping=True))
    assert plan.shipping_fee == 499


def test_a_fee_is_given_back_at_most_once():
    sale = SaleFactory(lines=[(2, 1000)], shipping_fee=499)
    first = refund_create(sale_id=sale.pk, items={line_of(sale).pk: 1},
                          options=RefundOptions(refund_shipping=True)).refund
    assert first.shipping_fee == 499
    second = refund_create(sale_id=sale.pk, options=RefundOptions(refund_shipping=True)).refund
    assert second.shipping_fee == 0
    sale.refresh_from_db()
    assert sale.refunded_shipping_fee == 499


def test_restock_gives_units_back_unless_asked_not_to():
    product = ProductFactory(stock=10)
    sale = SaleFactory(lines=[(3, 1000)], product=product)
    product.refresh_from_db()
    assert product.stock == 7
    refund_create(sale_id=sale.pk, items={line_of(sale).pk: 2})
    product.refresh_from_db()
    assert product.stock == 9
    refund_create(sale_id=sale.pk, items={line_of(sale).pk: 1},
                  options=RefundOptions(restock=False))
    product.refresh_from_db()
    assert product.stock == 9


def test_balance_refund_credits_the_customer_and_moves_no_money_online():
    sale = SaleFactory(lines=[(1, 1000)], gateway="sandbox")
    refund = refund_create(sale_id=sale.pk,
                           options=RefundOptions(type="balance_refund", online=True)).refund
    assert refund.type == "balance_refund" and refund.online is False
    assert refund.status == "succeeded"
    assert not refund.allocations.filter(online=True).exists()
    assert Customer.objects.get(pk=sale.customer_id).store_balance == refund.total


def test_online_falls_back_to_offline_without_a_gateway(paid_sale):
    plan = refund_preview(sale_id=paid_sale.pk, options=RefundOptions(online=True))
    assert plan.online is False
    assert plan.warnings


def test_split_defaults_to_proportion_of_original_payments():
    sale = SaleFactory(lines=[(1, 1000)], tax_rate="0", payments=[
        {"amount": 700, "method": "card"}, {"amount": 300, "method": "cash"},
    ])
    plan = refund_preview(sale_id=sale.pk)
    assert [a.amount for a in plan.allocations] == [700, 300]
    sale2 = SaleFactory(lines=[(3, 1)], tax_rate="0", payments=[
        {"amount": 1, "method": "card"}, {"amount": 1, "method": "cash"},
        {"amount": 1, "method": "bank_transfer"},
    ])
    plan = refund_preview(sale_id=sale2.pk, items={line_of(sale2).pk: 2})
    assert sum(a.amount for a in plan.allocations) == 2


def test_split_as_asked_must_add_up_and_stay_within_each_payment():
    sale = SaleFactory(lines=[(2, 500)], tax_rate="0", payments=[
        {"amount": 600, "method": "card"}, {"amount": 400, "method": "cash"},
    ])
    card, cash = sale.payments.order_by("pk")
    one = {line_of(sale).pk: 1}  # 500 to give back
    with pytest.raises(SplitMismatchError):
        refund_create(sale_id=sale.pk, items=one, splits={card.pk: 300, cash.pk: 100})
    with pytest.raises(SplitExceedsPaymentError):
        refund_create(sale_id=sale.pk, items=one, splits={card.pk: 50, cash.pk: 450})
    with pytest.raises(UnknownPaymentError):
        refund_create(sale_id=sale.pk, items=one, splits={999999: 500})
    refund = refund_create(sale_id=sale.pk, items=one, splits={card.pk: 100, cash.pk: 400}).refund
    assert dict(refund.allocations.values_list("payment_id", "amount")) == {
        card.pk: 100, cash.pk: 400,
    }
    cash.refresh_from_db()
    assert cash.refunded_amount == 400
    # What is left on each payment caps the default split of the rest.
    rest = refund_preview(sale_id=sale.pk)
    assert [(a.payment.pk, a.amount) for a in rest.allocations] == [(card.pk, 500)]


def test_refund_beyond_what_was_paid_is_refused():
    sale = SaleFactory(lines=[(2, 1000)], tax_rate="0", payments=[
        {"amount": 500, "method": "cash"},
    ])
    with pytest.raises(RefundExceedsPaidError):
        refund_create(sale_id=sale.pk, items={line_of(sale).pk: 1})


def test_unpaid_sale_cannot_be_refunded():
    sale = SaleFactory(paid=False)
    with pytest.raises(SaleNotRefundableError):
        refund_create(sale_id=sale.pk)


def test_idempotency_key_replays_and_refuses_another_request(paid_sale):
    line = line_of(paid_sale)
    first = refund_create(sale_id=paid_sale.pk, items={line.pk: 1}, idempotency_key="k-1")
    again = refund_create(sale_id=paid_sale.pk, items={line.pk: 1}, idempotency_key="k-1")
    assert again.replayed and again.refund.pk == first.refund.pk
    assert Refund.objects.count() == 1
    with pytest.raises(IdempotencyKeyReusedError):
        refund_create(sale_id=paid_sale.pk, items={line.pk: 2}, idempotency_key="k-1")


def test_stale_expected_refunded_amount_is_a_conflict(paid_sale):
    line = line_of(paid_sale)
    refund_create(sale_id=paid_sale.pk, items={line.pk: 1}, expected_refunded_amount=0)
    with pytest.raises(StaleRefundStateError) as exc:
        refund_create(sale_id=paid_sale.pk, items={line.pk: 1}, expected_refunded_amount=0)
    assert exc.value.status == 409
    assert RefundLine.objects.count() == 1


def test_preview_writes_nothing_and_matches_the_refund(paid_sale):
    line = line_of(paid_sale)
    plan = refund_preview(sale_id=paid_sale.pk, items={line.pk: 2})
    assert Refund.objects.count() == 0
    refund = refund_create(sale_id=paid_sale.pk, items={line.pk: 2}).refund
    assert plan.total == refund.total
    assert [(a.payment.pk, a.amount) for a in plan.allocations] == list(
        refund.allocations.values_list("payment_id", "amount")
    )


def test_cancel_refunds_payments_restocks_and_is_idempotent():
    product = ProductFactory(stock=5)
    sale = SaleFactory(lines=[(2, 1000)], product=product, shipping_fee=300)
    result = sale_cancel(sale_id=sale.pk, reason="inventory", note="supplier out")
    assert result.refund.type == "cancellation"
    assert result.refund.total == sale.amount_paid
    sale.refresh_from_db()
    assert sale.status == "cancelled" and sale.cancellation.cancelled_at
    assert sale.cancellation.reason == "inventory"
    product.refresh_from_db()
    assert product.stock == 5
    again = sale_cancel(sale_id=sale.pk, reason="inventory")
    assert again.already and again.refund is None
    assert Refund.objects.filter(sale=sale).count() == 1
    with pytest.raises(SaleCancelledError):
        refund_create(sale_id=sale.pk)


def test_cancel_of_partly_refunded_sale_is_refused(paid_sale):
    refund_create(sale_id=paid_sale.pk, items={line_of(paid_sale).pk: 1})
    with pytest.raises(SaleNotCancellableError) as exc:
        sale_cancel(sale_id=paid_sale.pk, reason="customer")
    assert exc.value.code == "sale_not_cancellable"


def test_unpaid_invoice_and_quote_are_simply_cancelled():
    product = ProductFactory(stock=5)
    invoice = SaleFactory(paid=False, lines=[(2, 100)], product=product)
    result = sale_cancel(sale_id=invoice.pk, reason="customer", restock=True)
    assert result.refund is None
    product.refresh_from_db()
    assert product.stock == 5
    quote = SaleFactory(kind="quote", lines=[(2, 100)], product=product)
    sale_cancel(sale_id=quote.pk, reason="other")
    product.refresh_from_db()
    assert product.stock == 5
    assert Sale.objects.get(pk=quote.pk).status == "cancelled"


def test_cancel_of_partly_paid_invoice_gives_back_what_was_paid():
    sale = SaleFactory(lines=[(2, 1000)], tax_rate="0", payments=[
        {"amount": 500, "method": "cash"},
    ])
    preview = sale_cancel_preview(sale_id=sale.pk, reason="customer")
    assert preview.total == 500
    result = sale_cancel(sale_id=sale.pk, reason="customer")
    assert result.refund.total == 500
    assert RefundPayment.objects.get(refund=result.refund).amount == 500


def test_lines_counters_stay_equal_to_the_sum_of_refund_lines():
    sale = SaleFactory(lines=[(5, 199), (7, 301)])
    a, b = sale.lines.order_by("pk")
    refund_create(sale_id=sale.pk, items={a.pk: 2, b.pk: 3})
    refund_create(sale_id=sale.pk, items={b.pk: 4})
    for line in SaleLine.objects.filter(sale=sale):
        rls = RefundLine.objects.filter(sale_line=line)
        assert line.refunded_quantity == sum(r.quantity for r in rls)
        assert line.refunded_amount == sum(r.amount for r in rls)


def test_product_stock_untouched_by_refund_of_a_line_without_product(paid_sale):
    before = list(Product.objects.values_list("stock", flat=True))
    refund_create(sale_id=paid_sale.pk)
    assert list(Product.objects.values_list("stock", flat=True)) == before

from decimal import Decimal

import pytest

from backoffice.errors import (
    DuplicateExternalIdError,
    PaymentExceedsBalanceError,
    SaleCancelledError,
    ValidationFailedError,
)
from refunds.services import sale_cancel
from sales.models import Product, Sale, SaleLine
from sales.selectors import sale_resolve_id
from sales.services import (
    CustomerInput,
    LineInput,
    PaymentInput,
    SaleInput,
    payment_record,
    sale_create,
)

pytestmark = pytest.mark.django_db


def make(**kw):
    base = dict(
        kind="invoice", currency="GBP",
        lines=[LineInput(sku="MUG-1", description="Mug", quantity=3, unit_price=1200,
                         tax_rate=Decimal("0.20"))],
    )
    base.update(kw)
    return sale_create(data=SaleInput(**base))


def test_sale_create_derives_amounts_from_lines_and_fees():
    sale = make(processing_fee=150, shipping_fee=499,
                customer=CustomerInput(name="Ada", email="ada@example.com"),
                payments=[PaymentInput(method="card", amount=1000, gateway="sandbox")])
    line = sale.lines.get()
    assert (line.net_amount, line.tax_amount) == (3600, 720)
    assert sale.total == 3600 + 720 + 150 + 499
    assert sale.number == f"S-{sale.pk:06d}"
    assert Sale.objects.get(pk=sale.pk).number == sale.number
    assert sale.status == "partially_paid"
    assert sale.customer.email == "ada@example.com"


def test_order_discount_is_spread_over_lines_exactly():
    sale = make(lines=[
        LineInput(description="A", quantity=1, unit_price=1000),
        LineInput(description="B", quantity=1, unit_price=1000),
        LineInput(description="C", quantity=1, unit_price=1000),
    ], order_discount=100)
    discounts = list(sale.lines.order_by("pk").values_list("discount", flat=True))
    assert sum(discounts) == 100
    assert discounts == [33, 33, 34]
    assert sale.subtotal == 2900


def test_sale_create_rejects_bad_lines_with_field_paths():
    with pytest.raises(ValidationFailedError) as exc:
        make(lines=[LineInput(description="A", quantity=0, unit_price=10)])
    assert "lines[0].quantity" in exc.value.extra


def test_sale_create_rejects_payments_above_total():
    with pytest.raises(PaymentExceedsBalanceError):
        make(payments=[PaymentInput(method="cash", amount=999_999)])


def test_duplicate_external_id_is_a_clear_error():
    make(external_id="WEB-1")
    with pytest.raises(DuplicateExternalIdError):
        make(external_id="WEB-1")


def test_sale_takes_stock_and_quote_does_not():
    product = Product.objects.create(sku="P1", name="Pen", price=250, stock=10)
    make(lines=[LineInput(sku="P1", quantity=4)])
    product.refresh_from_db()
    assert product.stock == 6
    make(kind="quote", lines=[LineInput(product_id=product.pk, quantity=4)])
    product.refresh_from_db()
    assert product.stock == 6
    assert SaleLine.objects.filter(product=product).first().unit_price == 250


def test_payment_record_moves_status_and_refuses_overpayment():
    sale = make()
    payment_record(sale_id=sale.pk, amount=1000, method="cash")
    sale.refresh_from_db()
    assert sale.status == "partially_paid"
    payment_record(sale_id=sale.pk, amount=sale.balance_due, method="card")
    sale.refresh_from_db()
    assert sale.status == "paid" and sale.paid_at is not None
    with pytest.raises(PaymentExceedsBalanceError):
        payment_record(sale_id=sale.pk, amount=1, method="cash")


def test_payment_on_cancelled_sale_is_refused():
    sale = make()
    sale_cancel(sale_id=sale.pk, reason="customer")
    with pytest.raises(SaleCancelledError):
        payment_record(sale_id=sale.pk, amount=1, method="cash")


def test_sale_resolves_by_id_number_or_external_id():
    sale = make(external_id="BASKET-77")
    assert sale_resolve_id(sale.pk) == sale.pk
    assert sale_resolve_id(sale.number) == sale.pk
    assert sale_resolve_id("BASKET-77") == sale.pk

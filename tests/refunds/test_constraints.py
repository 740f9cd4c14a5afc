"""The database itself refuses over-refunds, whatever code writes."""

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F

from refunds.models import Refund
from sales.models import Payment, Sale, SaleLine
from tests.factories import SaleFactory

pytestmark = pytest.mark.django_db


def refuse(queryset, **update):
    with pytest.raises(IntegrityError), transaction.atomic():
        queryset.update(**update)


def test_line_refunded_quantity_cannot_exceed_quantity(paid_sale):
    lines = SaleLine.objects.filter(sale=paid_sale)
    refuse(lines, refunded_quantity=F("quantity") + 1)
    refuse(lines, refunded_quantity=-1)


def test_line_refunded_amount_and_tax_cannot_exceed_what_was_charged(paid_sale):
    lines = SaleLine.objects.filter(sale=paid_sale)
    refuse(lines, refunded_amount=F("net_amount") + 1)
    refuse(lines, refunded_tax=F("tax_amount") + 1)


def test_line_net_amount_must_add_up(paid_sale):
    refuse(SaleLine.objects.filter(sale=paid_sale), net_amount=F("net_amount") + 1)


def test_payment_refunded_amount_cannot_exceed_payment(paid_sale):
    refuse(Payment.objects.filter(sale=paid_sale), refunded_amount=F("amount") + 1)


def test_sale_refunded_cannot_exceed_paid_nor_paid_the_total(paid_sale):
    sales = Sale.objects.filter(pk=paid_sale.pk)
    refuse(sales, amount_refunded=F("amount_paid") + 1)
    refuse(sales, amount_paid=F("total") + 1)
    refuse(sales, refunded_units=F("units") + 1)


def test_a_fee_can_be_given_back_once_and_whole():
    sale = SaleFactory(shipping_fee=499)
    sales = Sale.objects.filter(pk=sale.pk)
    refuse(sales, refunded_shipping_fee=200)
    sales.update(refunded_shipping_fee=F("refunded_shipping_fee") + 499)
    refuse(sales, refunded_shipping_fee=F("refunded_shipping_fee") + 499)


def test_choices_are_constrained_in_the_database(paid_sale):
    refuse(Sale.objects.filter(pk=paid_sale.pk), status="bogus")
    refuse(Sale.objects.filter(pk=paid_sale.pk), kind="bogus")
    refuse(Payment.objects.filter(sale=paid_sale), method="bogus")


def test_refund_total_must_add_up(paid_sale):
    from refunds.services import refund_create

    refund_create(sale_id=paid_sale.pk)
    refuse(Refund.objects.all(), total=F("total") + 1)
    refuse(Refund.objects.all(), reason="bogus")


def test_currency_must_be_an_iso_code_on_sales_and_refunds(paid_sale):
    from refunds.services import refund_create

    sales = Sale.objects.filter(pk=paid_sale.pk)
    for bad in ("gbp", "GB", "G1P", ""):
        refuse(sales, currency=bad)
    sales.update(currency="EUR")  # any three capitals
    refund_create(sale_id=paid_sale.pk, items={paid_sale.lines.get().pk: 1})
    refunds = Refund.objects.all()
    refuse(refunds, currency="eur")
    refuse(refunds, currency="E1R")
    assert refunds.get().currency == "EUR"


def test_a_balance_refund_is_never_online(paid_sale):
    from refunds.services import RefundOptions, refund_create

    line = paid_sale.lines.get()
    refund_create(sale_id=paid_sale.pk, items={line.pk: 1})
    refund_create(sale_id=paid_sale.pk, items={line.pk: 1},
                  options=RefundOptions(type="balance_refund"))
    balance = Refund.objects.filter(type="balance_refund")
    assert balance.get().online is False
    refuse(balance, online=True)
    Refund.objects.filter(type="refund").update(online=True)  # allowed for a refund
    with pytest.raises(IntegrityError), transaction.atomic():
        Refund.objects.create(sale=paid_sale, type="balance_refund", online=True, currency="GBP")


def test_a_refund_reason_must_fit_its_type(paid_sale):
    from refunds.services import refund_create, sale_cancel

    line = paid_sale.lines.get()
    refund_create(sale_id=paid_sale.pk, items={line.pk: 1})
    refunds = Refund.objects.filter(type="refund")
    refuse(refunds, reason="fraud")  # a cancel reason
    refunds.update(reason="other")  # in both lists
    other = SaleFactory()
    sale_cancel(sale_id=other.pk, reason="inventory")
    cancellation = Refund.objects.filter(type="cancellation")
    assert cancellation.get().reason == "inventory"
    refuse(cancellation, reason="damaged")  # a refund reason
    with pytest.raises(IntegrityError), transaction.atomic():
        Refund.objects.create(sale=other, type="cancellation", reason="not_received",
                              currency="GBP", online=False)


def test_refund_external_id_index_leads_with_the_external_id():
    from django.db import connection

    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Refund._meta.db_table)
    unique = constraints["refund_external_id_unique_per_source"]
    assert unique["unique"] and unique["columns"] == ["external_id", "import_source"]

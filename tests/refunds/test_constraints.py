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

"""On PostgreSQL the sale, its customer, lines and payments are loaded (and locked) in one
statement; the instances are the ones the ORM builds, field for field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import transaction

from refunds.services import refund_create
from sales.models import Customer, Payment, Sale, SaleLine
from sales.selectors import sale_lock, sale_snapshot
from tests.factories import SaleFactory


def _fields(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def _orm(sale_id: int):
    sale = Sale.objects.select_related("customer").get(pk=sale_id)
    return (sale, sale.customer, list(SaleLine.objects.filter(sale_id=sale_id).order_by("pk")),
            list(Payment.objects.filter(sale_id=sale_id).order_by("pk")))


@pytest.mark.parametrize("load", [sale_lock, sale_snapshot])
def test_the_one_statement_load_builds_the_orms_instances(postgres, load):
    with_customer = SaleFactory(lines=[(3, 999), (1, 250)], tax_rate="0.175", payments=[
        {"method": "card", "amount": 1000}, {"method": "cash", "amount": 1815}], paid=False)
    refund_create(sale_id=with_customer.pk, items={with_customer.lines.first().pk: 1})
    Sale.objects.filter(pk=with_customer.pk).update(
        paid_at=datetime(2026, 11, 20, 10, 0, 0, 123456, tzinfo=UTC))
    anonymous = SaleFactory(with_customer=False, lines=[(1, 100)])
    for sale in (with_customer, anonymous):
        with transaction.atomic():
            locked = load(sale.pk)
            orm_sale, orm_customer, orm_lines, orm_payments = _orm(sale.pk)
        assert _fields(locked.sale) == _fields(orm_sale)
        assert [type(v) for v in _fields(locked.sale).values()] == [
            type(v) for v in _fields(orm_sale).values()]
        if orm_customer is None:
            assert locked.sale.customer is None
        else:
            assert _fields(locked.sale.customer) == _fields(orm_customer)
        assert [_fields(x) for x in locked.lines] == [_fields(x) for x in orm_lines]
        assert [str(x.tax_rate) for x in locked.lines] == [str(x.tax_rate) for x in orm_lines]
        assert [_fields(x) for x in locked.payments] == [_fields(x) for x in orm_payments]
        assert not locked.sale._state.adding and locked.sale._state.db == "default"


def test_an_unknown_sale_is_not_found(postgres):
    from backoffice.errors import SaleNotFoundError

    with pytest.raises(SaleNotFoundError), transaction.atomic():
        sale_lock(987654321)


def test_a_locked_sale_saves_like_an_orm_one(postgres):
    sale = SaleFactory(lines=[(1, 100)])
    with transaction.atomic():
        locked = sale_lock(sale.pk)
        locked.sale.shipping_fee = 77
        locked.sale.total += 77
        locked.sale.save(update_fields=["shipping_fee", "total"])
    assert Sale.objects.get(pk=sale.pk).shipping_fee == 77
    assert Customer.objects.filter(pk=locked.sale.customer_id).exists()

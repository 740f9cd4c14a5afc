"""The audit trail in the services (DESIGN §3.10): the API key a refund or an import came
through; how a sale was cancelled (door, restock, alert), on both write paths; and the
actors who did something can't be deleted (ProtectedError: deactivate them instead)."""

from __future__ import annotations

import pytest
from django.db.models import ProtectedError

from backoffice.models import ApiKey
from refunds.models import Refund, RefundImport, Source
from refunds.services import ledger as refund_module
from refunds.services import refund_create, refunds_bulk_import, sale_cancel
from sales.models import Payment, Sale, SaleCancellation
from sales.services import payment_record
from tests.factories import SaleFactory, UserFactory

pytestmark = pytest.mark.django_db

@pytest.fixture
def key(db) -> ApiKey:
    key, _ = ApiKey.objects.create_key(name="shop-sync", user=UserFactory(username="svc"))
    return key


@pytest.fixture
def write_path(request, monkeypatch):
    """`one_statement`: refund_write's PostgreSQL one-statement writer (skipped, or failed
    in CI, on SQLite); `orm`: the portable path."""
    one_statement = request.param
    if one_statement:
        request.getfixturevalue("postgres")
    monkeypatch.setattr(refund_module, "WRITE_IN_ONE_STATEMENT", one_statement)
    return one_statement


def _paths(test):
    return pytest.mark.parametrize("write_path", [True, False], indirect=True,
                                   ids=["one_statement", "orm"])(test)


# -- API keys ------------------------------------------------------------------------------


@_paths
def test_refund_create_stores_the_key_it_came_through(write_path, key):
    sale = SaleFactory(lines=[(3, 1200)])
    refund = refund_create(sale_id=sale.pk, items={sale.lines.get().pk: 1}, api_key=key,
                           source=Source.API).refund
    assert refund.api_key == key
    assert Refund.objects.get(pk=refund.pk).api_key_id == key.pk


@_paths
def test_refund_create_without_a_key_stores_none(write_path):
    sale = SaleFactory(lines=[(3, 1200)])
    refund = refund_create(sale_id=sale.pk).refund
    assert Refund.objects.get(pk=refund.pk).api_key_id is None


@_paths
def test_a_cancellation_refund_stores_the_key(write_path, key):
    sale = SaleFactory(lines=[(1, 500)])
    result = sale_cancel(sale_id=sale.pk, reason="customer", source=Source.API, api_key=key)
    assert Refund.objects.get(pk=result.refund.pk).api_key_id == key.pk


def test_a_bulk_import_stores_the_key_on_its_row_and_its_refunds(key):
    sale = SaleFactory(lines=[(3, 1200)])
    line = sale.lines.get()
    result = refunds_bulk_import(
        records=[{"id": "a", "sale_id": sale.pk, "line_items": [{"item_id": line.pk,
                                                                  "quantity": 1}]}],
        api_key=key,
    )
    assert RefundImport.objects.get(pk=result.import_id).api_key == key
    assert Refund.objects.get(pk__in=result.refund_ids).api_key == key


def test_a_bulk_import_from_the_admin_or_a_command_stores_no_key():
    sale = SaleFactory(lines=[(3, 1200)])
    line = sale.lines.get()
    result = refunds_bulk_import(
        records=[{"id": "a", "sale_id": sale.pk, "line_items": [{"item_id": line.pk,
                                                                  "quantity": 1}]}],
        door=Source.COMMAND,
    )
    assert RefundImport.objects.get(pk=result.import_id).api_key is None
    assert Refund.objects.get(pk__in=result.refund_ids).api_key is None


def test_a_key_that_made_a_refund_cannot_be_deleted(key):
    sale = SaleFactory(lines=[(3, 1200)])
    refund_create(sale_id=sale.pk, api_key=key)
    with pytest.raises(ProtectedError):
        key.delete()
    assert ApiKey.objects.filter(pk=key.pk).exists()


# -- how a sale was cancelled --------------------------------------------------------------


def _cancel_audit(sale_id: int) -> tuple | None:
    """The sale's cancellation row's door, options and actor; None: it has none."""
    row = SaleCancellation.objects.filter(sale_id=sale_id).first()
    return None if row is None else (row.source, row.restock, row.alert, row.cancelled_by_id)


@_paths
@pytest.mark.parametrize("source,restock,alert", [
    (Source.ADMIN, True, False), (Source.API, False, True), (Source.COMMAND, True, True),
    (Source.IMPORT, False, False),
])
def test_a_paid_sale_s_cancel_records_door_restock_and_alert(write_path, source, restock,
                                                              alert):
    staff = UserFactory(username="clerk")
    sale = SaleFactory(lines=[(1, 500)])
    result = sale_cancel(sale_id=sale.pk, reason="inventory", restock=restock,
                         alert_customer=alert, actor=staff, source=source)
    assert result.refund is not None
    assert _cancel_audit(sale.pk) == (source, restock, alert, staff.pk)
    c = result.sale.cancellation
    assert (c.source, c.restock, c.alert) == (source, restock, alert)


@pytest.mark.parametrize("kind,paid", [("invoice", False), ("quote", False)])
def test_a_cancel_with_nothing_paid_records_them_too(kind, paid):
    sale = SaleFactory(lines=[(1, 500)], kind=kind, paid=paid)
    result = sale_cancel(sale_id=sale.pk, reason="customer", restock=False,
                         alert_customer=False, source=Source.COMMAND)
    assert result.refund is None
    assert _cancel_audit(sale.pk) == ("command", False, False, None)


def test_an_unpaid_cancel_records_them_on_postgresql_too(postgres):
    sale = SaleFactory(lines=[(1, 500)], paid=False)
    sale_cancel(sale_id=sale.pk, reason="staff", restock=True, alert_customer=True,
                source=Source.API)
    assert _cancel_audit(sale.pk)[:3] == ("api", True, True)


def test_a_second_cancel_changes_nothing_recorded():
    sale = SaleFactory(lines=[(1, 500)])
    sale_cancel(sale_id=sale.pk, reason="customer", restock=False, source=Source.API)
    again = sale_cancel(sale_id=sale.pk, reason="other", restock=True, alert_customer=True,
                        source=Source.ADMIN)
    assert again.already
    assert _cancel_audit(sale.pk)[:3] == ("api", False, False)


@_paths
def test_a_refund_writes_no_cancellation(write_path):
    sale = SaleFactory(lines=[(3, 1200)])
    refund_create(sale_id=sale.pk, items={sale.lines.get().pk: 1})
    assert _cancel_audit(sale.pk) is None


def test_an_unknown_door_is_refused():
    from backoffice.errors import ValidationFailedError

    sale = SaleFactory(lines=[(1, 500)])
    with pytest.raises(ValidationFailedError):
        sale_cancel(sale_id=sale.pk, source="backdoor")
    assert not Sale.objects.get(pk=sale.pk).is_cancelled


# -- protected actors ----------------------------------------------------------------------


def _made_a_sale(user):
    sale = SaleFactory(lines=[(1, 500)], paid=False)
    Sale.objects.filter(pk=sale.pk).update(created_by=user)


def _took_a_payment(user):
    sale = SaleFactory(lines=[(1, 500)], paid=False)
    payment_record(sale_id=sale.pk, amount=sale.total, method="cash")
    Payment.objects.filter(sale=sale).update(created_by=user)


def _cancelled_a_sale(user):
    sale = SaleFactory(lines=[(1, 500)], paid=False)
    sale_cancel(sale_id=sale.pk, actor=user)


def _made_a_refund(user):
    sale = SaleFactory(lines=[(1, 500)])
    refund_create(sale_id=sale.pk, actor=user)


def _imported(user):
    RefundImport.objects.create(source="admin", count=0, outcome="success", created_by=user)


@pytest.mark.parametrize("act", [_made_a_sale, _took_a_payment, _cancelled_a_sale,
                                 _made_a_refund, _imported],
                         ids=lambda f: f.__name__.lstrip("_"))
def test_a_user_who_acted_cannot_be_deleted(act):
    user = UserFactory(username="actor")
    act(user)
    with pytest.raises(ProtectedError):
        user.delete()
    assert type(user).objects.filter(pk=user.pk).exists()


def test_a_user_who_did_nothing_can_still_be_deleted():
    user = UserFactory(username="idle")
    user.delete()
    assert not type(user).objects.filter(username="idle").exists()


def test_a_cancellation_names_the_same_doors_as_a_refund():
    # sales does not import refunds: SaleCancellation's source check lists the doors itself.
    from sales.models import CANCEL_SOURCES

    assert set(CANCEL_SOURCES) == set(Source.values)

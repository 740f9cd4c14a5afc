"""The messages: sale number, lines, amounts for people, the shop's name; SMS <= 160."""

from __future__ import annotations

import pytest
from django.template import Context, Template

from refunds.models import CustomerAlert
from refunds.services import RefundOptions, refund_create, sale_cancel
from refunds.services.alerts import alert_message
from tests.factories import SaleFactory

pytestmark = pytest.mark.django_db


def message_for(refund, channel="email"):
    return alert_message(CustomerAlert.objects.get(refund=refund, channel=channel))


def test_money_filter():
    template = Template("{% load money %}{{ a|money:'GBP' }} {{ b|money:'JPY' }}")
    assert template.render(Context({"a": 10403, "b": 1200})) == "£104.03 ¥1,200"


def test_partial_refund_message(settings, django_capture_on_commit_callbacks):
    settings.SHOP_NAME = "Teapot & Co"
    sale = SaleFactory(lines=[(3, 1200), (1, 8669)], shipping_fee=499)
    mug = sale.lines.order_by("pk").first()
    with django_capture_on_commit_callbacks(execute=False):
        refund = refund_create(sale_id=sale.pk, items={mug.pk: 2},
                               options=RefundOptions(alert_customer=True)).refund
    message = message_for(refund)
    assert sale.number in message.subject and "Teapot & Co" in message.subject
    assert "2 x Item 1 (ITEM-1): £28.80" in message.text  # 2 x 12.00 + 20% tax
    assert "Total refunded: £28.80" in message.text and "back to your card" in message.text
    assert "Item 2" not in message.text
    assert "Teapot &amp; Co" in message.html and "£28.80" in message.html
    assert "<td" in message.html and sale.number in message.html
    sms = message_for(refund, "sms").sms
    assert len(sms) <= 160 and "£28.80" in sms and sale.number in sms


def test_full_refund_message_in_yen_with_fees(django_capture_on_commit_callbacks):
    sale = SaleFactory(lines=[(1, 1000)], currency="JPY", tax_rate="0", shipping_fee=200)
    with django_capture_on_commit_callbacks(execute=False):
        refund = refund_create(sale_id=sale.pk, options=RefundOptions(alert_customer=True)).refund
    message = message_for(refund)
    assert "refunded in full" in message.subject
    assert "Shipping: ¥200" in message.text and "Total refunded: ¥1,200" in message.text
    assert "¥1,200" in message_for(refund, "sms").sms


def test_cancel_message(django_capture_on_commit_callbacks):
    sale = SaleFactory(lines=[(1, 10403)], tax_rate="0")
    with django_capture_on_commit_callbacks(execute=False):
        refund = sale_cancel(sale_id=sale.pk, reason="customer", alert_customer=True).refund
    message = message_for(refund)
    assert "cancelled" in message.subject and "£104.03" in message.text
    assert "£104.03 has been refunded" in message_for(refund, "sms").sms


@pytest.mark.parametrize("event", ["refund_created", "sale_refunded", "sale_cancelled"])
def test_every_sms_fits_in_160_characters(settings, event, django_capture_on_commit_callbacks):
    settings.SHOP_NAME = "The Extremely Long Named Purveyor of Fine Teapots and Sundries Ltd"
    sale = SaleFactory(lines=[(1, 99999999)], tax_rate="0")
    with django_capture_on_commit_callbacks(execute=False):
        refund = refund_create(sale_id=sale.pk, options=RefundOptions(alert_customer=True)).refund
    alert = CustomerAlert.objects.get(refund=refund, channel="sms")
    alert.event = event
    assert len(alert_message(alert).sms) <= 160


def test_send_sms_truncates_to_160(settings, sms_outbox):
    from backoffice.sms import send_sms

    send_sms("+447700900123", "x" * 500)
    assert len(sms_outbox[0].body) == 160

"""The demo data reads like a shop's last 40 days: payments after their sale, refunds and
cancels days later, spread over many days (the dashboard's today / week / month differ)."""

from __future__ import annotations

import io
from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone

from refunds.models import Refund
from sales.models import Payment, SaleCancellation


def test_demo_refunds_and_payments_follow_their_sales_over_many_days(db, settings):
    settings.DEBUG = True  # the demo passwords, as in the embedded run
    call_command("seed_demo", stdout=io.StringIO())
    now = timezone.now()
    refunds = list(Refund.objects.select_related("sale"))
    assert len(refunds) >= 5
    assert all(r.sale.created_at <= r.created_at <= now for r in refunds)
    assert len({r.created_at.date() for r in refunds}) >= 4
    assert not all(now - r.created_at < timedelta(days=1) for r in refunds)
    for payment in Payment.objects.select_related("sale"):
        assert payment.created_at >= payment.sale.created_at
    cancellations = list(SaleCancellation.objects.select_related("sale"))
    assert cancellations
    for cancellation in cancellations:
        assert cancellation.cancelled_at >= cancellation.sale.created_at


def test_without_the_sandbox_gateway_the_demo_pays_offline(db, settings):
    """Production has no sandbox gateway (SANDBOX_ENABLED off): the demo still seeds,
    with its card payments offline."""
    settings.PAYMENT_GATEWAYS = {"manual": "refunds.gateways.ManualGateway"}
    call_command("seed_demo", stdout=io.StringIO())
    assert Payment.objects.exists()
    assert set(Payment.objects.values_list("gateway", flat=True)) == {""}

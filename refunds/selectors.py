"""Reads for refunds that are more than a .get(): the admin dashboard's figures.

A handful of aggregate queries over indexed columns (`Refund.created_at`,
`Sale.created_at`), each bounded to the last 30 days, so the dashboard stays quick on
a big database. Failed refunds gave nothing back and are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from backoffice.money import exponent, format_money
from sales.models import CancelReason, Sale, SaleStatus

from .models import ALL_REASONS, Refund, RefundReason, RefundStatus, reason_label

WINDOW_DAYS = 30


@dataclass
class PeriodFigures:
    label: str
    count: int
    # Per currency: [(currency, minor units, "£12.00"), ...], biggest first.
    totals: list[tuple[str, int, str]]


@dataclass
class Dashboard:
    periods: list[PeriodFigures]
    sales_in_window: int
    refunded_sales_in_window: int
    refund_rate: float | None  # share of the window's sales with something given back
    top_reasons: list[tuple[str, int]]  # (label, count)
    currency: str | None  # the chart's currency: the most refunded one in the window
    series: dict = field(default_factory=dict)  # {"labels", "counts", "amounts"}


def _given_back():
    return Refund.objects.exclude(status=RefundStatus.FAILED)


def _period(label: str, since: datetime) -> PeriodFigures:
    rows = (
        _given_back().filter(created_at__gte=since)
        .values("currency").annotate(n=Count("id"), amount=Sum("total")).order_by("-amount")
    )
    rows = list(rows)
    return PeriodFigures(
        label=label,
        count=sum(r["n"] for r in rows),
        totals=[(r["currency"], r["amount"] or 0, format_money(r["amount"] or 0, r["currency"]))
                for r in rows],
    )


def _dashboard_reason(code: str) -> str:
    """A reason among the dashboard's top ones: a cancellation's says so."""
    if code not in RefundReason.values and code in CancelReason.values:
        return f"Cancelled: {reason_label(code)}"
    return reason_label(code)


def refund_dashboard(*, now: datetime | None = None) -> Dashboard:
    now = now or timezone.now()
    local = timezone.localtime(now)
    today = local.replace(hour=0, minute=0, second=0, microsecond=0)
    week = today - timedelta(days=today.weekday())
    month = today.replace(day=1)
    window_start = today - timedelta(days=WINDOW_DAYS - 1)

    periods = [
        _period("Today", today),
        _period("This week", week),
        _period("This month", month),
    ]

    sales = Sale.objects.filter(created_at__gte=window_start).exclude(
        status=SaleStatus.QUOTE
    ).aggregate(
        n=Count("id"),
        refunded=Count("id", filter=Q(amount_refunded__gt=0) | Q(refunded_units__gt=0)),
    )
    n_sales, n_refunded = sales["n"] or 0, sales["refunded"] or 0

    reasons = (
        _given_back().filter(created_at__gte=window_start, reason__in=ALL_REASONS)
        .values("reason").annotate(n=Count("id")).order_by("-n", "reason")[:5]
    )
    top_reasons = [(_dashboard_reason(r["reason"]), r["n"]) for r in reasons]

    window = _given_back().filter(created_at__gte=window_start)
    main = (
        window.values("currency").annotate(amount=Sum("total")).order_by("-amount").first()
    )
    currency = main["currency"] if main else None
    per_day = {
        row["day"]: row
        for row in window.annotate(day=TruncDate("created_at")).values("day")
        .annotate(n=Count("id"), amount=Sum("total", filter=Q(currency=currency)))
        .order_by("day")
    }
    labels, counts, amounts = [], [], []
    scale = 10 ** exponent(currency or "GBP")
    for i in range(WINDOW_DAYS):
        day: date = (window_start + timedelta(days=i)).date()
        row = per_day.get(day, {})
        labels.append(day.isoformat())
        counts.append(row.get("n", 0))
        amounts.append((row.get("amount") or 0) / scale)

    return Dashboard(
        periods=periods,
        sales_in_window=n_sales,
        refunded_sales_in_window=n_refunded,
        refund_rate=(n_refunded / n_sales) if n_sales else None,
        top_reasons=top_reasons,
        currency=currency,
        series={"labels": labels, "counts": counts, "amounts": amounts,
                "currency": currency or ""},
    )

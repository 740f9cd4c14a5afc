"""One badge per status, one label per reason: each status renders its one badge (the
model's TextChoices label in the model's STATUS_TONES colour) on every page that shows it,
and each reason reads as its TextChoices label wherever staff see it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.template import Context, Template
from django.urls import reverse

from backoffice.badges import NEEDS_ATTENTION, TONES, badge
from refunds.models import (
    AlertStatus,
    CustomerAlert,
    Refund,
    RefundReason,
    RefundStatus,
    reason_label,
)
from refunds.services import RefundOptions, refund_create
from sales.models import CancelReason, Sale, SaleStatus

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent.parent
STATUSES = [(Sale, SaleStatus), (Refund, RefundStatus), (CustomerAlert, AlertStatus)]
EVERY_STATUS = [(model, status) for model, choices in STATUSES for status in choices]


def expected_badge(tone: str, label: str) -> str:
    return f'<span class="bo-badge bo-badge-{tone}">{label}</span>'


@pytest.mark.parametrize("model,status", EVERY_STATUS,
                         ids=[f"{m.__name__}-{s.value}" for m, s in EVERY_STATUS])
def test_each_status_renders_its_one_badge(model, status):
    tone = model.STATUS_TONES[status]
    assert tone in TONES
    html = expected_badge(tone, status.label)
    assert badge(model(status=status)) == html
    rendered = Template("{% load badges %}{% badge obj %}").render(
        Context({"obj": model(status=status)}))
    assert rendered == html


def test_every_status_has_a_tone_and_no_tone_names_a_gone_status():
    for model, choices in STATUSES:
        assert set(model.STATUS_TONES) == set(choices.values), model.__name__


def test_a_refund_that_needs_attention_shows_that_badge_instead():
    refund = Refund(status=RefundStatus.PENDING)
    refund.needs_attention = True  # type: ignore[attr-defined]
    assert badge(refund) == expected_badge("red", NEEDS_ATTENTION)


def test_the_sale_list_and_the_sale_page_show_the_same_badge(admin_client, paid_sale):
    html = expected_badge(Sale.STATUS_TONES[SaleStatus.PAID], SaleStatus.PAID.label)
    listing = admin_client.get(reverse("admin:sales_sale_changelist"))
    page = admin_client.get(reverse("admin:sales_sale_change", args=[paid_sale.pk]))
    assert listing.status_code == page.status_code == 200
    assert html in listing.content.decode()
    assert html in page.content.decode()


def test_the_refund_and_alert_lists_show_the_badges(admin_client, paid_sale):
    line = paid_sale.lines.get()
    refund_create(sale_id=paid_sale.pk, items={line.pk: 1},
                  options=RefundOptions(alert_customer=True), actor=None)
    refunds = admin_client.get(reverse("admin:refunds_refund_changelist"))
    assert expected_badge("green", RefundStatus.SUCCEEDED.label) in refunds.content.decode()
    alerts = admin_client.get(reverse("admin:refunds_customeralert_changelist"))
    assert alerts.status_code == 200
    for alert in CustomerAlert.objects.filter(sale=paid_sale):
        assert expected_badge(CustomerAlert.STATUS_TONES[alert.status],
                              alert.get_status_display()) in alerts.content.decode()
    assert CustomerAlert.objects.filter(sale=paid_sale).exists()


@pytest.mark.parametrize("choices", [RefundReason, CancelReason])
def test_every_reason_reads_as_its_label(choices):
    for reason in choices:
        assert reason_label(reason.value) == reason.label
        assert Refund(reason=reason.value).get_reason_display() == reason.label


def test_the_refund_list_and_credit_note_show_the_reasons_label(admin_client, paid_sale):
    line = paid_sale.lines.get()
    refund = refund_create(sale_id=paid_sale.pk, items={line.pk: 1},
                           options=RefundOptions(reason=RefundReason.DAMAGED), actor=None).refund
    listing = admin_client.get(reverse("admin:refunds_refund_changelist")).content.decode()
    assert "Damaged" in listing and ">damaged<" not in listing
    note = admin_client.get(reverse("admin:refunds_refund_credit_note", args=[refund.pk]))
    assert "Reason: Damaged." in note.content.decode()


# Where a label or a badge could be written a second time.
SECOND_SOURCE = re.compile(r"dict\((Refund|Cancel)Reason\.choices\)|bo-badge-|STATUS_COLOURS")


def test_labels_and_badges_are_built_in_one_place_only():
    allowed = {"refunds/models.py", "backoffice/badges.py"}
    found = []
    for app in ("backoffice", "sales", "refunds"):
        for path in sorted((ROOT / app).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in allowed or "/migrations/" in rel:
                continue
            found += [f"{rel}:{n}" for n, line in enumerate(path.read_text().splitlines(), 1)
                      if SECOND_SOURCE.search(line)]
    templates = [p.relative_to(ROOT).as_posix() for p in (ROOT / "templates").rglob("*.html")
                 if "bo-badge" in p.read_text()]
    assert found == [] and templates == []

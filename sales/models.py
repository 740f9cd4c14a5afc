"""Customers, products, sales, their lines and payments.

Money is an integer in minor units; the currency lives on the sale. Counters that the
refund services move (`refunded_quantity`, `refunded_amount`, ...) carry CHECK
constraints, so no code path — and no race — can give back more than was bought or paid.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import models
from django.db.models import Case, CharField, F, Q, Value, When
from django.db.models.functions import Cast, Concat, LPad

from backoffice.errors import EXTERNAL_ID_LIKE_NUMBER

from .choices import CANCEL_SOURCES, CancelReason, SaleChannel, SaleKind, SaleStatus
from .choices import choices_check as _choices_check


class Customer(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True, db_index=True)
    phone = models.CharField(max_length=32, blank=True)
    # Store credit in minor units (balance refunds add to it).
    store_balance = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(store_balance__gte=0), name="customer_store_balance_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.email else self.name


class Product(models.Model):
    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    price = models.BigIntegerField(default=0, help_text="Unit price in minor units.")
    # May go below zero: a shop can sell what is on back order.
    stock = models.IntegerField(default=0)

    class Meta:
        ordering = ["sku"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="product_price_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} — {self.name}"


# A sale's number is drawn from its primary key: unique, gap-tolerant, never max()+1.
# Padded to at least six digits, never cut: S-000123, S-999999, S-1000000. (LPAD alone
# truncates to its length, which turned S-1000000 into S-100000, a duplicate.)
SALE_NUMBER_DIGITS = 6
# ISO 4217 alphabetic code; the services upper-case and check it, the database backs it.
CURRENCY_PATTERN = r"^[A-Z]{3}$"


def sale_number(pk: int) -> str:
    """The number of the sale with this primary key (the same as SALE_NUMBER in SQL)."""
    return f"S-{pk:0{SALE_NUMBER_DIGITS}d}"


_ID_TEXT = Cast("id", CharField())
SALE_NUMBER = Concat(
    Value("S-"),
    Case(
        When(id__lt=10**SALE_NUMBER_DIGITS,
             then=LPad(_ID_TEXT, SALE_NUMBER_DIGITS, Value("0"))),
        default=_ID_TEXT,
        output_field=CharField(),
    ),
    output_field=CharField(),
)


# A sale number's shape (S-000123, any case, any count of ASCII digits): no external id
# may take it, or the sale a number names would depend on which door asked.
SALE_NUMBER_SHAPE = re.compile(r"[Ss]-[0-9]+")


def external_id_problem(value: str | None) -> str | None:
    """Why an external id can't be stored (None when it can): one sale per name."""
    if value and SALE_NUMBER_SHAPE.fullmatch(value.strip()):
        return (
            f"{value!r} has the shape of a sale number (S-000123): an external id may not "
            "look like one, or it could name another sale."
        )
    return None


def validate_external_id(value: str | None) -> None:
    if problem := external_id_problem(value):
        raise ValidationError(problem, code=EXTERNAL_ID_LIKE_NUMBER)


class Sale(models.Model):
    # Each status's badge colour (backoffice/badges.py); its words are SaleStatus's labels.
    STATUS_TONES = {
        SaleStatus.QUOTE: "grey",
        SaleStatus.UNPAID: "amber",
        SaleStatus.PARTIALLY_PAID: "amber",
        SaleStatus.PAID: "green",
        SaleStatus.PARTIALLY_REFUNDED: "blue",
        SaleStatus.REFUNDED: "purple",
        SaleStatus.CANCELLED: "red",
    }

    number = models.CharField(max_length=32, unique=True, null=True, editable=False)
    kind = models.CharField(max_length=16, choices=SaleKind.choices, default=SaleKind.RECEIPT)
    channel = models.CharField(
        max_length=16, choices=SaleChannel.choices, default=SaleChannel.MANUAL
    )
    external_id = models.CharField(
        max_length=128, unique=True, null=True, blank=True, validators=[validate_external_id]
    )
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="sales"
    )
    currency = models.CharField(max_length=3, default="GBP")

    order_discount = models.BigIntegerField(default=0)
    processing_fee = models.BigIntegerField(default=0)
    reseller_fee = models.BigIntegerField(default=0)
    shipping_fee = models.BigIntegerField(default=0)

    # Derived at sale time from the lines; fixed afterwards.
    subtotal = models.BigIntegerField(default=0, help_text="Sum of the lines' net amounts.")
    tax_total = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0)
    units = models.IntegerField(default=0, help_text="Sum of the lines' quantities.")

    # Counters moved by the services under the sale's row lock.
    amount_paid = models.BigIntegerField(default=0)
    amount_refunded = models.BigIntegerField(default=0)
    refunded_units = models.IntegerField(default=0)
    refunded_processing_fee = models.BigIntegerField(default=0)
    refunded_reseller_fee = models.BigIntegerField(default=0)
    refunded_shipping_fee = models.BigIntegerField(default=0)

    status = models.CharField(max_length=24, choices=SaleStatus.choices, default=SaleStatus.UNPAID)

    # Who did it stays on the books: a user who acted can't be deleted (deactivate them).
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    # Cancelled: who, when, why and how is its SaleCancellation row (`sale.cancellation`).

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [("cancel_sale", "Can cancel a sale")]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="sale_status_created"),
            models.Index(fields=["-created_at", "-id"], name="sale_created"),
            models.Index(fields=["customer", "-created_at"], name="sale_customer_created"),
            models.Index(fields=["channel", "-created_at"], name="sale_channel_created"),
        ]
        constraints = [
            _choices_check("sale_kind_valid", "kind", SaleKind),
            _choices_check("sale_channel_valid", "channel", SaleChannel),
            _choices_check("sale_status_valid", "status", SaleStatus),
            models.CheckConstraint(
                condition=Q(currency__regex=CURRENCY_PATTERN), name="sale_currency_iso_code"
            ),
            models.CheckConstraint(
                condition=Q(processing_fee__gte=0, reseller_fee__gte=0, shipping_fee__gte=0),
                name="sale_fees_gte_0",
            ),
            models.CheckConstraint(
                condition=Q(
                    total=F("subtotal") + F("tax_total") + F("processing_fee")
                    + F("reseller_fee") + F("shipping_fee")
                ),
                name="sale_total_adds_up",
            ),
            models.CheckConstraint(
                condition=Q(amount_paid__gte=0, amount_paid__lte=F("total")),
                name="sale_paid_lte_total",
            ),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0, amount_refunded__lte=F("amount_paid")),
                name="sale_refunded_lte_paid",
            ),
            models.CheckConstraint(
                condition=Q(refunded_units__gte=0, refunded_units__lte=F("units")),
                name="sale_refunded_units_lte_units",
            ),
            # A fee is given back at most once: all of it or none of it.
            models.CheckConstraint(
                condition=Q(refunded_processing_fee=0)
                | Q(refunded_processing_fee=F("processing_fee")),
                name="sale_processing_fee_refunded_once",
            ),
            models.CheckConstraint(
                condition=Q(refunded_reseller_fee=0) | Q(refunded_reseller_fee=F("reseller_fee")),
                name="sale_reseller_fee_refunded_once",
            ),
            models.CheckConstraint(
                condition=Q(refunded_shipping_fee=0) | Q(refunded_shipping_fee=F("shipping_fee")),
                name="sale_shipping_fee_refunded_once",
            ),
        ]

    def __str__(self) -> str:
        return self.number or f"Sale #{self.pk}"

    @property
    def balance_due(self) -> int:
        return self.total - self.amount_paid

    @property
    def refundable_amount(self) -> int:
        return self.amount_paid - self.amount_refunded

    @property
    def is_cancelled(self) -> bool:
        return self.status == SaleStatus.CANCELLED

    @property
    def cancellation_or_none(self) -> SaleCancellation | None:
        """The sale's cancellation row, or None when it is not cancelled. A query unless
        it was select_related ("cancellation") or set by the ledger."""
        try:
            return self.cancellation  # type: ignore[attr-defined]
        except ObjectDoesNotExist:
            return None

    def compute_status(self, *, cancelled: bool | None = None) -> str:
        """The status the counters imply. Needs no other row: `cancelled` says whether
        the sale is (now) cancelled; None keeps what the stored status says (the ledger
        passes it when an effect cancels or un-cancels the sale, with the
        SaleCancellation row it writes or deletes)."""
        if cancelled is None:
            cancelled = self.status == SaleStatus.CANCELLED
        if cancelled:
            return SaleStatus.CANCELLED
        if self.kind == SaleKind.QUOTE:
            return SaleStatus.QUOTE
        anything_back = self.amount_refunded > 0 or self.refunded_units > 0
        if anything_back:
            fees_left = (
                (self.processing_fee - self.refunded_processing_fee)
                + (self.reseller_fee - self.refunded_reseller_fee)
                + (self.shipping_fee - self.refunded_shipping_fee)
            )
            if (
                self.refunded_units >= self.units
                and fees_left == 0
                and self.amount_refunded >= self.amount_paid
            ):
                return SaleStatus.REFUNDED
            return SaleStatus.PARTIALLY_REFUNDED
        if self.amount_paid <= 0:
            return SaleStatus.UNPAID
        if self.amount_paid < self.total:
            return SaleStatus.PARTIALLY_PAID
        return SaleStatus.PAID


class SaleCancellation(models.Model):
    """A sale's cancellation: who, when, why, through which door and with which options.
    Its own row (one per sale at most), written and deleted by the ledger with the sale's
    `cancelled` status: a cancellation the gateway refused is undone by deleting it, and
    a cancel with nothing paid, which writes no refund, is still recorded here.
    `manage.py audit_books` reports a cancelled sale without one and one on a sale that
    is not cancelled (a database constraint cannot span the two tables)."""

    sale = models.OneToOneField(
        Sale, primary_key=True, on_delete=models.CASCADE, related_name="cancellation"
    )
    cancelled_at = models.DateTimeField()
    reason = models.CharField(max_length=16, choices=CancelReason.choices)
    note = models.TextField(blank=True, help_text="Staff only: the customer never sees it.")
    # Who did it stays on the books: a user who acted can't be deleted (deactivate them).
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The door (refunds.models.Source: admin, api, command, import); blank on sales
    # cancelled before it was recorded, like the options' nulls.
    source = models.CharField(max_length=16, blank=True, default="")
    restock = models.BooleanField(null=True, blank=True)
    alert = models.BooleanField(null=True, blank=True)

    class Meta:
        constraints = [
            _choices_check("salecancellation_reason_valid", "reason", CancelReason),
            models.CheckConstraint(
                condition=Q(source__in=["", *CANCEL_SOURCES]),
                name="salecancellation_source_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"Cancellation of sale {self.sale_id}"


class Order(Sale):
    """Sales from the online channels (storefront and API), as integrators call them."""

    class Meta:
        proxy = True
        verbose_name = "order"
        verbose_name_plural = "orders"


class SaleLine(models.Model):
    sale = models.ForeignKey(Sale, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(
        Product, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sku = models.CharField(max_length=64, blank=True)
    description = models.CharField(max_length=255)
    quantity = models.IntegerField()
    unit_price = models.BigIntegerField()
    discount = models.BigIntegerField(
        default=0, help_text="The line's whole discount, order-level discount included."
    )
    tax_rate = models.DecimalField(max_digits=6, decimal_places=4, default=0)
    net_amount = models.BigIntegerField()
    tax_amount = models.BigIntegerField(default=0)

    refunded_quantity = models.IntegerField(default=0)
    refunded_amount = models.BigIntegerField(default=0)
    refunded_tax = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="saleline_quantity_gt_0"),
            models.CheckConstraint(
                condition=Q(unit_price__gte=0, discount__gte=0, tax_rate__gte=0),
                name="saleline_price_discount_rate_gte_0",
            ),
            models.CheckConstraint(
                condition=Q(net_amount=F("quantity") * F("unit_price") - F("discount"))
                & Q(net_amount__gte=0),
                name="saleline_net_amount_adds_up",
            ),
            models.CheckConstraint(
                condition=Q(refunded_quantity__gte=0, refunded_quantity__lte=F("quantity")),
                name="saleline_refunded_lte_quantity",
            ),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0, refunded_amount__lte=F("net_amount")),
                name="saleline_refunded_amount_lte_net",
            ),
            models.CheckConstraint(
                condition=Q(refunded_tax__gte=0, refunded_tax__lte=F("tax_amount")),
                name="saleline_refunded_tax_lte_tax",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.description}"

    @property
    def remaining_quantity(self) -> int:
        return self.quantity - self.refunded_quantity


class PaymentMethod(models.TextChoices):
    CARD = "card", "Card"
    CASH = "cash", "Cash"
    BANK_TRANSFER = "bank_transfer", "Bank transfer"
    STORE_CREDIT = "store_credit", "Store credit"
    WALLET = "wallet", "Wallet"
    OTHER = "other", "Other"


class Payment(models.Model):
    sale = models.ForeignKey(Sale, on_delete=models.CASCADE, related_name="payments")
    method = models.CharField(max_length=16, choices=PaymentMethod.choices)
    amount = models.BigIntegerField()
    # Blank = offline (cash, bank transfer...). Otherwise a key of settings.PAYMENT_GATEWAYS.
    gateway = models.CharField(max_length=32, blank=True)
    gateway_reference = models.CharField(max_length=128, blank=True)
    refunded_amount = models.BigIntegerField(default=0)
    # Who did it stays on the books: a user who acted can't be deleted (deactivate them).
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            _choices_check("payment_method_valid", "method", PaymentMethod),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_gt_0"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0, refunded_amount__lte=F("amount")),
                name="payment_refunded_lte_amount",
            ),
        ]

    def __str__(self) -> str:
        # "Card £105.15". Reads the sale's currency: lists and inlines select_related it.
        from backoffice.money import format_money

        return f"{self.get_method_display()} {format_money(self.amount, self.sale.currency)}"

    @property
    def remaining_amount(self) -> int:
        return self.amount - self.refunded_amount


from .stock_moves import StockMove  # noqa: E402, F401 - its own room, loaded with the app

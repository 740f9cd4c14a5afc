"""Forms of the staff admin's refund and cancel pages.

They only parse what staff typed into the arguments of the services (`refund_preview`,
`refund_create`, `sale_cancel`); every business rule — how much is left, what a line
gives back, how it is split — is the service's, and its `DomainError` is shown on the
form by `add_domain_error`.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from django import forms

from backoffice import errors
from backoffice.errors import DomainError
from backoffice.money import exponent, format_money
from sales.models import CancelReason, Payment, Sale, SaleLine

from ..models import RefundReason, RefundType
from ..services import RefundOptions

FEE_CHOICES = [
    ("", "Default: only when this refund gives back everything that is left"),
    ("yes", "Yes, give it back"),
    ("no", "No, keep it"),
]
FEES = [
    ("refund_processing_fee", "processing_fee", "refunded_processing_fee", "Processing fee"),
    ("refund_reseller_fee", "reseller_fee", "refunded_reseller_fee", "Reseller fee"),
    ("refund_shipping", "shipping_fee", "refunded_shipping_fee", "Shipping"),
]
NO_ITEMS = "Enter how many units to give back on at least one line."


# The largest amount a form accepts, in minor units (the API's bound for money).
MAX_AMOUNT = 10**13


def parse_money(text: str, currency: str) -> int:
    """'12.50' in GBP -> 1250. Raises ValueError for anything that is not an amount."""
    cleaned = text.strip().replace(",", "")
    cleaned = re.sub(r"^[^\d.-]+", "", cleaned)  # a typed currency symbol
    try:
        value = Decimal(cleaned).scaleb(exponent(currency))
    except InvalidOperation:
        raise ValueError(text) from None
    # 1e5000, Infinity, NaN: not an amount (and no bigint column could hold them).
    if not value.is_finite() or not 0 <= value <= MAX_AMOUNT:
        raise ValueError(text)
    if value != value.to_integral_value():
        raise ValueError(text)
    return int(value)


def minor_to_text(amount: int, currency: str) -> str:
    """1250 in GBP -> '12.50' (what an amount input shows)."""
    exp = exponent(currency)
    return f"{Decimal(amount).scaleb(-exp):.{exp}f}"


if TYPE_CHECKING:
    # The mixin is only ever mixed into a form: type it as one.
    _FormBase = forms.Form
else:
    _FormBase = object


class DomainErrorFormMixin(_FormBase):
    """Show a service's DomainError on the form: field errors where a field matches."""

    def error_field_for(self, path: str) -> str | None:
        return path if path in self.fields else None

    def add_domain_error(self, error: DomainError) -> None:
        placed = False
        for path, problems in (error.extra or {}).items():
            name = self.error_field_for(path)
            for problem in problems:
                if name:
                    self.add_error(name, problem)
                    placed = True
        if not placed or error.status == 409:
            self.add_error(None, error.message)


class RefundForm(DomainErrorFormMixin, forms.Form):
    type = forms.ChoiceField(
        choices=[(RefundType.REFUND, "Refund the money (to the payments below)"),
                 (RefundType.BALANCE_REFUND, "Credit the customer's store balance")],
        initial=RefundType.REFUND,
    )
    # Checkboxes come before their label: no colon after it (label_suffix="").
    restock = forms.BooleanField(
        required=False, initial=True, label="Put the units back in stock", label_suffix=""
    )
    alert_customer = forms.BooleanField(
        required=False, initial=False, label="Tell the customer (email / SMS)",
        label_suffix="",
    )
    online = forms.BooleanField(
        required=False, initial=True, label_suffix="",
        label="Refund online through the payment's gateway",
        help_text="Payments with no gateway (cash, bank transfer) are always paid back offline.",
    )
    reason = forms.ChoiceField(
        choices=RefundReason.choices, initial=RefundReason.REQUESTED_BY_CUSTOMER
    )
    note = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="For staff only; the customer never sees it.",
    )
    expected_refunded_amount = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, *args, sale: Sale, lines: list[SaleLine], payments: list[Payment],
                 **kwargs):
        kwargs.setdefault("initial", {}).setdefault(
            "expected_refunded_amount", sale.amount_refunded
        )
        super().__init__(*args, **kwargs)
        self.sale, self.lines, self.payments = sale, lines, payments
        self.line_rows = []
        for line in lines:
            name = f"qty_{line.pk}"
            left = line.remaining_quantity
            self.fields[name] = forms.IntegerField(
                required=False, min_value=0, label=line.description,
                widget=forms.NumberInput(attrs={
                    "min": 0, "max": left, "step": 1, "class": "bo-qty vSmallField",
                    "data-max": left, "placeholder": "0", "disabled": left == 0,
                    "aria-label": f"Quantity of {line.description} to give back",
                }),
            )
            self.line_rows.append((line, name))
        self.fee_rows = []
        for flag, amount_field, refunded_field, label in FEES:
            amount = getattr(sale, amount_field)
            if amount and not getattr(sale, refunded_field):
                self.fields[flag] = forms.ChoiceField(
                    choices=FEE_CHOICES, required=False,
                    label=f"{label} ({format_money(amount, sale.currency)})",
                )
                self.fee_rows.append(flag)
        self.payment_rows = []
        for payment in payments:
            name = f"split_{payment.pk}"
            self.fields[name] = forms.CharField(
                required=False, label=str(payment),
                widget=forms.TextInput(attrs={
                    "class": "bo-split vTextField", "inputmode": "decimal", "size": 10,
                    "disabled": payment.remaining_amount == 0,
                }),
            )
            self.payment_rows.append((payment, name))

    # -- what the services take ------------------------------------------------------

    def clean(self):
        data = super().clean()
        items = {}
        for line, name in self.line_rows:
            qty = data.get(name)
            if qty:
                items[line.pk] = qty
        data["items"] = items
        if not items and not self.errors:
            raise forms.ValidationError(NO_ITEMS, code=errors.NO_ITEMS)
        splits = {}
        for payment, name in self.payment_rows:
            text = (data.get(name) or "").strip()
            if not text:
                continue
            try:
                splits[payment.pk] = parse_money(text, self.sale.currency)
            except ValueError:
                self.add_error(name, f"“{text}” is not an amount (for example 12.50).")
        if splits:
            # Some amounts typed: the payments left empty give back nothing.
            for payment, _ in self.payment_rows:
                splits.setdefault(payment.pk, 0)
        data["splits"] = splits or None
        return data

    def options(self) -> RefundOptions:
        data = self.cleaned_data

        def fee(name):
            value = data.get(name) or ""
            return None if value == "" else value == "yes"

        return RefundOptions(
            type=data["type"],
            restock=data["restock"],
            refund_processing_fee=fee("refund_processing_fee"),
            refund_reseller_fee=fee("refund_reseller_fee"),
            refund_shipping=fee("refund_shipping"),
            alert_customer=data["alert_customer"],
            online=data["online"],
            reason=data["reason"],
            note=data["note"],
        )

    def service_kwargs(self) -> dict:
        return {
            "sale_id": self.sale.pk,
            "items": self.cleaned_data["items"],
            "options": self.options(),
            "splits": self.cleaned_data["splits"],
            "expected_refunded_amount": self.cleaned_data["expected_refunded_amount"],
        }

    def error_field_for(self, path: str) -> str | None:
        # items[i].quantity -> the i-th line with a quantity; splits[pid] -> its input.
        match = re.fullmatch(r"items\[(\d+)\]\.\w+", path)
        if match and self.is_bound and hasattr(self, "cleaned_data"):
            ids = list(self.cleaned_data.get("items", {}))
            index = int(match.group(1))
            if index < len(ids):
                return f"qty_{ids[index]}"
        match = re.fullmatch(r"splits\[(\d+)\]", path)
        if match:
            name = f"split_{match.group(1)}"
            return name if name in self.fields else None
        if path in ("type", "reason"):
            return path
        return None

    @property
    def only_no_items(self) -> bool:
        return [e.code for e in self.non_field_errors().as_data()] == [errors.NO_ITEMS] and all(
            name == "__all__" for name in self.errors
        )


class CancelForm(forms.Form):
    reason = forms.ChoiceField(choices=CancelReason.choices, initial=CancelReason.CUSTOMER)
    note = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="For staff only; the customer never sees it.",
    )
    restock = forms.BooleanField(required=False, initial=True, label_suffix="",
                                 label="Put the units back in stock")
    alert_customer = forms.BooleanField(required=False, initial=False, label_suffix="",
                                        label="Tell the customer (email / SMS)")


    def cancel_kwargs(self) -> dict:
        """The arguments of sale_cancel that staff chose."""
        data = self.cleaned_data
        return {key: data[key] for key in ("reason", "note", "restock", "alert_customer")}


class BulkRefundForm(forms.Form):
    """The options of "Refund selected sales in full" (its confirmation page)."""

    restock = forms.BooleanField(required=False, initial=True, label_suffix="",
                                 label="Put the units back in stock")
    alert_customer = forms.BooleanField(required=False, initial=False, label_suffix="",
                                        label="Tell each customer (email / SMS)")
    online = forms.BooleanField(required=False, initial=True, label_suffix="",
                                label="Refund online through each payment's gateway")
    reason = forms.ChoiceField(choices=RefundReason.choices,
                               initial=RefundReason.REQUESTED_BY_CUSTOMER)
    note = forms.CharField(required=False,
                           widget=forms.Textarea(attrs={"rows": 2, "cols": 60}))

    def options(self) -> RefundOptions:
        data = self.cleaned_data
        return RefundOptions(
            restock=data["restock"], alert_customer=data["alert_customer"],
            online=data["online"], reason=data["reason"], note=data["note"],
        )


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label="JSON file of refund records",
        help_text="A JSON array of records as POST /api/v2/refunds/json takes them.",
    )

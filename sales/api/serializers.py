"""Serializers: parse requests into the services' inputs, render results. No rules here."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from backoffice.api import strict
from backoffice.api.fields import IdField, MoneyField
from sales.models import (
    Customer,
    PaymentMethod,
    Product,
    SaleChannel,
    SaleKind,
)
from sales.services import (
    CustomerInput,
    LineInput,
    PaymentInput,
    SaleInput,
    SaleUpdate,
    product_save,
)


class CustomerSerializer(strict.ModelSerializer):
    store_balance = MoneyField(read_only=True)

    class Meta:
        model = Customer
        fields = ["id", "name", "email", "phone", "store_balance", "created_at"]
        read_only_fields = ["id", "store_balance", "created_at"]


class ProductSerializer(strict.ModelSerializer):
    price = MoneyField(min_value=0, max_value=2**62)
    stock = serializers.IntegerField(required=False, min_value=-(2**31), max_value=2**31 - 1)

    class Meta:
        model = Product
        fields = ["id", "sku", "name", "price", "stock"]

    # The stock set here is recorded as a move (opening, adjustment): product_save.
    def create(self, validated_data: dict[str, Any]) -> Product:
        return product_save(Product(**validated_data))

    def update(self, instance: Product, validated_data: dict[str, Any]) -> Product:
        for name, value in validated_data.items():
            setattr(instance, name, value)
        return product_save(instance)


class SaleLineSerializer(strict.Serializer):
    id = serializers.IntegerField()
    product_id = serializers.IntegerField(allow_null=True)
    sku = serializers.CharField()
    description = serializers.CharField()
    quantity = serializers.IntegerField()
    refunded_quantity = serializers.IntegerField()
    unit_price = MoneyField()
    discount = MoneyField()
    tax_rate = serializers.DecimalField(max_digits=6, decimal_places=4)
    net_amount = MoneyField()
    tax_amount = MoneyField()
    refunded_amount = MoneyField()
    refunded_tax = MoneyField()


class PaymentSerializer(strict.Serializer):
    id = serializers.IntegerField()
    method = serializers.CharField()
    amount = MoneyField()
    refunded_amount = MoneyField()
    gateway = serializers.CharField()
    gateway_reference = serializers.CharField()
    created_at = serializers.DateTimeField()


class SaleRefundSummarySerializer(strict.Serializer):
    """A refund as listed on its sale (the full refund: GET /refunds/{id}/)."""

    id = serializers.IntegerField()
    type = serializers.CharField()
    status = serializers.CharField()
    total = MoneyField()
    units = serializers.IntegerField()
    reason = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]
    external_id = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    withdrawn_at = serializers.DateTimeField(allow_null=True)


def customer_details_visible(request) -> bool:
    """A sale document names its customer (name, email, phone) only to a caller who may
    read customers (`sales.view_customer`, as /customers/ asks); others get the id."""
    user = getattr(request, "user", None)
    return bool(user is not None and user.has_perm("sales.view_customer"))


class SaleCustomerSerializer(strict.Serializer):
    """The sale's customer; only `id` without `sales.view_customer`."""

    id = serializers.IntegerField()
    name = serializers.CharField(required=False)
    email = serializers.CharField(required=False)
    phone = serializers.CharField(required=False)

    def to_representation(self, instance):
        if not self.context.get("customer_details", False):
            return {"id": instance.pk}
        return super().to_representation(instance)


class CancelledAtField(serializers.DateTimeField):
    """When the sale was cancelled (its SaleCancellation row), null when it is not."""

    def get_attribute(self, instance):
        cancellation = instance.cancellation_or_none
        return cancellation.cancelled_at if cancellation is not None else None


class CancelReasonField(serializers.CharField):
    """Why the sale was cancelled (its SaleCancellation row), "" when it is not."""

    def get_attribute(self, instance):
        cancellation = instance.cancellation_or_none
        return cancellation.reason if cancellation is not None else ""


class SaleListSerializer(strict.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    external_id = serializers.CharField(allow_null=True)
    kind = serializers.CharField()
    channel = serializers.CharField()
    status = serializers.CharField()
    currency = serializers.CharField()
    customer = SaleCustomerSerializer(allow_null=True)
    processing_fee = MoneyField()
    reseller_fee = MoneyField()
    shipping_fee = MoneyField()
    order_discount = MoneyField()
    subtotal = MoneyField()
    tax_total = MoneyField()
    total = MoneyField()
    amount_paid = MoneyField()
    balance_due = MoneyField()
    amount_refunded = MoneyField()
    refundable_amount = MoneyField()
    units = serializers.IntegerField()
    refunded_units = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    paid_at = serializers.DateTimeField(allow_null=True)
    # From the sale's cancellation row (select_related "cancellation": no query a sale).
    cancelled_at = CancelledAtField(allow_null=True)
    cancel_reason = CancelReasonField()


class SaleSerializer(SaleListSerializer):
    """One sale with its lines, payments and refunds (data of GET /sales/{id}/)."""

    lines = SaleLineSerializer(many=True)
    payments = PaymentSerializer(many=True)
    refunds = SaleRefundSummarySerializer(many=True)


class CustomerInputSerializer(strict.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    email = serializers.EmailField(required=False, allow_blank=True)
    phone = serializers.CharField(required=False, allow_blank=True, max_length=32)


class LineInputSerializer(strict.Serializer):
    sku = serializers.CharField(required=False, allow_blank=True, max_length=64)
    product_id = IdField(required=False, allow_null=True)
    description = serializers.CharField(required=False, allow_blank=True, max_length=255)
    quantity = serializers.IntegerField(min_value=1, max_value=1_000_000)
    unit_price = MoneyField(required=False, allow_null=True, min_value=0, max_value=10**12)
    discount = MoneyField(required=False, default=0, min_value=0, max_value=10**12)
    tax_rate = serializers.DecimalField(
        max_digits=6, decimal_places=4, required=False, min_value=0, max_value=9,
    )


class PaymentInputSerializer(strict.Serializer):
    method = serializers.ChoiceField(choices=PaymentMethod.choices)
    amount = MoneyField(min_value=1, max_value=10**13)
    gateway = serializers.CharField(required=False, allow_blank=True, default="", max_length=32)
    gateway_reference = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=128
    )

    def to_input(self) -> PaymentInput:
        return PaymentInput(**self.validated_data)


def _lines(items: list[dict]) -> list[LineInput]:
    out = []
    for item in items:
        data = {k: v for k, v in item.items() if v is not None}
        out.append(LineInput(**data))
    return out


def _customer(data: dict | None) -> CustomerInput | None:
    return CustomerInput(**data) if data else None


_FEE: dict[str, Any] = {"required": False, "default": 0, "min_value": 0, "max_value": 10**12}


class SaleCreateSerializer(strict.Serializer):
    kind = serializers.ChoiceField(choices=SaleKind.choices, default=SaleKind.INVOICE)
    channel = serializers.ChoiceField(choices=SaleChannel.choices, default=SaleChannel.API)
    currency = serializers.RegexField(r"^[A-Za-z]{3}$", default="GBP")
    external_id = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=128
    )
    customer_id = IdField(required=False, allow_null=True)
    customer = CustomerInputSerializer(required=False, allow_null=True)
    lines = LineInputSerializer(many=True, allow_empty=False, max_length=1000)  # type: ignore[call-arg]
    order_discount = MoneyField(**_FEE)
    processing_fee = MoneyField(**_FEE)
    reseller_fee = MoneyField(**_FEE)
    shipping_fee = MoneyField(**_FEE)
    payments = PaymentInputSerializer(  # type: ignore[call-arg]
        many=True, required=False, max_length=100
    )

    def to_input(self) -> SaleInput:
        d = self.validated_data
        return SaleInput(
            lines=_lines(d["lines"]),
            kind=d["kind"], channel=d["channel"], currency=d["currency"].upper(),
            external_id=d.get("external_id") or None,
            customer_id=d.get("customer_id"), customer=_customer(d.get("customer")),
            order_discount=d["order_discount"], processing_fee=d["processing_fee"],
            reseller_fee=d["reseller_fee"], shipping_fee=d["shipping_fee"],
            payments=[PaymentInput(**p) for p in d.get("payments", [])],
        )


class SaleUpdateSerializer(strict.Serializer):
    """PATCH: only the fields sent change; `lines` replaces all the lines."""

    kind = serializers.ChoiceField(choices=SaleKind.choices, required=False)
    external_id = serializers.CharField(required=False, allow_blank=True, max_length=128)
    customer_id = IdField(required=False)
    customer = CustomerInputSerializer(required=False)
    lines = LineInputSerializer(  # type: ignore[call-arg]
        many=True, required=False, allow_empty=False, max_length=1000
    )
    order_discount = MoneyField(required=False, min_value=0, max_value=10**12)
    processing_fee = MoneyField(required=False, min_value=0, max_value=10**12)
    reseller_fee = MoneyField(required=False, min_value=0, max_value=10**12)
    shipping_fee = MoneyField(required=False, min_value=0, max_value=10**12)

    def to_input(self) -> SaleUpdate:
        d = dict(self.validated_data)
        if "lines" in d:
            d["lines"] = _lines(d["lines"])
        if "customer" in d:
            d["customer"] = _customer(d["customer"])
        return SaleUpdate(**d)


class BalanceSerializer(strict.Serializer):
    """PUT /sales/balance/{id}: record a payment."""

    amount = MoneyField(min_value=1, max_value=10**13)
    method = serializers.ChoiceField(choices=PaymentMethod.choices)
    gateway = serializers.CharField(required=False, allow_blank=True, default="", max_length=32)
    gateway_reference = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=128
    )


"""factory_boy factories: one per model, traits for states."""

from __future__ import annotations

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from sales.models import Customer, Product, Sale
from sales.services import product_save


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    is_staff = True
    # Hashed when the user is built (one INSERT; a post-generation set_password saved twice).
    password = factory.django.Password("correct-horse-battery")


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Faker("name")
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    phone = "+447700900123"


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"SKU-{n}")
    name = factory.Faker("word")
    price = 1200
    stock = 100

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        # As the doors make one: its stock is its opening move (audit_books checks it).
        return product_save(model_class(*args, **kwargs))


class SaleFactory:
    """Sales are made through the service, so their derived amounts are always right.

    SaleFactory(lines=[(qty, unit_price), ...], paid=True, gateway="sandbox", ...)
    """

    def __new__(  # type: ignore[misc]
        cls,
        *,
        lines: list[tuple[int, int]] | list[dict] | None = None,
        paid: bool = True,
        payments: list[dict] | None = None,
        kind: str = "invoice",
        channel: str = "manual",
        currency: str = "GBP",
        tax_rate: str = "0.20",
        order_discount: int = 0,
        processing_fee: int = 0,
        reseller_fee: int = 0,
        shipping_fee: int = 0,
        customer: Customer | None = None,
        with_customer: bool = True,
        external_id: str | None = None,
        gateway: str = "",
        product: Product | None = None,
    ) -> Sale:
        from sales.services import LineInput, SaleInput, sale_create

        specs = lines or [(3, 1200)]
        line_inputs = []
        for i, spec in enumerate(specs):
            if isinstance(spec, dict):
                line_inputs.append(LineInput(**spec))
            else:
                qty, price = spec
                line_inputs.append(LineInput(
                    quantity=qty, unit_price=price, description=f"Item {i + 1}",
                    sku=f"ITEM-{i + 1}", tax_rate=Decimal(tax_rate),
                    product_id=product.pk if product else None,
                ))
        data = SaleInput(
            lines=line_inputs, kind=kind, channel=channel, currency=currency,
            external_id=external_id, order_discount=order_discount,
            processing_fee=processing_fee, reseller_fee=reseller_fee, shipping_fee=shipping_fee,
        )
        if customer is not None:
            data.customer_id = customer.pk
        elif with_customer:
            c = CustomerFactory()
            data.customer_id = c.pk
        sale = sale_create(data=data)
        if payments is not None:
            from sales.services import payment_record

            for p in payments:
                payment_record(sale_id=sale.pk, **p)
        elif paid and kind != "quote":
            from sales.services import payment_record

            payment_record(sale_id=sale.pk, amount=sale.total, method="card", gateway=gateway)
        sale.refresh_from_db()
        return sale


__all__ = ["CustomerFactory", "ProductFactory", "SaleFactory", "UserFactory"]

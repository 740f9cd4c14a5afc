"""For the line-item refund API's and Klar's tests: a sale that can be made twice alike
(the dialect refunds one, the native API the other; tests/snapshot.sale_books compares
them), and a non-staff integration user holding the API's permissions."""

from __future__ import annotations

from decimal import Decimal

from tests.api.conftest import ALL_PERMS, grant
from tests.factories import ProductFactory, SaleFactory, UserFactory


def twin_sale(**kwargs):
    """A mug line on a product of its own (stock counts) and a discounted tea line, two
    tax rates, a processing and a shipping fee, paid in full by card (offline)."""
    product = ProductFactory(stock=10)
    return SaleFactory(lines=[{"quantity": 3, "unit_price": 1200, "description": "Mug",
                               "sku": "MUG", "product_id": product.pk,
                               "tax_rate": Decimal("0.20")},
                              {"quantity": 2, "unit_price": 499, "description": "Tea",
                               "sku": "TEA", "discount": 100, "tax_rate": Decimal("0.05")}],
                       processing_fee=150, shipping_fee=500, **kwargs)


def integration_user(username: str):
    user = UserFactory(username=username, is_staff=False)
    grant(user, *ALL_PERMS)
    return user

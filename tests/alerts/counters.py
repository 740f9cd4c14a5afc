"""Every counter a refund moves, to compare before and after."""

from sales.models import Customer, Payment, Product, Sale, SaleCancellation, SaleLine

SALE_COUNTERS = ["amount_paid", "amount_refunded", "refunded_units", "refunded_processing_fee",
                 "refunded_reseller_fee", "refunded_shipping_fee", "status"]


def counters(sale: Sale) -> dict:
    products = SaleLine.objects.filter(sale=sale, product__isnull=False).values("product_id")
    return {
        "sale": Sale.objects.filter(pk=sale.pk).values(*SALE_COUNTERS).get(),
        # A cancellation undone leaves no row behind.
        "cancellation": list(SaleCancellation.objects.filter(sale=sale).values_list(
            "cancelled_at", "reason")),
        "lines": list(SaleLine.objects.filter(sale=sale).order_by("pk").values_list(
            "pk", "refunded_quantity", "refunded_amount", "refunded_tax")),
        "payments": list(Payment.objects.filter(sale=sale).order_by("pk").values_list(
            "pk", "refunded_amount")),
        "stock": list(Product.objects.filter(pk__in=products).order_by("pk").values_list(
            "pk", "stock")),
        "store_balance": Customer.objects.filter(pk=sale.customer_id).values_list(
            "store_balance", flat=True).first(),
    }

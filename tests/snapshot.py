"""Every row a sale, refund or cancel can write, to prove a refused request wrote
nothing (compare `db_state()` before and after) or that two doors wrote the same."""

from __future__ import annotations

from django.apps import apps

MODELS = [
    "sales.Customer", "sales.Product", "sales.Sale", "sales.SaleCancellation",
    "sales.SaleLine", "sales.Payment",
    "refunds.Refund", "refunds.RefundLine", "refunds.RefundPayment", "refunds.CustomerAlert",
]
# Not here: refunds.RefundImport, where a refused bulk upload is recorded as a failure
# (GET /refunds/status's last_failure), and the API keys' last_used_at.


def db_state() -> dict[str, list[tuple]]:
    state = {}
    for label in MODELS:
        model = apps.get_model(label)
        names = [f.attname for f in model._meta.concrete_fields]
        state[label] = list(model.objects.order_by("pk").values_list(*names))
    return state


# What names a row rather than what it moved: ids, who and through which door, and when.
_DOOR_FIELDS = {"id", "number", "external_id", "customer_id", "sale_id", "refund_id",
                "product_id", "created_by_id", "api_key_id", "idempotency_key",
                "request_hash", "source", "import_source", "recipient", "gateway_reference"}
_DATES_KEPT = {"returned_at", "cancelled_at"}


def _moved(obj) -> dict:
    from django.db import models

    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields
            if f.attname not in _DOOR_FIELDS
            and (not isinstance(f, models.DateTimeField) or f.attname in _DATES_KEPT)}


def sale_books(sale) -> dict:
    """What the refunds of one sale moved (the sale's counters and status, its lines and
    their products' stock, its payments, its refunds with their lines and allocations,
    its alerts, its cancellation), with no id, timestamp or door, lines and payments named by their
    position in the sale: two sales made alike and refunded through two doors must
    compare equal."""
    Sale = apps.get_model("sales.Sale")
    Refund = apps.get_model("refunds.Refund")
    sale = Sale.objects.get(pk=sale.pk)
    lines = list(sale.lines.select_related("product").order_by("pk"))
    payments = list(sale.payments.order_by("pk"))
    line_at = {line.pk: i for i, line in enumerate(lines)}
    payment_at = {p.pk: i for i, p in enumerate(payments)}
    refunds = Refund.objects.filter(sale=sale).order_by("pk").prefetch_related(
        "lines", "allocations")
    return {
        "sale": _moved(sale),
        "lines": [{**_moved(line), "stock": line.product.stock if line.product else None}
                  for line in lines],
        "payments": [_moved(p) for p in payments],
        "refunds": [{
            **_moved(r),
            "lines": sorted((line_at[rl.sale_line_id], rl.quantity, rl.amount, rl.tax_amount)
                            for rl in r.lines.all()),
            "allocations": sorted((payment_at[a.payment_id], a.amount, a.online, a.status)
                                  for a in r.allocations.all()),
        } for r in refunds],
        "alerts": [_moved(a) for a in sale.alerts.order_by("pk")],
        "cancellation": [_moved(c) for c in apps.get_model("sales.SaleCancellation")
                         .objects.filter(sale=sale)],
    }

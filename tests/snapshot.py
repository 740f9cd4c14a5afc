"""Every row a sale, refund or cancel can write, to prove a refused request wrote
nothing (compare `db_state()` before and after) or that two doors wrote the same."""

from __future__ import annotations

from django.apps import apps

MODELS = [
    "sales.Customer", "sales.Product", "sales.Sale", "sales.SaleLine", "sales.Payment",
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

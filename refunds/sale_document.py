"""A sale's refunds in the sale document (GET /sales/{id}/ and every answer that shows a
sale): registered with sales' document (`sales.document`) when this app is ready, so
sales renders them without importing refunds. The fields are SaleRefundSummarySerializer's
(sales/api/serializers.py: the document's shape is sales' API contract), in its order.
"""

from __future__ import annotations

from sales.document import SaleDocumentList, sql_datetime, sql_json_object

from .models import Refund


def _json_sql(sale_id: str) -> str:
    refund = sql_json_object([
        ("id", "r.id"), ("type", "r.type"), ("status", "r.status"), ("total", "r.total"),
        ("units", "r.units"), ("reason", "r.reason"), ("source", "r.source"),
        ("external_id", "r.external_id"), ("created_at", sql_datetime("r.created_at")),
        ("withdrawn_at", sql_datetime("r.withdrawn_at")),
    ])
    return (f"SELECT coalesce(json_agg({refund} ORDER BY r.id), '[]'::json) "
            f"FROM {Refund._meta.db_table} r WHERE r.sale_id = {sale_id}")


SALE_REFUNDS = SaleDocumentList(
    key="refunds", rows=lambda: Refund.objects.order_by("pk"), json_sql=_json_sql,
)

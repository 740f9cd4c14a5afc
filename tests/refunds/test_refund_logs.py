"""Every refund and cancel writes one log line that names the refund and the sale."""

from __future__ import annotations

import json
import logging

from backoffice.logging import JsonFormatter, RequestContextFilter
from refunds.services import refund_create, sale_cancel
from tests.factories import SaleFactory


def _lines(caplog, message: str) -> list[dict]:
    formatter, context = JsonFormatter(), RequestContextFilter()
    out = []
    for record in caplog.records:
        if record.getMessage() == message:
            context.filter(record)
            out.append(json.loads(formatter.format(record)))
    return out


def test_a_refund_logs_its_id_and_its_sales(db, caplog):
    sale = SaleFactory(lines=[(3, 1200)])
    with caplog.at_level(logging.INFO, logger="refunds"):
        refund = refund_create(sale_id=sale.pk, items={sale.lines.get().pk: 1}).refund
    [line] = _lines(caplog, "refund created")
    assert line["refund_id"] == refund.pk and line["sale_id"] == sale.pk
    assert line["total"] == refund.total and line["status"] == "succeeded"


def test_a_cancel_logs_the_sale_and_its_refund(db, caplog):
    sale = SaleFactory(lines=[(1, 500)])
    with caplog.at_level(logging.INFO, logger="refunds"):
        result = sale_cancel(sale_id=sale.pk, reason="customer")
    [line] = _lines(caplog, "sale cancelled")
    assert line["sale_id"] == sale.pk and line["refund_id"] == result.refund.pk
    assert result.refund.status == "succeeded"  # read back after the eager settlement

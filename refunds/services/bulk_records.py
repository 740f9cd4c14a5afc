"""Bulk refund records as sent (DESIGN §4): read and checked one by one, before any sale
is looked at. Each problem is named by its path (`[3].line_items[0].quantity`); a key
the record does not know is refused by name, never ignored (backoffice.api.strict).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeGuard

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from backoffice.errors import BATCH_TOO_LARGE, DomainError, unknown_keys
from backoffice.errors import UNKNOWN_FIELD_MESSAGE as UNKNOWN_MESSAGE
from backoffice.parsing import ID_MAX, INT_MAX, YES_NO_INVALID, is_id, parse_yes_no

from ..models import RefundReason


class BatchTooLargeError(DomainError):
    code = BATCH_TOO_LARGE
    status = 413


@dataclass
class BulkRecord:
    index: int
    id: str
    sale_ident: str
    sale_field: str
    line_items: list[tuple[int, int]]
    refunded_at: datetime | None = None
    reason: str = RefundReason.REQUESTED_BY_CUSTOMER
    restock: bool = True
    note: str = ""
    batch_id: str = ""


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


# Ids are 1..ID_MAX (a bigint), quantities 1..INT_MAX: a larger integer is refused on
# its field, before it reaches a query (where SQLite's integers would overflow).
# Text PostgreSQL cannot store (NUL) or UTF-8 cannot encode (a lone surrogate, which
# JSON's "\ud800" escapes can carry): refused on its field, as DRF's CharField does.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _text_problem(value: Any) -> str | None:
    """Why a string cannot be stored as text (None: it can)."""
    if not isinstance(value, str):
        return None
    bad = _UNSTORABLE.search(value)
    if bad is None:
        return None
    if bad[0] == "\x00":
        return "Null characters are not allowed."
    return f"Surrogate characters are not allowed: U+{ord(bad[0]):X}."


# What a record and its line items may carry: anything else is refused by name
# (`[3].line_items[0].price`), never ignored (backoffice.api.strict).
RECORD_KEYS = frozenset({"id", "sale_id", "order_id", "refunded_at", "reason", "restock",
                         "note", "batch_id", "line_items"})
LINE_ITEM_KEYS = frozenset({"item_id", "quantity"})


def _unknown(raw: dict, known: frozenset[str], prefix: str) -> dict[str, list[str]]:
    return {f"{prefix}.{key}": [UNKNOWN_MESSAGE] for key in unknown_keys(raw, known)}


def parse_records(records: Any) -> tuple[list[BulkRecord], dict[str, list[str]]]:
    errors: dict[str, list[str]] = {}
    if not isinstance(records, list):
        return [], {"records": ["Send a JSON array of refund records."]}
    limit = settings.BULK_IMPORT_MAX_RECORDS
    if len(records) > limit:
        raise BatchTooLargeError(
            f"A batch holds at most {limit} records; this one has {len(records)}.",
            extra={"records": [f"At most {limit} records."]},
        )
    parsed: list[BulkRecord] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(records):
        p = f"[{i}]"
        if not isinstance(raw, dict):
            errors[p] = ["Each record must be an object."]
            continue
        bad: dict[str, list[str]] = _unknown(raw, RECORD_KEYS, p)
        for name in ("id", "sale_id", "order_id", "note", "batch_id", "reason"):
            problem = _text_problem(raw.get(name))
            if problem:
                bad[f"{p}.{name}"] = [problem]
        rid = raw.get("id")
        if _is_int(rid):
            rid = str(rid)
        if f"{p}.id" in bad:
            pass
        elif not isinstance(rid, str) or not rid.strip() or len(rid) > 128:
            bad[f"{p}.id"] = ["Required: a string of at most 128 characters."]
        elif rid in seen:
            bad[f"{p}.id"] = [f"Same id as record {seen[rid]}."]
        else:
            seen[rid] = i
        sale_field = "sale_id" if raw.get("sale_id") not in (None, "") else "order_id"
        ident = raw.get(sale_field)
        if f"{p}.{sale_field}" in bad:
            pass
        elif _is_int(ident) and not is_id(ident):
            bad[f"{p}.{sale_field}"] = [f"An id is an integer from 1 to {ID_MAX}."]
        elif not (_is_int(ident) or (isinstance(ident, str) and ident.strip())):
            bad[f"{p}.sale_id"] = ["Required: sale_id or order_id (an id or external id)."]
        items: list[tuple[int, int]] = []
        line_items = raw.get("line_items")
        if not isinstance(line_items, list):
            bad[f"{p}.line_items"] = ["Required: a list (empty withdraws the record)."]
        else:
            for j, item in enumerate(line_items):
                q = f"{p}.line_items[{j}]"
                if not isinstance(item, dict):
                    bad[q] = ["Each line item must be an object."]
                    continue
                bad.update(_unknown(item, LINE_ITEM_KEYS, q))
                item_id, quantity = item.get("item_id"), item.get("quantity")
                if not is_id(item_id):
                    bad[f"{q}.item_id"] = [
                        f"Required: the sale line's id (an integer from 1 to {ID_MAX})."
                    ]
                if not _is_int(quantity) or not 1 <= quantity <= INT_MAX:
                    bad[f"{q}.quantity"] = [
                        f"Required: a whole number from 1 to {INT_MAX}."
                    ]
                if is_id(item_id) and _is_int(quantity) and not any(
                        k.startswith(q) for k in bad):
                    items.append((item_id, quantity))
        refunded_at = None
        if raw.get("refunded_at") not in (None, ""):
            value = raw["refunded_at"]
            try:
                refunded_at = parse_datetime(value) if isinstance(value, str) else None
            except ValueError:
                refunded_at = None
            if refunded_at is not None and timezone.is_naive(refunded_at):
                refunded_at = refunded_at.replace(tzinfo=UTC)
            try:  # stored in UTC: 0001-01-01T00:00+01:00 is not a date any more
                refunded_at = refunded_at.astimezone(UTC) if refunded_at else None
            except (OverflowError, ValueError):
                refunded_at = None
            if refunded_at is None:
                bad[f"{p}.refunded_at"] = ["An ISO 8601 date and time, e.g. 2026-11-20T10:00:00Z."]
        reason = raw.get("reason") or RefundReason.REQUESTED_BY_CUSTOMER
        if f"{p}.reason" not in bad and reason not in RefundReason.values:
            bad[f"{p}.reason"] = [f"One of {', '.join(RefundReason.values)}."]
        # The API's rule for booleans: true/false or "yes"/"no".
        restock = parse_yes_no(raw.get("restock", True))
        if restock is None:
            bad[f"{p}.restock"] = [YES_NO_INVALID]
        note = raw.get("note") or ""
        batch_id = raw.get("batch_id") or ""
        if not isinstance(note, str) or len(note) > BULK_NOTE_MAX_LENGTH:
            bad[f"{p}.note"] = [f"A string of at most {BULK_NOTE_MAX_LENGTH} characters."]
        if not isinstance(batch_id, str) or len(str(batch_id)) > 128:
            bad.setdefault(f"{p}.batch_id", ["A string of at most 128 characters."])
        if bad:
            errors.update(bad)
            continue
        assert restock is not None  # refused above otherwise
        parsed.append(BulkRecord(
            index=i, id=str(rid), sale_ident=str(ident).strip(), sale_field=sale_field,
            line_items=items, refunded_at=refunded_at, reason=reason, restock=restock,
            note=note, batch_id=batch_id,
        ))
    return parsed, errors


# A staff note per record: capped so that a batch of 1000 records stays well inside the
# API's body limit (settings.DATA_UPLOAD_MAX_MEMORY_SIZE).
BULK_NOTE_MAX_LENGTH = 1000


def records_summary(errors: dict[str, list[str]], records: list) -> list[dict]:
    per: dict[int, dict[str, list[str]]] = defaultdict(dict)
    for path, msgs in errors.items():
        if not path.startswith("["):
            continue
        index = int(path[1:path.index("]")])
        rest = path[path.index("]") + 1:].lstrip(".") or "record"
        per[index][rest] = msgs
    out = []
    for index in sorted(per):
        raw = records[index] if isinstance(records, list) and index < len(records) else None
        rid = raw.get("id") if isinstance(raw, dict) else None
        if isinstance(rid, str):  # kept as sent, less what no text column can hold
            rid = _UNSTORABLE.sub("\ufffd", rid)[:128]
        elif not _is_int(rid):
            rid = None  # the errors say what is wrong with it
        out.append({"index": index, "id": rid, "errors": per[index]})
    return out


__all__ = ["BULK_NOTE_MAX_LENGTH", "BatchTooLargeError", "BulkRecord", "parse_records",
           "records_summary"]

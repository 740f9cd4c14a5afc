"""Klar's error array: class-validator's ValidationError tree, from the record checks
(DRF's errors, whose codes are the constraint names) or from the bulk service's refusals
(its paths in Klar's words)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.settings import api_settings

from backoffice.errors import UNKNOWN_FIELD
from refunds.services import (
    BulkRecordsInvalidError,
)

from .records import MESSAGES, NOT_AN_ARRAY

# Native field names (the bulk service's error paths) in Klar's words, and the
# constraint a refusal by the service is reported under.
KLAR_NAMES = {"id": "id", "order_id": "orderId", "sale_id": "orderId",
              "refunded_at": "createdAt", "line_items": "lineItems", "item_id": "id",
              "quantity": "refundedQuantity"}
SERVICE_CONSTRAINTS = {"order_id": "orderExists", "sale_id": "orderExists",
                       "item_id": "lineItemExists", "quantity": "refundableQuantity"}
SERVICE_CONSTRAINT = "refundRule"

Problem = tuple[int, tuple[str | int, ...], str, str]  # index, path, constraint, message


def record_errors(detail: Any) -> dict[int, Any] | None:
    """DRF's errors for a list of records, by index (a list with one entry per record,
    or a dict keyed by the refused ones' indexes); None: not errors of records."""
    if isinstance(detail, list) and all(isinstance(d, dict) for d in detail):
        return dict(enumerate(detail))
    if isinstance(detail, dict) and detail and all(isinstance(k, int) for k in detail):
        return dict(detail)
    return None


def serializer_problems(by_index: dict[int, Any]) -> Iterator[Problem]:
    """DRF's errors for the records, by index, as problems."""
    for index, errors in sorted(by_index.items()):
        if errors:
            for segments, error in _walk(errors, ()):
                code = getattr(error, "code", None) or "isValid"
                if code == UNKNOWN_FIELD:
                    name = str(segments[-1]) if segments else ""
                    yield index, segments, "whitelistValidation", MESSAGES[
                        "whitelistValidation"].format(p=name)
                else:
                    yield index, segments, code, str(error)


def _walk(detail: Any, segments: tuple) -> Iterator[tuple[tuple, Any]]:
    if isinstance(detail, dict):
        for key, value in detail.items():
            inner = segments if key == api_settings.NON_FIELD_ERRORS_KEY else (*segments, key)
            yield from _walk(value, inner)
    elif isinstance(detail, list):
        for i, value in enumerate(detail):
            if isinstance(value, dict | list):
                if value:
                    yield from _walk(value, (*segments, i))
            else:
                yield segments, value
    else:
        yield segments, detail


_PATH = re.compile(r"\[(\d+)\]|\.?([A-Za-z_]+)")


def service_problems(extra: dict[str, list[str]]) -> Iterator[Problem]:
    """The bulk service's errors (`[3].line_items[0].quantity`) in Klar's words."""
    for key, messages in extra.items():
        parts = [int(i) if i else name for i, name in _PATH.findall(key)]
        if not parts or not isinstance(parts[0], int):
            continue
        index, rest = parts[0], parts[1:]
        segments = tuple(KLAR_NAMES.get(p, p) if isinstance(p, str) else p for p in rest)
        leaf = next((p for p in reversed(rest) if isinstance(p, str)), "")
        constraint = SERVICE_CONSTRAINTS.get(leaf, SERVICE_CONSTRAINT) if rest else \
            SERVICE_CONSTRAINT
        for message in messages:
            yield index, segments, constraint, message


def error_array(records: Any, problems: Iterator[Problem]) -> list[dict[str, Any]]:
    """class-validator's ValidationError tree, one entry per refused record: `property`
    (the record's index, then the path's names and indexes), `value` (as sent),
    `target` (the Refund object the error belongs to, as the seed shows), `children`,
    and `constraints` ({name: message}) where a value broke one."""
    roots: dict[int, dict[str, Any]] = {}
    for index, segments, constraint, message in problems:
        record = records[index] if isinstance(records, list) and index < len(records) \
            else None
        node = roots.get(index)
        if node is None:
            node = roots[index] = _node(record, record, str(index))
        value = record
        for segment in segments:
            value = _get(value, segment)
            child = next((c for c in node["children"] if c["property"] == str(segment)), None)
            if child is None:
                child = _node(record, value, str(segment))
                node["children"].append(child)
            node = child
        node.setdefault("constraints", {})[constraint] = message
    return [roots[i] for i in sorted(roots)]


def _node(target: Any, value: Any, prop: str) -> dict[str, Any]:
    return {"target": target, "value": value, "property": prop, "children": []}


def _get(value: Any, segment: str | int) -> Any:
    if isinstance(segment, int):
        return value[segment] if isinstance(value, list) and segment < len(value) else None
    return value.get(segment) if isinstance(value, dict) else None


def klar_problems(exc: Any) -> Iterator[Problem] | None:
    """The problems an exception names record by record (None: not that kind)."""
    by_index = record_errors(exc.detail) if isinstance(exc, ValidationError) else None
    if by_index is not None:
        return serializer_problems(by_index)
    if isinstance(exc, BulkRecordsInvalidError):
        return service_problems(exc.extra)
    return None


def refused_batch(records: Any, exc: ValidationError) -> BulkRecordsInvalidError:
    """Klar's own refusal of a batch as the native error (for the import's record)."""
    problems = list(klar_problems(exc) or [])
    summary: dict[int, dict[str, list[str]]] = {}
    for index, segments, _, message in problems:
        name = "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in segments)
        summary.setdefault(index, {}).setdefault(name.lstrip(".") or "record",
                                                 []).append(message)
    return BulkRecordsInvalidError(
        f"{len(summary)} record(s) refused, nothing written." if summary else NOT_AN_ARRAY,
        extra={}, records=[
            {"index": i, "id": records[i].get("id") if isinstance(records[i], dict) else None,
             "errors": errors} for i, errors in sorted(summary.items())])

from __future__ import annotations

from typing import Any, TypeGuard

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

# The largest id a bigint column holds (PostgreSQL and SQLite alike): a larger integer
# is refused as input (400) before it reaches a query, where SQLite would overflow.
ID_MAX = 2**63 - 1
# The largest count an integer column holds (quantities).
INT_MAX = 2**31 - 1

YES_NO_TRUE = frozenset({"yes", "true", "1", "on"})
YES_NO_FALSE = frozenset({"no", "false", "0", "off"})
YES_NO_INVALID = 'Must be true, false, "yes" or "no".'


def parse_yes_no(data: Any) -> bool | None:
    """The API's one rule for booleans: true/false, or "yes"/"no" (also "true"/"false",
    "1"/"0", "on"/"off"; any case, spaces ignored). None: not a boolean."""
    if isinstance(data, bool):
        return data
    if isinstance(data, str):
        text = data.strip().lower()
        if text in YES_NO_TRUE:
            return True
        if text in YES_NO_FALSE:
            return False
    return None


def is_id(value: Any) -> TypeGuard[int]:
    """An integer (not a boolean) in 1..2**63-1: what an id can be."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= ID_MAX


@extend_schema_field({"oneOf": [{"type": "boolean"}, {"type": "string", "enum": ["yes", "no"]}]})
class YesNoBooleanField(serializers.Field):
    """A boolean sent as true/false or "yes"/"no" (as the seeds' integrations do)."""

    default_error_messages = {"invalid": YES_NO_INVALID}

    def to_internal_value(self, data):
        value = parse_yes_no(data)
        if value is None:
            self.fail("invalid")
        return value

    def to_representation(self, value):
        return bool(value)


@extend_schema_field(OpenApiTypes.INT64)
class MoneyField(serializers.IntegerField):
    """An integer amount in minor units (pence, cents)."""


class IdField(serializers.IntegerField):
    """An id: an integer in 1..2**63-1 (anything else is a 400 naming the field)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", ID_MAX)
        super().__init__(**kwargs)


@extend_schema_field({"oneOf": [{"type": "integer", "format": "int64", "minimum": 1,
                                 "maximum": ID_MAX}, {"type": "string"}]})
class IdOrExternalIdField(serializers.CharField):
    """A sale named by its id or its external id. An integer is an id, so it must be one
    (1..2**63-1); a string may be anything an external id can be."""

    default_error_messages = {"invalid_id": f"An id is an integer from 1 to {ID_MAX}."}

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, int):
            if not is_id(data):
                self.fail("invalid_id")
            data = str(data)
        return super().to_internal_value(data)

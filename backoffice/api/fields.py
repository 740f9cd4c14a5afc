"""Serializer fields of the API; the input rules they apply are backoffice.parsing's."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from backoffice.parsing import ID_MAX, YES_NO_INVALID, is_id, parse_yes_no


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

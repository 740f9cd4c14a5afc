from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


@extend_schema_field({"oneOf": [{"type": "boolean"}, {"type": "string", "enum": ["yes", "no"]}]})
class YesNoBooleanField(serializers.Field):
    """A boolean sent as true/false or "yes"/"no" (as the seeds' integrations do)."""

    default_error_messages = {"invalid": 'Must be true, false, "yes" or "no".'}
    TRUE = {"yes", "true", "1", "on"}
    FALSE = {"no", "false", "0", "off"}

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        if isinstance(data, str):
            text = data.strip().lower()
            if text in self.TRUE:
                return True
            if text in self.FALSE:
                return False
        self.fail("invalid")

    def to_representation(self, value):
        return bool(value)


@extend_schema_field(OpenApiTypes.INT64)
class MoneyField(serializers.IntegerField):
    """An integer amount in minor units (pence, cents)."""


@extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string"}]})
class IdOrExternalIdField(serializers.CharField):
    """A sale named by its id or its external id (an integer is accepted as such)."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, int):
            data = str(data)
        return super().to_internal_value(data)

"""Filters shared by the apps' list endpoints."""

from __future__ import annotations

import django_filters
from django import forms
from drf_spectacular.utils import extend_schema_field

from backoffice.parsing import ID_MAX


@extend_schema_field({"type": "integer", "format": "int64", "minimum": 1, "maximum": ID_MAX})
class IdFilter(django_filters.NumberFilter):
    """`?sale=12`: a whole number in 1..2**63-1, or a 400 naming the parameter (a decimal
    or a larger number would reach the query, where SQLite overflows)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", ID_MAX)
        super().__init__(*args, **kwargs)

    def get_max_validator(self):
        return None  # max_value above already bounds it

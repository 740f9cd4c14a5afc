from __future__ import annotations

import django_filters

from backoffice.api.filters import IdFilter
from refunds.models import Refund, RefundStatus, RefundType, Source


class RefundFilter(django_filters.FilterSet):
    sale = IdFilter(field_name="sale_id")
    type = django_filters.ChoiceFilter(choices=RefundType.choices)
    status = django_filters.ChoiceFilter(choices=RefundStatus.choices)
    source = django_filters.ChoiceFilter(choices=Source.choices)
    batch = django_filters.CharFilter(field_name="batch_id")
    external_id = django_filters.CharFilter(field_name="external_id")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Refund
        fields = ["sale", "type", "status", "source", "batch", "external_id"]

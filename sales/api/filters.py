from __future__ import annotations

import django_filters
from django.db.models import Q

from backoffice.api.filters import IdFilter
from sales.models import Customer, Product, Sale, SaleChannel, SaleKind, SaleStatus


class SaleFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=SaleStatus.choices)
    kind = django_filters.ChoiceFilter(choices=SaleKind.choices)
    channel = django_filters.ChoiceFilter(choices=SaleChannel.choices)
    customer = IdFilter(field_name="customer_id")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    search = django_filters.CharFilter(
        method="filter_search", help_text="Number, external id, customer name or email."
    )

    class Meta:
        model = Sale
        fields = ["status", "kind", "channel", "customer"]

    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(number__iexact=value) | Q(external_id=value)
            | Q(customer__name__icontains=value) | Q(customer__email__iexact=value)
        )


class CustomerFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(method="filter_search", help_text="Name, email or phone.")

    class Meta:
        model = Customer
        fields = ["email"]

    def filter_search(self, queryset, name, value):
        return queryset.filter(
            Q(name__icontains=value) | Q(email__icontains=value) | Q(phone__icontains=value)
        )


class ProductFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(method="filter_search", help_text="SKU or name.")

    class Meta:
        model = Product
        fields = ["sku"]

    def filter_search(self, queryset, name, value):
        return queryset.filter(Q(sku__icontains=value) | Q(name__icontains=value))

from __future__ import annotations

import re

import django_filters
from django.db.models import Q
from rest_framework.exceptions import PermissionDenied

from backoffice.api.filters import IdFilter
from sales.models import Customer, Product, Sale, SaleChannel, SaleKind, SaleStatus

from .serializers import customer_details_visible

# What a phone number looks like in a search: digits, maybe a leading +, spaces, dashes.
PHONE_SHAPE = re.compile(r"\+?[0-9][0-9 ().-]{5,}")


class SaleFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=SaleStatus.choices)
    kind = django_filters.ChoiceFilter(choices=SaleKind.choices)
    channel = django_filters.ChoiceFilter(choices=SaleChannel.choices)
    customer = IdFilter(field_name="customer_id")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    search = django_filters.CharFilter(
        method="filter_search",
        help_text="Number, external id; customer name, email or phone with view_customer.",
    )

    class Meta:
        model = Sale
        fields = ["status", "kind", "channel", "customer"]

    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        by_sale = Q(number__iexact=value) | Q(external_id=value)
        if not customer_details_visible(self.request):
            # Without view_customer a sale's customer is an id: no finding sales (and so
            # customers) by what only /customers/ may show.
            if "@" in value or PHONE_SHAPE.fullmatch(value):
                raise PermissionDenied(
                    "Searching sales by a customer's email or phone needs the "
                    "view_customer permission."
                )
            return queryset.filter(by_sale)
        return queryset.filter(
            by_sale | Q(customer__name__icontains=value) | Q(customer__email__iexact=value)
            | Q(customer__phone=value)
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

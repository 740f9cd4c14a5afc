"""SaleCancellation's named constraints: the rules its columns had on Sale."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from sales.models import SaleCancellation
from tests.factories import SaleFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("field,value,constraint", [
    ("reason", "bored", "salecancellation_reason_valid"),
    ("reason", "", "salecancellation_reason_valid"),
    ("source", "backdoor", "salecancellation_source_valid"),
])
def test_a_cancellation_with_an_unknown_value_is_refused_by_the_database(field, value,
                                                                          constraint):
    sale = SaleFactory(lines=[(1, 100)])
    row = {"sale": sale, "cancelled_at": timezone.now(), "reason": "other", field: value}
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        SaleCancellation.objects.create(**row)
    assert not SaleCancellation.objects.filter(sale=sale).exists()


def test_a_cancellation_needs_its_date_and_is_one_per_sale():
    sale = SaleFactory(lines=[(1, 100)])
    with pytest.raises(IntegrityError), transaction.atomic():
        SaleCancellation.objects.create(sale=sale, cancelled_at=None, reason="other")
    SaleCancellation.objects.create(sale=sale, cancelled_at=timezone.now(), reason="other")
    with pytest.raises(IntegrityError), transaction.atomic():
        SaleCancellation.objects.bulk_create([SaleCancellation(
            sale=sale, cancelled_at=timezone.now(), reason="staff")])
    assert list(SaleCancellation.objects.filter(sale=sale).values_list("reason", flat=True)) \
        == ["other"]

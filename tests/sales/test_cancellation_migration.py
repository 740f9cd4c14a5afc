"""sales 0005: a sale's seven cancel columns become its SaleCancellation row. Every sale
cancelled before the migration has its row after it, with the same values, and the
migration reversed puts them back in the columns."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from sales.models import Sale, SaleCancellation
from tests.factories import UserFactory

BEFORE = [("sales", "0004_hardening_external_id")]
AFTER = [("sales", "0005_salecancellation")]
WHEN = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
OLD_COLUMNS = ("status", "cancelled_at", "cancel_reason", "cancel_note", "cancelled_by_id",
               "cancel_source", "cancel_restock", "cancel_alert")


def _old_sales(apps, user_id: int) -> dict[str, int]:
    """Sales as the old schema stored them: cancelled with everything recorded, cancelled
    before the door and options were recorded (blank reason too), and not cancelled."""
    OldSale = apps.get_model("sales", "Sale")
    made = {
        "full": OldSale.objects.create(
            status="cancelled", cancelled_at=WHEN, cancel_reason="fraud",
            cancel_note="stolen card", cancelled_by_id=user_id, cancel_source="api",
            cancel_restock=False, cancel_alert=True),
        "legacy": OldSale.objects.create(status="cancelled", cancelled_at=WHEN),
        "paid": OldSale.objects.create(status="unpaid"),
    }
    return {name: sale.pk for name, sale in made.items()}


@pytest.mark.django_db(transaction=True)
def test_cancelled_sales_move_into_their_rows_and_back():
    user = UserFactory(username="clerk")
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        ids = _old_sales(executor.loader.project_state(BEFORE).apps, user.pk)

        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
        new = executor.loader.project_state(AFTER).apps.get_model("sales", "SaleCancellation")
        rows = {r.sale_id: (r.cancelled_at, r.reason, r.note, r.cancelled_by_id, r.source,
                            r.restock, r.alert) for r in new.objects.all()}
        assert rows == {
            ids["full"]: (WHEN, "fraud", "stolen card", user.pk, "api", False, True),
            # No reason was stored: "other", the one the row may not leave blank.
            ids["legacy"]: (WHEN, "other", "", None, "", None, None),
        }

        executor = MigrationExecutor(connection)
        executor.migrate(BEFORE)
        OldSale = executor.loader.project_state(BEFORE).apps.get_model("sales", "Sale")
        back = {pk: row for pk, *row in OldSale.objects.values_list("pk", *OLD_COLUMNS)}
        assert back == {
            ids["full"]: ["cancelled", WHEN, "fraud", "stolen card", user.pk, "api", False,
                          True],
            ids["legacy"]: ["cancelled", WHEN, "other", "", None, "", None, None],
            ids["paid"]: ["unpaid", None, "", "", None, "", None, None],
        }
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    # The current models read the moved rows (the migration was applied again).
    assert Sale.objects.select_related("cancellation").get(
        pk=ids["full"]).cancellation.reason == "fraud"
    assert not SaleCancellation.objects.filter(sale_id=ids["paid"]).exists()

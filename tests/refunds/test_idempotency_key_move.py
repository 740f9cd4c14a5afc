"""IdempotencyKey moved from refunds to backoffice (backoffice 0005, refunds 0008): the
rows written before the move are the rows read after it, and the permission given to a
group follows the model."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from backoffice.models import IdempotencyKey

BEFORE = [("backoffice", "0004_apikey_connection_id_unique"),
          ("refunds", "0007_merge_hardening_faults")]


@pytest.mark.django_db(transaction=True)
def test_keys_written_before_the_move_survive_it_with_their_refund_and_permissions():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    OldKey = old.get_model("refunds", "IdempotencyKey")
    assert OldKey._meta.db_table == "refunds_idempotencykey"
    first = OldKey.objects.create(key="pay-1", owner="user:1", request_hash="h1",
                                  response_status=200, response_body={"ok": True})
    OldKey.objects.create(key="pay-2", owner="key:7", request_hash="h2")
    # The permission as a database made before the move has it (post_migrate made it).
    ContentType.objects.filter(app_label="backoffice", model="idempotencykey").delete()
    content_type = ContentType.objects.get_or_create(app_label="refunds",
                                                     model="idempotencykey")[0]
    permission = Permission.objects.get_or_create(
        content_type=content_type, codename="view_idempotencykey",
        defaults={"name": "Can view idempotency key"})[0]
    Group.objects.create(name="Key readers").permissions.add(permission)
    ContentType.objects.clear_cache()

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert IdempotencyKey._meta.db_table == "backoffice_idempotencykey"
    rows = list(IdempotencyKey.objects.order_by("pk").values_list(
        "pk", "key", "owner", "request_hash", "response_status", "response_body"))
    assert rows == [(first.pk, "pay-1", "user:1", "h1", 200, {"ok": True}),
                    (first.pk + 1, "pay-2", "key:7", "h2", None, None)]
    # The table kept its sequence: a new key follows the old ones.
    assert IdempotencyKey.objects.create(key="pay-3", request_hash="h3").pk == first.pk + 2
    assert list(Group.objects.get(name="Key readers").permissions.values_list(
        "content_type__app_label", "codename")) == [("backoffice", "view_idempotencykey")]

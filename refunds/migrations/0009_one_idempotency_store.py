"""One idempotency store: a refund's key moves from its own columns (idempotency_key,
idempotency_owner, request_hash, unique per owner) to backoffice.IdempotencyKey, whose
row points at the refund it made. Then the columns go.

Each refund that carries a key gets its row in the store, dated as the refund, unless the
store has one for that owner and key already (an API request's: it answers with the
stored response and now points at the refund too). So a repeat within the retention
week replays as before, and purge_idempotency_keys ends it like any other key.
"""

from django.db import migrations

BATCH = 2000


def keys_to_the_store(apps, schema_editor):
    Refund = apps.get_model("refunds", "Refund")
    IdempotencyKey = apps.get_model("backoffice", "IdempotencyKey")
    keyed = (Refund.objects.filter(idempotency_key__isnull=False).order_by("pk")
             .values_list("pk", "idempotency_owner", "idempotency_key", "request_hash",
                          "created_at"))
    last = 0
    while True:
        chunk = list(keyed.filter(pk__gt=last)[:BATCH])
        if not chunk:
            return
        last = chunk[-1][0]
        stored = {
            (owner, key): (pk, refund_id)
            for pk, owner, key, refund_id in IdempotencyKey.objects.filter(
                key__in={row[2] for row in chunk}).values_list("pk", "owner", "key",
                                                               "refund_id")
        }
        new, dates, link = [], [], []
        for refund_id, owner, key, request_hash, created_at in chunk:
            found = stored.get((owner, key))
            if found is None:
                new.append(IdempotencyKey(owner=owner, key=key, request_hash=request_hash,
                                          refund_id=refund_id))
                dates.append(created_at)
            elif found[1] is None:
                link.append(IdempotencyKey(pk=found[0], refund_id=refund_id))
        # bulk_create dates the rows now (auto_now_add): dated as their refunds after, so
        # the retention week counts from the refund.
        made = IdempotencyKey.objects.bulk_create(new)
        for row, created_at in zip(made, dates, strict=True):
            row.created_at = created_at
        if made:
            IdempotencyKey.objects.bulk_update(made, ["created_at"])
        if link:
            IdempotencyKey.objects.bulk_update(link, ["refund_id"])


def keys_back_to_refunds(apps, schema_editor):
    Refund = apps.get_model("refunds", "Refund")
    IdempotencyKey = apps.get_model("backoffice", "IdempotencyKey")
    rows = IdempotencyKey.objects.filter(refund__isnull=False).values_list(
        "refund_id", "owner", "key", "request_hash")
    refunds = []
    for refund_id, owner, key, request_hash in rows.iterator():
        refunds.append(Refund(pk=refund_id, idempotency_owner=owner, idempotency_key=key,
                              request_hash=request_hash))
    Refund.objects.bulk_update(refunds, ["idempotency_owner", "idempotency_key",
                                         "request_hash"], batch_size=BATCH)


class Migration(migrations.Migration):

    dependencies = [
        ("refunds", "0008_idempotencykey_to_backoffice"),
        ("backoffice", "0005_idempotencykey_from_refunds"),
    ]

    operations = [
        migrations.RunPython(keys_to_the_store, keys_back_to_refunds, elidable=False),
        migrations.RemoveConstraint(
            model_name="refund", name="refund_idempotency_key_unique_per_owner",
        ),
        migrations.RemoveField(model_name="refund", name="idempotency_key"),
        migrations.RemoveField(model_name="refund", name="idempotency_owner"),
        migrations.RemoveField(model_name="refund", name="request_hash"),
    ]

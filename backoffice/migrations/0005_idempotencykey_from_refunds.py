"""IdempotencyKey moves from refunds to backoffice: both apps' APIs use it.

The rows stay where they are: the model is created here in the migration state only,
over the existing table, which is then renamed (refunds_idempotencykey ->
backoffice_idempotencykey); refunds 0008 drops the model from its own state only. The
content type moves too, so the permissions given to groups (view_idempotencykey) and
the admin's history follow the model instead of going stale.
"""

import django.db.models.deletion
from django.db import migrations, models


def move_content_type(apps, schema_editor, *, source="refunds", target="backoffice"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    old = ContentType.objects.filter(app_label=source, model="idempotencykey")
    if not ContentType.objects.filter(app_label=target, model="idempotencykey").exists():
        old.update(app_label=target)


def move_content_type_back(apps, schema_editor):
    move_content_type(apps, schema_editor, source="backoffice", target="refunds")


class Migration(migrations.Migration):

    dependencies = [
        ("backoffice", "0004_apikey_connection_id_unique"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("refunds", "0007_merge_hardening_faults"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="IdempotencyKey",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True,
                                                   serialize=False, verbose_name="ID")),
                        ("key", models.CharField(max_length=255)),
                        ("owner", models.CharField(blank=True, default="", max_length=64)),
                        ("request_hash", models.CharField(max_length=64)),
                        ("response_status", models.IntegerField(blank=True, null=True)),
                        ("response_body", models.JSONField(blank=True, null=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True,
                                                            db_index=True)),
                        ("refund", models.ForeignKey(
                            blank=True, null=True,
                            on_delete=django.db.models.deletion.SET_NULL,
                            related_name="+", to="refunds.refund")),
                    ],
                    options={"db_table": "refunds_idempotencykey"},
                ),
                migrations.AddConstraint(
                    model_name="idempotencykey",
                    constraint=models.UniqueConstraint(
                        fields=("owner", "key"), name="idempotencykey_unique_per_owner"),
                ),
            ],
            database_operations=[],
        ),
        # The table takes this app's name; its rows, indexes and constraints go with it.
        migrations.AlterModelTable(name="idempotencykey", table=None),
        migrations.RunPython(move_content_type, move_content_type_back),
    ]

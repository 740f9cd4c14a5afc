"""The sandbox gateway's ledger: a Django database-cache table (see settings.CACHES).

One row per idempotency key, shared by every web and worker process, so the sandbox
answers a repeated key with its first answer, as a real gateway does. No model: the
table belongs to Django's DatabaseCache backend.
"""

from django.core.management import call_command
from django.db import migrations

TABLE = "sandbox_gateway_ledger"


def create_table(apps, schema_editor):
    # Skips a table that already exists.
    call_command("createcachetable", TABLE, database=schema_editor.connection.alias,
                 verbosity=0)


def drop_table(apps, schema_editor):
    schema_editor.execute(f"DROP TABLE IF EXISTS {schema_editor.quote_name(TABLE)}")


class Migration(migrations.Migration):

    dependencies = [
        ("refunds", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(create_table, drop_table),
    ]

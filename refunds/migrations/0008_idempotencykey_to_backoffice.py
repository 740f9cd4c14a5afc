"""IdempotencyKey now belongs to backoffice (backoffice 0005 took over its table and
rows): removed from this app's migration state only; nothing in the database changes."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("refunds", "0007_merge_hardening_faults"),
        ("backoffice", "0005_idempotencykey_from_refunds"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="IdempotencyKey")],
            database_operations=[],
        ),
    ]

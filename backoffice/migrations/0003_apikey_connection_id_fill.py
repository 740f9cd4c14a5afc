"""ApiKey.connection_id, step 2 of 3: a distinct UUID for every existing key (a default
on AddField would have given them all the same one)."""

import uuid

from django.db import migrations


def fill(apps, schema_editor):
    ApiKey = apps.get_model("backoffice", "ApiKey")
    keys = list(ApiKey.objects.filter(connection_id__isnull=True).only("pk"))
    for key in keys:
        key.connection_id = uuid.uuid4()
    ApiKey.objects.bulk_update(keys, ["connection_id"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        ("backoffice", "0002_apikey_connection_id"),
    ]

    operations = [
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=True),
    ]

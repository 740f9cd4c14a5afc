"""ApiKey.connection_id, step 3 of 3: required and unique, new keys drawing their own."""

import uuid

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("backoffice", "0003_apikey_connection_id_fill"),
    ]

    operations = [
        migrations.AlterField(
            model_name="apikey",
            name="connection_id",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True,
                                   verbose_name="connection id"),
        ),
    ]

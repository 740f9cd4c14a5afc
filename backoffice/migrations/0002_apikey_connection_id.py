"""ApiKey.connection_id, step 1 of 3 (Django's "Migrations that add unique fields"): the
column, nullable and not unique yet, so existing keys can each get their own UUID."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("backoffice", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="apikey",
            name="connection_id",
            field=models.UUIDField(editable=False, null=True, verbose_name="connection id"),
        ),
    ]

# The unique (external_id, import_source) index, external_id first: a lookup by external
# id alone (the API, the admin search) can use it. Same name, same rule.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('refunds', '0002_sandbox_gateway_ledger'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='refund',
            name='refund_external_id_unique_per_source',
        ),
        migrations.AddConstraint(
            model_name='refund',
            constraint=models.UniqueConstraint(condition=models.Q(('external_id__isnull', False)), fields=('external_id', 'import_source'), name='refund_external_id_unique_per_source'),
        ),
    ]

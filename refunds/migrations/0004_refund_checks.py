# One-row rules the services already keep, now also refused by the database: an ISO 4217
# currency, a store-balance refund never online, a reason that fits the refund's type
# (a cancel reason for a cancellation, a refund reason otherwise).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('refunds', '0003_refund_external_id_first'),
        ('sales', '0002_sale_currency_iso_code'),
    ]

    operations = [
        migrations.AddConstraint(
            model_name='refund',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('type', 'cancellation'), ('reason__in', ['customer', 'declined', 'fraud', 'inventory', 'staff', 'other'])), models.Q(models.Q(('type', 'cancellation'), _negated=True), ('reason__in', ['requested_by_customer', 'damaged', 'not_received', 'duplicate', 'fraudulent', 'other'])), _connector='OR'), name='refund_reason_matches_type'),
        ),
        migrations.AddConstraint(
            model_name='refund',
            constraint=models.CheckConstraint(condition=models.Q(('currency__regex', '^[A-Z]{3}$')), name='refund_currency_iso_code'),
        ),
        migrations.AddConstraint(
            model_name='refund',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('type', 'balance_refund'), _negated=True), ('online', False), _connector='OR'), name='refund_balance_refund_offline'),
        ),
    ]

"""Idempotency keys belong to their caller: unique per owner (an API key, or a staff
user), not across the whole deployment.

Rows written before: a refund made through the API gets its caller as owner (its API key,
else its user), and so does a key row that points at a refund; other key rows (payments,
cancels of unpaid sales) and the commands' keys keep the owner "" and expire as before.
"""

from django.conf import settings
from django.db import migrations, models
from django.db.models import Case, CharField, OuterRef, Subquery, Value, When
from django.db.models.functions import Cast, Concat


def _caller(ApiKey):
    """The owner a refund's caller gets: "key:<api key prefix>", else "user:<user id>"."""
    prefix = ApiKey.objects.filter(pk=OuterRef("api_key_id")).values("prefix")[:1]
    return Case(
        When(api_key__isnull=False, then=Concat(Value("key:"), Subquery(prefix))),
        When(created_by__isnull=False,
             then=Concat(Value("user:"), Cast("created_by_id", CharField()))),
        default=Value(""),
        output_field=CharField(),
    )


def fill_owners(apps, schema_editor):
    Refund = apps.get_model("refunds", "Refund")
    IdempotencyKey = apps.get_model("refunds", "IdempotencyKey")
    ApiKey = apps.get_model("backoffice", "ApiKey")
    Refund.objects.filter(idempotency_key__isnull=False, source="api").update(
        idempotency_owner=_caller(ApiKey)
    )
    IdempotencyKey.objects.filter(refund__isnull=False).update(owner=Subquery(
        Refund.objects.filter(pk=OuterRef("refund_id")).annotate(caller=_caller(ApiKey))
        .values("caller")[:1]
    ))


class Migration(migrations.Migration):

    dependencies = [
        ('backoffice', '0001_initial'),
        ('refunds', '0005_audit_and_retries'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='idempotencykey',
            name='owner',
            field=models.CharField(blank=True, default='', max_length=64),
        ),
        migrations.AddField(
            model_name='refund',
            name='idempotency_owner',
            field=models.CharField(blank=True, default='', max_length=64),
        ),
        migrations.RunPython(fill_owners, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='idempotencykey',
            name='key',
            field=models.CharField(max_length=255),
        ),
        migrations.AlterField(
            model_name='refund',
            name='idempotency_key',
            field=models.CharField(blank=True, max_length=255, null=True),
        ),
        migrations.AddConstraint(
            model_name='idempotencykey',
            constraint=models.UniqueConstraint(fields=('owner', 'key'), name='idempotencykey_unique_per_owner'),
        ),
        migrations.AddConstraint(
            model_name='refund',
            constraint=models.UniqueConstraint(condition=models.Q(('idempotency_key__isnull', False)), fields=('idempotency_owner', 'idempotency_key'), name='refund_idempotency_key_unique_per_owner'),
        ),
    ]

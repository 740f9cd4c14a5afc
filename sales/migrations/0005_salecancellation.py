"""A sale's cancellation becomes its own row (SaleCancellation) instead of seven columns
on Sale: the ledger writes it when a cancel's effect is applied and deletes it when the
effect is reversed (a cancellation the gateway refused).

Every sale cancelled so far (`cancelled_at` set) gets its row with the columns' values;
a blank reason (none was stored) becomes "other", the one value the row may not leave
blank. Reversed, the rows go back into the columns and are dropped.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# The columns of Sale and the fields of SaleCancellation they move to.
MOVED = {
    "cancelled_at": "cancelled_at", "cancel_reason": "reason", "cancel_note": "note",
    "cancelled_by": "cancelled_by", "cancel_source": "source", "cancel_restock": "restock",
    "cancel_alert": "alert",
}
BATCH = 2000


def _check_now(schema_editor) -> None:
    """Run PostgreSQL's deferred foreign-key checks now: the table is altered next in
    this transaction, which PostgreSQL refuses while row events are pending."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        schema_editor.execute("SET CONSTRAINTS ALL DEFERRED")


def columns_to_rows(apps, schema_editor) -> None:
    Sale = apps.get_model("sales", "Sale")
    SaleCancellation = apps.get_model("sales", "SaleCancellation")
    db = schema_editor.connection.alias
    sales = (Sale.objects.using(db).filter(cancelled_at__isnull=False).order_by("pk")
             .values_list("pk", *(f"{c}_id" if c == "cancelled_by" else c for c in MOVED)))
    batch = []
    for pk, *values in sales.iterator(chunk_size=BATCH):
        row = dict(zip((f"{f}_id" if f == "cancelled_by" else f for f in MOVED.values()),
                       values, strict=True))
        row["reason"] = row["reason"] or "other"
        batch.append(SaleCancellation(sale_id=pk, **row))
        if len(batch) >= BATCH:
            SaleCancellation.objects.using(db).bulk_create(batch)
            batch = []
    SaleCancellation.objects.using(db).bulk_create(batch)
    _check_now(schema_editor)


def rows_to_columns(apps, schema_editor) -> None:
    Sale = apps.get_model("sales", "Sale")
    SaleCancellation = apps.get_model("sales", "SaleCancellation")
    db = schema_editor.connection.alias
    row = SaleCancellation.objects.using(db).filter(sale=models.OuterRef("pk"))
    Sale.objects.using(db).filter(pk__in=SaleCancellation.objects.using(db).values("sale")).update(
        **{column: models.Subquery(row.values(field)[:1]) for column, field in MOVED.items()}
    )
    _check_now(schema_editor)


class Migration(migrations.Migration):

    dependencies = [
        ('sales', '0004_hardening_external_id'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='SaleCancellation',
            fields=[
                ('sale', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='cancellation', serialize=False, to='sales.sale')),
                ('cancelled_at', models.DateTimeField()),
                ('reason', models.CharField(choices=[('customer', 'Customer changed their mind'), ('declined', 'Payment declined'), ('fraud', 'Fraudulent'), ('inventory', 'Out of stock'), ('staff', 'Staff error'), ('other', 'Other')], max_length=16)),
                ('note', models.TextField(blank=True, help_text='Staff only: the customer never sees it.')),
                ('source', models.CharField(blank=True, default='', max_length=16)),
                ('restock', models.BooleanField(blank=True, null=True)),
                ('alert', models.BooleanField(blank=True, null=True)),
            ],
        ),
        migrations.AddField(
            model_name='salecancellation',
            name='cancelled_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddConstraint(
            model_name='salecancellation',
            constraint=models.CheckConstraint(condition=models.Q(('reason__in', ['customer', 'declined', 'fraud', 'inventory', 'staff', 'other'])), name='salecancellation_reason_valid'),
        ),
        migrations.AddConstraint(
            model_name='salecancellation',
            constraint=models.CheckConstraint(condition=models.Q(('source__in', ['', 'admin', 'api', 'command', 'import'])), name='salecancellation_source_valid'),
        ),
        migrations.RemoveConstraint(
            model_name='sale',
            name='sale_cancel_reason_valid',
        ),
        migrations.RemoveConstraint(
            model_name='sale',
            name='sale_cancelled_has_date',
        ),
        migrations.RunPython(columns_to_rows, rows_to_columns),
        migrations.RemoveField(
            model_name='sale',
            name='cancel_alert',
        ),
        migrations.RemoveField(
            model_name='sale',
            name='cancel_note',
        ),
        migrations.RemoveField(
            model_name='sale',
            name='cancel_reason',
        ),
        migrations.RemoveField(
            model_name='sale',
            name='cancel_restock',
        ),
        migrations.RemoveField(
            model_name='sale',
            name='cancel_source',
        ),
        migrations.RemoveField(
            model_name='sale',
            name='cancelled_at',
        ),
        migrations.RemoveField(
            model_name='sale',
            name='cancelled_by',
        ),
    ]

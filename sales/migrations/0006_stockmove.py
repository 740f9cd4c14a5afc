"""A product's stock gets its ledger: StockMove rows, append-only, whose sum is the stock.

Every product existing now gets one opening move equal to its current stock (zero
included), in one INSERT ... SELECT whatever the number of products, so the books
balance from the start. Reversed, those rows are deleted (then the table is dropped).
"""

import django.db.models.deletion
from django.db import migrations, models


def opening_moves(apps, schema_editor) -> None:
    Product = apps.get_model("sales", "Product")
    StockMove = apps.get_model("sales", "StockMove")
    qn = schema_editor.connection.ops.quote_name
    move, product = StockMove._meta, Product._meta
    col = {f.name: qn(f.column) for f in move.concrete_fields}
    schema_editor.execute(
        f"INSERT INTO {qn(move.db_table)} ({col['product']}, {col['delta']}, {col['kind']}, "
        f"{col['created_at']}) SELECT {qn(product.pk.column)}, "
        f"{qn(product.get_field('stock').column)}, %s, CURRENT_TIMESTAMP "
        f"FROM {qn(product.db_table)}",
        params=["opening"],
    )


def drop_opening_moves(apps, schema_editor) -> None:
    apps.get_model("sales", "StockMove").objects.filter(kind="opening").delete()


class Migration(migrations.Migration):

    dependencies = [
        ('sales', '0005_salecancellation'),
    ]

    operations = [
        migrations.CreateModel(
            name='StockMove',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('delta', models.IntegerField()),
                ('kind', models.CharField(choices=[('opening', 'Opening'), ('adjustment', 'Adjustment'), ('sale', 'Sale'), ('sale_edit', 'Sale edit'), ('refund', 'Refund'), ('cancel', 'Cancel')], max_length=16)),
                ('sale_id', models.BigIntegerField(blank=True, null=True)),
                ('refund_id', models.BigIntegerField(blank=True, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('product', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='sales.product')),
            ],
            options={
                'ordering': ['pk'],
                'indexes': [models.Index(fields=['product', 'id'], name='stockmove_product_id')],
                'constraints': [models.CheckConstraint(condition=models.Q(('kind__in', ['opening', 'adjustment', 'sale', 'sale_edit', 'refund', 'cancel'])), name='stockmove_kind_valid')],
            },
        ),
        migrations.RunPython(opening_moves, drop_opening_moves, elidable=False),
    ]

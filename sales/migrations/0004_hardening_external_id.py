"""One sale per name: an external id may no longer look like a sale number (S-000123).

Rows stored before the rule are left as they are and reported here (the API answers 409
`ambiguous_sale` for a name that means two sales until they are fixed). README, section
"Security", says how to fix them: `PATCH /api/v2/sales/{id}/ {"external_id": "..."}`
or `manage.py shell` with `Sale.objects.filter(pk=...).update(external_id=...)`.
"""

import logging

from django.db import migrations, models

import sales.models

log = logging.getLogger("sales.migrations")


def sales_breaking_the_rule(Sale) -> list[tuple[int, str, str]]:
    """(id, number, external id) of every sale whose external id is shaped like a sale
    number, or is made of the digits of another sale's id."""
    shaped = Sale.objects.filter(external_id__regex=r"^\s*[Ss]-[0-9]+\s*$")
    found = {(pk, number, ext) for pk, number, ext in
             shaped.values_list("pk", "number", "external_id")}
    digits = Sale.objects.filter(external_id__regex=r"^[0-9]{1,18}$")
    for pk, number, ext in digits.values_list("pk", "number", "external_id").iterator():
        if Sale.objects.filter(pk=int(ext)).exclude(pk=pk).exists():
            found.add((pk, number, ext))
    return sorted(found)


def report(apps, schema_editor):
    Sale = apps.get_model("sales", "Sale")
    rows = sales_breaking_the_rule(Sale)
    for pk, number, ext in rows:
        message = (f"sale {number} (id {pk}) has external id {ext!r}, which names another "
                   "sale too or looks like a sale number: give it another external id")
        log.warning(message)
        print(f"\n  {message}", end="")
    if rows:
        print(f"\n  {len(rows)} sale(s) break the one-sale-per-name rule (README: Security).")


class Migration(migrations.Migration):

    dependencies = [
        ("sales", "0003_cancel_audit_protect_actors"),
    ]

    operations = [
        migrations.AlterField(
            model_name="sale",
            name="external_id",
            field=models.CharField(
                blank=True, max_length=128, null=True, unique=True,
                validators=[sales.models.validate_external_id],
            ),
        ),
        migrations.RunPython(report, migrations.RunPython.noop, elidable=True),
    ]

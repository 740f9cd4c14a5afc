"""The staff roles: groups with the permissions each job needs.

Run after every `migrate` (a `post_migrate` receiver in `refunds/apps.py`), so a fresh
database, a test database and one flushed between tests all have them. Idempotent: it
adds what is missing and never takes a permission away from a group.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

REFUND_CLERKS = "Refund clerks"
SUPERVISORS = "Supervisors"

# Find a sale, see what was bought, paid and given back, refund it.
_CLERK = [
    "sales.view_customer",
    "sales.view_product",
    "sales.view_sale",
    "sales.view_order",
    "sales.view_saleline",
    "sales.view_payment",
    "refunds.view_refund",
    "refunds.add_refund",
    "refunds.view_refundline",
    "refunds.view_refundpayment",
    "refunds.view_customeralert",
]
# ... and cancel sales, import refund files, look after alerts and customers.
_SUPERVISOR = _CLERK + [
    "sales.cancel_sale",
    "sales.change_customer",
    "refunds.view_refundimport",
    "refunds.add_refundimport",
    "refunds.change_customeralert",
    "backoffice.view_idempotencykey",
]

ROLES: dict[str, list[str]] = {REFUND_CLERKS: _CLERK, SUPERVISORS: _SUPERVISOR}


def roles_ensure() -> dict[str, Group]:
    """Create the groups (when missing) and give them their permissions."""
    groups = {}
    for name, perms in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        wanted = _permissions(perms)
        have = set(group.permissions.values_list("pk", flat=True))
        missing = [p for p in wanted if p.pk not in have]
        if missing:
            group.permissions.add(*missing)
        groups[name] = group
    return groups


def _permissions(names: list[str]) -> list[Permission]:
    wanted = {tuple(name.split(".", 1)) for name in names}
    apps = {app for app, _ in wanted}
    codenames = {code for _, code in wanted}
    found = Permission.objects.filter(
        content_type__app_label__in=apps, codename__in=codenames
    ).select_related("content_type")
    return [p for p in found if (p.content_type.app_label, p.codename) in wanted]

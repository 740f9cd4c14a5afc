"""manage.py create_api_key NAME --user USERNAME [--create-user] [--role integration]
[--perm app.codename ...] [--expires DAYS]: prints the key once (stdout: the key alone;
stderr: what was done, and the key's connection id for the line-item refund API).

`--create-user` makes USERNAME when it does not exist (not staff, no password: it can
only act through its keys); `--role` and `--perm` grant the Django permissions the key
acts with. Everything or nothing: an unknown permission creates neither user nor key.
"""

from __future__ import annotations

from datetime import timedelta
from typing import cast

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from backoffice.models import ApiKey

# The permissions an integration needs for every endpoint of /api/v2/ (README, "Keys
# and permissions"): sales, payments, cancels, refunds and bulk imports, products,
# customers.
ROLES: dict[str, list[str]] = {
    "integration": [
        "sales.view_sale", "sales.add_sale", "sales.change_sale", "sales.cancel_sale",
        "sales.add_payment",
        "refunds.add_refund", "refunds.view_refund",
        "sales.view_product", "sales.add_product", "sales.change_product",
        "sales.view_customer", "sales.add_customer", "sales.change_customer",
    ],
}


def _permissions(names: list[str]) -> list[Permission]:
    wanted = []
    for name in names:
        app, dot, codename = name.partition(".")
        if not dot or not app or not codename:
            raise CommandError(f"--perm takes app.codename (e.g. sales.view_sale), not {name!r}.")
        wanted.append((app, codename))
    found = {
        (p.content_type.app_label, p.codename): p
        for p in Permission.objects.filter(codename__in={c for _, c in wanted})
        .select_related("content_type")
    }
    missing = [f"{a}.{c}" for a, c in wanted if (a, c) not in found]
    if missing:
        raise CommandError(f"No such permission: {', '.join(missing)}.")
    return [found[w] for w in dict.fromkeys(wanted)]


class Command(BaseCommand):
    help = "Create an API key acting as USERNAME; the key is printed once and stored hashed."

    def add_arguments(self, parser):
        parser.add_argument("name", help="A name for the key (e.g. the integration's).")
        parser.add_argument("--user", required=True, help="The user the key acts as.")
        parser.add_argument("--create-user", action="store_true",
                            help="Create USERNAME if it does not exist (not staff, no "
                                 "password: it acts only through its keys).")
        parser.add_argument("--role", choices=sorted(ROLES), action="append", default=[],
                            help="Grant the user a standard set of permissions; "
                                 "integration: "
                                 + ", ".join(ROLES["integration"]) + ".")
        parser.add_argument("--perm", action="append", default=[], metavar="APP.CODENAME",
                            help="Grant the user this permission (repeatable).")
        parser.add_argument("--expires", type=int, default=None, metavar="DAYS",
                            help="Expire the key after DAYS days (default: never).")

    def handle(self, *args, name: str, user: str, create_user: bool, role: list[str],
               perm: list[str], expires: int | None, **options):
        if len(name) > 50:
            raise CommandError("The name is at most 50 characters.")
        if expires is not None and expires <= 0:
            raise CommandError("--expires takes a number of days above zero.")
        grants = _permissions([p for r in role for p in ROLES[r]] + perm)
        User = get_user_model()
        with transaction.atomic():
            created = False
            try:
                owner = User.objects.get(**{User.USERNAME_FIELD: user})
            except User.DoesNotExist:
                if not create_user:
                    raise CommandError(
                        f"No user {user!r}; create it first (createsuperuser), or pass "
                        "--create-user."
                    ) from None
                owner = User(**{User.USERNAME_FIELD: user}, is_staff=False)
                owner.set_unusable_password()
                owner.save()
                created = True
            if grants:
                owner.user_permissions.add(*grants)
            expiry = timezone.now() + timedelta(days=expires) if expires else None
            api_key, key = ApiKey.objects.create_key(name=name, user=owner, expiry_date=expiry)
        if created:
            self.stderr.write(f"Created user {owner.get_username()} (not staff, no password).")
        if grants:
            self.stderr.write(
                f"Granted {owner.get_username()}: "
                + ", ".join(sorted(f"{p.content_type.app_label}.{p.codename}" for p in grants))
            )
        self.stderr.write(
            f"API key {api_key.prefix} ({name}) for {owner.get_username()}"
            + (f", expires {expiry:%Y-%m-%d %H:%M} UTC" if expiry else "")
            + ". Store it now: it will not be shown again."
        )
        # The line-item refund API's connectionId (/compat/orders-api/connections/{id}/):
        # not a secret, shown in the admin too; on stderr, so stdout stays the key alone.
        self.stderr.write(f"Connection id: {cast(ApiKey, api_key).connection_id}")
        self.stdout.write(key)

"""manage.py create_api_key NAME --user USERNAME [--expires DAYS]: prints the key once."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from backoffice.models import ApiKey


class Command(BaseCommand):
    help = "Create an API key acting as USERNAME; the key is printed once and stored hashed."

    def add_arguments(self, parser):
        parser.add_argument("name", help="A name for the key (e.g. the integration's).")
        parser.add_argument("--user", required=True, help="The user the key acts as.")
        parser.add_argument("--expires", type=int, default=None, metavar="DAYS",
                            help="Expire the key after DAYS days (default: never).")

    def handle(self, *args, name: str, user: str, expires: int | None, **options):
        User = get_user_model()
        try:
            owner = User.objects.get(**{User.USERNAME_FIELD: user})
        except User.DoesNotExist:
            raise CommandError(f"No user {user!r}; create it first (createsuperuser).") from None
        if len(name) > 50:
            raise CommandError("The name is at most 50 characters.")
        if expires is not None and expires <= 0:
            raise CommandError("--expires takes a number of days above zero.")
        expiry = timezone.now() + timedelta(days=expires) if expires else None
        api_key, key = ApiKey.objects.create_key(name=name, user=owner, expiry_date=expiry)
        self.stderr.write(
            f"API key {api_key.prefix} ({name}) for {owner.get_username()}"
            + (f", expires {expiry:%Y-%m-%d %H:%M} UTC" if expiry else "")
            + ". Store it now: it will not be shown again."
        )
        self.stdout.write(key)

"""seed_demo [--sales N] [--demo-passwords]: realistic demo data and staff logins.

Demo sales with refunds and cancellations: a refunds command (sales never imports
refunds), though it seeds both apps.

Idempotent: run it twice and nothing is duplicated. `--sales N` tops the bulk sales up
to N with bulk inserts (amounts computed by the same rules as sale_create).

The logins get the well-known password `backoffice-demo` only in the embedded run
(DEBUG on) or with `--demo-passwords`; anywhere else each user gets a fresh random
password, printed once, so a demo superuser is never an open door.
"""

from __future__ import annotations

import contextlib
import random
import secrets
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import connection, transaction
from django.utils import timezone

from backoffice.money import tax_on
from refunds.models import CustomerAlert, Refund
from refunds.services import RefundOptions, refund_create, sale_cancel
from sales.models import (
    SALE_NUMBER,
    Customer,
    Payment,
    Product,
    Sale,
    SaleCancellation,
    SaleChannel,
    SaleKind,
    SaleLine,
    sale_number,
)
from sales.services import CustomerInput, LineInput, SaleInput, product_save, sale_create

DEMO_PASSWORD = "backoffice-demo"
USERS = [
    # username, superuser, group, what it is for
    ("admin", True, None, "superuser"),
    ("clerk", False, "Refund clerks", "Refund clerks: view sales, refund"),
    ("supervisor", False, "Supervisors", "Supervisors: refund and cancel"),
    ("viewer", False, None, "staff without refund or cancel permission"),
]
PRODUCTS = [
    ("MUG-1", "Stoneware mug", 1200), ("TEE-M", "Organic tee, M", 2400),
    ("TEE-L", "Organic tee, L", 2400), ("CAP-1", "Canvas cap", 1800),
    ("BAG-1", "Tote bag", 1500), ("PEN-3", "Pen, pack of 3", 450),
    ("NB-A5", "Notebook A5", 899), ("BTL-1", "Steel bottle", 2199),
    ("SOCK-2", "Wool socks, pair", 1299), ("POST-1", "Art print", 3500),
]
FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret", "Ken", "Frances",
         "John", "Radia", "Tim", "Sophie", "Linus", "Hedy"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Thompson",
        "Allen", "Backus", "Perlman", "Berners-Lee", "Wilson", "Torvalds", "Lamarr"]
TAX = Decimal("0.20")


@contextlib.contextmanager
def explicit_dates():
    """Let bulk inserts carry their own created_at (spread over time, as real sales are)."""
    field = Sale._meta.get_field("created_at")
    field.auto_now_add = False
    try:
        yield
    finally:
        field.auto_now_add = True


def demo_gateway() -> str:
    """The demo's card payments go through the sandbox gateway where it is configured
    (off in production unless SANDBOX_ENABLED=1); elsewhere they are offline."""
    return "sandbox" if "sandbox" in settings.PAYMENT_GATEWAYS else ""


class Command(BaseCommand):
    help = "Load realistic demo data and print the staff logins."

    def add_arguments(self, parser):
        parser.add_argument("--sales", type=int, default=0,
                            help="top the bulk-generated sales up to N (bulk inserts)")
        parser.add_argument("--batch", type=int, default=5000)
        parser.add_argument(
            "--demo-passwords", action="store_true",
            help=f"give every login the password {DEMO_PASSWORD!r} even with DEBUG off "
                 "(default there: a random password per user, printed once)",
        )

    def handle(self, *args, **opts):
        rng = random.Random(20261123)
        shared = settings.DEBUG or opts["demo_passwords"]
        passwords = {
            username: DEMO_PASSWORD if shared else secrets.token_urlsafe(12)
            for username, *_ in USERS
        }
        self.users(passwords)
        products = self.products()
        customers = self.customers()
        if not Sale.objects.filter(external_id="DEMO-0001").exists():
            self.demo_sales(rng, products, customers)
        if opts["sales"]:
            self.bulk_sales(rng, opts["sales"], opts["batch"], products, customers)
        self.stdout.write("")
        if shared:
            self.stdout.write(f"Staff logins (password for all: {DEMO_PASSWORD}):")
            for username, _, _, what in USERS:
                self.stdout.write(f"  {username:<11} {what}")
        else:
            self.stdout.write("Staff logins (random passwords, shown only now; run again "
                              "for new ones):")
            for username, _, _, what in USERS:
                self.stdout.write(f"  {username:<11} {passwords[username]:<17} {what}")
        self.stdout.write(f"login: admin / {passwords['admin']}")

    def users(self, passwords: dict[str, str]) -> None:
        User = get_user_model()
        for username, superuser, group, _what in USERS:
            user, _ = User.objects.get_or_create(username=username,
                                                 defaults={"email": f"{username}@example.com"})
            user.is_staff = True
            user.is_superuser = superuser
            user.set_password(passwords[username])
            user.save()
            if group:
                user.groups.add(Group.objects.get_or_create(name=group)[0])
        viewer = User.objects.get(username="viewer")
        from django.contrib.auth.models import Permission

        viewer.user_permissions.add(*Permission.objects.filter(
            codename__in=["view_sale", "view_order", "view_refund"]))

    def products(self) -> list[Product]:
        known = set(Product.objects.filter(sku__in=[p[0] for p in PRODUCTS])
                    .values_list("sku", flat=True))
        for sku, name, price in PRODUCTS:
            if sku not in known:  # its stock is its opening move
                product_save(Product(sku=sku, name=name, price=price, stock=500))
        return list(Product.objects.filter(sku__in=[p[0] for p in PRODUCTS]))

    def customers(self) -> list[Customer]:
        for first, last in zip(FIRST, LAST, strict=True):
            email = f"{first}.{last}@example.com".lower()
            Customer.objects.get_or_create(
                email=email, defaults={"name": f"{first} {last}", "phone": "+447700900123"})
        return list(Customer.objects.filter(email__endswith="@example.com").order_by("pk")[:15])

    def demo_sales(self, rng, products, customers) -> None:
        now = timezone.now()
        with transaction.atomic():
            for i in range(1, 41):
                customer = customers[i % len(customers)]
                picked = rng.sample(products, rng.randint(1, 4))
                kind = SaleKind.QUOTE if i % 13 == 0 else (
                    SaleKind.INVOICE if i % 3 == 0 else SaleKind.RECEIPT)
                channel = [SaleChannel.POS, SaleChannel.STOREFRONT, SaleChannel.API,
                           SaleChannel.MANUAL][i % 4]
                data = SaleInput(
                    kind=kind, channel=channel, currency="GBP", external_id=f"DEMO-{i:04d}",
                    customer=CustomerInput(name=customer.name, email=customer.email,
                                           phone=customer.phone),
                    lines=[LineInput(product_id=p.pk, quantity=rng.randint(1, 4), tax_rate=TAX)
                           for p in picked],
                    order_discount=100 if i % 5 == 0 else 0,
                    processing_fee=150 if channel == SaleChannel.STOREFRONT else 0,
                    shipping_fee=499 if channel == SaleChannel.STOREFRONT else 0,
                )
                sale = sale_create(data=data)
                if kind != SaleKind.QUOTE and i % 7 != 0:
                    from sales.services import payment_record

                    if i % 4 == 0 and sale.total > 1000:
                        payment_record(sale_id=sale.pk, amount=1000, method="cash")
                        payment_record(sale_id=sale.pk, amount=sale.total - 1000, method="card",
                                       gateway=demo_gateway())
                    else:
                        payment_record(sale_id=sale.pk, amount=sale.total, method="card",
                                       gateway=demo_gateway() if channel != SaleChannel.POS else "")
                sale.refresh_from_db()
                if sale.amount_paid and i % 6 == 1:
                    line = sale.lines.order_by("pk").first()
                    assert line is not None  # every demo sale has lines
                    refund_create(sale_id=sale.pk, items={line.pk: 1},
                                  options=RefundOptions(reason="damaged", note="demo"),
                                  source="command")
                elif sale.amount_paid and i % 10 == 2:
                    refund_create(sale_id=sale.pk, options=RefundOptions(
                        reason="not_received"), source="command")
                elif i % 11 == 3:
                    sale_cancel(sale_id=sale.pk, reason="customer", source="command")
                # Its own random numbers: the demo's sales, lines and ids stay what they
                # were (examples/refunds.json names them).
                self.backdate(sale, now - timedelta(days=40 - i, hours=rng.randint(0, 10)),
                              random.Random(i), now)
        self.stdout.write("demo: 40 sales with refunds and cancellations")

    @staticmethod
    def backdate(sale, sold_at, rng, now) -> None:
        """Spread the demo over the last 40 days, as a shop's would be: the sale when it was
        made, its payments minutes later, its refunds, alerts and cancel days later (so the
        dashboard's today / week / month and its chart show a real spread)."""
        paid_at = sold_at + timedelta(minutes=5)
        later = min(now, sold_at + timedelta(days=rng.randint(1, 12),
                                             hours=rng.randint(0, 8)))
        Sale.objects.filter(pk=sale.pk).update(created_at=sold_at)
        Sale.objects.filter(pk=sale.pk, paid_at__isnull=False).update(paid_at=paid_at)
        SaleCancellation.objects.filter(sale=sale).update(cancelled_at=later)
        Payment.objects.filter(sale=sale).update(created_at=paid_at)
        Refund.objects.filter(sale=sale).update(created_at=later)
        Refund.objects.filter(sale=sale, settled_at__isnull=False).update(settled_at=later)
        CustomerAlert.objects.filter(sale=sale).update(created_at=later)
        CustomerAlert.objects.filter(sale=sale, sent_at__isnull=False).update(sent_at=later)

    def bulk_sales(self, rng, target, batch, products, customers) -> None:
        have = Sale.objects.filter(external_id__startswith="BULK-").count()
        todo = max(0, target - have)
        now = timezone.now()
        made = 0
        copy = connection.vendor == "postgresql"
        while made < todo:
            n = min(batch, todo - made)
            rows = [self.fake_sale(rng, have + made + k + 1, now, products, customers)
                    for k in range(n)]
            with transaction.atomic():
                if copy:
                    self.copy_rows(rows)
                else:
                    self.insert_rows(rows)
            made += n
            self.stdout.write(f"bulk: {have + made}/{target} sales")

    @staticmethod
    def fake_sale(rng, seq, now, products, customers):
        lines = []
        for p in rng.sample(products, rng.randint(1, 3)):
            qty = rng.randint(1, 3)
            net = qty * p.price
            lines.append((p.pk, p.sku, p.name, qty, p.price, net, tax_on(net, TAX)))
        subtotal = sum(ln[5] for ln in lines)
        tax = sum(ln[6] for ln in lines)
        sale = {
            "channel": rng.choice(SaleChannel.values), "external_id": f"BULK-{seq:08d}",
            "customer_id": rng.choice(customers).pk, "subtotal": subtotal, "tax_total": tax,
            "total": subtotal + tax, "units": sum(ln[3] for ln in lines),
            "created_at": now - timedelta(minutes=rng.randint(0, 60 * 24 * 365)),
        }
        return sale, lines

    @staticmethod
    def insert_rows(rows) -> None:
        """Portable path (SQLite): bulk_create, dates carried explicitly."""
        with explicit_dates():
            sales = Sale.objects.bulk_create(
                Sale(kind=SaleKind.RECEIPT, currency="GBP", amount_paid=s["total"],
                     status="paid", paid_at=s["created_at"], **s)
                for s, _ in rows
            )
        SaleLine.objects.bulk_create(
            SaleLine(sale_id=sale.pk, product_id=pid, sku=sku, description=name, quantity=q,
                     unit_price=price, discount=0, tax_rate=TAX, net_amount=net,
                     tax_amount=tax)
            for sale, (_, lines) in zip(sales, rows, strict=True)
            for pid, sku, name, q, price, net, tax in lines
        )
        Payment.objects.bulk_create(
            Payment(sale_id=sale.pk, method="card", amount=sale.total, gateway=demo_gateway())
            for sale in sales
        )
        Sale.objects.filter(pk__in=[s.pk for s in sales]).update(number=SALE_NUMBER)

    @staticmethod
    def copy_rows(rows) -> None:
        """PostgreSQL: ids drawn from the sequences, rows streamed with COPY."""
        n_lines = sum(len(lines) for _, lines in rows)
        with connection.cursor() as cur:
            def ids(table: str, count: int) -> list[int]:
                cur.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')) "
                    "FROM generate_series(1, %s)", [table, count])
                return [r[0] for r in cur.fetchall()]

            sale_ids = ids("sales_sale", len(rows))
            line_ids = iter(ids("sales_saleline", n_lines))
            pay_ids = ids("sales_payment", len(rows))
            raw = cur.cursor  # the psycopg cursor, for COPY
            cols = ("id, number, kind, channel, external_id, customer_id, currency, "
                    "order_discount, processing_fee, reseller_fee, shipping_fee, subtotal, "
                    "tax_total, total, units, amount_paid, amount_refunded, refunded_units, "
                    "refunded_processing_fee, refunded_reseller_fee, refunded_shipping_fee, "
                    "status, created_at, updated_at, paid_at")
            with raw.copy(f"COPY sales_sale ({cols}) FROM STDIN") as copy:
                for sid, (s, _) in zip(sale_ids, rows, strict=True):
                    copy.write_row((
                        sid, sale_number(sid), SaleKind.RECEIPT, s["channel"], s["external_id"],
                        s["customer_id"], "GBP", 0, 0, 0, 0, s["subtotal"], s["tax_total"],
                        s["total"], s["units"], s["total"], 0, 0, 0, 0, 0, "paid",
                        s["created_at"], s["created_at"], s["created_at"],
                    ))
            cols = ("id, sale_id, product_id, sku, description, quantity, unit_price, discount, "
                    "tax_rate, net_amount, tax_amount, refunded_quantity, refunded_amount, "
                    "refunded_tax")
            with raw.copy(f"COPY sales_saleline ({cols}) FROM STDIN") as copy:
                for sid, (_, lines) in zip(sale_ids, rows, strict=True):
                    for pid, sku, name, q, price, net, tax in lines:
                        copy.write_row((next(line_ids), sid, pid, sku, name, q, price, 0, TAX,
                                        net, tax, 0, 0, 0))
            cols = ("id, sale_id, method, amount, gateway, gateway_reference, refunded_amount, "
                    "created_at")
            with raw.copy(f"COPY sales_payment ({cols}) FROM STDIN") as copy:
                for pid, sid, (s, _) in zip(pay_ids, sale_ids, rows, strict=True):
                    copy.write_row((pid, sid, "card", s["total"], demo_gateway(), "", 0,
                                    s["created_at"]))

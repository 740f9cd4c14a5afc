"""Staff admin of the refunds app, one module per room:

- `sales`: what a sale's page and the Sales / Orders lists gain (a sale's refunds and
  alerts, the Refund… and Cancel… buttons, the list actions); re-registers Sale, Order.
- `refunds`: the ledger (refunds, lines, allocations, imports, idempotency keys),
  read-only; the refunds list's import page and a refund's credit note.
- `alerts`: the customer alerts outbox (resend, record as sent).
- `refund_page`, `cancel_page`, `credit_note`, `import_page`: the pages those admins
  add with `get_urls()`; `pages`: what they share (permissions, 403 page, context).
- `forms`: the forms of those pages.

Importing this package registers everything (Django's admin autodiscovery does).
"""

from . import alerts, refunds, sales  # noqa: F401  (each registers its admins)

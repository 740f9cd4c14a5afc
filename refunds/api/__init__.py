"""REST API for cancels, refunds and bulk refund imports (DESIGN §4)."""

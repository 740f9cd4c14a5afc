"""A product's stock ledger: StockMove rows, append-only, whose sum is its stock."""

from __future__ import annotations

from django.db import models

from .choices import StockMoveKind, choices_check
from .models import Product


class StockMove(models.Model):
    """One move of a product's stock, append-only: `Product.stock` is the sum of its
    moves (`manage.py audit_books` checks it). Written with the counter by
    `sales.services.stock_move` (sales, sale edits, restocking refunds and cancels) and
    `product_save` (a product created: opening; its stock set by staff: adjustment).
    `sale_id` and `refund_id` are plain ids, not foreign keys: sales never import refunds,
    and a move outlives what made it."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    delta = models.IntegerField()
    kind = models.CharField(max_length=16, choices=StockMoveKind.choices)
    sale_id = models.BigIntegerField(null=True, blank=True)
    refund_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        indexes = [models.Index(fields=["product", "id"], name="stockmove_product_id")]
        constraints = [choices_check("stockmove_kind_valid", "kind", StockMoveKind)]

    def __str__(self) -> str:
        return f"{self.kind} {self.delta:+d} of product {self.product_id}"


__all__ = ["StockMove", "StockMoveKind"]

"""API plumbing that every app's API uses: API keys (stored hashed by
djangorestframework-api-key, each acting as a user) and idempotency keys."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from rest_framework_api_key.models import AbstractAPIKey, BaseAPIKeyManager


class ApiKeyManager(BaseAPIKeyManager):
    def get_usable_keys(self) -> models.QuerySet:
        return super().get_usable_keys().select_related("user")


class ApiKey(AbstractAPIKey):
    """A named key; requests made with it act as `user`, whose permissions decide."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The line-item refund API's `connectionId` (/compat/orders-api/connections/{id}/...):
    # each key is one connection; another key's id is a 404 (docs/compat-orders-api.md).
    connection_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False,
                                     verbose_name="connection id")

    objects = ApiKeyManager()  # type: ignore[assignment,misc]

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"


class IdempotencyKey(models.Model):
    """THE idempotency store (backoffice.idempotency.run_once): one row per caller's key
    with a hash of the request and what its first run produced — the refund it made
    and/or the response the API answered. Every door uses it: the API (refunds, cancels,
    payments, the dialects) and the services' own keys (`refund_sale --idempotency-key`).

    Claimed inside the same transaction as the work it guards: a concurrent request
    with the same key waits on the row, then replays the first outcome. Purged after
    IDEMPOTENCY_KEY_TTL_DAYS; the refund it points at stays.
    """

    key = models.CharField(max_length=255)
    # Whose key it is: "key:<api key prefix>", "user:<staff id>" (a session), "" (a
    # command); backoffice.api.idempotency.request_owner. Unique per owner.
    owner = models.CharField(max_length=64, blank=True, default="")
    request_hash = models.CharField(max_length=64)
    response_status = models.IntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    # The refund the request made, if it made one: the key points at the refund (never
    # the reverse), so purging the key leaves the refund's own record whole. Named by
    # string, never imported: a link in the database the import contracts do not see
    # (README, "Layout and dependency rules").
    refund = models.ForeignKey(
        "refunds.Refund", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "key"],
                                    name="idempotencykey_unique_per_owner"),
        ]

    def __str__(self) -> str:
        return self.key

    @property
    def done(self) -> bool:
        """Its first request finished (it answered, or made a refund). A committed row
        always is; one that is not belongs to a request still running."""
        return self.response_status is not None or self.refund_id is not None

"""API keys: stored hashed by djangorestframework-api-key, each acting as a user."""

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

"""Dialect: orders_api (see docs/compat-orders_api.md)."""

urlpatterns: list = []

"""Dialect: keepup (see docs/compat-keepup.md)."""

urlpatterns: list = []

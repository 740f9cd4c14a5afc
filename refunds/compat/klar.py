"""Dialect: klar (see docs/compat-klar.md)."""

urlpatterns: list = []

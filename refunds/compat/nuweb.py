"""Dialect: nuweb (see docs/compat-nuweb.md)."""

urlpatterns: list = []

from . import admin_alerts  # noqa: F401  (CustomerAlert's admin lives there)

from django.apps import AppConfig


def _ensure_roles(sender, **kwargs):
    from .services.roles import roles_ensure

    roles_ensure()


class RefundsConfig(AppConfig):
    name = "refunds"

    def ready(self):
        from django.db.models.signals import post_migrate

        from sales.document import sale_document_add_list

        from .sale_document import SALE_REFUNDS

        # A sale's refunds in the sale document (sales never imports refunds).
        sale_document_add_list(SALE_REFUNDS)

        # The staff groups ("Refund clerks", "Supervisors"), after every migrate.
        post_migrate.connect(_ensure_roles, sender=self, dispatch_uid="refunds_roles")

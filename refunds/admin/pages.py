"""What every page the admin adds shares: the permissions they ask for, the admin's 403
page, finding the sale a page is about, and the page's template context.

The pages themselves (`refund_page`, `cancel_page`, `credit_note`, `import_page`) are
added to the admins with `get_urls()` and wrapped in `admin_site.admin_view` (login,
staff, CSRF, no caching). Each parses its form, calls ONE service, renders. Permissions
are checked in the page as well as in the templates: a staff member without them gets a
403 at the URL, the admin's own page (templates/403.html) saying so in plain words, with
a way back.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from sales.models import Sale

REFUND_PERMISSION = "refunds.add_refund"
CANCEL_PERMISSION = "sales.cancel_sale"


def refusable(view, model_admin, request, *args):
    """Run an admin page; a PermissionDenied renders the admin's 403 page."""
    try:
        return view(model_admin, request, *args)
    except PermissionDenied:
        return permission_denied_page(model_admin, request, *args)


def permission_denied_page(model_admin, request, object_id=None):
    """templates/403.html with the admin's context, linking back to the object's page
    (the sale, the refund) or to the list."""
    site = model_admin.admin_site
    prefix = f"{site.name}:{model_admin.opts.app_label}_{model_admin.opts.model_name}"
    back_url = reverse(f"{prefix}_changelist")
    if object_id is not None and model_admin.has_view_permission(request):
        back_url = reverse(f"{prefix}_change", args=[object_id])
    context = {**site.each_context(request), "title": "Not allowed", "back_url": back_url}
    return TemplateResponse(request, "403.html", context, status=403)


def sale_or_404(model_admin, request, object_id) -> Sale:
    sale = model_admin.get_object(request, object_id)
    if sale is None:
        raise Http404(f"No sale with id {object_id}.")
    if not model_admin.has_view_permission(request, sale):
        raise PermissionDenied
    return sale


def sale_change_url(model_admin, sale: Sale) -> str:
    opts = model_admin.opts
    return reverse(
        f"{model_admin.admin_site.name}:{opts.app_label}_{opts.model_name}_change",
        args=[sale.pk],
    )


def page_context(model_admin, request, sale: Sale | None, title: str, **extra) -> dict:
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "app_label": model_admin.opts.app_label,
        "title": title,
        # The title names the sale ("Refund S-000123"): no subtitle repeating it.
        "subtitle": None,
        "original": sale,
        "sale": sale,
        "sale_url": sale_change_url(model_admin, sale) if sale else None,
        "media": model_admin.media,
        **extra,
    }


def lines_and_payments(sale: Sale):
    return list(sale.lines.order_by("pk")), list(sale.payments.order_by("pk"))



class RefundColumnsMixin:
    """The columns every list of refunds shows the same way: the reason's label and a
    link to the printable credit note (the refunds list and a sale's refunds inline)."""

    @admin.display(description="reason", ordering="reason")
    def reason_display(self, obj):
        return obj.get_reason_display()

    @admin.display(description="credit note")
    def credit_note(self, obj):
        url = reverse("admin:refunds_refund_credit_note", args=[obj.pk])
        return format_html('<a href="{}" target="_blank">Print</a>', url)

from django.urls import path

from . import views


def both(route: str, view, name: str) -> list:
    """The path as documented (no trailing slash) and, undocumented, with one."""
    return [path(route, view.as_view(), name=name),
            path(f"{route}/", view.as_view(schema=None), name=f"{name}-slash")]


urlpatterns = [
    *both("sales/cancel/<str:ident>", views.SaleCancelView, "sale-cancel"),
    *both("sales/refund/<str:ident>", views.SaleFullRefundView, "sale-refund"),
    path("sales/<str:ident>/refunds/", views.SaleRefundView.as_view(), name="sale-refunds"),
    path("sales/<str:ident>/refunds/preview/", views.SaleRefundPreviewView.as_view(),
         name="sale-refund-preview"),
    *both("orders/refund", views.OrderRefundView, "order-refund"),
    path("refunds/", views.RefundListView.as_view(), name="refund-list"),
    *both("refunds/validate", views.RefundBulkValidateView, "refund-validate"),
    *both("refunds/json", views.RefundBulkImportView, "refund-import"),
    *both("refunds/status", views.RefundImportStatusView, "refund-status"),
    path("refunds/<int:pk>/", views.RefundDetailView.as_view(), name="refund-detail"),
]

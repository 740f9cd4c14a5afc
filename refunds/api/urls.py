from django.urls import path, re_path

from . import views

urlpatterns = [
    re_path(r"^sales/cancel/(?P<ident>[^/]+)/?$", views.SaleCancelView.as_view(),
            name="sale-cancel"),
    re_path(r"^sales/refund/(?P<ident>[^/]+)/?$", views.SaleFullRefundView.as_view(),
            name="sale-refund"),
    path("sales/<str:ident>/refunds/", views.SaleRefundView.as_view(), name="sale-refunds"),
    path("sales/<str:ident>/refunds/preview/", views.SaleRefundPreviewView.as_view(),
         name="sale-refund-preview"),
    re_path(r"^orders/refund/?$", views.OrderRefundView.as_view(), name="order-refund"),
    path("refunds/", views.RefundListView.as_view(), name="refund-list"),
    re_path(r"^refunds/validate/?$", views.RefundBulkValidateView.as_view(),
            name="refund-validate"),
    re_path(r"^refunds/json/?$", views.RefundBulkImportView.as_view(), name="refund-import"),
    re_path(r"^refunds/status/?$", views.RefundImportStatusView.as_view(),
            name="refund-status"),
    path("refunds/<int:pk>/", views.RefundDetailView.as_view(), name="refund-detail"),
]

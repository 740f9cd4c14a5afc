from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("products", views.ProductViewSet, basename="product")
router.register("customers", views.CustomerViewSet, basename="customer")

urlpatterns = [
    path("sales/", views.SaleListCreateView.as_view(), name="sale-list"),
    path("sales/balance/<str:ident>", views.SaleBalanceView.as_view(), name="sale-balance"),
    path("sales/balance/<str:ident>/", views.SaleBalanceView.as_view(schema=None),
         name="sale-balance-slash"),
    path("sales/<str:ident>/", views.SaleDetailView.as_view(), name="sale-detail"),
    *router.urls,
]

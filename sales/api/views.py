"""Sales, customers and products. Thin: parse, call one service, render."""

from __future__ import annotations

import json

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins
from rest_framework.response import Response

from backoffice.api import strict
from backoffice.api.envelope import RawJSON, ok, success
from backoffice.api.idempotency import (
    Outcome,
    request_hash,
    request_key,
    request_owner,
    run_idempotent,
)
from sales.document import sale_detail, sale_detail_json, sale_json_supported
from sales.models import Customer, Product, Sale
from sales.selectors import sale_resolve_id
from sales.services import payment_record, sale_create, sale_update

from .filters import CustomerFilter, ProductFilter, SaleFilter
from .serializers import (
    BalanceSerializer,
    CustomerSerializer,
    ProductSerializer,
    SaleCreateSerializer,
    SaleListSerializer,
    SaleSerializer,
    SaleUpdateSerializer,
    customer_details_visible,
)

SALE_IDENT = OpenApiParameter(
    "ident", str, OpenApiParameter.PATH,
    description="The sale's id, number (S-000123) or external id.",
)

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
    description="Repeat a request safely: the same key and body replay the first answer.",
)


def render_sale(ident: int | str, *, request) -> dict:
    """The sale document as `request`'s caller may see it (customer_details_visible)."""
    details = customer_details_visible(request)
    if sale_json_supported():
        return json.loads(sale_detail_json(ident, customer_details=details))
    return SaleSerializer(sale_detail(ident), context={"customer_details": details}).data


class SaleListCreateView(strict.ListAPIView):
    """GET /sales/ (filtered, paginated) and POST /sales/."""

    queryset = Sale.objects.select_related("customer", "cancellation").order_by(
        "-created_at", "-pk")
    serializer_class = SaleListSerializer
    filterset_class = SaleFilter
    required_permissions = {"GET": ["sales.view_sale"], "POST": ["sales.add_sale"]}

    def get_serializer_context(self):
        return {**super().get_serializer_context(),
                "customer_details": customer_details_visible(self.request)}

    @extend_schema(summary="List sales")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(summary="Add a sale", request=SaleCreateSerializer,
                   responses={201: SaleSerializer})
    def post(self, request):
        ser = SaleCreateSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        sale = sale_create(data=ser.to_input(), actor=request.user)
        return ok(render_sale(sale.pk, request=request), "sale created", 201)


class SaleDetailView(strict.APIView):
    required_permissions = {"GET": ["sales.view_sale"], "PATCH": ["sales.change_sale"]}

    @extend_schema(summary="Fetch a sale", parameters=[SALE_IDENT],
                   responses={200: SaleSerializer})
    def get(self, request, ident):
        if sale_json_supported():
            # The document as PostgreSQL built it, embedded in the envelope unparsed.
            return ok(RawJSON(sale_detail_json(
                ident, customer_details=customer_details_visible(request))))
        return ok(render_sale(ident, request=request))

    @extend_schema(summary="Edit a sale (only while nothing is paid or refunded)",
                   parameters=[SALE_IDENT], request=SaleUpdateSerializer,
                   responses={200: SaleSerializer})
    def patch(self, request, ident):
        ser = SaleUpdateSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        sale = sale_update(sale_id=sale_resolve_id(ident), data=ser.to_input(),
                           actor=request.user)
        return ok(render_sale(sale.pk, request=request), "sale updated")


class SaleBalanceView(strict.APIView):
    """PUT (or POST) /sales/balance/{id}: record a payment."""

    required_permissions = {"*": ["sales.add_payment"]}

    @extend_schema(summary="Record a payment", parameters=[SALE_IDENT, IDEMPOTENCY_HEADER],
                   request=BalanceSerializer, responses={200: SaleSerializer})
    def put(self, request, ident):
        ser = BalanceSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        sale_id = sale_resolve_id(ident)

        def work() -> Outcome:
            payment_record(sale_id=sale_id, actor=request.user, **ser.validated_data)
            return Outcome(200, success(render_sale(sale_id, request=request), "payment recorded"))

        # A retried payment must not be recorded twice: same Idempotency-Key, same answer.
        outcome = run_idempotent(
            key=request_key(request),
            owner=request_owner(request),
            fingerprint=request_hash(request, who=request.user.pk), work=work,
        )
        headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
        return Response(outcome.body, status=outcome.status, headers=headers)

    @extend_schema(summary="Record a payment (POST alias)",
                   parameters=[SALE_IDENT, IDEMPOTENCY_HEADER],
                   request=BalanceSerializer, responses={200: SaleSerializer})
    def post(self, request, ident):
        return self.put(request, ident)


class _CrudViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin,
                   mixins.CreateModelMixin, mixins.UpdateModelMixin, strict.GenericViewSet):
    http_method_names = ["get", "post", "patch", "head", "options"]
    model_name = ""

    def get_required_permissions(self, request):
        verb = {"GET": "view", "HEAD": "view", "OPTIONS": "view", "POST": "add",
                "PATCH": "change"}.get(request.method, "change")
        return [f"sales.{verb}_{self.model_name}"]

    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def retrieve(self, request, *args, **kwargs):
        return ok(self.get_serializer(self.get_object()).data)

    def create(self, request, *args, **kwargs):
        ser = self.get_serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        ser.save()
        return ok(ser.data, f"{self.model_name} created", 201)

    def update(self, request, *args, **kwargs):
        ser = self.get_serializer(self.get_object(), data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        ser.save()
        return ok(ser.data, f"{self.model_name} updated")


class ProductViewSet(_CrudViewSet):
    queryset = Product.objects.order_by("sku")
    serializer_class = ProductSerializer
    filterset_class = ProductFilter
    model_name = "product"


class CustomerViewSet(_CrudViewSet):
    queryset = Customer.objects.order_by("name", "pk")
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    model_name = "customer"

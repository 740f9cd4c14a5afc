"""Cancel, refund (in full, by line, by order id), preview, list, bulk import.

Thin: parse, call one service, render. Writes that take an Idempotency-Key (or a
`uuid` field) go through backoffice.api.idempotency.run_idempotent.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from backoffice.api import strict
from backoffice.api.auth import request_api_key
from backoffice.api.envelope import ok, success
from backoffice.api.idempotency import (
    Outcome,
    request_hash,
    request_key,
    request_owner,
    run_idempotent,
)
from backoffice.errors import NothingToRefundError, RefundNotFoundError
from refunds.models import Refund, Source
from refunds.services import (
    CancelResult,
    RefundResult,
    refund_create,
    refund_preview,
    refunds_bulk_import,
    refunds_bulk_validate,
    refunds_import_status,
    sale_cancel,
)
from sales.api.serializers import SaleSerializer
from sales.api.views import IDEMPOTENCY_HEADER, SALE_IDENT, render_sale
from sales.models import Sale, SaleStatus
from sales.selectors import sale_resolve_id, with_sale_id

from .filters import RefundFilter
from .serializers import (
    BulkRecordSerializer,
    BulkResultSerializer,
    CancelSerializer,
    FullRefundSerializer,
    ImportStatusSerializer,
    OrderRefundSerializer,
    RefundPreviewSerializer,
    RefundRequestSerializer,
    RefundSerializer,
)


def refund_queryset():
    return Refund.objects.select_related("created_by", "api_key").prefetch_related(
        "lines", "allocations"
    )


class _Written:
    """A refund as the service just wrote it: its own fields, and the lines and
    allocations saved with it (RefundResult), read as RefundSerializer reads them."""

    def __init__(self, result: RefundResult) -> None:
        self._refund = result.refund
        self.lines = result.lines
        self.allocations = result.allocations

    def __getattr__(self, name: str):
        return getattr(self._refund, name)


def render_refund(refund: int | Refund | RefundResult) -> dict:
    """A refund's data. An offline refund just written by the service (RefundResult:
    nothing settles it later) is rendered from what was written, without reading it
    back; an online one, a replay or an id is read back (settlement may have moved it)."""
    if isinstance(refund, RefundResult):
        if not refund.replayed and not refund.refund.online:
            return RefundSerializer(_Written(refund)).data
        refund = refund.refund
    pk = refund.pk if isinstance(refund, Refund) else refund
    return RefundSerializer(refund_queryset().get(pk=pk)).data


def respond(outcome: Outcome) -> Response:
    """The response for an outcome of run_idempotent (a replay says so in a header)."""
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return Response(outcome.body, status=outcome.status, headers=headers)


def idempotent(request, work) -> Response:
    """work() -> Outcome, once per Idempotency-Key (or `uuid` field) and caller: the one
    store (backoffice.idempotency) keeps the answer and the refund it made."""
    return respond(run_idempotent(key=request_key(request), owner=request_owner(request),
                                  fingerprint=request_hash(request, who=request.user.pk),
                                  work=work))


def api_refund_create(request, *, sale_id: int, **service_kwargs) -> RefundResult:
    """refund_create for an API request (native or a dialect): the request's user and key,
    door `api`. Its Idempotency-Key was claimed by `idempotent` around it."""
    return refund_create(
        sale_id=sale_id, actor=request.user, source=Source.API,
        api_key=request_api_key(request), **service_kwargs,
    )


def api_sale_cancel(request, *, sale_id: int, **service_kwargs) -> CancelResult:
    """sale_cancel for an API request (native or a dialect): the request's user and key."""
    return sale_cancel(sale_id=sale_id, actor=request.user, source=Source.API,
                       api_key=request_api_key(request), **service_kwargs)


def refund_in_full(request, *, sale_id: int, **service_kwargs) -> Refund | None:
    """Refund all that remains; None when the sale was already refunded in full (PUT
    /sales/refund/{id} is idempotent by nature: 200 again, nothing more)."""
    if Sale.objects.filter(pk=sale_id, status=SaleStatus.REFUNDED).exists():
        return None
    try:
        return api_refund_create(request, sale_id=sale_id, **service_kwargs).refund
    except NothingToRefundError:
        # A concurrent full refund got there first: the same answer.
        if not Sale.objects.filter(pk=sale_id, status=SaleStatus.REFUNDED).exists():
            raise
    return None


def _create_refund(request, ident: int | str, ser) -> Response:
    def work():
        with ser.request_paths():
            result = with_sale_id(ident, lambda sale_id: api_refund_create(
                request, sale_id=sale_id, **ser.service_kwargs(),
            ))
        return Outcome(201, success(render_refund(result), "refund created", 201),
                       refund=result.refund)

    return idempotent(request, work)


class SaleRefundView(strict.APIView):
    """POST /sales/{id}/refunds/: refund some lines and units, or everything left."""

    required_permissions = {"*": ["refunds.add_refund"]}

    @extend_schema(summary="Refund a sale (partly or in full)", request=RefundRequestSerializer,
                   parameters=[SALE_IDENT, IDEMPOTENCY_HEADER],
                   responses={201: RefundSerializer})
    def post(self, request, ident):
        ser = RefundRequestSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        return _create_refund(request, ident, ser)


class SaleRefundPreviewView(strict.APIView):
    """POST /sales/{id}/refunds/preview/: what the refund would give back. Writes nothing."""

    required_permissions = {"*": ["sales.view_sale"]}

    @extend_schema(summary="Preview a refund", request=RefundRequestSerializer,
                   parameters=[SALE_IDENT], responses={200: RefundPreviewSerializer})
    def post(self, request, ident):
        ser = RefundRequestSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        with ser.request_paths():
            plan = refund_preview(sale_id=sale_resolve_id(ident), **ser.service_kwargs())
        return ok(RefundPreviewSerializer(plan).data, "refund preview")


class OrderRefundView(strict.APIView):
    """POST /orders/refund: the same refund, addressed by `order_id`."""

    required_permissions = {"*": ["refunds.add_refund"]}

    @extend_schema(summary="Refund an order by its id or external id",
                   request=OrderRefundSerializer, parameters=[IDEMPOTENCY_HEADER],
                   responses={201: RefundSerializer})
    def post(self, request):
        ser = OrderRefundSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        return _create_refund(request, ser.validated_data["order_id"], ser)


class SaleFullRefundView(strict.APIView):
    """PUT (or POST) /sales/refund/{id}: refund all that remains; 200 again if done."""

    required_permissions = {"*": ["refunds.add_refund"]}

    @extend_schema(summary="Refund a sale in full", request=FullRefundSerializer,
                   parameters=[SALE_IDENT, IDEMPOTENCY_HEADER],
                   responses={200: SaleSerializer})
    def put(self, request, ident):
        ser = FullRefundSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        sale_id = sale_resolve_id(ident)

        def work():
            refund = refund_in_full(request, sale_id=sale_id, **ser.service_kwargs())
            return Outcome(200, success(render_sale(sale_id, request=request), "sale refunded"),
                           refund=refund)

        return idempotent(request, work)

    @extend_schema(summary="Refund a sale in full (POST alias)", request=FullRefundSerializer,
                   parameters=[SALE_IDENT, IDEMPOTENCY_HEADER],
                   responses={200: SaleSerializer})
    def post(self, request, ident):
        return self.put(request, ident)


class SaleCancelView(strict.APIView):
    """PUT (or POST) /sales/cancel/{id}: cancel; 200 and nothing more if already done."""

    required_permissions = {"*": ["sales.cancel_sale"]}

    @extend_schema(summary="Cancel a sale", request=CancelSerializer,
                   parameters=[SALE_IDENT, IDEMPOTENCY_HEADER],
                   responses={200: SaleSerializer})
    def put(self, request, ident):
        ser = CancelSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        d = ser.validated_data
        sale_id = sale_resolve_id(ident)

        def work():
            result = api_sale_cancel(
                request, sale_id=sale_id, reason=d["reason"], note=d["note"],
                restock=d["restock"], alert_customer=d["alert_customer"],
            )
            return Outcome(200, success(render_sale(sale_id, request=request), "sale cancelled"),
                           refund=result.refund)

        return idempotent(request, work)

    @extend_schema(summary="Cancel a sale (POST alias)", request=CancelSerializer,
                   parameters=[SALE_IDENT, IDEMPOTENCY_HEADER],
                   responses={200: SaleSerializer})
    def post(self, request, ident):
        return self.put(request, ident)


class RefundListView(strict.ListAPIView):
    queryset = refund_queryset().order_by("-created_at", "-pk")
    serializer_class = RefundSerializer
    filterset_class = RefundFilter
    required_permissions = {"GET": ["refunds.view_refund"]}

    @extend_schema(summary="List refunds")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class RefundDetailView(strict.APIView):
    required_permissions = {"GET": ["refunds.view_refund"]}

    @extend_schema(summary="Fetch a refund", responses={200: RefundSerializer})
    def get(self, request, pk: int):
        try:
            return ok(render_refund(pk))
        except Refund.DoesNotExist:
            raise RefundNotFoundError(f"No refund with id {pk}.") from None


IMPORT_SOURCE = OpenApiParameter(
    "source", str, OpenApiParameter.QUERY, required=False,
    description="Namespace of the records' ids (default `bulk`): the upsert key is "
                "(source, id).",
)


def _source_param(request) -> str:
    """`?source=`, trimmed to 64 characters ("" if absent); a NUL (which PostgreSQL
    refuses in text) is a 400 naming the parameter, not a 500."""
    value = request.query_params.get("source") or ""
    if "\x00" in value:
        raise ValidationError({"source": ["Null characters are not allowed."]})
    return value.strip()[:64]


def _import_source(request) -> str:
    return _source_param(request) or "bulk"


class RefundBulkValidateView(strict.APIView):
    query_params = frozenset({"source"})
    required_permissions = {"*": ["refunds.add_refund"]}
    throttle_scope = "bulk"
    extra_error_codes = [413]

    @extend_schema(summary="Check up to 1000 refund records (writes nothing)",
                   request=BulkRecordSerializer(many=True), parameters=[IMPORT_SOURCE],
                   responses={200: BulkResultSerializer})
    def post(self, request):
        result = refunds_bulk_validate(records=request.data,
                                       import_source=_import_source(request),
                                       actor=request.user)
        return ok({"result": "VALID", "count": result.count, "created": result.created,
                   "replaced": result.replaced, "withdrawn": result.withdrawn,
                   "unchanged": result.unchanged, "import_id": None}, "records valid")


class RefundBulkImportView(strict.APIView):
    query_params = frozenset({"source"})
    required_permissions = {"*": ["refunds.add_refund"]}
    throttle_scope = "bulk"
    extra_error_codes = [413]

    @extend_schema(summary="Upsert up to 1000 refund records, all or nothing",
                   request=BulkRecordSerializer(many=True), parameters=[IMPORT_SOURCE],
                   responses={201: BulkResultSerializer})
    def post(self, request):
        result = refunds_bulk_import(records=request.data, import_source=_import_source(request),
                                     actor=request.user, door=Source.API,
                                     api_key=request_api_key(request))
        return ok(result.as_dict(), "refunds imported", 201)


STATUS_SOURCE = OpenApiParameter(
    "source", str, OpenApiParameter.QUERY, required=False,
    description="Count only the live refunds imported under this source (default: all).",
)


class RefundImportStatusView(strict.APIView):
    query_params = frozenset({"source"})
    required_permissions = {"GET": ["refunds.view_refund"]}

    @extend_schema(summary="Bulk import figures", parameters=[STATUS_SOURCE],
                   responses={200: ImportStatusSerializer})
    def get(self, request):
        status = refunds_import_status(import_source=_source_param(request) or None)
        return ok(ImportStatusSerializer(status).data)

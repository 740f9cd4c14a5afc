"""Strict input: a request does exactly what it names, or nothing.

A key the endpoint does not know (a misspelling, another system's field name, a field
that is read-only) is refused with a 400 `unknown_field` naming its path
(`lineItems`, `items[0].qty`, `[3].line_items[0].price`), never dropped: an API that
drops `lineItems` and then refunds "everything that remains" gives back more than it
was asked. The same goes for query parameters.

- Request bodies: every serializer of the API derives from `Serializer` or
  `ModelSerializer` here (tests/api/test_strict_input.py walks the project's serializers
  and fails on one that does not), so nested serializers and lists are covered too.
- Query parameters: every API view derives from `StrictQueryMixin` (the same test walks
  the URL patterns); a list view knows its filters, pagination and `format`, any other
  view the names in its `query_params`.
- Parsers that read a body by hand (the bulk import) call `backoffice.errors.unknown_keys()`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from rest_framework import generics, serializers, views, viewsets
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.settings import api_settings

from backoffice.errors import UNKNOWN_FIELD, unknown_keys
from backoffice.errors import UNKNOWN_FIELD_MESSAGE as UNKNOWN_MESSAGE

READ_ONLY_MESSAGE = "Read-only field: it cannot be set."
UNKNOWN_PARAMETER_MESSAGE = "Unknown query parameter: this endpoint does not take it."

# Query parameters every view understands: the renderer's `format` (?format=json).
ALWAYS_KNOWN_PARAMS = frozenset({api_settings.URL_FORMAT_OVERRIDE or "format"})


def unknown_detail(*, read_only: bool = False) -> list[ErrorDetail]:
    return [ErrorDetail(READ_ONLY_MESSAGE if read_only else UNKNOWN_MESSAGE,
                        code=UNKNOWN_FIELD)]


class StrictSerializerMixin:
    """Refuse keys that are not writable fields of this serializer, alongside any other
    error the fields find (so one answer names everything wrong)."""

    fields: Any

    def to_internal_value(self, data):
        unknown: dict[str, list[ErrorDetail]] = {}
        if isinstance(data, Mapping):
            writable = {name for name, f in self.fields.items() if not f.read_only}
            for key in unknown_keys(data, writable):
                unknown[key] = unknown_detail(read_only=key in self.fields)
        try:
            value = super().to_internal_value(data)  # type: ignore[misc]
        except ValidationError as exc:
            if not unknown:
                raise
            detail = exc.detail if isinstance(exc.detail, dict) else {
                api_settings.NON_FIELD_ERRORS_KEY: exc.detail}
            raise ValidationError({**detail, **unknown}) from None
        if unknown:
            raise ValidationError(unknown)
        return value


class Serializer(StrictSerializerMixin, serializers.Serializer):
    """The API's base serializer: DRF's, refusing unknown keys."""


class ModelSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    """The API's base model serializer: DRF's, refusing unknown keys."""


def iter_error_details(detail: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """DRF's nested errors as (path, error) pairs: `items[1].quantity`."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key == api_settings.NON_FIELD_ERRORS_KEY:
                path = prefix or api_settings.NON_FIELD_ERRORS_KEY
            elif isinstance(key, int):  # a list's errors, keyed by index
                path = f"{prefix}[{key}]"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            yield from iter_error_details(value, path)
    elif isinstance(detail, list):
        for i, item in enumerate(detail):
            if isinstance(item, dict | list):
                if item not in ({}, []):
                    yield from iter_error_details(item, f"{prefix}[{i}]")
            else:
                yield prefix or api_settings.NON_FIELD_ERRORS_KEY, item
    else:
        yield prefix or api_settings.NON_FIELD_ERRORS_KEY, detail


def unknown_paths(detail: Any) -> list[str]:
    """The paths DRF's errors mark as unknown fields, in order, each once."""
    paths = [path for path, err in iter_error_details(detail)
             if getattr(err, "code", None) == UNKNOWN_FIELD]
    return list(dict.fromkeys(paths))


def unknown_sentence(paths: list[str], what: str = "field") -> str:
    """'Unknown field lineItems: nothing was done.' (the request does what it names or
    nothing)."""
    names = ", ".join(paths[:10]) + (f" and {len(paths) - 10} more" if len(paths) > 10 else "")
    plural = "s" if len(paths) > 1 else ""
    return f"Unknown {what}{plural} {names}: nothing was done. Check the spelling against " \
           f"the API docs (/api/v2/docs/)."


class StrictQueryMixin:
    """Refuse query parameters the view does not understand (400 `unknown_field`).

    A list view knows its filterset's filters, its paginator's parameters and `format`;
    another view knows `format` and the names in `query_params`."""

    query_params: frozenset[str] | set[str] = frozenset()

    def known_query_params(self, request) -> set[str]:
        known = set(ALWAYS_KNOWN_PARAMS) | set(self.query_params)
        filterset_class = getattr(self, "filterset_class", None)
        if filterset_class is not None:
            known |= set(filterset_class.base_filters)
        paginator = getattr(self, "paginator", None)
        if paginator is not None:
            known |= {name for name in (
                getattr(paginator, "page_query_param", None),
                getattr(paginator, "page_size_query_param", None),
                getattr(paginator, "limit_query_param", None),
                getattr(paginator, "offset_query_param", None),
                getattr(paginator, "cursor_query_param", None),
            ) if name}
        for attr in ("search_param", "ordering_param"):
            for backend in getattr(self, "filter_backends", ()):
                name = getattr(backend, attr, None)
                if name:
                    known.add(name)
        return known

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        unknown = unknown_keys(request.query_params, self.known_query_params(request))
        if unknown:
            raise UnknownQueryParameters({
                key: [ErrorDetail(UNKNOWN_PARAMETER_MESSAGE, code=UNKNOWN_FIELD)]
                for key in unknown})


class UnknownQueryParameters(ValidationError):
    """Query parameters the view does not understand (400 `unknown_field`)."""


class APIView(StrictQueryMixin, views.APIView):
    """The API's base view: DRF's, refusing unknown query parameters."""


class ListAPIView(StrictQueryMixin, generics.ListAPIView):
    """The API's base list view: DRF's, refusing unknown query parameters."""


class GenericViewSet(StrictQueryMixin, viewsets.GenericViewSet):
    """The API's base viewset: DRF's, refusing unknown query parameters."""

"""Status badges: each status has one badge, the same on every page (admin lists, the
sale page, alerts, refunds that need attention). Its words are the model's TextChoices
label (`get_status_display()`); its colour is the model's `STATUS_TONES`, declared beside
its choices. Pages call `badge(obj)` (Python) or `{% load badges %}{% badge obj %}`; the
CSS classes are in static/backoffice/css/admin.css."""

from __future__ import annotations

from typing import Any

from django.utils.html import format_html
from django.utils.safestring import SafeString

TONES = ("green", "amber", "blue", "purple", "red", "grey")
# A refund a gateway refused in part, waiting for staff (annotated by the refund list).
NEEDS_ATTENTION = "Needs attention"


def badge_html(tone: str, label: str) -> SafeString:
    return format_html('<span class="bo-badge bo-badge-{}">{}</span>', tone, label)


def badge(obj: Any, field: str = "status") -> SafeString:
    """`obj`'s status as its badge; a row annotated `needs_attention` says so instead."""
    if getattr(obj, "needs_attention", False):
        return badge_html("red", NEEDS_ATTENTION)
    value = getattr(obj, field)
    label = getattr(obj, f"get_{field}_display")()
    return badge_html(type(obj).STATUS_TONES.get(value, "grey"), label)

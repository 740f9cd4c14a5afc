"""`{% load badges %}` then `{% badge sale %}`: a status as its one badge
(backoffice/badges.py)."""

from django import template

from backoffice.badges import badge as status_badge

register = template.Library()


@register.simple_tag
def badge(obj, field: str = "status"):
    return status_badge(obj, field)

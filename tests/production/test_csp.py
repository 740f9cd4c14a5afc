"""Content Security Policy: sent on every page, strict on scripts (no inline script, no
eval, only this origin), and the project's own admin templates stay within it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse

from tests.factories import UserFactory

BASE_DIR = Path(__file__).resolve().parents[2]


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


@pytest.fixture
def staff_client(client, db):
    client.force_login(UserFactory(username="csp-staff", is_superuser=True))
    return client


def test_the_admin_login_page_is_sent_with_a_strict_policy(client, db):
    policy = _policy(client.get(reverse("admin:login")))
    assert policy["default-src"] == ["'self'"]
    assert "'self'" in policy["script-src"]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "'unsafe-eval'" not in policy["script-src"]
    assert policy["connect-src"] == ["'self'"]  # the refund page's preview: same origin
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert policy["form-action"] == ["'self'"]


def test_admin_pages_carry_the_policy(staff_client):
    for url in (reverse("admin:index"), reverse("admin:sales_sale_changelist")):
        response = staff_client.get(url)
        assert response.status_code == 200, url
        assert "script-src 'self'" in response["Content-Security-Policy"]


def test_browser_hardening_headers_are_sent(client, db):
    response = client.get(reverse("admin:login"))
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)
EVENT_ATTRIBUTE = re.compile(
    r"\son(click|dblclick|change|submit|load|input|key(up|down|press)|focus|blur|mouse[a-z]+|error)\s*=",
    re.IGNORECASE,
)
JS_URL = re.compile(r"""(href|src|action)\s*=\s*["']\s*javascript:""", re.IGNORECASE)


def _templates():
    return sorted((BASE_DIR / "templates").rglob("*.html"))


@pytest.mark.parametrize("template", _templates(), ids=lambda p: str(p.relative_to(BASE_DIR)))
def test_templates_have_no_inline_script_the_policy_would_block(template):
    """The policy allows scripts from this origin and inline ones carrying the request's
    nonce; inline event handlers and javascript: URLs are always blocked."""
    text = template.read_text()
    for attributes in SCRIPT_TAG.findall(text):
        allowed = (
            "src=" in attributes
            or "nonce=" in attributes
            or re.search(r"""type=["']application/(ld\+)?json""", attributes)
        )
        assert allowed, f"inline <script{attributes}> in {template}"
    assert not EVENT_ATTRIBUTE.search(text), f"inline event handler in {template}"
    assert not JS_URL.search(text), f"javascript: URL in {template}"


def test_no_static_script_of_the_project_needs_eval():
    for script in (BASE_DIR / "static").rglob("*.js"):
        text = script.read_text(errors="replace")
        assert "eval(" not in text and "new Function(" not in text, script


# -- rendered pages: every <script> is either loaded from this origin or carries the
# -- nonce of this response's policy (what a browser would run) --------------------

SCRIPT_ELEMENT = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.IGNORECASE | re.DOTALL)


def _blocked_scripts(response) -> list[str]:
    policy = response["Content-Security-Policy"]
    nonces = set(re.findall(r"'nonce-([^']+)'", policy))
    blocked = []
    for attributes, body in SCRIPT_ELEMENT.findall(response.content.decode()):
        if re.search(r"""type=["']application/(ld\+)?json""", attributes):
            continue  # data, not code
        src = re.search(r"""src=["']([^"']+)["']""", attributes)
        if src:
            if src.group(1).startswith(("http:", "https:", "//")):
                blocked.append(f"external script {src.group(1)}")
            continue
        nonce = re.search(r"""nonce=["']([^"']+)["']""", attributes)
        if not (nonce and nonce.group(1) in nonces):
            blocked.append(f"inline script: {body.strip()[:80]!r}")
    return blocked


@pytest.fixture
def sale_with_refund(db):
    from refunds.services import refund_create
    from tests.factories import SaleFactory

    sale = SaleFactory(lines=[(3, 1200)])
    refund_create(sale_id=sale.pk, items={sale.lines.first().pk: 1})
    return sale


def test_the_admin_pages_run_no_script_the_policy_blocks(staff_client, sale_with_refund):
    sale = sale_with_refund
    refund = sale.refunds.get()
    urls = [
        reverse("admin:index"),  # the dashboard and its chart
        reverse("admin:sales_sale_changelist"),
        reverse("admin:sales_sale_change", args=[sale.pk]),
        reverse("admin:sales_sale_refund", args=[sale.pk]),  # its live preview
        reverse("admin:sales_sale_cancel", args=[sale.pk]),
        reverse("admin:refunds_refund_changelist"),
        reverse("admin:refunds_refund_change", args=[refund.pk]),
        reverse("admin:refunds_refund_credit_note", args=[refund.pk]),
        reverse("admin:refunds_refund_import"),
    ]
    for url in urls:
        response = staff_client.get(url)
        assert response.status_code == 200, url
        assert _blocked_scripts(response) == [], url


def test_the_api_docs_run_no_script_the_policy_blocks(client, db):
    response = client.get("/api/v2/docs/")
    assert response.status_code == 200
    assert _blocked_scripts(response) == []
    # Swagger UI's start-up script comes from this origin instead.
    script = client.get("/api/v2/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in script.content

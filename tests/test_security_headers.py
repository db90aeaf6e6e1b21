"""Production's Content-Security-Policy allows no inline script: every template keeps its scripts in files, and the
policy reaches every answer (reported only while DEBUG is on, enforced in production, see scripts/prod_smoke.sh)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR) / "quai"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)


def test_no_template_has_an_inline_script_the_policy_would_block():
    offenders = [
        str(path.relative_to(ROOT))
        for path in ROOT.rglob("*.html")
        if any("json" not in tag for tag in INLINE_SCRIPT.findall(path.read_text()))
    ]
    assert offenders == []


@pytest.mark.django_db
def test_the_sign_in_page_carries_the_content_security_policy(client):
    response = client.get("/ops/login/")
    header = "Content-Security-Policy-Report-Only" if settings.QUAI_CSP_REPORT_ONLY else "Content-Security-Policy"
    assert response[header] == settings.QUAI_CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in response[header]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"

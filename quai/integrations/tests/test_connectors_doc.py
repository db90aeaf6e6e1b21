"""docs/CONNECTORS.md's receiver snippet, run as written against a delivery Quai signed and sent over HTTP."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from quai.integrations import services
from quai.integrations.tests.factories import WebhookSubscriptionFactory
from quai.integrations.tests.receiver import Receiver

pytestmark = pytest.mark.django_db


def _snippet() -> dict[str, Any]:
    text = (Path(settings.BASE_DIR) / "docs" / "CONNECTORS.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/CONNECTORS.md", "exec"), namespace)
    return namespace


def test_the_documented_receiver_verifies_a_real_delivery_and_refuses_a_tampered_one():
    snippet = _snippet()
    receiver = Receiver()
    receiver.start()
    try:
        subscription = WebhookSubscriptionFactory(url=receiver.url, event_types=["*"])
        services.webhook_subscription_ping(subscription=subscription)
        assert services.webhook_deliveries_send_due() == 1
        (request,) = receiver.requests
    finally:
        receiver.stop()
    body = request.body.encode()
    event = snippet["verify"](subscription.secret, request.headers, body)
    assert event["type"] == "webhook.ping" and event["id"] == request.headers["webhook-id"]

    invalid = snippet["InvalidSignature"]
    with pytest.raises(invalid):
        snippet["verify"](subscription.secret, request.headers, body.replace(b"ping", b"pong"))
    with pytest.raises(invalid):
        snippet["verify"]("whsec_" + "A" * 44, request.headers, body)
    with pytest.raises(invalid):  # a captured request replayed an hour later
        later = int(request.headers["webhook-timestamp"]) + 3600
        snippet["verify"](subscription.secret, {**request.headers, "webhook-timestamp": str(later)}, body)

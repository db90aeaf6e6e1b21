"""The sender's own request path (5 December, issue 12) against the one it replaced: the requests through httpx's
transport and the sender's threads are, on the wire, those the httpx client sent (same body, same headers but the
client's ``accept-encoding`` and ``connection``, valid signatures), a 500 then a 200 still retried and logged, and an
error raised in a request's thread still reaches the sender, as a future's result did."""

from __future__ import annotations

import pytest
from django.db import transaction

from quai.core.outbox import event_record, outbox_relay
from quai.integrations import services
from quai.integrations.models import DeliveryStatus, WebhookAttempt, WebhookDelivery
from quai.integrations.services import deliveries
from quai.integrations.signing import signature, signature_reference
from quai.integrations.tests.factories import WebhookSubscriptionFactory
from quai.inventory.events import ReservationReleased

pytestmark = pytest.mark.django_db

# What the httpx client adds on its own and the transport path leaves out (it was never ours to choose).
CLIENT_ONLY = {"accept-encoding", "connection"}


def _events(merchant, count: int) -> None:
    with transaction.atomic():
        for index in range(count):
            event_record(
                ReservationReleased(reservation_id=index + 1, sku_id=1, quantity=index + 1, remaining=0),
                merchant_id=merchant.pk,
            )
    outbox_relay()


def _wire(request) -> dict[str, str]:
    return {name: value for name, value in request.headers.items() if name not in CLIENT_ONLY}


def test_the_transport_path_sends_what_the_client_path_sent(merchant, receiver):
    subscription = WebhookSubscriptionFactory(merchant=merchant, url=receiver.url, event_types=["inventory.*"])
    _events(merchant, 3)
    pending = list(WebhookDelivery.objects.order_by("id"))
    with deliveries._client() as client:  # the client path: what every request went through before
        by_client = [services.webhook_delivery_send(delivery=delivery, client=client) for delivery in pending]
    assert [d.status for d in by_client] == [DeliveryStatus.SUCCEEDED] * 3
    WebhookDelivery.objects.update(status=DeliveryStatus.PENDING, finished_at=None)
    assert services.webhook_deliveries_send_due() == 3  # the sender's path: its transport and threads
    first, second = receiver.requests[:3], receiver.requests[3:]
    assert len(second) == 3
    second.sort(key=lambda request: request.headers["webhook-id"])
    first.sort(key=lambda request: request.headers["webhook-id"])
    for old, new in zip(first, second, strict=True):
        assert new.body == old.body and new.path == old.path
        old_headers, new_headers = _wire(old), _wire(new)
        for signed in ("webhook-timestamp", "webhook-signature"):  # of the moment of each attempt
            old_headers.pop(signed), new_headers.pop(signed)
        assert new_headers == old_headers
        assert new.headers["webhook-signature"] == signature_reference(
            secret=subscription.secret,
            msg_id=new.headers["webhook-id"],
            timestamp=int(new.headers["webhook-timestamp"]),
            body=new.body,
        )
    assert set(second[0].headers) >= {"content-type", "user-agent", "host", "content-length", "accept"}
    assert WebhookAttempt.objects.count() == 6


def test_through_the_transport_a_500_then_a_200_is_retried_and_each_attempt_logged(merchant, receiver):
    receiver.answer = lambda index, request: (500, {}, b"busy") if index == 0 else (200, {}, b"ok")
    subscription = WebhookSubscriptionFactory(merchant=merchant, url=receiver.url, event_types=["inventory.*"])
    _events(merchant, 1)
    services.webhook_deliveries_send_due()
    WebhookDelivery.objects.update(next_attempt_at=WebhookDelivery.objects.get().created_at)
    services.webhook_deliveries_send_due()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 2
    attempts = list(delivery.attempt_log.order_by("id").values_list("status_code", "response_excerpt"))
    assert attempts == [(500, "busy"), (200, "ok")]
    for request in receiver.requests:
        assert request.headers["webhook-signature"] == signature(
            secret=subscription.secret,
            msg_id=request.headers["webhook-id"],
            timestamp=int(request.headers["webhook-timestamp"]),
            body=request.body,
        )


def test_an_error_raised_in_a_request_thread_reaches_the_sender(merchant, receiver, monkeypatch):
    WebhookSubscriptionFactory(merchant=merchant, url=receiver.url, event_types=["inventory.*"])
    _events(merchant, 2)

    def broken(prepared, client, *, check_public):
        raise KeyboardInterrupt  # not an Exception: ``_request`` does not log it as an attempt

    monkeypatch.setattr(deliveries, "_request", broken)
    with pytest.raises(KeyboardInterrupt):
        services.webhook_deliveries_send_due()
    assert not receiver.requests and not WebhookAttempt.objects.exists()

"""The webhook sender under load: requests in flight together, attempts recorded in one transaction per round, the
claim's guarantee that makes that safe (one delivery per subscription and resource), and the coalesced nudge."""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta

import pytest
from django.db import OperationalError, transaction

from quai.core import clock, marks
from quai.core.tests.local_redis import redis_up, redis_url
from quai.integrations import domain, services
from quai.integrations.models import DeliveryStatus, WebhookAttempt, WebhookDelivery
from quai.integrations.services import deliveries
from quai.integrations.services.deliveries import AttemptOutcome, webhook_attempts_record
from quai.integrations.tests.factories import WebhookDeliveryFactory, WebhookSubscriptionFactory

pytestmark = pytest.mark.django_db


def _later(**delta) -> None:
    clock.set_now(clock.now() + timedelta(**delta))


def _deliveries(subscription, resources: int, each: int) -> list[WebhookDelivery]:
    """``each`` deliveries per resource, interleaved as a sale writes them; ``data.sequence`` counts per resource."""
    made = []
    for sequence in range(each):
        for resource in range(resources):
            made.append(
                WebhookDeliveryFactory(
                    subscription=subscription,
                    resource_key=f"sku:{resource}",
                    payload={"resource": {"id": str(resource)}, "data": {"sequence": sequence}},
                )
            )
    return made


def test_a_claim_holds_one_delivery_per_subscription_and_resource_and_none_behind_one_in_flight(merchant):
    first = WebhookSubscriptionFactory(merchant=merchant)
    second = WebhookSubscriptionFactory(merchant=merchant)
    made = _deliveries(first, 3, 3) + _deliveries(second, 2, 2)

    claimed = services.webhook_deliveries_claim(batch=50)

    keys = [(d.subscription_id, d.resource_key) for d in claimed]
    assert len(keys) == len(set(keys)) == 5
    oldest = {}
    for delivery in made:
        oldest.setdefault((delivery.subscription_id, delivery.resource_key), delivery.pk)
    assert {d.pk for d in claimed} == set(oldest.values())
    # While those are in flight (leased, still pending), the ones behind them are not due, whoever claims.
    assert services.webhook_deliveries_claim(batch=50) == []


def test_requests_are_in_flight_together_so_a_slow_receiver_does_not_hold_up_the_others(merchant, receiver, settings):
    settings.QUAI_WEBHOOKS_CONCURRENCY = 4
    answered: list[str] = []
    lock = threading.Lock()

    def answer(index, request):
        resource = request.json["resource"]["id"]
        if resource == "0":  # the oldest delivery, claimed and sent first
            time.sleep(1.0)
        with lock:
            answered.append(resource)
        return 200, {}, b"ok"

    receiver.answer = answer
    _deliveries(WebhookSubscriptionFactory(merchant=merchant, url=receiver.url), 6, 1)

    started = time.monotonic()
    assert services.webhook_deliveries_send_due() == 6

    assert answered[-1] == "0"  # one after the other, the five others would have waited behind it
    assert time.monotonic() - started < 3
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SUCCEEDED}


def test_one_subscriptions_endpoint_gets_at_most_its_share_of_the_requests_in_flight(merchant, receiver, settings):
    settings.QUAI_WEBHOOKS_CONCURRENCY = 8
    settings.QUAI_WEBHOOKS_CONCURRENCY_PER_SUBSCRIPTION = 2
    lock = threading.Lock()
    now_in: dict[str, int] = {}
    most: dict[str, int] = {}

    def answer(index, request):
        endpoint = request.path
        with lock:
            now_in[endpoint] = now_in.get(endpoint, 0) + 1
            most[endpoint] = max(most.get(endpoint, 0), now_in[endpoint])
        time.sleep(0.05)
        with lock:
            now_in[endpoint] -= 1
        return 200, {}, b"ok"

    receiver.answer = answer
    for name in ("a", "b"):
        _deliveries(WebhookSubscriptionFactory(merchant=merchant, url=f"{receiver.url}/{name}"), 8, 1)

    assert services.webhook_deliveries_send_due() == 16

    assert most == {"/hooks/a": 2, "/hooks/b": 2}  # the pool's width is shared, one endpoint gets no more than 2
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == 16


def test_with_requests_in_flight_together_each_resource_still_arrives_in_order_through_failures(
    merchant, receiver, settings
):
    settings.QUAI_WEBHOOKS_CONCURRENCY = 8
    dice = random.Random(12)
    lock = threading.Lock()

    def answer(index, request):
        with lock:
            return (500, {}, b"busy") if dice.random() < 0.3 else (200, {}, b"ok")

    receiver.answer = answer
    clock.set_now(clock.now())
    _deliveries(WebhookSubscriptionFactory(merchant=merchant, url=receiver.url), 7, 4)

    services.webhook_deliveries_send_due()
    for _ in range(40):
        if not WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).exists():
            break
        _later(hours=1)
        services.webhook_deliveries_send_due()

    delivered: dict[str, list[int]] = {}
    for request in receiver.requests:
        if request.status == 200:
            delivered.setdefault(request.json["resource"]["id"], []).append(request.json["data"]["sequence"])
    assert delivered == {str(resource): [0, 1, 2, 3] for resource in range(7)}
    assert WebhookAttempt.objects.count() == len(receiver.requests)


def _outcomes_for(made: list[WebhookDelivery]) -> list[AttemptOutcome]:
    answers = [
        {"status_code": 200},
        {"status_code": 500, "response_excerpt": "down", "retry_after": 90.0},
        {"status_code": 404, "response_excerpt": "no such hook"},
        {"status_code": 301, "error": "redirect_not_followed: https://new.example"},
        {"status_code": None, "error": "ReadTimeout: timed out"},
        {"status_code": None, "error": "webhook_url_not_public: private", "final": True},
        {"status_code": 200},
        {"status_code": 200},  # already finished by another worker whose lease had not expired
    ]
    return [AttemptOutcome(delivery=d, latency_ms=10 + i, **answers[i]) for i, d in enumerate(made)]


def _state(made: list[WebhookDelivery]) -> list[tuple]:
    """What was written, each delivery's next attempt given as its distance from the backoff its own id jitters
    (the two sets' ids differ, so their jitters do)."""
    rows = []
    for delivery, outcome in zip(made, _outcomes_for(made), strict=True):
        delivery.refresh_from_db()
        attempts = [
            (a.status_code, a.latency_ms, a.response_excerpt, a.error, a.at) for a in delivery.attempt_log.all()
        ]
        expected = domain.schedule_retry(
            attempts=delivery.attempts,
            now=clock.now(),
            started_at=delivery.created_at,
            retry_after=outcome.retry_after,
            key=str(delivery.pk),
        )
        rows.append(
            (
                delivery.status,
                delivery.attempts,
                delivery.locked_until,
                delivery.next_attempt_at - expected.next_attempt_at if delivery.status == "pending" else None,
                delivery.finished_at,
                delivery.updated_at,
                attempts,
            )
        )
    return rows


def test_recording_a_round_of_attempts_at_once_writes_what_recording_them_one_by_one_writes(merchant):
    clock.set_now(clock.now())
    one_by_one = _deliveries(WebhookSubscriptionFactory(merchant=merchant), 8, 1)
    at_once = _deliveries(WebhookSubscriptionFactory(merchant=merchant), 8, 1)
    for made in (one_by_one, at_once):
        services.webhook_deliveries_claim(batch=50)
        WebhookDelivery.objects.filter(pk=made[-1].pk).update(status=DeliveryStatus.SUCCEEDED, finished_at=clock.now())
    _later(seconds=3)

    for outcome in _outcomes_for(one_by_one):
        services.webhook_attempt_record(
            delivery=outcome.delivery,
            status_code=outcome.status_code,
            latency_ms=outcome.latency_ms,
            response_excerpt=outcome.response_excerpt,
            error=outcome.error,
            retry_after=outcome.retry_after,
            final=outcome.final,
        )
    recorded = webhook_attempts_record(outcomes=_outcomes_for(at_once))

    assert [d.pk for d in recorded] == [d.pk for d in at_once]
    expected = _state(one_by_one)
    assert _state(at_once) == expected
    statuses = [row[0] for row in expected]
    assert statuses == ["succeeded", "pending", "failed", "pending", "pending", "failed", "succeeded", "succeeded"]
    assert [row[3] for row in expected if row[0] == "pending"] == [timedelta(0)] * 3  # Retry-After honoured too
    assert at_once[1].next_attempt_at == clock.now() + timedelta(seconds=90)
    assert all(row[2] is None for row in expected[:7])  # the leases are given back


def test_a_round_of_attempts_is_recorded_in_a_number_of_statements_that_does_not_grow_with_it(
    merchant, django_assert_max_num_queries
):
    made = _deliveries(WebhookSubscriptionFactory(merchant=merchant), 40, 1)
    services.webhook_deliveries_claim(batch=50)
    outcomes = [AttemptOutcome(delivery=d, status_code=200, latency_ms=3) for d in made]

    # select for update, insert the attempts, one update for all the successes (and the savepoint's two).
    with django_assert_max_num_queries(5):
        webhook_attempts_record(outcomes=outcomes)

    assert WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCEEDED, attempts=1).count() == 40
    assert WebhookAttempt.objects.count() == 40


def test_no_webhook_is_sent_by_the_batch_sender_inside_a_database_transaction(merchant, receiver):
    _deliveries(WebhookSubscriptionFactory(merchant=merchant, url=receiver.url), 2, 1)

    with transaction.atomic(), pytest.raises(RuntimeError, match="outside any database transaction"):
        services.webhook_deliveries_send_due()
    assert receiver.requests == []


# --- the coalesced nudge (needs the Redis CI starts) ----------------------------------------------------------------


def _nudge_of_one_commit(capture):
    """The callback a commit that wrote deliveries runs (each call below stands for another commit's)."""
    with capture() as callbacks:
        deliveries.webhook_deliveries_nudge()
    (nudge,) = callbacks
    return nudge


@pytest.mark.skipif(not redis_up(), reason="no Redis on 127.0.0.1:6379 (CI starts one)")
def test_with_redis_a_burst_of_commits_queues_one_send_task_until_it_starts(
    merchant, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from quai.integrations import tasks

    settings.REDIS_URL = redis_url()
    marks._redis(settings.REDIS_URL).delete(deliveries._SEND_QUEUED_KEY)
    queued: list[int] = []
    monkeypatch.setattr(tasks.webhook_deliveries_send, "delay", lambda: queued.append(1))
    nudge = _nudge_of_one_commit(django_capture_on_commit_callbacks)

    for _ in range(5):
        nudge()
    assert len(queued) == 1

    settings.QUAI_WEBHOOKS_LINGER_SECONDS = 0
    tasks.webhook_deliveries_send()  # the queued task has run: what is written from now on needs a new run
    nudge()
    nudge()
    assert len(queued) == 2
    marks._redis(settings.REDIS_URL).delete(deliveries._SEND_QUEUED_KEY)


@pytest.mark.skipif(not redis_up(), reason="no Redis on 127.0.0.1:6379 (CI starts one)")
@pytest.mark.django_db(transaction=True)
def test_the_nudged_task_sends_what_comes_while_it_lingers_and_nudges_queue_nothing_meanwhile(
    merchant, receiver, settings, monkeypatch
):
    from quai.integrations import tasks

    settings.REDIS_URL = redis_url()
    settings.QUAI_WEBHOOKS_LINGER_SECONDS = 3.0  # far longer than the commit below takes, even on a loaded machine
    mark = marks._redis(settings.REDIS_URL)
    mark.delete(deliveries._SEND_QUEUED_KEY)
    queued: list[int] = []
    monkeypatch.setattr(tasks.webhook_deliveries_send, "delay", lambda: queued.append(1))
    subscription = WebhookSubscriptionFactory(merchant=merchant, url=receiver.url)
    assert deliveries._send_task_mark()  # the nudge that queued this run

    def a_sale_commits_later() -> None:
        from django.db import connection

        time.sleep(0.2)
        # SQLite's shared-cache test database refuses a writer at once ("table is locked") while the sender's read
        # runs, where a file database would wait its busy timeout: try again as that timeout would.
        for attempt in range(100):
            try:
                with transaction.atomic():
                    WebhookDeliveryFactory(subscription=subscription)
                    deliveries.webhook_deliveries_nudge()
                break
            except OperationalError:
                if attempt == 99:
                    raise
                time.sleep(0.01)
        connection.close()

    writer = threading.Thread(target=a_sale_commits_later)
    started = time.monotonic()
    writer.start()
    sent = tasks.webhook_deliveries_send()
    writer.join()

    assert sent == 1 and len(receiver.requests) == 1
    assert queued == []  # the running task was marked: the commit's nudge queued nothing
    assert 3.2 <= time.monotonic() - started < 15  # it waited its linger after that delivery before stopping
    assert mark.get(deliveries._SEND_QUEUED_KEY) is None  # and gave the mark up: the next commit queues a task


def test_without_redis_every_commit_nudges_as_before(
    merchant, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from quai.integrations import tasks

    settings.REDIS_URL = ""
    queued: list[int] = []
    monkeypatch.setattr(tasks.webhook_deliveries_send, "delay", lambda: queued.append(1))
    nudge = _nudge_of_one_commit(django_capture_on_commit_callbacks)
    for _ in range(3):
        nudge()
    assert len(queued) == 3

"""The integrations' logs' retention (``quai.integrations.retention.integration_logs_purge``): finished webhook
deliveries go with their attempts, finished shop deliveries and calls go, past their retention; pending, retrying and
held rows stay whatever their age, young ones stay, a shop delivery stays through the dedupe window; a dry run
changes nothing; the command and beat's entry."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from quai.celery import app as celery_app
from quai.core import clock
from quai.core.retention import outbox_purge, purge_lock
from quai.integrations.models import (
    CallKind,
    CallStatus,
    ConnectorCall,
    DeliveryStatus,
    InboundDelivery,
    InboundStatus,
    ShopOrder,
    WebhookAttempt,
    WebhookDelivery,
)
from quai.integrations.retention import _PURGE_LOCK, INBOUND_DEDUPE_DAYS, integration_logs_purge
from quai.integrations.tests.factories import (
    ConnectionFactory,
    InboundDeliveryFactory,
    WebhookDeliveryFactory,
    WebhookSubscriptionFactory,
)

pytestmark = pytest.mark.django_db

T0 = datetime(2031, 3, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _delivery(subscription, *, created: datetime, status: str, finished: datetime | None, attempts: int = 0, **kw):
    """A delivery created at ``created``, in ``status``, finished at ``finished``, with ``attempts`` logged."""
    delivery = WebhookDeliveryFactory(subscription=subscription, **kw)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        created_at=created,
        updated_at=finished or created,
        status=status,
        finished_at=finished,
        attempts=attempts,
        next_attempt_at=created + 40 * DAY if status == DeliveryStatus.PENDING else created,
    )
    WebhookAttempt.objects.bulk_create(
        [WebhookAttempt(delivery=delivery, status_code=500, at=created) for _ in range(attempts)]
    )
    return delivery


def _inbound(connection, *, created: datetime, status: str, changed: datetime | None = None):
    delivery = InboundDeliveryFactory(connection=connection)
    InboundDelivery.objects.filter(pk=delivery.pk).update(
        created_at=created, updated_at=changed or created, status=status
    )
    return delivery


def _call(connection, *, created: datetime, status: str, finished: datetime | None):
    call = ConnectorCall.objects.create(
        merchant_id=connection.merchant_id,
        connection=connection,
        kind=CallKind.ACCEPT,
        idempotency_key=f"accept:{uuid.uuid4()}",
        next_attempt_at=created,
    )
    ConnectorCall.objects.filter(pk=call.pk).update(
        created_at=created, updated_at=finished or created, status=status, finished_at=finished
    )
    return call


def _rows() -> tuple[list[int], list[int], list[int], list[int]]:
    return (
        sorted(WebhookDelivery.objects.values_list("pk", flat=True)),
        sorted(WebhookAttempt.objects.values_list("pk", flat=True)),
        sorted(InboundDelivery.objects.values_list("pk", flat=True)),
        sorted(ConnectorCall.objects.values_list("pk", flat=True)),
    )


def test_finished_webhook_deliveries_past_the_retention_go_with_their_attempts_pending_and_young_ones_stay():
    mine, theirs = WebhookSubscriptionFactory(), WebhookSubscriptionFactory()
    succeeded = _delivery(mine, created=T0, status=DeliveryStatus.SUCCEEDED, finished=T0, attempts=2)
    dead = _delivery(mine, created=T0, status=DeliveryStatus.DEAD, finished=T0 + DAY, attempts=3)
    failed = _delivery(theirs, created=T0, status=DeliveryStatus.FAILED, finished=T0, attempts=1)  # another merchant
    retrying = _delivery(mine, created=T0, status=DeliveryStatus.PENDING, finished=None, attempts=4)
    never_sent = _delivery(theirs, created=T0 - 300 * DAY, status=DeliveryStatus.PENDING, finished=None)
    finished_late = _delivery(  # retried for days, finished after the cut-off
        mine, created=T0, status=DeliveryStatus.DEAD, finished=T0 + 5 * DAY, attempts=2
    )
    young = _delivery(mine, created=T0 + 20 * DAY, status=DeliveryStatus.SUCCEEDED, finished=T0 + 20 * DAY, attempts=1)
    clock.set_now(T0 + 33 * DAY)  # cut-off: T0 + 3 days

    result = integration_logs_purge(days=30, shop_days=30)

    assert (result.deliveries, result.attempts, result.chunks, result.skipped) == (3, 6, 1, "")
    assert result.webhook_cutoff == T0 + 3 * DAY
    kept = {retrying.pk, never_sent.pk, young.pk, finished_late.pk}
    assert set(WebhookDelivery.objects.values_list("pk", flat=True)) == kept
    assert set(WebhookAttempt.objects.values_list("delivery_id", flat=True)) == {
        retrying.pk,
        young.pk,
        finished_late.pk,
    }
    assert WebhookAttempt.objects.count() == 4 + 1 + 2
    assert not WebhookDelivery.objects.filter(pk__in=[succeeded.pk, dead.pk, failed.pk]).exists()
    # the pending ones are still sent as before: nothing about them changed
    assert WebhookDelivery.objects.get(pk=retrying.pk).status == DeliveryStatus.PENDING


def test_a_delivery_a_replay_points_at_stays_until_the_replay_has_gone():
    subscription = WebhookSubscriptionFactory()
    original = _delivery(subscription, created=T0, status=DeliveryStatus.DEAD, finished=T0 + DAY, attempts=2)
    replay = _delivery(
        subscription,
        created=T0 + 2 * DAY,
        status=DeliveryStatus.SUCCEEDED,
        finished=T0 + 2 * DAY,
        attempts=1,
        event_id=original.event_id,
        replay_of=original,
    )
    young_replay_of = _delivery(subscription, created=T0, status=DeliveryStatus.SUCCEEDED, finished=T0)
    young_replay = _delivery(
        subscription,
        created=T0 + 40 * DAY,
        status=DeliveryStatus.PENDING,
        finished=None,
        event_id=young_replay_of.event_id,
        replay_of=young_replay_of,
    )
    clock.set_now(T0 + 40 * DAY)

    first = integration_logs_purge(days=30)
    assert (first.deliveries, first.attempts) == (1, 1)
    assert set(WebhookDelivery.objects.values_list("pk", flat=True)) == {
        original.pk,
        young_replay_of.pk,
        young_replay.pk,
    }
    assert WebhookAttempt.objects.filter(delivery=original).count() == 2

    second = integration_logs_purge(days=30)  # the next night: the replay gone, its original goes
    assert (second.deliveries, second.attempts) == (1, 2)
    assert set(WebhookDelivery.objects.values_list("pk", flat=True)) == {young_replay_of.pk, young_replay.pk}
    assert replay.pk not in set(WebhookDelivery.objects.values_list("pk", flat=True))


def test_shop_deliveries_and_calls_finished_past_the_retention_go_held_pending_and_the_dedupe_window_stay():
    shop, other_shop = ConnectionFactory(), ConnectionFactory()
    processed = _inbound(shop, created=T0, status=InboundStatus.PROCESSED)
    failed = _inbound(other_shop, created=T0, status=InboundStatus.FAILED)  # another merchant's
    received = _inbound(shop, created=T0, status=InboundStatus.RECEIVED)  # backing off: may still be processed
    held = _inbound(shop, created=T0, status=InboundStatus.HELD)  # waits for a SKU
    retried = _inbound(shop, created=T0, status=InboundStatus.FAILED, changed=T0 + 25 * DAY)  # failed again lately
    young = _inbound(shop, created=T0 + 25 * DAY, status=InboundStatus.PROCESSED)
    done = _call(shop, created=T0, status=CallStatus.SUCCEEDED, finished=T0)
    gave_up = _call(other_shop, created=T0, status=CallStatus.DEAD, finished=T0 + DAY / 2)
    refused = _call(shop, created=T0, status=CallStatus.FAILED, finished=T0)
    pending = _call(shop, created=T0, status=CallStatus.PENDING, finished=None)
    young_call = _call(shop, created=T0 + 25 * DAY, status=CallStatus.SUCCEEDED, finished=T0 + 25 * DAY)
    shop_order = ShopOrder.objects.create(merchant_id=shop.merchant_id, connection=shop, external_id="1001")
    clock.set_now(T0 + 31 * DAY)

    result = integration_logs_purge(days=0, shop_days=30)  # webhook deliveries kept, shop logs purged

    assert (result.deliveries, result.inbound, result.calls) == (0, 2, 3)
    assert result.webhook_cutoff is None and result.shop_cutoff == T0 + DAY
    assert set(InboundDelivery.objects.values_list("pk", flat=True)) == {received.pk, held.pk, retried.pk, young.pk}
    assert set(ConnectorCall.objects.values_list("pk", flat=True)) == {pending.pk, young_call.pk}
    assert ShopOrder.objects.filter(pk=shop_order.pk).exists()  # never purged
    assert not InboundDelivery.objects.filter(pk__in=[processed.pk, failed.pk]).exists()
    assert not ConnectorCall.objects.filter(pk__in=[done.pk, gave_up.pk, refused.pk]).exists()


def test_a_shop_delivery_outlives_the_dedupe_window_whatever_the_setting():
    shop = ConnectionFactory()
    outside = _inbound(shop, created=T0 - (INBOUND_DEDUPE_DAYS + 1) * DAY, status=InboundStatus.PROCESSED)
    inside = _inbound(shop, created=T0 - (INBOUND_DEDUPE_DAYS - 1) * DAY, status=InboundStatus.PROCESSED)
    call = _call(shop, created=T0 - 2 * DAY, status=CallStatus.SUCCEEDED, finished=T0 - 2 * DAY)
    clock.set_now(T0)

    result = integration_logs_purge(days=1, shop_days=1)

    assert (result.inbound, result.calls) == (1, 1)
    assert list(InboundDelivery.objects.values_list("pk", flat=True)) == [inside.pk]
    assert not InboundDelivery.objects.filter(pk=outside.pk).exists()
    assert not ConnectorCall.objects.filter(pk=call.pk).exists()
    # the shop's retry of the delivery kept is still one delivery
    assert InboundDelivery.objects.filter(connection=shop, delivery_key=inside.delivery_key).count() == 1


def test_the_settings_are_the_defaults_and_zero_keeps_everything(settings):
    subscription, shop = WebhookSubscriptionFactory(), ConnectionFactory()
    _delivery(subscription, created=T0, status=DeliveryStatus.SUCCEEDED, finished=T0, attempts=1)
    _inbound(shop, created=T0, status=InboundStatus.PROCESSED)
    _call(shop, created=T0, status=CallStatus.SUCCEEDED, finished=T0)
    clock.set_now(T0 + 500 * DAY)
    settings.QUAI_WEBHOOK_LOG_RETENTION_DAYS = 0
    settings.QUAI_SHOP_LOG_RETENTION_DAYS = 0
    before = _rows()
    result = integration_logs_purge()
    assert result.skipped and result.chunks == 0 and _rows() == before
    settings.QUAI_WEBHOOK_LOG_RETENTION_DAYS = 501
    settings.QUAI_SHOP_LOG_RETENTION_DAYS = 501
    assert integration_logs_purge().chunks == 0 and _rows() == before
    settings.QUAI_WEBHOOK_LOG_RETENTION_DAYS = 499
    done = integration_logs_purge()
    assert (done.deliveries, done.attempts, done.inbound, done.calls) == (1, 1, 0, 0)
    settings.QUAI_SHOP_LOG_RETENTION_DAYS = 499
    done = integration_logs_purge()
    assert (done.deliveries, done.inbound, done.calls) == (0, 1, 1)
    assert _rows() == ([], [], [], [])


def test_chunks_each_delete_at_most_their_size_and_walk_past_pending_deliveries():
    subscription = WebhookSubscriptionFactory()
    rows = [
        _delivery(
            subscription,
            created=T0,
            status=DeliveryStatus.PENDING if n in (3, 4, 11, 22) else DeliveryStatus.SUCCEEDED,
            finished=None if n in (3, 4, 11, 22) else T0,
            attempts=1,
        )
        for n in range(23)
    ]
    _delivery(subscription, created=T0 + 20 * DAY, status=DeliveryStatus.SUCCEEDED, finished=T0 + 20 * DAY)
    clock.set_now(T0 + 40 * DAY)
    totals: list[tuple[int, int, int]] = []

    with CaptureQueriesContext(connection) as context:
        result = integration_logs_purge(
            days=30, shop_days=0, chunk=5, progress=lambda r: totals.append((r.chunks, r.deliveries, r.attempts))
        )

    # 19 finished among 23, 5 a chunk: the walk passes the pending ones and stops at the young delivery
    assert totals == [(1, 5, 5), (2, 10, 10), (3, 15, 15), (4, 19, 19)]
    assert result.per_table == {"deliveries": 4}
    kept = {rows[n].pk for n in (3, 4, 11, 22)}
    assert set(WebhookDelivery.objects.filter(pk__lte=rows[-1].pk).values_list("pk", flat=True)) == kept
    assert set(WebhookAttempt.objects.values_list("delivery_id", flat=True)) == kept
    deletes = [q["sql"] for q in context.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 8  # two statements a chunk: the deliveries, then their attempts


def test_a_dry_run_counts_what_a_purge_deletes_and_changes_nothing():
    subscription, shop = WebhookSubscriptionFactory(), ConnectionFactory()
    original = _delivery(subscription, created=T0, status=DeliveryStatus.DEAD, finished=T0, attempts=3)
    for n in range(11):
        _delivery(subscription, created=T0, status=DeliveryStatus.SUCCEEDED, finished=T0, attempts=n % 3)
    _delivery(  # a replay: its original is kept (and not counted)
        subscription,
        created=T0 + 40 * DAY,
        status=DeliveryStatus.PENDING,
        finished=None,
        event_id=original.event_id,
        replay_of=original,
    )
    for _ in range(4):
        _inbound(shop, created=T0, status=InboundStatus.PROCESSED)
        _call(shop, created=T0, status=CallStatus.SUCCEEDED, finished=T0)
    clock.set_now(T0 + 40 * DAY)
    before = _rows()

    dry = integration_logs_purge(days=30, shop_days=30, chunk=5, dry_run=True)

    assert _rows() == before
    assert (dry.deliveries, dry.attempts, dry.inbound, dry.calls, dry.dry_run) == (11, 10, 4, 4, True)
    done = integration_logs_purge(days=30, shop_days=30, chunk=5)
    assert (done.deliveries, done.attempts, done.inbound, done.calls, done.chunks) == (
        dry.deliveries,
        dry.attempts,
        dry.inbound,
        dry.calls,
        dry.chunks,
    )
    assert integration_logs_purge(days=30, shop_days=30).chunks == 1  # the original walked past, kept
    assert WebhookDelivery.objects.filter(pk=original.pk).exists()


def test_the_command_prints_its_progress_and_a_summary():
    subscription, shop = WebhookSubscriptionFactory(), ConnectionFactory()
    for _ in range(7):
        _delivery(subscription, created=T0, status=DeliveryStatus.SUCCEEDED, finished=T0, attempts=1)
    _inbound(shop, created=T0, status=InboundStatus.FAILED)
    _call(shop, created=T0, status=CallStatus.DEAD, finished=T0)
    clock.set_now(T0 + 10 * DAY)
    out = StringIO()
    call_command("integration_logs_purge", "--days", "8", "--chunk", "3", "--dry-run", stdout=out)
    text = out.getvalue()
    assert "chunk 1: would purge 3 webhook deliveries, 3 attempts, 0 shop deliveries, 0 shop calls so far" in text
    assert "chunk 5: would purge 7 webhook deliveries, 7 attempts, 1 shop deliveries, 1 shop calls so far" in text
    assert (
        "Dry run: would purge 7 webhook deliveries and 7 attempts finished before 2031-03-03 09:00 UTC (8 days kept)"
        in text
    )
    assert _rows()[0] and WebhookDelivery.objects.count() == 7
    out = StringIO()
    call_command("integration_logs_purge", "--days", "8", stdout=out)
    text = out.getvalue()
    assert "Purged 7 webhook deliveries and 7 attempts" in text and "1 shop deliveries and 1 shop calls" in text
    assert "in 3 chunks" in text
    assert _rows() == ([], [], [], [])
    out = StringIO()
    call_command("integration_logs_purge", "--days", "0", stdout=out)
    assert "Nothing purged: retention off" in out.getvalue()


def test_beat_runs_the_purge_daily_after_the_outbox_purge_through_its_task(settings):
    import quai.integrations.tasks  # noqa: F401 - what the worker imports (its autodiscovery)

    entry = django_settings.CELERY_BEAT_SCHEDULE["integration-logs-purge"]
    assert entry["task"] in celery_app.tasks
    assert entry["schedule"].hour == {2} and entry["schedule"].minute == {45}  # once a day
    outbox = django_settings.CELERY_BEAT_SCHEDULE["outbox-purge"]["schedule"]
    assert (outbox.hour, outbox.minute) == ({2}, {30})
    # the default queue (the relay's worker, as the outbox purge), never a shop_push worker's
    assert entry["task"] not in django_settings.CELERY_TASK_ROUTES
    subscription, shop = WebhookSubscriptionFactory(), ConnectionFactory()
    _delivery(subscription, created=T0, status=DeliveryStatus.SUCCEEDED, finished=T0, attempts=2)
    _call(shop, created=T0, status=CallStatus.SUCCEEDED, finished=T0)
    clock.set_now(T0 + 31 * DAY)
    settings.QUAI_WEBHOOK_LOG_RETENTION_DAYS = 30
    settings.QUAI_SHOP_LOG_RETENTION_DAYS = 30
    assert celery_app.tasks[entry["task"]].delay().get() == 2
    assert _rows() == ([], [], [], [])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_second_purge_leaves_while_one_runs_and_the_outbox_purge_does_not_stop_it():
    if connection.vendor != "postgresql":
        pytest.skip("the purge's lock is PostgreSQL's")
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with purge_lock(_PURGE_LOCK) as taken:
                assert taken
                held.set()
                release.wait(10)
        finally:
            connections["default"].close()

    subscription = WebhookSubscriptionFactory()
    _delivery(subscription, created=T0, status=DeliveryStatus.SUCCEEDED, finished=T0, attempts=1)
    clock.set_now(T0 + 31 * DAY)
    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(10)
        result = integration_logs_purge(days=30)
        assert result.skipped == "another purge is running" and result.chunks == 0
        assert outbox_purge(days=30).skipped == ""  # a lock of its own
    finally:
        release.set()
        thread.join(10)
    assert integration_logs_purge(days=30).deliveries == 1

"""The relay's nudge, coalesced with a Redis mark (quai.core.marks): during a burst of commits at most one relay task
waits in the queue; the task gives the mark up as it starts, so what is committed after that queues the next one.
Without Redis every commit's nudge queues a task, as before."""

from __future__ import annotations

import pytest

from quai.core import marks, outbox
from quai.core import tasks as core_tasks
from quai.core.tests.local_redis import redis_up, redis_url


def _nudge_of_one_commit(capture):
    """The callback a commit that recorded events runs (each call below stands for another commit's)."""
    with capture() as callbacks:
        outbox.outbox_nudge()
    (nudge,) = callbacks
    return nudge


@pytest.mark.django_db
def test_without_redis_every_commit_queues_a_relay_task(settings, monkeypatch, django_capture_on_commit_callbacks):
    settings.REDIS_URL = ""
    queued: list[int] = []
    monkeypatch.setattr(core_tasks.outbox_relay_task, "delay", lambda: queued.append(1))
    nudge = _nudge_of_one_commit(django_capture_on_commit_callbacks)
    for _ in range(3):
        nudge()
    assert len(queued) == 3


@pytest.mark.skipif(not redis_up(), reason="no Redis on 127.0.0.1:6379 (CI starts one)")
@pytest.mark.django_db
def test_with_redis_a_burst_of_commits_queues_one_relay_task_until_it_starts(
    settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.REDIS_URL = redis_url()
    redis = marks._redis(settings.REDIS_URL)
    redis.delete(outbox.RELAY_QUEUED_KEY)
    queued: list[int] = []
    monkeypatch.setattr(core_tasks.outbox_relay_task, "delay", lambda: queued.append(1))
    nudge = _nudge_of_one_commit(django_capture_on_commit_callbacks)
    try:
        for _ in range(5):
            nudge()
        assert len(queued) == 1
        assert 0 < redis.ttl(outbox.RELAY_QUEUED_KEY) <= outbox.RELAY_QUEUED_SECONDS  # a lost task holds it briefly

        core_tasks.outbox_relay_task()  # the queued task starts: it gives the mark up before it claims
        assert redis.get(outbox.RELAY_QUEUED_KEY) is None
        nudge()
        nudge()
        assert len(queued) == 2
    finally:
        redis.delete(outbox.RELAY_QUEUED_KEY)


@pytest.mark.skipif(not redis_up(), reason="no Redis on 127.0.0.1:6379 (CI starts one)")
@pytest.mark.django_db
def test_a_relay_task_that_could_not_be_queued_leaves_no_mark(
    settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.REDIS_URL = redis_url()
    redis = marks._redis(settings.REDIS_URL)
    redis.delete(outbox.RELAY_QUEUED_KEY)

    def broker_down() -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(core_tasks.outbox_relay_task, "delay", broker_down)
    nudge = _nudge_of_one_commit(django_capture_on_commit_callbacks)
    try:
        nudge()  # logged, not raised: the sweep relays what it missed
        assert redis.get(outbox.RELAY_QUEUED_KEY) is None  # the next commit's nudge queues one
    finally:
        redis.delete(outbox.RELAY_QUEUED_KEY)


@pytest.mark.skipif(not redis_up(), reason="no Redis on 127.0.0.1:6379 (CI starts one)")
@pytest.mark.django_db
def test_a_nudge_asking_for_the_priority_pass_takes_both_marks_in_one_round_trip(
    settings, monkeypatch, django_capture_on_commit_callbacks
):
    """Each mark taken, held and given back as before; one Redis round trip per commit's nudge instead of two."""
    from redis.connection import Connection

    settings.REDIS_URL = redis_url()
    redis = marks._redis(settings.REDIS_URL)
    keys = (outbox.RELAY_QUEUED_KEY, outbox.PRIORITY_QUEUED_KEY)
    redis.delete(*keys)
    monkeypatch.setattr(outbox, "_PRIORITY_KEYS", {"test.first"})
    relays: list[int] = []
    passes: list[int] = []
    monkeypatch.setattr(core_tasks.outbox_relay_task, "delay", lambda: relays.append(1))
    monkeypatch.setattr(core_tasks.outbox_relay_priority_task, "apply_async", lambda **kw: passes.append(1))
    trips: list[int] = []
    sent = Connection.send_packed_command

    def counted(self, command, check_health=True):  # type: ignore[no-untyped-def]
        trips.append(1)
        return sent(self, command, check_health)

    nudge = _nudge_of_one_commit(django_capture_on_commit_callbacks)  # outbox_nudge asks for the pass
    try:
        monkeypatch.setattr(Connection, "send_packed_command", counted)
        nudge()
        assert (relays, passes, len(trips)) == ([1], [1], 1)
        nudge()  # both marks held: nothing queued, still one round trip
        assert (relays, passes, len(trips)) == ([1], [1], 2)
        redis.delete(outbox.RELAY_QUEUED_KEY)  # the relay task started; the pass is still waiting
        nudge()
        assert (relays, passes) == ([1, 1], [1])

        def broker_down(**kw: object) -> None:
            raise ConnectionError("broker down")

        redis.delete(*keys)
        monkeypatch.setattr(core_tasks.outbox_relay_priority_task, "apply_async", broker_down)
        nudge()  # the pass could not be queued: its mark given back, the relay queued all the same
        assert relays == [1, 1, 1]
        assert redis.get(outbox.PRIORITY_QUEUED_KEY) is None and redis.get(outbox.RELAY_QUEUED_KEY) is not None
    finally:
        redis.delete(*keys)

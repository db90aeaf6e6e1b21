"""Celery application: the one task system of Quai, in production and in the embedded default alike.

- Production (``REDIS_URL`` set): Redis is the broker; ``celery -A quai worker`` (as many as needed) and one
  ``celery -A quai beat`` run beside the web processes.
- Embedded default (``REDIS_URL`` unset): the broker is kombu's filesystem transport, one file per message under
  ``var/embedded/queue``. ``manage.py serve`` (what ``make run`` starts) runs the web server, one worker and beat,
  so retries of failed outbox handlers and the temporary-zone sweep happen with nothing to install, and slow work
  (outbound HTTP, labels, email) runs in the worker, never in the web request that asked for it.

Why this and not another library: the outbox relay, its sweep and the stock sweep are Celery tasks, and production
keeps Celery with Redis; one task system means one way to write, route and test a task. Of Celery's brokers that
need no server, the filesystem transport ships with kombu (no extra dependency) and supports the fanout exchange
the worker's control commands use; the SQLAlchemy transport would add a dependency, is marked experimental by
Celery, and on SQLite would compete for the single writer lock with the application's own transactions. huey or
``django-tasks`` would have meant a second task system beside Celery, with their own retry and schedule semantics.
Messages are only hints: the outbox in the database is the truth, and beat's sweep relays whatever a lost message
missed.

Two queues. ``celery`` (the default) carries the outbox relay, its sweeps and everything else; ``shop_push`` carries
every task that may call a merchant's server (stock pushes, order writes, polls, reconciles, processing a shop's
call, outbound webhooks: ``CELERY_TASK_ROUTES`` in settings). A shop that answers slowly, or asks us to wait, then
holds a process consuming ``shop_push``, never the relay, which only marks what to push and moves on. Both queues
are declared here, so a worker started without ``-Q`` consumes both; production and ``manage.py serve`` run a worker
per queue (``-Q celery`` and ``-Q shop_push --prefetch-multiplier 1``, README), so no number of slow shops can stall
the relay, and a stock push never waits behind a backlog of relay runs taken by the same worker (the connectors
bench measured that wait as most of a change's way to the shop when one worker took both queues).
"""

import os
from typing import Any

from celery import Celery, signals
from kombu import Queue

DEFAULT_QUEUE = "celery"  # Celery's default queue's name
SHOP_PUSH_QUEUE = "shop_push"

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quai.settings")
app = Celery("quai")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue(DEFAULT_QUEUE), Queue(SHOP_PUSH_QUEUE))
app.autodiscover_tasks()


@signals.worker_init.connect
@signals.worker_process_init.connect
def _collector_tune(**kwargs: Any) -> None:
    """The worker's process, once loaded, tunes Python's garbage collector (quai.core.runtime): the main process
    before it forks its pool (what it froze stays shared with the children), each pool process again after the fork.
    The relay replayed over a 1,000-order day spent 5 % of its CPU in collections at Python's thresholds."""
    from quai.core.runtime import collector_tune

    collector_tune()

"""Imported by the connectors bench's Celery worker (``QUAI_WORKER_IMPORTS``): the stock push's timing lines
(``quai.integrations.stock_push.timing``, one JSON line per push) appended to ``BENCH_CONNECTORS_TRACE``.

At import, in the worker's parent process, so every pool process it forks writes through the same handler; each
line is one short ``write`` to a file opened for appending, so lines from several processes do not interleave.
"""

from __future__ import annotations

import logging
import os

_path = os.environ.get("BENCH_CONNECTORS_TRACE", "")
if _path:
    _handler = logging.FileHandler(_path)
    _handler.setFormatter(logging.Formatter("%(message)s"))
    _timing = logging.getLogger("quai.integrations.stock_push.timing")
    _timing.addHandler(_handler)
    _timing.setLevel(logging.DEBUG)
    _timing.propagate = False

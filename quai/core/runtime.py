"""How a long-running process of Quai sets up Python's runtime once its application is loaded: the web server's
workers (``quai/wsgi.py``) and the Celery workers (``quai/celery.py``: the relay's, the shop pushes', the one
``manage.py serve`` starts).

The cyclic garbage collector. At Python's thresholds (700, 10, 10) a young collection runs every 700 new container
objects, and a full one walks every object alive in the process (Django, the URL configuration, the API's schemas,
the ORM's models and the handlers' plans: 150,000-200,000 objects) each time they grew by a quarter. Nearly all of a
request's or a relay batch's garbage is freed by reference counting; cycles are rare. So ``collector_tune`` collects
once, moves every object alive at that point out of the collector's walks (``gc.freeze``: they are never collected,
and a forked child does not write to their pages to mark them, which keeps them shared copy-on-write) and raises the
thresholds to ``PROCESS_GC_THRESHOLDS``: cycles are still collected, only less often. Measured on 5 December
(docs/INTAKE.md, "the garbage collector in the long-running processes"): the relay replayed over a 1,000-order day
spent 5 % of its CPU in collections (a full one per replay, 70 ms), none tuned; the web process already froze its
start-up state and spends about 1 % in young collections. ``QUAI_GC_TUNE=false`` leaves Python's collector as it is.
"""

from __future__ import annotations

import gc

from django.conf import settings

# Young, middle, old: a young collection after 50,000 new container objects, a middle one every 50 young ones, an
# old (full) one every 100 middle ones and only when the objects outside the frozen set grew by a quarter. The values
# the simulated day measured best (quai.campaigns.simulation.engine.DAY_GC_THRESHOLDS); the relay does the same.
PROCESS_GC_THRESHOLDS = (50_000, 50, 100)


def collector_tune() -> bool:
    """Tune the cyclic collector for a long-running process whose application is loaded: collect what is garbage
    now, freeze what is alive, raise the thresholds. Called again (a forked worker child after its parent), it
    freezes what the child added. Returns whether it tuned (``settings.QUAI_GC_TUNE``)."""
    if not getattr(settings, "QUAI_GC_TUNE", True):
        return False
    gc.collect()
    gc.freeze()
    gc.set_threshold(*PROCESS_GC_THRESHOLDS)
    return True

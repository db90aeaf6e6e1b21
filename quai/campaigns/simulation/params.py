"""What a simulated flash-sale day is asked to do, checked before anything runs (pure: no database)."""

from __future__ import annotations

from dataclasses import dataclass

WHAT_IFS = ("staff-30", "carrier-late", "zone-closed")
#: The what-ifs that act on the carriers, after the floor: their cost is the deliveries they make late. The others
#: act on the floor: their cost is the orders shipped late or promised a later day. (A floor what-if ships the
#: parcels in another order, so the day's seeded transit draws fall on other parcels: its late deliveries differ
#: from the normal day's by the draw, not by the what-if.)
CARRIER_WHAT_IFS = ("carrier-late",)
SEED_MAX = 2**31 - 1
ORDERS_MAX = 1_000_000
SPIKE_MAX = 500
HOURS_MIN, HOURS_MAX = 1, 24


class ParamsError(ValueError):
    """A parameter out of range: the message is the sentence the command prints."""


@dataclass(frozen=True)
class SimulationParams:
    seed: int = 1
    orders: int = 10_000
    spike: float = 50.0
    hours: int = 24
    what_if: str = ""
    #: Share of orders whose shopper asks "where is my order?" (a ticket).
    ticket_share: float = 0.02
    #: Simulated minutes per tick: each tick takes in orders, relays the outbox, releases, picks, packs.
    tick_minutes: int = 10


def params_check(params: SimulationParams) -> SimulationParams:
    """The parameters if they make a day that can run; ``ParamsError`` with a sentence otherwise."""
    if isinstance(params.seed, bool) or not isinstance(params.seed, int) or not 0 <= params.seed <= SEED_MAX:
        raise ParamsError(f"The seed must be a whole number between 0 and {SEED_MAX:,}; {params.seed!r} is not.")
    if isinstance(params.orders, bool) or not isinstance(params.orders, int) or params.orders < 0:
        raise ParamsError(f"The number of orders cannot be negative ({params.orders!r}).")
    if params.orders < 10:
        raise ParamsError(f"A flash-sale day needs at least 10 orders; {params.orders} is too few to measure anything.")
    if params.orders > ORDERS_MAX:
        raise ParamsError(
            f"{params.orders:,} orders in one day is beyond what any site handles (at most {ORDERS_MAX:,}); check the "
            "figure."
        )
    if not isinstance(params.hours, int) or not HOURS_MIN <= params.hours <= HOURS_MAX:
        raise ParamsError(
            f"The simulated duration must be between {HOURS_MIN} and {HOURS_MAX} hours; {params.hours!r} is out of "
            "range."
        )
    if not 1 <= params.spike <= SPIKE_MAX:
        raise ParamsError(f"The spike is a factor between 1 and {SPIKE_MAX} (×50 by default); {params.spike!r} is not.")
    if params.what_if and params.what_if not in WHAT_IFS:
        raise ParamsError(f"Unknown what-if '{params.what_if}': choose one of {', '.join(WHAT_IFS)}.")
    if not 0 <= params.ticket_share <= 1:
        raise ParamsError("The share of orders that open a ticket must be between 0 and 1.")
    if not 1 <= params.tick_minutes <= 60 or 60 % params.tick_minutes:
        raise ParamsError("A tick lasts between 1 and 60 minutes and divides the hour.")
    return params


def reference_params(params: SimulationParams) -> dict[str, object]:
    """What a what-if and its reference, the normal day, must share to be the same day but for the what-if."""
    return {
        "seed": params.seed,
        "orders": params.orders,
        "spike": params.spike,
        "hours": params.hours,
        "tick": params.tick_minutes,
    }


def reference_check(params: SimulationParams, reference: dict[str, object]) -> None:
    """``ParamsError`` with a sentence unless ``reference`` (a ``--trace``) is the normal day of ``params``'s day."""
    found = reference.get("params")
    found = found if isinstance(found, dict) else {}
    different = [name for name, value in reference_params(params).items() if found.get(name) != value]
    if reference.get("what_if"):
        different.append(f"what-if {reference['what_if']}")
    if different:
        raise ParamsError(
            "The reference day must be the normal day (no what-if) with the same seed, orders, spike, hours and "
            f"tick; this one differs in: {', '.join(different)}."
        )

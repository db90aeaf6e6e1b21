"""Pick routes: the walk that visits every pick of a batch and comes back to the depot (pure, no Django).

Geometry of the **single-block layout** (Ratliff & Rosenthal 1983, "Order-picking in a rectangular warehouse: a
solvable case of the traveling salesman problem", Operations Research 31(3)):

- ``n`` parallel aisles of equal length ``L`` run along the y axis, aisle ``j`` on the vertical line ``x = x_j``;
- a front cross-aisle (``y = 0``) and a back cross-aisle (``y = L``) join every aisle's two ends;
- picks lie on the aisles' centre lines (the picker reaches both rack faces from the centre), at ``0 ≤ y ≤ L``;
- the depot (where the cart starts and ends: the pack area) is anywhere on the front cross-aisle, ``(x_d, 0)``;
- the picker walks only along aisles and cross-aisles; aisle and cross-aisle widths are neglected.

``optimal_route`` finds a shortest closed walk from the depot through every pick. Ratliff and Rosenthal show that a
shortest tour is an Eulerian multigraph ("tour subgraph") on the ladder graph whose edges are used at most twice,
and that scanning the aisles left to right it is enough to know, at each aisle's two ends ``a_j`` (front) and
``b_j`` (back), the parity of their degree (zero, odd, even) and whether they lie in one connected component. Per
aisle six edge patterns suffice (no edge, one pass, two passes, reach from the back, reach from the front, both
reaches leaving the largest gap between picks), per cross-aisle section five (none, one each, two at the back, two
at the front, two each). The dynamic programme below keeps, for each aisle, the cheapest partial tour subgraph of
every reachable class; a class that would leave a component cut off from the rest is refused, except the one
finished tour. Its cost is linear in the number of aisles. The route itself is then an Euler circuit of the
chosen multigraph starting at the depot; a pick is visited the first time the circuit passes it.

A depot that is not at the foot of an aisle is an extra column that may only be reached from the front
cross-aisle (it is no aisle: it may not be walked up).

Other layouts (aisles of different lengths, loose places) get ``heuristic_route``: nearest neighbour then 2-opt
over the walking distances of ``Layout``. ``s_shape_route`` and ``largest_gap_route`` are the two classic
single-block heuristics, reported beside the optimum; ``brute_force_length`` (Held-Karp, exact) checks it on small
instances.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

EPSILON = 1e-6

Point = tuple[float, float]


@dataclass(frozen=True)
class Block:
    """A single block: aisle centre lines ``aisles_x`` (any order), aisle length, depot's x on the front."""

    aisles_x: tuple[float, ...]
    length: float
    depot_x: float

    def __post_init__(self) -> None:
        if self.length <= 0:
            raise ValueError("an aisle must be longer than 0")
        if not self.aisles_x:
            raise ValueError("a block needs at least one aisle")


@dataclass(frozen=True)
class Pick:
    """A pick on aisle ``aisle`` (an index into ``Block.aisles_x``) at depth ``y`` from the front cross-aisle."""

    aisle: int
    y: float


@dataclass(frozen=True)
class Route:
    """A closed walk from the depot: its length, the picks' visiting order (indices into the picks given, each
    once) and the polyline walked (block coordinates, depot first and last)."""

    length: float
    order: tuple[int, ...]
    path: tuple[Point, ...]


def _check_picks(block: Block, picks: Sequence[Pick]) -> None:
    for pick in picks:
        if not 0 <= pick.aisle < len(block.aisles_x):
            raise ValueError(f"pick on aisle {pick.aisle}: the block has {len(block.aisles_x)} aisles")
        if not -EPSILON <= pick.y <= block.length + EPSILON:
            raise ValueError(f"pick at y={pick.y} is outside the aisle (0…{block.length})")


# --- The dynamic programme ------------------------------------------------------------------------------------

# Degree classes of an aisle end: 0 (no edge), 1 (odd), 2 (even, at least one edge).
_State = tuple[int, int, bool]  # (degree class of a_j, of b_j, a_j and b_j in one component)
_EMPTY: _State = (0, 0, False)
_DONE: _State = (0, 0, True)  # a finished tour lies to the left: nothing may be added any more

Any_Edge = tuple[tuple[str, int, int], tuple[str, int, int], float]

_CROSS_OPTIONS: tuple[tuple[int, int], ...] = ((0, 0), (1, 1), (2, 0), (0, 2), (2, 2))


def _degree(current: int, added: int) -> int:
    total = current + added
    if total == 0:
        return 0
    return 1 if total % 2 else 2


@dataclass(frozen=True)
class _Column:
    x: float
    ys: tuple[float, ...]  # the distinct pick depths, ascending
    traversable: bool  # False: the depot's own column, not an aisle


def _aisle_options(column: _Column, length: float) -> list[tuple[str, float]]:
    ys = column.ys
    if not column.traversable:
        return [("bottom", 2 * ys[-1])] if ys else [("none", 0.0)]
    if not ys:
        return [("none", 0.0), ("pass", length), ("double", 2 * length)]
    options = [
        ("pass", length),
        ("double", 2 * length),
        ("top", 2 * (length - ys[0])),
        ("bottom", 2 * ys[-1]),
    ]
    if len(ys) >= 2:
        gap = max(b - a for a, b in itertools.pairwise(ys))
        options.append(("gap", 2 * (length - gap)))
    return options


@functools.cache  # a handful of states and options: each answer worked out once per process
def _after_aisle(state: _State, option: str, has_picks: bool) -> _State | None:
    if state == _DONE:
        return state if option == "none" and not has_picks else None
    da, db, same = state
    if option == "none":
        return state
    if option in ("pass", "double"):
        add = 1 if option == "pass" else 2
        return (_degree(da, add), _degree(db, add), True)
    if option == "top":
        return (da, 2 if db == 0 else db, same and da > 0 and db > 0)
    if option == "bottom":
        return (2 if da == 0 else da, db, same and da > 0 and db > 0)
    # gap: both ends reach in, the largest gap is left open: no new link between a_j and b_j
    return (2 if da == 0 else da, 2 if db == 0 else db, same and da > 0 and db > 0)


def _after_cross(state: _State, bottom: int, top: int) -> _State | None:
    if state == _DONE:
        return _DONE if (bottom, top) == (0, 0) else None
    da, db, same = state
    # a_j and b_j get no edge after this step: their final degree must be even.
    if (da % 2 + bottom) % 2 or (db % 2 + top) % 2:
        return None
    if same and da and db:
        components = [bottom > 0 or top > 0]
    else:
        components = ([bottom > 0] if da else []) + ([top > 0] if db else [])
    closed = components.count(False)
    if closed:
        # A component cut off from the frontier can never be joined again: only the finished tour may close.
        if closed == 1 and len(components) == 1 and bottom == 0 and top == 0:
            return _DONE
        return None
    if bottom == 0 and top == 0:
        return _EMPTY
    joined = bool(bottom and top and same and da and db)
    return (bottom, top, joined)


@functools.cache
def _cross_steps(state: _State) -> tuple[tuple[_State, int, str], ...]:
    """The cross-aisle sections' options open after ``state``, in ``_CROSS_OPTIONS`` order: (the state they lead
    to, how many times the section is walked, the option's label)."""
    steps = []
    for bottom, top in _CROSS_OPTIONS:
        target = _after_cross(state, bottom, top)
        if target is not None:
            steps.append((target, bottom + top, f"{bottom}{top}"))
    return tuple(steps)


def _final(state: _State) -> bool:
    if state == _DONE:
        return True
    da, db, same = state
    if da == 1 or db == 1 or (da == 0 and db == 0):
        return False
    return same or da == 0 or db == 0


def _columns(block: Block, picks: Sequence[Pick]) -> tuple[list[_Column], int, int]:
    """The columns the walk may use, left to right, and the indices of the depot's column and depot point."""
    depths: dict[float, set[float]] = {}
    for pick in picks:
        depths.setdefault(block.aisles_x[pick.aisle], set()).add(min(max(pick.y, 0.0), block.length))
    required_x = [*depths, block.depot_x]
    low, high = min(required_x), max(required_x)
    columns: list[_Column] = []
    depot_is_aisle = False
    for x in sorted(set(block.aisles_x)):
        # Aisles beyond the leftmost and rightmost required point only lengthen a walk: left out.
        if x < low - EPSILON or x > high + EPSILON:
            continue
        ys = set(depths.get(x, set()))
        if abs(x - block.depot_x) <= EPSILON:
            ys.add(0.0)
            depot_is_aisle = True
        columns.append(_Column(x=x, ys=tuple(sorted(ys)), traversable=True))
    if not depot_is_aisle:
        columns.append(_Column(x=block.depot_x, ys=(0.0,), traversable=False))
        columns.sort(key=lambda column: column.x)
    depot_column = next(i for i, c in enumerate(columns) if abs(c.x - block.depot_x) <= EPSILON)
    return columns, depot_column, columns[depot_column].ys.index(0.0)


def _tour_edges(
    columns: Sequence[_Column], length: float
) -> tuple[float, list[tuple[tuple[str, int, int], tuple[str, int, int], float]]]:
    """Run the programme; the cheapest tour's length and its multigraph's edges (vertex, vertex, length)."""
    # Per column: state before the aisle's edges → (cost, back pointer), and after them.
    Back = tuple[_State, str] | None
    before: list[dict[_State, tuple[float, Back]]] = [{_EMPTY: (0.0, None)}]
    after: list[dict[_State, tuple[float, Back]]] = []
    for j, column in enumerate(columns):
        if j > 0:
            distance = column.x - columns[j - 1].x
            step: dict[_State, tuple[float, Back]] = {}
            for state, (cost, _back) in after[j - 1].items():
                for reached, times, cross in _cross_steps(state):
                    total = cost + times * distance
                    if reached not in step or total < step[reached][0] - EPSILON:
                        step[reached] = (total, (state, cross))
            before.append(step)
        here: dict[_State, tuple[float, Back]] = {}
        options = _aisle_options(column, length)
        has_picks = bool(column.ys)
        for state, (cost, _back) in before[j].items():
            for option, option_cost in options:
                target = _after_aisle(state, option, has_picks)
                if target is None:
                    continue
                total = cost + option_cost
                if target not in here or total < here[target][0] - EPSILON:
                    here[target] = (total, (state, option))
        after.append(here)
    finals = [(cost, state) for state, (cost, _back) in after[-1].items() if _final(state)]
    if not finals:  # pragma: no cover - the one-pass-everywhere tour always exists
        raise AssertionError("no tour")
    best_cost, state = min(finals)
    edges: list[tuple[tuple[str, int, int], tuple[str, int, int], float]] = []
    for j in range(len(columns) - 1, -1, -1):
        back = after[j][state][1]
        assert back is not None
        state, option = back
        edges.extend(_aisle_edges(j, columns[j], option, length))
        if j > 0:
            back = before[j][state][1]
            assert back is not None
            state, cross = back
            distance = columns[j].x - columns[j - 1].x
            edges.extend([(("a", j - 1, 0), ("a", j, 0), distance)] * int(cross[0]))
            edges.extend([(("b", j - 1, 0), ("b", j, 0), distance)] * int(cross[1]))
    return best_cost, edges


def _aisle_edges(
    j: int, column: _Column, option: str, length: float
) -> list[tuple[tuple[str, int, int], tuple[str, int, int], float]]:
    a, b = ("a", j, 0), ("b", j, 0)
    points = [("p", j, k) for k in range(len(column.ys))]
    ys = column.ys

    def chain(nodes: list[tuple[str, int, int]], depths: list[float], times: int) -> list[Any_Edge]:
        return [
            (nodes[i], nodes[i + 1], abs(depths[i + 1] - depths[i]))
            for i in range(len(nodes) - 1)
            for _ in range(times)
        ]

    if option == "none":
        return []
    if option in ("pass", "double"):
        return chain([a, *points, b], [0.0, *ys, length], 1 if option == "pass" else 2)
    if option == "top":
        return chain([b, *reversed(points)], [length, *reversed(ys)], 2)
    if option == "bottom":
        return chain([a, *points], [0.0, *ys], 2)
    widest = max(range(len(ys) - 1), key=lambda k: ys[k + 1] - ys[k])
    return chain([a, *points[: widest + 1]], [0.0, *ys[: widest + 1]], 2) + chain(
        [b, *reversed(points[widest + 1 :])], [length, *reversed(ys[widest + 1 :])], 2
    )


def _euler_circuit(edges: Sequence[Any_Edge], start: tuple[str, int, int]) -> list[tuple[str, int, int]]:
    """Hierholzer's algorithm on a connected multigraph whose degrees are all even."""
    adjacency: dict[tuple[str, int, int], list[tuple[tuple[str, int, int], int]]] = {}
    for index, (u, v, _length) in enumerate(edges):
        adjacency.setdefault(u, []).append((v, index))
        adjacency.setdefault(v, []).append((u, index))
    used = [False] * len(edges)
    stack = [start]
    circuit: list[tuple[str, int, int]] = []
    while stack:
        vertex = stack[-1]
        neighbours = adjacency.get(vertex, [])
        while neighbours and used[neighbours[-1][1]]:
            neighbours.pop()
        if neighbours:
            other, index = neighbours.pop()
            used[index] = True
            stack.append(other)
        else:
            circuit.append(stack.pop())
    circuit.reverse()
    return circuit


def optimal_route(block: Block, picks: Sequence[Pick]) -> Route:
    """A shortest closed walk from the depot through every pick of a single block (Ratliff & Rosenthal).

    Picks at the same place are visited together (consecutively in ``order``). With no pick the route is empty.
    """
    _check_picks(block, picks)
    depot = (block.depot_x, 0.0)
    if not picks:
        return Route(length=0.0, order=(), path=(depot, depot))
    columns, depot_column, depot_point = _columns(block, picks)
    length, edges = _tour_edges(columns, block.length)
    circuit = _euler_circuit(edges, ("p", depot_column, depot_point)) if edges else [("p", depot_column, 0)]

    def position(vertex: tuple[str, int, int]) -> Point:
        kind, j, k = vertex
        x = columns[j].x
        if kind == "a":
            return (x, 0.0)
        if kind == "b":
            return (x, block.length)
        return (x, columns[j].ys[k])

    by_place: dict[Point, list[int]] = {}
    for index, pick in enumerate(picks):
        place = (block.aisles_x[pick.aisle], min(max(pick.y, 0.0), block.length))
        by_place.setdefault(place, []).append(index)
    order: list[int] = []
    path: list[Point] = []
    for vertex in circuit:
        place = position(vertex)
        if not path or path[-1] != place:
            path.append(place)
        if vertex[0] == "p":
            order.extend(by_place.pop(place, []))
    path[0] = path[-1] = depot
    if len(path) == 1:
        path.append(depot)
    return Route(length=length, order=tuple(order), path=tuple(path))


# --- Distances, brute force and the classic heuristics -------------------------------------------------------


def block_distance(block: Block, first: Point, second: Point) -> float:
    """Shortest walk between two points of a block (each on an aisle's centre line or on the front cross-aisle)."""
    (x1, y1), (x2, y2) = first, second
    if abs(x1 - x2) <= EPSILON:
        return abs(y1 - y2)
    return abs(x1 - x2) + min(y1 + y2, 2 * block.length - y1 - y2)


def brute_force_length(block: Block, picks: Sequence[Pick]) -> float:
    """The exact shortest tour (Held-Karp over the distinct pick places): for checking, up to about 12 places."""
    _check_picks(block, picks)
    places = sorted({(block.aisles_x[p.aisle], min(max(p.y, 0.0), block.length)) for p in picks})
    if not places:
        return 0.0
    if len(places) > 14:
        raise ValueError("brute force is for small instances (at most 14 distinct places)")
    depot = (block.depot_x, 0.0)
    n = len(places)
    to_depot = [block_distance(block, depot, place) for place in places]
    between = [[block_distance(block, p, q) for q in places] for p in places]
    best: dict[tuple[int, int], float] = {}
    for k in range(n):
        best[(1 << k, k)] = to_depot[k]
    for size in range(2, n + 1):
        for subset in itertools.combinations(range(n), size):
            mask = sum(1 << k for k in subset)
            for last in subset:
                previous = mask & ~(1 << last)
                best[(mask, last)] = min(best[(previous, k)] + between[k][last] for k in subset if k != last)
    full = (1 << n) - 1
    return min(best[(full, k)] + to_depot[k] for k in range(n))


def route_length(block: Block, picks: Sequence[Pick], order: Sequence[int]) -> float:
    """Length of visiting ``picks`` in ``order`` from and back to the depot, each leg by its shortest walk."""
    depot = (block.depot_x, 0.0)
    points = [depot, *((block.aisles_x[picks[i].aisle], picks[i].y) for i in order), depot]
    return sum(block_distance(block, p, q) for p, q in itertools.pairwise(points))


def _aisles_with_picks(block: Block, picks: Sequence[Pick]) -> list[tuple[float, list[int]]]:
    by_x: dict[float, list[int]] = {}
    for index, pick in enumerate(picks):
        by_x.setdefault(block.aisles_x[pick.aisle], []).append(index)
    return sorted(by_x.items())


def s_shape_route(block: Block, picks: Sequence[Pick]) -> Route:
    """S-shape (traversal): every aisle holding a pick is walked end to end, up then down; with an odd number of
    them the last one is entered from the front and left the same way after its farthest pick."""
    _check_picks(block, picks)
    aisles = _aisles_with_picks(block, picks)
    depot = (block.depot_x, 0.0)
    if not aisles:
        return Route(length=0.0, order=(), path=(depot, depot))
    order: list[int] = []
    path: list[Point] = [depot]
    length = 0.0
    count = len(aisles)
    for number, (x, members) in enumerate(aisles):
        up = number % 2 == 0
        last_return = number == count - 1 and count % 2 == 1
        ranked = sorted(members, key=lambda i: picks[i].y, reverse=not up)
        if last_return:
            ranked = sorted(members, key=lambda i: picks[i].y)
            farthest = picks[ranked[-1]].y
            path += [(x, 0.0), (x, farthest), (x, 0.0)]
        else:
            path += [(x, 0.0), (x, block.length)] if up else [(x, block.length), (x, 0.0)]
        order.extend(ranked)
    path.append(depot)
    length = sum(abs(p[0] - q[0]) + abs(p[1] - q[1]) for p, q in itertools.pairwise(path))
    return Route(length=length, order=tuple(order), path=tuple(path))


def largest_gap_route(block: Block, picks: Sequence[Pick]) -> Route:
    """Largest gap: the first and last aisles holding picks are walked end to end; every aisle between them is
    entered from the back and from the front up to the largest gap between its picks (ends included), never across
    it. One aisle alone is entered from the front and left the same way."""
    _check_picks(block, picks)
    aisles = _aisles_with_picks(block, picks)
    depot = (block.depot_x, 0.0)
    if not aisles:
        return Route(length=0.0, order=(), path=(depot, depot))
    length_l = block.length
    if len(aisles) == 1:
        x, members = aisles[0]
        ranked = sorted(members, key=lambda i: picks[i].y)
        path = [depot, (x, 0.0), (x, picks[ranked[-1]].y), (x, 0.0), depot]
        return Route(length=_polyline_length(path), order=tuple(ranked), path=tuple(path))
    order: list[int] = []
    path = [depot]
    first_x, first = aisles[0]
    path += [(first_x, 0.0), (first_x, length_l)]
    order.extend(sorted(first, key=lambda i: picks[i].y))
    front_parts: list[tuple[float, list[int], float]] = []
    for x, members in aisles[1:-1]:
        ys = sorted({picks[i].y for i in members})
        bounds = [0.0, *ys, length_l]
        gaps = [(bounds[k + 1] - bounds[k], k) for k in range(len(bounds) - 1)]
        _widest, k = max(gaps)
        # Depths above the gap are reached from the back, those below it from the front (on the way back).
        split = bounds[k]
        from_back = sorted((i for i in members if picks[i].y > split), key=lambda i: -picks[i].y)
        from_front = sorted((i for i in members if picks[i].y <= split), key=lambda i: picks[i].y)
        if from_back:
            path += [(x, length_l), (x, picks[from_back[-1]].y), (x, length_l)]
            order.extend(from_back)
        if from_front:
            front_parts.append((x, from_front, picks[from_front[-1]].y))
    last_x, last = aisles[-1]
    path += [(last_x, length_l), (last_x, 0.0)]
    order.extend(sorted(last, key=lambda i: -picks[i].y))
    for x, members, deepest in reversed(front_parts):
        path += [(x, 0.0), (x, deepest), (x, 0.0)]
        order.extend(members)
    path.append(depot)
    return Route(length=_polyline_length(path), order=tuple(order), path=tuple(path))


def _polyline_length(path: Sequence[Point]) -> float:
    return sum(abs(p[0] - q[0]) + abs(p[1] - q[1]) for p, q in itertools.pairwise(path))


# --- Other layouts --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AisleSpan:
    """An aisle's centre line from ``y_low`` to ``y_high`` at ``x``; cross-aisles pass at both ends."""

    x: float
    y_low: float
    y_high: float


@dataclass(frozen=True)
class Layout:
    """Any layout: aisles (possibly of different lengths) and a depot; a place is on an aisle or loose."""

    aisles: tuple[AisleSpan, ...]
    depot: Point


@dataclass(frozen=True)
class Place:
    """A pick place: on aisle ``aisle`` (index into ``Layout.aisles``) or loose (``aisle`` None) at (x, y)."""

    x: float
    y: float
    aisle: int | None = None


def layout_distance(layout: Layout, first: Place, second: Place) -> float:
    """Walking distance: along one aisle directly; between aisles out to the front or back cross-aisle, across,
    and in; loose places (and the depot) are reached by rectilinear walks."""
    if first.aisle is not None and first.aisle == second.aisle:
        return abs(first.y - second.y)
    ends_first = _ends(layout, first)
    ends_second = _ends(layout, second)
    return min(
        abs(first.y - e1) + abs(first.x - second.x) + abs(e1 - e2) + abs(e2 - second.y)
        for e1 in ends_first
        for e2 in ends_second
    )


def _ends(layout: Layout, place: Place) -> tuple[float, ...]:
    """Where a walk leaving ``place`` may run across: a loose place at its own depth; a place on an aisle along
    the front or the back cross-aisle (the open floor beyond a shorter aisle's end is walkable)."""
    if place.aisle is None:
        return (place.y,)
    return (min(a.y_low for a in layout.aisles), max(a.y_high for a in layout.aisles))


def heuristic_route(layout: Layout, places: Sequence[Place], *, max_rounds: int = 50) -> tuple[float, tuple[int, ...]]:
    """A good closed walk for any layout: nearest neighbour from the depot, improved by 2-opt until no exchange
    of two legs shortens it (or ``max_rounds``). Returns the length and the visiting order."""
    if not places:
        return 0.0, ()
    depot = Place(x=layout.depot[0], y=layout.depot[1])
    nodes = [depot, *places]
    n = len(nodes)
    distance = [[layout_distance(layout, p, q) for q in nodes] for p in nodes]
    tour = [0]
    left = set(range(1, n))
    while left:
        here = tour[-1]
        nearest = min(left, key=lambda k: (distance[here][k], k))
        tour.append(nearest)
        left.remove(nearest)
    tour.append(0)
    tour = _two_opt(tour, distance.__getitem__, max_rounds=max_rounds)
    length = sum(distance[p][q] for p, q in itertools.pairwise(tour))
    return length, tuple(k - 1 for k in tour[1:-1])


def _two_opt(tour: list[int], row: Callable[[int], list[float]], *, max_rounds: int) -> list[int]:
    for _round in range(max_rounds):
        improved = False
        for i in range(1, len(tour) - 2):
            for k in range(i + 1, len(tour) - 1):
                a, b, c, d = tour[i - 1], tour[i], tour[k], tour[k + 1]
                if row(a)[c] + row(b)[d] < row(a)[b] + row(c)[d] - EPSILON:
                    tour[i : k + 1] = reversed(tour[i : k + 1])
                    improved = True
        if not improved:
            break
    return tour


def block_of_layout(layout: Layout) -> Block | None:
    """The single block a layout is, when all its aisles share both ends and the depot stands on the front
    cross-aisle (at or before the aisles' front); None otherwise. Depths then count from the front."""
    if not layout.aisles:
        return None
    low = layout.aisles[0].y_low
    high = layout.aisles[0].y_high
    if any(abs(a.y_low - low) > 0.05 or abs(a.y_high - high) > 0.05 for a in layout.aisles):
        return None
    if high - low <= 0 or layout.depot[1] > low + EPSILON:
        return None
    return Block(aisles_x=tuple(a.x for a in layout.aisles), length=high - low, depot_x=layout.depot[0])


def depot_leg(layout: Layout) -> float:
    """The walk from a depot set back from the front cross-aisle to it and back (added to block routes)."""
    low = min(a.y_low for a in layout.aisles) if layout.aisles else layout.depot[1]
    return 2 * max(0.0, low - layout.depot[1])


def isclose(first: float, second: float) -> bool:
    return math.isclose(first, second, rel_tol=1e-9, abs_tol=1e-6)


# --- One entry point for any layout ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RoutePlan:
    """The route a batch walks, and what the classic heuristics would have walked (single block only)."""

    routing: str  # "optimal" (single block, Ratliff & Rosenthal) or "heuristic"
    length: float
    order: tuple[int, ...]
    path: tuple[Point, ...]
    s_shape: float | None = None
    largest_gap: float | None = None


def plan_route(layout: Layout, places: Sequence[Place]) -> RoutePlan:
    """The shortest route when the layout is a single block and every place is on one of its aisles; else the
    heuristic. Lengths include the walk between the depot and the front cross-aisle."""
    block = block_of_layout(layout)
    if block is not None and all(place.aisle is not None for place in places):
        low = layout.aisles[0].y_low
        picks = [Pick(aisle=place.aisle, y=place.y - low) for place in places if place.aisle is not None]
        leg = depot_leg(layout)
        best = optimal_route(block, picks)
        s_shape = s_shape_route(block, picks).length
        gap = largest_gap_route(block, picks).length
        path = tuple((x, y + low) for x, y in best.path)
        if leg and places:
            path = (layout.depot, *path, layout.depot)
        extra = leg if places else 0.0
        return RoutePlan(
            routing="optimal",
            length=best.length + extra,
            order=best.order,
            path=path,
            s_shape=s_shape + extra,
            largest_gap=gap + extra,
        )
    length, order = heuristic_route(layout, places)
    corners: list[Point] = [layout.depot]
    nodes = [Place(x=layout.depot[0], y=layout.depot[1]), *(places[i] for i in order), Place(*layout.depot)]
    for first, second in itertools.pairwise(nodes):
        corners.extend(_leg_path(layout, first, second))
    return RoutePlan(routing="heuristic", length=length, order=order, path=tuple(corners))


#: Routes ``plan_route_kept`` remembers (least recently used out first): a flash sale's orders take the same few
#: places wave after wave (a 1,000-order day planned 1,178 routes, 245 of them different).
ROUTES_KEPT = 4096


def plan_route_kept(layout: Layout, places: Sequence[Place]) -> RoutePlan:
    """``plan_route``, remembered across calls. ``plan_route`` depends on nothing but its arguments, and the key is
    their value — the layout's aisles and depot, the places in the order given — not a zone's id or a read time:
    a layout changed in the database is read as a different key, never answered from the old one."""
    return _plan_route_kept(layout, tuple(places))


@functools.lru_cache(maxsize=ROUTES_KEPT)
def _plan_route_kept(layout: Layout, places: tuple[Place, ...]) -> RoutePlan:
    return plan_route(layout, places)


def _leg_path(layout: Layout, first: Place, second: Place) -> list[Point]:
    """The corners of the shortest walk from ``first`` to ``second`` (``layout_distance``'s choice of ends)."""
    if first.aisle is not None and first.aisle == second.aisle:
        return [(second.x, second.y)]
    e1, e2 = min(
        ((a, b) for a in _ends(layout, first) for b in _ends(layout, second)),
        key=lambda ends: (
            abs(first.y - ends[0]) + abs(first.x - second.x) + abs(ends[0] - ends[1]) + abs(ends[1] - second.y)
        ),
    )
    return [(first.x, e1), (second.x, e1), (second.x, e2), (second.x, second.y)]


def layout_of_locations(
    locations: Sequence[tuple[int, str, float, float]], *, depot_x: float | None = None
) -> tuple[Layout, dict[int, Place]]:
    """A zone's walking layout from its locations ``(id, aisle, x, y)``: one aisle per aisle name, on the centre
    line between its two rack faces, its ends one metre past the first and last slots (where the cross-aisles
    run); locations without an aisle are loose places. The depot stands on the front cross-aisle at ``depot_x``
    (default: the first aisle's)."""
    spans: dict[str, list[tuple[float, float]]] = {}
    for _key, aisle, x, y in locations:
        if aisle:
            spans.setdefault(aisle, []).append((x, y))
    names = sorted(spans, key=lambda name: (min(x for x, _y in spans[name]), name))
    aisles = tuple(
        AisleSpan(
            x=(min(x for x, _y in spans[name]) + max(x for x, _y in spans[name])) / 2,
            y_low=min(y for _x, y in spans[name]) - 1.0,
            y_high=max(y for _x, y in spans[name]) + 1.0,
        )
        for name in names
    )
    index = {name: i for i, name in enumerate(names)}
    front = min((a.y_low for a in aisles), default=min((y for *_rest, y in locations), default=0.0))
    places = {
        key: Place(x=aisles[index[aisle]].x, y=y, aisle=index[aisle]) if aisle else Place(x=x, y=y)
        for key, aisle, x, y in locations
    }
    chosen_x = depot_x if depot_x is not None else (aisles[0].x if aisles else 0.0)
    return Layout(aisles=aisles, depot=(chosen_x, front)), places

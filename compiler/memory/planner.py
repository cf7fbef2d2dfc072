"""Offsets in one arena for the buffers of a schedule, and the checks and reports on the result.

Algorithm ``greedy_by_size`` (as TensorFlow Lite Micro's GreedyMemoryPlanner,
tensorflow/lite/micro/memory_planner/greedy_memory_planner.h, and "greedy by size" in Pisarchyk & Lee,
"Efficient Memory Management for Deep Neural Net Inference", 2020): take buffers from the largest down; for
each, look at the already placed buffers whose lifetimes overlap it, and put it in the smallest gap between
them that fits (best fit), or above the highest of them. ``greedy_by_duration`` orders by lifetime length
instead; ``auto`` runs both and keeps the smaller arena.

Figures: ``arena_bytes`` (the plan), ``lower_bound_bytes`` (the largest sum of live buffer bytes at any step:
no plan for this schedule and these buffers can be smaller), ``no_reuse_bytes`` (every buffer side by side),
``weights_bytes`` (constants, outside the arena).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import BorncError
from ..ir.graph import Model
from .liveness import Buffer, align, buffers
from .schedule import SCHEDULES


@dataclass
class MemoryPlan:
    """The plan as data: buffer name -> (offset, size, first_step, last_step), plus value -> buffer and the
    summary figures (bytes)."""

    offsets: dict[str, tuple[int, int, int, int]]
    value_buffer: dict[str, str]
    arena_bytes: int
    lower_bound_bytes: int
    no_reuse_bytes: int
    weights_bytes: int
    alignment: int
    schedule: list[str]
    schedule_name: str
    algorithm: str
    io_in_arena: bool = False
    steps: int = 0
    extra: dict = field(default_factory=dict)

    def summary(self) -> dict:
        return {"arena_bytes": self.arena_bytes, "lower_bound_bytes": self.lower_bound_bytes,
                "no_reuse_bytes": self.no_reuse_bytes, "weights_bytes": self.weights_bytes,
                "alignment": self.alignment, "schedule": self.schedule_name, "algorithm": self.algorithm,
                "io_in_arena": self.io_in_arena}

    def to_json(self) -> dict:
        tensors = [{"name": v, "buffer": b, "offset": self.offsets[b][0], "size": self.offsets[b][1],
                    "first_step": self.offsets[b][2], "last_step": self.offsets[b][3]} for v, b in self.value_buffer.items()]
        return {**self.summary(), "tensors": tensors}

    def verify(self) -> None:
        """Raise BorncError if two buffers live at the same step overlap in the arena, or an offset is
        misaligned, or a buffer runs past the arena."""
        items = sorted(self.offsets.items(), key=lambda kv: kv[1][0])
        for name, (off, size, first, last) in items:
            if off % self.alignment or off + size > self.arena_bytes:
                raise BorncError(f"memory plan: buffer {name!r} at {off}+{size} is misaligned or outside the arena")
        for i, (a, (oa, sa, fa, la)) in enumerate(items):
            for b, (ob, sb, fb, lb) in items[i + 1:]:
                if ob >= oa + sa:
                    break
                if fa <= lb and fb <= la:
                    raise BorncError(f"memory plan: buffers {a!r} [{oa}, {oa + sa}) and {b!r} [{ob}, {ob + sb}) "
                                     f"overlap while both live (steps {max(fa, fb)}-{min(la, lb)})")

    def ascii(self, width: int = 64) -> str:
        """Arena over time: one row per step, '#' where a live buffer occupies that part of the arena."""
        rows = []
        scale = max(self.arena_bytes, 1) / width
        for s in range(self.steps):
            line = [" "] * width
            for off, size, first, last in self.offsets.values():
                if first <= s <= last:
                    for c in range(int(off / scale), max(int((off + size) / scale), int(off / scale) + 1)):
                        if c < width:
                            line[c] = "#"
            rows.append(f"{s:4d} |{''.join(line)}|")
        return "\n".join(rows)


def _place(bufs: list[Buffer], order, top_side=None, height: int = 0) -> tuple[dict[str, int], int]:
    """Place buffers in ``order``: each goes into the smallest free gap (among buffers overlapping it in time)
    that fits, below ``height`` or above everything placed; at the gap's bottom, or at its top when
    ``top_side(buffer)`` says so."""
    placed: list[tuple[int, Buffer]] = []
    offsets = {}
    for b in sorted(bufs, key=order):
        live = sorted(((o, p) for o, p in placed if p.first <= b.last and b.first <= p.last), key=lambda op: op[0])
        gaps, cursor = [], 0
        for o, p in live:
            if o > cursor:
                gaps.append((cursor, o))
            cursor = max(cursor, o + p.size)
        if cursor < height:
            gaps.append((cursor, height))
        fit = [gp for gp in gaps if gp[1] - gp[0] >= b.size]
        if fit:
            lo, hi = min(fit, key=lambda gp: gp[1] - gp[0])
            off = hi - b.size if top_side is not None and top_side(b) else lo
        else:
            off = cursor
        offsets[b.name] = off
        placed.append((off, b))
    arena = max((offsets[b.name] + b.size for b in bufs), default=0)
    return offsets, arena


ALGORITHMS = {
    "greedy_by_size": lambda b: (-b.size, b.first, b.name),
    "greedy_by_area": lambda b: (-b.size * (b.last - b.first + 1), b.first, b.name),
    "greedy_by_duration": lambda b: (-(b.last - b.first), -b.size, b.name),
}

#: Restarts of the side search (``auto``), and its seed: plans are deterministic.
SIDE_SEARCH_TRIALS = 256
SIDE_SEARCH_SEED = 0


def lower_bound(bufs: list[Buffer], steps: int) -> int:
    """Largest sum of live buffer sizes over the steps."""
    delta = [0] * (steps + 2)
    for b in bufs:
        delta[b.first] += b.size
        delta[b.last + 1] -= b.size
    best = cur = 0
    for d in delta:
        cur += d
        best = max(best, cur)
    return best


def plan_buffers(bufs: list[Buffer], alignment: int, algorithm: str = "auto", steps: int = 0) -> tuple[dict[str, int], int, str]:
    """Offsets for ``bufs``: (offsets, arena bytes, algorithm used).

    ``auto`` runs each ordering of ALGORITHMS; if none reaches the lower bound, it searches the side (bottom or
    top of the chosen gap) of each buffer under greedy_by_size with the lower bound as target height: seeded
    random restarts, stopping at the bound. Leaving room at the bottom of a gap lets a later, smaller buffer that
    overlaps two big ones fit between them, which bottom-only placement cannot do."""
    import random
    names = list(ALGORITHMS) if algorithm == "auto" else [algorithm]
    best = None
    for name in names:
        offsets, arena = _place(bufs, ALGORITHMS[name])
        if best is None or arena < best[1]:
            best = (offsets, arena, name)
    bound = lower_bound(bufs, steps or max((b.last for b in bufs), default=0) + 1)
    if algorithm == "auto" and best[1] > bound:
        rng = random.Random(SIDE_SEARCH_SEED)
        for _ in range(SIDE_SEARCH_TRIALS):
            side = {b.name: rng.random() < 0.5 for b in bufs}
            offsets, arena = _place(bufs, ALGORITHMS["greedy_by_size"], lambda b: side[b.name], bound)
            if arena < best[1]:
                best = (offsets, arena, "greedy_by_size+side_search")
            if best[1] <= bound:
                break
    return best


def plan_model(model: Model, alignment: int = 16, schedule: str = "topological", io_in_arena: bool = False,
               algorithm: str = "auto", workspace: dict | None = None, dynamic: bool = False) -> MemoryPlan:
    """Plan the arena of a static ``model``. ``schedule``: 'topological' or 'memory' (kept only if its lower bound
    is smaller). Raises ShapeError when a value's shape is not static, unless ``dynamic`` (see
    :func:`bornc.memory.liveness.buffers`)."""
    order = SCHEDULES["topological"](model)
    bufs, owner = buffers(model, order, alignment, io_in_arena, workspace, dynamic)
    name = "topological"
    if schedule == "memory":
        alt = SCHEDULES["memory"](model)
        alt_bufs, alt_owner = buffers(model, alt, alignment, io_in_arena, workspace, dynamic)
        if lower_bound(alt_bufs, len(alt)) < lower_bound(bufs, len(order)):
            order, bufs, owner, name = alt, alt_bufs, alt_owner, "memory"
    offsets, arena, algo = plan_buffers(bufs, alignment, algorithm, len(order) + 1)
    table = {b.name: (offsets[b.name], b.size, b.first, b.last) for b in bufs}
    weights = sum(int(a.nbytes) for a in model.graph.constants.values())
    plan = MemoryPlan(table, owner, arena, lower_bound(bufs, len(order) + 1), sum(b.size for b in bufs), weights,
                      alignment, [n.name for n in order], name, algo, io_in_arena, len(order) + 1, {"order": order})
    plan.verify()
    return plan


__all__ = ["MemoryPlan", "plan_model", "plan_buffers", "lower_bound", "align"]

"""Evolutionary search over a width space under a FLOPs budget.

Individuals are bin-index vectors of a :class:`~nasforge.spaces.width.WidthSpace`; a FLOPs
constraint is enforced by rejection, which is cheap because the analytic FLOPs of a whole
batch of proposals is one vectorised call. The loop is the usual one of one-shot width /
path search (SPOS, Guo et al. 2020; CafeNet uses an evolutionary search too): a feasible
initial population, then per generation the top ``parents`` breed children by mutation
and uniform crossover; every configuration is scored once (cached by the caller).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nasforge.errors import SearchError
from nasforge.spaces.width import WidthSpace


@dataclass(frozen=True)
class EvolutionSettings:
    """Population size, generations, parents kept, per-gene mutation probability.

    ``band`` restricts the initial population to FLOPs in ``[band * budget, budget]`` when
    enough such configurations exist (configurations far below the budget waste evaluations:
    accuracy rises with FLOPs).
    """

    population: int = 16
    generations: int = 6
    parents: int = 8
    mutate_prob: float = 0.2
    band: float = 0.85

    def __post_init__(self) -> None:
        if self.population < 2 or self.generations < 0 or not 1 <= self.parents <= self.population:
            raise SearchError(
                f"need population >= 2, generations >= 0, 1 <= parents <= population; got "
                f"population={self.population}, generations={self.generations}, "
                f"parents={self.parents}"
            )
        if not 0.0 <= self.mutate_prob <= 1.0 or not 0.0 <= self.band <= 1.0:
            raise SearchError(
                f"mutate_prob and band are in [0, 1]; got {self.mutate_prob}, {self.band}"
            )


@dataclass
class EvolutionResult:
    """Best configuration and every evaluated one, in evaluation order."""

    best_widths: tuple[int, ...]
    best_score: float
    history: list[dict[str, Any]] = field(default_factory=list)


#: ``cost(widths (B, G)) -> (B,)``: what the budget bounds (default: analytic MFLOPs).
Cost = Callable[[np.ndarray], np.ndarray]


def _flops(space: WidthSpace) -> Cost:
    return lambda w: space.flops(w, check=False)


def _feasible(space: WidthSpace, idx: np.ndarray, budget: float, cost: Cost) -> np.ndarray:
    return cost(space.decode(idx)) <= budget + 1e-9


def initial_population(
    space: WidthSpace,
    budget: float,
    rng: np.random.Generator,
    n: int,
    band: float,
    cost: Cost | None = None,
) -> np.ndarray:
    """``n`` distinct feasible configurations (bin indices), preferring the upper cost band."""
    pool = space.sample_indices(rng, max(20000, 50 * n))
    flops = (cost or _flops(space))(space.decode(pool))
    ok = flops <= budget + 1e-9
    upper = ok & (flops >= band * budget)
    chosen = pool[upper] if upper.sum() >= n else pool[ok]
    chosen = np.unique(chosen, axis=0)
    if len(chosen) == 0:
        # A tight budget: start from the smallest configuration, which parse_budget admits.
        chosen = np.zeros((1, len(space.groups)), dtype=np.int64)
    return chosen[rng.permutation(len(chosen))[:n]]


def _children(
    space: WidthSpace,
    parents: np.ndarray,
    budget: float,
    rng: np.random.Generator,
    n: int,
    mutate_prob: float,
    seen: set[bytes],
    cost: Cost,
) -> np.ndarray:
    out: list[np.ndarray] = []
    for _ in range(50):
        if len(out) >= n:
            break
        m = 4 * n
        a = parents[rng.integers(0, len(parents), m)]
        b = parents[rng.integers(0, len(parents), m)]
        cross = rng.random(m) < 0.5
        mix = np.where(rng.random(a.shape) < 0.5, a, b)
        child = np.where(cross[:, None], mix, a)
        # Mutation: a gene moves one or two bins, or (1 in 4) is redrawn uniformly.
        hit = rng.random(child.shape) < mutate_prob
        step = rng.choice(np.array([-2, -1, 1, 2]), size=child.shape)
        redraw = space.sample_indices(rng, m)
        moved = np.clip(child + step, 0, space.num_bins - 1)
        new = np.where(rng.random(child.shape) < 0.25, redraw, moved)
        child = np.where(hit, new, child)
        child = child[_feasible(space, child, budget, cost)]
        for c in child:
            k = c.tobytes()
            if k not in seen:
                seen.add(k)
                out.append(c)
                if len(out) >= n:
                    break
    return np.asarray(out, dtype=np.int64).reshape(-1, len(space.groups))


def evolve(
    space: WidthSpace,
    score: Callable[[tuple[int, ...]], float],
    budget: float,
    *,
    rng: np.random.Generator,
    settings: EvolutionSettings | None = None,
    cost: Cost | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EvolutionResult:
    """Maximise ``score(widths)`` over configurations with ``cost <= budget`` (default cost:
    FLOPs in MFLOPs; AOWS's latency model for a latency target). ``progress(done, total)``
    after every scored configuration (total: population x (generations + 1), at most)."""
    s = settings or EvolutionSettings()
    cost = cost or _flops(space)
    pop = initial_population(space, budget, rng, s.population, s.band, cost)
    seen = {p.tobytes() for p in pop}
    history: list[dict[str, Any]] = []
    scored: list[tuple[float, np.ndarray]] = []

    def run(batch: np.ndarray, generation: int) -> None:
        for idx in batch:
            widths = tuple(int(w) for w in space.decode(idx))
            value = float(score(widths))
            flops = float(space.flops(widths))
            c = float(cost(np.asarray([widths]))[0])
            if c > budget + 1e-9:  # cannot happen: every proposal is filtered
                raise SearchError(f"internal: {widths} exceeds the budget {budget}")
            scored.append((value, idx))
            if progress is not None:
                progress(len(scored), s.population * (s.generations + 1))
            history.append(
                {"generation": generation, "widths": list(widths), "flops_m": flops,
                 "cost": c, "score": value}
            )  # fmt: skip

    run(pop, 0)
    for gen in range(1, s.generations + 1):
        ranked = sorted(scored, key=lambda t: -t[0])
        parents = np.asarray([idx for _, idx in ranked[: s.parents]])
        kids = _children(space, parents, budget, rng, s.population, s.mutate_prob, seen, cost)
        if len(kids) == 0:
            break  # the feasible neighbourhood is exhausted
        run(kids, gen)
    best_value, best_idx = max(scored, key=lambda t: t[0])
    return EvolutionResult(tuple(int(w) for w in space.decode(best_idx)), best_value, history)


__all__ = ["EvolutionResult", "EvolutionSettings", "evolve", "initial_population"]

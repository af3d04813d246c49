"""AOWS: adaptive and optimal network width search under a latency target.

Berman, Pishchulin, Xu, Blaschko, Medioni, "AOWS: Adaptive and Optimal Network Width
Search with Latency Constraints", CVPR 2020 (official code: bermanmaxim/AOWS).

* **Latency model** (``nasforge.cost.latency_model``): per-layer terms fitted to measured
  latencies of random configurations on the target device; by default their variables are
  keyed as the official ``Vartype`` (layer type + (in, out) channels, shared by the layers
  of a type, monotone along channels and input size; ``latency.py:29``, ``:271-290``).
  The solver reads them as one pairwise table per pair of channel groups, as
  ``train_nas.py:312-326`` builds a layer's table from the shared variables.
* **OWS** (optimal width selection, Sec. 3.2): the score of a configuration is a sum of
  unary terms, one per (group, width), estimated during supernet training as a moving
  average of ``-(loss(random net) - loss(largest net)) / G`` over the training samples
  whose random configuration used that width (``train_nas.py:223-226``). The best
  configuration under a latency target maximises ``sum unary - gamma * latency``: exact
  max-sum on the MRF (Viterbi on a chain), with the Lagrange multiplier ``gamma`` found by
  bisection (``train_nas.py:330-354``: start at 10, double until the decoded
  configuration meets the target, then 12 halvings, keep the feasible end).
* **Adaptive sampling** (AOWS, Sec. 3.3): after ``warmup`` epochs of uniform sampling, the
  random width of the sandwich is drawn, group by group, from the marginals of the Gibbs
  distribution ``exp((unary - gamma * latency) / T)`` (log-space sum-product), with the
  temperature ``T`` annealed on the official log-linear schedule (``aows_temp``,
  ``train_nas.py:285-301``). Training is the sandwich rule with in-place distillation
  (largest, smallest, one random width; ``train_nas.py:198-219``).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from nasforge.cost.latency_model import (
    LatencyFitSettings,
    LatencyModel,
    MeasureSettings,
    fit_latency_model,
)
from nasforge.data import DatasetSplits
from nasforge.errors import SearchError
from nasforge.search.registry import WIDTH
from nasforge.search.width.algorithms import Budget, WidthSearch, WidthSearchResult
from nasforge.search.width.mrf import PairwiseMRF
from nasforge.search.width.supernet import SupernetLog, SupernetSettings
from nasforge.spaces.width import WidthSpace


@dataclass(frozen=True)
class AOWSSettings:
    """AOWS's knobs; defaults are the official ``train_nas.py`` arguments (lines 57-65).

    ``warmup``: epochs of uniform sampling before adaptive sampling (``--AOWS-warmup 5``);
    ``min_temp``: final temperature (``--AOWS-min-temp 0.0005``); ``gamma_iter``: bisection
    steps (``--gamma-iter 12``); ``window``: samples in each unary's moving average
    (``--window 100000``); ``solve_every``: training steps between OWS solves (the official
    code solves before every step); ``adaptive``: False gives OWS (uniform sampling).
    """

    warmup: int = 5
    min_temp: float = 0.0005
    gamma_iter: int = 12
    gamma_init: float = 10.0
    window: int = 100_000
    solve_every: int = 1
    adaptive: bool = True

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.gamma_iter < 0 or self.window < 1 or self.solve_every < 1:
            raise SearchError(
                f"AOWS needs warmup >= 0, gamma_iter >= 0, window >= 1, solve_every >= 1; got "
                f"{self.warmup}, {self.gamma_iter}, {self.window}, {self.solve_every}"
            )
        if not self.min_temp > 0 or not self.gamma_init > 0:
            raise SearchError(
                f"min_temp and gamma_init must be > 0, got {self.min_temp}, {self.gamma_init}"
            )


def aows_temperature(
    epoch: int, steps: int, step: int, *, epochs: int, warmup: int, min_temp: float
) -> float:
    """The official annealing (``train_nas.py:285-301``): T = 1 until ``warmup``, then
    log-linear to 0.01 over one epoch, to 0.001 at epoch 10, to ``min_temp`` at the end.

    Knots that do not come after the previous one (short runs) are dropped, so the
    schedule stays a function of time; the official code assumes ``warmup + 1 < 10 < epochs``.
    """
    knots = [(0, 1.0), (warmup, 1.0), (warmup + 1, 0.01), (10, 0.001), (epochs, min_temp)]
    clean = [knots[0]]
    for e, t in knots[1:-1]:
        if clean[-1][0] < e < epochs:
            clean.append((e, t))
    if clean[-1][0] < epochs:
        clean.append(knots[-1])
    phase = max(i for i, (e, _) in enumerate(clean) if epoch >= e)
    if phase == len(clean) - 1:
        return clean[-1][1]
    (e0, t0), (e1, t1) = clean[phase], clean[phase + 1]
    ratio = (steps * (epoch - e0) + step) / (steps * (e1 - e0))
    return float(10 ** ((1.0 - ratio) * np.log10(t0) + ratio * np.log10(t1)))


class UnaryHistory:
    """Per (group, bin), a moving average of the per-sample unary gains over a window of
    the last ``window`` samples (the official ``MovingAverageMeter``)."""

    def __init__(self, num_bins: Sequence[int], window: int) -> None:
        self.window = int(window)
        self._chunks = [[deque() for _ in range(int(n))] for n in num_bins]
        self._sum = [np.zeros(int(n)) for n in num_bins]
        self._count = [np.zeros(int(n), dtype=np.int64) for n in num_bins]

    def update(self, indices: Sequence[int], gains: np.ndarray) -> None:
        """Add the per-sample ``gains`` of one batch to the bin ``indices[g]`` of each group."""
        total, n = float(np.sum(gains)), len(gains)
        for g, b in enumerate(indices):
            q = self._chunks[g][b]
            q.append((total, n))
            self._sum[g][b] += total
            self._count[g][b] += n
            while self._count[g][b] - q[0][1] >= self.window:
                s, k = q.popleft()
                self._sum[g][b] -= s
                self._count[g][b] -= k

    def unaries(self) -> list[np.ndarray]:
        """The averages (0 where a width was never sampled, as the official meters)."""
        return [s / np.maximum(c, 1) for s, c in zip(self._sum, self._count, strict=True)]


@dataclass
class OWSSolution:
    """A decoded configuration: bin indices, multiplier, unary score, predicted latency."""

    indices: tuple[int, ...]
    gamma: float
    perf: float
    latency_ms: float


class OWSSolver:
    """Max-sum decoding of ``unary - gamma * latency`` with ``gamma`` set by bisection."""

    def __init__(self, latency: LatencyModel, settings: AOWSSettings | None = None) -> None:
        self.latency = latency
        self.settings = settings or AOWSSettings()
        self.lat_unary, self.lat_pair = latency.pairwise_terms()
        self.mrf = PairwiseMRF([int(n) for n in latency.space.num_bins], list(self.lat_pair))

    def potentials(
        self, unary: Sequence[np.ndarray], gamma: float, temperature: float = 1.0
    ) -> tuple[list[np.ndarray], dict[tuple[int, int], np.ndarray]]:
        un = [(u - gamma * lu) / temperature for u, lu in zip(unary, self.lat_unary, strict=True)]
        pa = {k: -gamma * m / temperature for k, m in self.lat_pair.items()}
        return un, pa

    def decode(self, unary: Sequence[np.ndarray], gamma: float) -> OWSSolution:
        _, x = self.mrf.decode(*self.potentials(unary, gamma))
        perf = float(sum(u[i] for u, i in zip(unary, x, strict=True)))
        lat = float(self.latency.predict_indices(np.asarray([x]))[0])
        return OWSSolution(tuple(int(i) for i in x), gamma, perf, lat)

    def solve(self, unary: Sequence[np.ndarray], target_ms: float) -> OWSSolution:
        """The best configuration whose predicted latency meets ``target_ms``."""
        check_latency_target(self.latency, target_ms)
        lo, hi = 0.0, self.settings.gamma_init
        sol = self.decode(unary, hi)
        for _ in range(60):  # gamma_max doubles until feasible (train_nas.py:339-345)
            if sol.latency_ms <= target_ms:
                break
            hi *= 2.0
            sol = self.decode(unary, hi)
        else:
            raise SearchError(f"no multiplier meets the latency target {target_ms:.4g} ms")
        for _ in range(self.settings.gamma_iter):
            mid = 0.5 * (lo + hi)
            if self.decode(unary, mid).latency_ms > target_ms:
                lo = mid
            else:
                hi = mid
        return self.decode(unary, hi)

    def marginals(
        self, unary: Sequence[np.ndarray], gamma: float, temperature: float
    ) -> list[np.ndarray]:
        """Per group, the marginal probabilities of its widths at ``temperature``."""
        lm = self.mrf.log_marginals(*self.potentials(unary, gamma, temperature))
        return [np.exp(v) / np.exp(v).sum() for v in lm]


def check_latency_target(model: LatencyModel, target_ms: float) -> None:
    """Raise unless the smallest configuration's predicted latency meets ``target_ms``."""
    floor = float(model.predict(model.space.smallest()))
    if target_ms < floor:
        lo, hi = floor, float(model.predict(model.space.largest()))
        raise SearchError(
            f"latency target {target_ms:.4g} ms is below the predicted latency of the "
            f"smallest configuration ({lo:.4g} ms; the largest: {hi:.4g} ms)"
        )


def parse_latency_target(target: str | float) -> float:
    """A latency target in ms per image (``"2.5"``, ``"2.5ms"``); must be > 0."""
    text = str(target).strip().lower().removesuffix("ms").strip()
    try:
        value = float(text)
    except ValueError:
        raise SearchError(f"latency target {target!r} is not a number of ms (e.g. '2.5')") from None
    if not value > 0 or not np.isfinite(value):
        raise SearchError(f"latency target must be > 0 ms, got {target!r}")
    return value


@WIDTH.register("aows")
class AOWSSearch(WidthSearch):
    """AOWS on a slimmable (fixed-pattern) supernet under a measured-latency model."""

    name: ClassVar[str] = "aows"
    sharing_name: ClassVar[str] = "fixed"
    default_distill: ClassVar[bool] = True

    def __init__(
        self,
        space: WidthSpace,
        *,
        latency_target: str | float,
        latency_model: LatencyModel | None = None,
        aows: AOWSSettings | None = None,
        latency_fit: LatencyFitSettings | None = None,
        measure: MeasureSettings | None = None,
        supernet: SupernetSettings | None = None,
        **kwargs: Any,
    ) -> None:
        # The official sandwich: largest, smallest and ONE random width, in-place distillation.
        super().__init__(space, supernet=supernet or SupernetSettings(num_random=1), **kwargs)
        self.latency_target = parse_latency_target(latency_target)
        self.aows = aows or AOWSSettings()
        self.latency_fit = latency_fit or LatencyFitSettings()
        self.measure_settings = measure or MeasureSettings()
        self.latency_model = latency_model
        self.history: UnaryHistory | None = None
        self.trace: list[dict[str, Any]] = []

    def settings(self) -> dict[str, Any]:
        return {
            **super().settings(),
            "latency_target_ms": self.latency_target,
            "aows": asdict(self.aows),
            "latency_fit": asdict(self.latency_fit),
            "measure": asdict(self.measure_settings),
            "latency_model": None if self.latency_model is None else self.latency_model.info,
        }

    def ensure_latency_model(
        self, on_sample: Callable[[int, int], None] | None = None
    ) -> LatencyModel:
        """The latency model, measured and fitted on this search's device if none was given."""
        if self.latency_model is None:
            self.latency_model = fit_latency_model(
                self.space,
                settings=self.latency_fit,
                measure_settings=self.measure_settings,
                device=self.device,
                seed=self.seed,
                on_sample=on_sample,
            )
        return self.latency_model

    def fit(
        self,
        data: DatasetSplits,
        *,
        on_epoch: Callable[[dict[str, float]], None] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> SupernetLog:
        solver = OWSSolver(self.ensure_latency_model(), self.aows)
        solver.solve([np.zeros(int(n)) for n in self.space.num_bins], self.latency_target)
        self.solver = solver
        self.history = hist = UnaryHistory(self.space.num_bins, self.aows.window)
        epochs = int(self.recipe.epochs)
        state: dict[str, Any] = {"marginals": None}
        num_groups = len(self.space.groups)

        def sampler(
            rng: np.random.Generator, n: int, epoch: int, step: int, steps: int
        ) -> np.ndarray:
            adaptive = self.aows.adaptive and epoch >= self.aows.warmup
            # Before adaptive sampling starts the solve only feeds the per-epoch trace.
            if step == 0 or (adaptive and step % self.aows.solve_every == 0):
                sol = solver.solve(hist.unaries(), self.latency_target)
                temp = float("inf")
                if adaptive:
                    temp = aows_temperature(epoch, steps, step, epochs=epochs,
                                            warmup=self.aows.warmup, min_temp=self.aows.min_temp)  # fmt: skip
                    state["marginals"] = solver.marginals(hist.unaries(), sol.gamma, temp)
                if step == 0:
                    self.trace.append({"epoch": epoch, "temperature": temp, "gamma": sol.gamma,
                                       "widths": self._widths(sol.indices),
                                       "pred_latency_ms": sol.latency_ms})  # fmt: skip
            marg = state["marginals"]
            if marg is None:
                return self.space.sample(rng, n)
            idx = np.stack(
                [[int(rng.choice(len(p), p=p)) for p in marg] for _ in range(n)]
            ).reshape(n, num_groups)
            return self.space.decode(idx)

        def on_step(epoch: int, step: int, steps: int, widths: list, losses: list) -> None:
            # train_nas.py:223-226: every random width's gain over the largest net, per
            # sample, shared equally by its groups.
            ref = losses[0]
            for w, loss in zip(widths[2:], losses[2:], strict=True):
                gains = (-(loss - ref) / num_groups).cpu().numpy()
                hist.update(self.space.encode(w).tolist(), gains)

        return self._fit_supernet(data, on_epoch=on_epoch, sampler=sampler, on_step=on_step,
                                  progress=progress)  # fmt: skip

    def _widths(self, indices: Sequence[int]) -> list[int]:
        return [int(w) for w in self.space.decode(list(indices))]

    def search(
        self,
        budget: str | float | Budget | None = None,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> WidthSearchResult:
        """OWS decoding at ``budget``: a latency target in ms (or a latency :class:`Budget`);
        default the training target. OWS decodes under the latency model only."""
        if self.history is None or self.scorer is None:
            raise SearchError("aows: call fit(data) before search")
        if isinstance(budget, Budget):
            if budget.kind != "latency":
                raise SearchError(
                    f"aows searches under a latency target, not a {budget.kind} budget"
                )
            budget = budget.limit
        target = self.latency_target if budget is None else parse_latency_target(budget)
        t0 = time.perf_counter()
        sol = self.solver.solve(self.history.unaries(), target)
        widths = self._widths(sol.indices)
        best = self.scorer.score(tuple(widths))
        if progress is not None:
            progress(1, 1)
        return WidthSearchResult.for_widths(
            self.name,
            self.space,
            None,
            widths,
            supernet_acc=best.acc,
            evaluated=[{"gamma": sol.gamma, "unary_score": sol.perf, "trace": self.trace}],
            search_time=time.perf_counter() - t0,
            latency_target_ms=target,
            pred_latency_ms=sol.latency_ms,
        )

    def unary_score(self, widths: Sequence[int]) -> float:
        """Sum of the learnt unaries of a configuration (AOWS's own ranking of widths)."""
        if self.history is None:
            raise SearchError("aows: call fit(data) before scoring")
        idx = self.space.encode(widths)
        return float(sum(u[i] for u, i in zip(self.history.unaries(), idx, strict=True)))


__all__ = [
    "AOWSSearch",
    "AOWSSettings",
    "OWSSolution",
    "OWSSolver",
    "UnaryHistory",
    "aows_temperature",
    "check_latency_target",
    "parse_latency_target",
]

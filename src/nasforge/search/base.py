"""The black-box search interface: a :class:`Searcher` speaks ask/tell, one loop drives it.

A searcher never sees how an architecture is evaluated. It proposes an :class:`Ask`
(arch, fidelity in epochs, optionally the key of a training to resume); the loop
(:func:`run_search`) hands it to an Evaluator, charges the cost to the run's clock, and tells
the searcher a :class:`Told` — ``(arch, valid_acc, fidelity, cost)`` and nothing else. The
test accuracy of an observation stays in the loop, which keeps it apart for reporting only, so
no decision of any searcher can depend on a test number (by construction, and checked by a
test whose table orders valid and test accuracies in opposite ways).

Budgets follow the NAS-Bench-201 protocol (Dong & Yang, ICLR 2020; official scripts
``exps/algos/R_EA.py`` etc. of D-X-Y/AutoDL-Projects): the run's clock is the sum of the
charged training times (simulated seconds from the table, or wall seconds of real training),
and an evaluation whose cost would take the clock past the budget is discarded and ends the
run (``if total_time_cost + time_cost > time_budget: return``). Unlike those scripts we do
not add the algorithm's own wall time to a simulated clock, so a run is a pure function of
its seeds. A budget may also be a number of evaluations.
"""

from __future__ import annotations

import math
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from nasforge.errors import SearchError
from nasforge.spaces import SearchSpace, get_space

# Where the types live: the Evaluator interface and its Observation are defined in
# ``nasforge.evaluate.base`` (which imports only ``spaces``), and the ask/tell messages and
# Budget here. Neither package imports the other at run time: this module names the
# evaluator types for type checking only, and ``evaluate`` needs nothing from ``search``,
# so there is no import cycle. Archs are values of the evaluator's space: this module
# handles them only through the :class:`SearchSpace` protocol.
if TYPE_CHECKING:
    from nasforge.evaluate.base import Evaluator, Objective, Observation
    from nasforge.run.base import Executor

__all__ = [
    "Ask",
    "Budget",
    "RunResult",
    "SearchContext",
    "Searcher",
    "Told",
    "check_budget",
    "require_bool",
    "require_float",
    "require_int",
    "run_search",
]


# ----------------------------------------------------------------------------------------
# validation of algorithm settings (values may come from the command line as any JSON)
# ----------------------------------------------------------------------------------------
def require_int(
    owner: str, name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """``value`` as an int, or a :class:`SearchError` naming ``owner``'s setting ``name``.
    ``maximum`` defaults to :data:`nasforge.inputs.MAX_SETTING` (``NASFORGE_MAX_SETTING``
    raises it): a tournament of 10**11 would allocate 745 GiB before failing."""
    from nasforge.inputs import excerpt, limit

    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise SearchError(f"{owner} {name} {excerpt(value)} must be an integer")
    if minimum is not None and value < minimum:
        raise SearchError(f"{owner} {name} {value!r} must be >= {minimum}")
    cap = limit("MAX_SETTING") if maximum is None else maximum
    if value > cap:
        raise SearchError(
            f"{owner} {name} {excerpt(value, 20)} must be <= {cap}"
            + (" (NASFORGE_MAX_SETTING raises it)" if maximum is None else "")
        )
    return int(value)


def require_float(
    owner: str,
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite float within the given bounds, or a :class:`SearchError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise SearchError(f"{owner} {name} {value!r} must be a number")
    v = float(value)
    bad = not math.isfinite(v)
    if low is not None:
        bad = bad or v < low or (low_open and v == low)
    if high is not None:
        bad = bad or v > high or (high_open and v == high)
    if bad:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        rng = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
        raise SearchError(f"{owner} {name} {value!r} must be a finite number in {rng}")
    return v


def require_bool(owner: str, name: str, value: Any) -> bool:
    """``value`` as a bool (a real bool, not a truthy string), or a :class:`SearchError`."""
    if not isinstance(value, (bool, np.bool_)):
        raise SearchError(f"{owner} {name} {value!r} must be true or false")
    return bool(value)


# ----------------------------------------------------------------------------------------
# messages
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Ask:
    """What a searcher wants evaluated next.

    ``fidelity`` is a number of training epochs (``None``: the evaluator's default, its full
    search fidelity). ``resume_key`` names a training to continue: evaluating the same key at
    a higher fidelity charges only the extra epochs (and keeps the same seed / weights).
    """

    arch: Hashable
    fidelity: int | None = None
    resume_key: Hashable | None = None


@dataclass(frozen=True, slots=True)
class Told:
    """What a searcher learns about one evaluation. Deliberately without any test accuracy.

    ``valid_acc`` is in percent; a failed or diverged training is told as 0.0 (the accuracy
    of a network that learned nothing), so every searcher can compare values plainly.
    ``objectives`` are the values of the run's objectives (``SearchContext.objectives``, in
    that order; empty for a single-objective evaluator), as the evaluator gave them.
    """

    arch: Hashable
    valid_acc: float
    fidelity: int
    cost: float
    resume_key: Hashable | None = None
    ok: bool = True
    objectives: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class SearchContext:
    """What a searcher may know about the evaluator before it starts.

    ``fidelities`` are the epoch counts the evaluator can answer (empty when it answers only
    at one, final, fidelity); ``default_fidelity`` is what ``Ask(fidelity=None)`` means;
    ``space`` is the search space of the evaluator's archs (default: NB201), the only way a
    searcher makes, changes or reads an arch. ``objectives`` are the evaluator's objectives
    (empty: single-objective), whose values every :class:`Told` carries in this order.
    """

    fidelities: tuple[int, ...]
    default_fidelity: int | None
    seed: int
    space: SearchSpace[Any] = field(default_factory=get_space)
    objectives: tuple[Objective, ...] = ()

    @property
    def max_fidelity(self) -> int | None:
        return max(self.fidelities) if self.fidelities else self.default_fidelity

    @property
    def multi_fidelity(self) -> bool:
        return len(self.fidelities) > 1


# ----------------------------------------------------------------------------------------
# budget
# ----------------------------------------------------------------------------------------
_BUDGET_RE = re.compile(
    r"^\s*(?P<num>\d+(?:\.\d*)?|\.\d+)(?:e(?P<exp>[+-]?\d+))?\s*(?P<unit>[a-z]*)\s*$"
)
_SECONDS_UNITS = {"s": 1.0, "sec": 1.0, "secs": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_EVAL_UNITS = {"evals", "eval", "evaluations", "e"}


@dataclass(frozen=True, slots=True)
class Budget:
    """How long a run may go: ``kind`` "seconds" (simulated or wall, as the evaluator's clock
    says) or "evals" (number of evaluator calls)."""

    kind: Literal["seconds", "evals"]
    amount: float

    def __post_init__(self) -> None:
        if self.kind not in ("seconds", "evals"):
            raise SearchError(f"budget kind {self.kind!r} unknown; expected 'seconds' or 'evals'")
        if not (isinstance(self.amount, (int, float)) and math.isfinite(self.amount)):
            raise SearchError(f"budget amount {self.amount!r} must be a finite number")
        if self.amount <= 0:
            raise SearchError(f"budget amount {self.amount!r} must be positive")
        if self.kind == "evals" and int(self.amount) != self.amount:
            raise SearchError(f"an evaluation budget must be a whole number, got {self.amount!r}")

    @classmethod
    def parse(cls, text: str | Budget) -> Budget:
        """Parse ``"12000s"``, ``"30m"``, ``"1h"`` (seconds) or ``"20evals"`` (evaluations).

        A bare number is an error: whether 20 means seconds or evaluations is too easy to get
        wrong silently.
        """
        if isinstance(text, Budget):
            return text
        m = _BUDGET_RE.match(str(text).lower())
        if not m or not m.group("unit"):
            raise SearchError(
                f"cannot parse budget {text!r}; expected a number with a unit: "
                "'12000s', '30m', '1h' (seconds) or '20evals' (evaluations)"
            )
        # float() of the whole literal: "1e400" is inf (refused below), not an OverflowError.
        value = float(m.group("num") + "e" + (m.group("exp") or "0"))
        if not math.isfinite(value):
            raise SearchError(f"budget {text!r} is too large; expected a finite number")
        unit = m.group("unit")
        if unit in _SECONDS_UNITS:
            return cls("seconds", value * _SECONDS_UNITS[unit])
        if unit in _EVAL_UNITS:
            if value != int(value):
                raise SearchError(f"budget {text!r}: a number of evaluations must be whole")
            return cls("evals", float(int(value)))
        raise SearchError(f"unknown budget unit {unit!r} in {text!r}; expected s, m, h or evals")

    def __str__(self) -> str:
        return f"{int(self.amount)}evals" if self.kind == "evals" else f"{self.amount:g}s"


# ----------------------------------------------------------------------------------------
# searcher
# ----------------------------------------------------------------------------------------
class Searcher(ABC):
    """Base class of black-box searchers: subclasses implement :meth:`_ask` and :meth:`_tell`.

    The public :meth:`ask` / :meth:`tell` wrap them so that every searcher keeps the same
    record of what it was told and the same default recommendation: the arch with the best
    validation accuracy among those evaluated at the highest fidelity seen so far (the rule
    of the official NB201 / NATS-Bench scripts, ``max(history, key=accuracy)``, which only
    ever compare accuracies at one fidelity).
    """

    name: ClassVar[str] = "searcher"
    #: How many asks may be outstanding (asked, not yet told) at once when a loop evaluates
    #: in parallel; None = any number. Searchers whose next proposal depends on the last
    #: outcome (a Hyperband rung, a hill-climbing step) set 1.
    max_pending: ClassVar[int | None] = None

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.context: SearchContext | None = None
        self.num_told = 0
        self._best: dict[int, Told] = {}
        self._top_fidelity = -1

    # -- lifecycle ----------------------------------------------------------------------
    def start(self, context: SearchContext) -> None:
        """Called by the loop before the first :meth:`ask` of a run. Starting again resets
        the searcher: its random stream is reseeded and what it was told forgotten, so a
        searcher reused for a second run repeats the first exactly."""
        self.context = context
        self.rng = np.random.default_rng(self.seed)
        self.num_told = 0
        self._best = {}
        self._top_fidelity = -1
        self._start(context)

    def _start(self, context: SearchContext) -> None:  # noqa: B027 - optional hook
        """Hook: check the evaluator suits the algorithm (raise :class:`SearchError`) and
        reset any per-run state, so a searcher started again runs afresh."""

    @property
    def space(self) -> SearchSpace[Any]:
        """The space of the current run (set by :meth:`start`)."""
        if self.context is None:
            raise SearchError(f"{self.name}: call start(context) before using the space")
        return self.context.space

    def ask(self) -> Ask:
        """The next arch (and fidelity) to evaluate."""
        if self.context is None:
            raise SearchError(f"{self.name}: call start(context) before ask()")
        return self._ask()

    def tell(self, told: Told) -> None:
        """Report the outcome of an evaluation that :meth:`ask` proposed."""
        self.num_told += 1
        best = self._best.get(told.fidelity)
        # a failed evaluation is told as 0.0 so searchers can compare plainly, but it is
        # never a result: it cannot become the recommended arch
        if told.ok and (best is None or told.valid_acc > best.valid_acc):
            self._best[told.fidelity] = told
        if told.fidelity > self._top_fidelity:
            self._top_fidelity = told.fidelity
        self._tell(told)

    def recommend(self) -> Told | None:
        """What the algorithm would return now (``None`` before any successful evaluation at
        the highest fidelity seen)."""
        return self._best.get(self._top_fidelity)

    @abstractmethod
    def _ask(self) -> Ask: ...

    @abstractmethod
    def _tell(self, told: Told) -> None: ...

    def config(self) -> dict[str, Any]:
        """The algorithm's settings, for the run record."""
        return {}


# ----------------------------------------------------------------------------------------
# the loop
# ----------------------------------------------------------------------------------------
@dataclass
class RunResult:
    """One search run: the per-evaluation history and the best-so-far trajectory.

    Trajectory arrays have one entry per accepted evaluation: ``times`` (the clock after it:
    simulated or wall seconds), ``valid`` (the search-time validation accuracy of the arch the
    algorithm would return at that point), ``test`` (the reported test accuracy of that arch,
    never seen by the searcher), ``report_valid`` (its reported validation accuracy) and
    ``best_index`` (its index in the space, the official index for NB201; -1 before any
    result or when the space has no index). ``history["arch"]`` holds the space's string of
    every evaluated arch and ``history["arch_index"]`` its index (-1 where none); with an
    evaluator that has objectives, ``history["objectives"]`` the objective values of every
    evaluation (``None`` where unknown; see :mod:`nasforge.search.fronts`).
    """

    algo: str
    seed: int
    budget: str
    clock: str
    times: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    report_valid: np.ndarray
    best_index: np.ndarray
    history: dict[str, list[Any]] = field(default_factory=dict)
    final_arch: str | None = None
    final_valid: float = math.nan
    final_test: float = math.nan
    total_cost: float = 0.0
    wall_seconds: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def num_evals(self) -> int:
        return len(self.times)

    def to_dict(self, *, with_history: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "algo": self.algo,
            "seed": self.seed,
            "budget": self.budget,
            "clock": self.clock,
            "num_evals": self.num_evals,
            "total_cost": self.total_cost,
            "wall_seconds": self.wall_seconds,
            "final_arch": self.final_arch,
            "final_valid": _json_float(self.final_valid),
            "final_test": _json_float(self.final_test),
            "config": self.config,
            "trajectory": {
                "time": [float(x) for x in self.times],
                "valid": [_json_float(x) for x in self.valid],
                "test": [_json_float(x) for x in self.test],
                "report_valid": [_json_float(x) for x in self.report_valid],
                "best_index": [int(x) for x in self.best_index],
            },
        }
        if with_history:
            out["history"] = self.history
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunResult:
        tr = d["trajectory"]

        def arr(key: str, dtype: Any = float) -> np.ndarray:
            return np.asarray([math.nan if v is None else v for v in tr[key]], dtype=dtype)

        return cls(
            algo=d["algo"],
            seed=int(d["seed"]),
            budget=d["budget"],
            clock=d["clock"],
            times=arr("time"),
            valid=arr("valid"),
            test=arr("test"),
            report_valid=arr("report_valid"),
            best_index=np.asarray(tr["best_index"], dtype=np.int64),
            history=d.get("history", {}),
            final_arch=d.get("final_arch"),
            final_valid=_from_json_float(d.get("final_valid")),
            final_test=_from_json_float(d.get("final_test")),
            total_cost=float(d.get("total_cost", 0.0)),
            wall_seconds=float(d.get("wall_seconds", 0.0)),
            config=d.get("config", {}),
        )


def _json_float(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _from_json_float(x: float | None) -> float:
    return math.nan if x is None else float(x)


_SAFETY_EVALS = 1_000_000


def check_budget(budget: Budget | str, evaluator: Evaluator) -> Budget:
    """``budget`` parsed, checked to be payable with ``evaluator``: a budget in seconds
    needs an evaluator whose observations carry costs."""
    budget = Budget.parse(budget)
    if budget.kind == "seconds" and not evaluator.has_cost:
        raise SearchError(
            f"budget {budget} is in seconds but the evaluator records no training times "
            f"({evaluator.describe().get('name', type(evaluator).__name__)}); "
            "give the budget in evaluations, e.g. '100evals'"
        )
    return budget


def check_max_evals(max_evals: int | None) -> None:
    """A cap on evaluations must let a run evaluate something: None or an int >= 1."""
    if max_evals is not None and (
        isinstance(max_evals, bool) or not isinstance(max_evals, int) or max_evals < 1
    ):
        raise SearchError(f"max_evals={max_evals!r} invalid; expected an int >= 1 (or no cap)")


class _Clock:
    """The run's clock against its budget: simulated (the sum of the charged costs, as the
    NB201 scripts) or wall (seconds since the run started, as NATS-Bench's wall clocks)."""

    def __init__(self, kind: str, limit_seconds: float) -> None:
        self.wall = kind == "wall"
        self.limit = limit_seconds
        self.now = 0.0
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        """Wall seconds since the run started."""
        return time.perf_counter() - self.t0

    def spent(self) -> bool:
        """Whether the budget is spent before the next batch is asked (read now on a wall
        clock)."""
        if self.wall:
            self.now = self.elapsed()
        return self.now >= self.limit

    def charge(self, cost: float) -> bool:
        """Advance the clock past one evaluation; False (and the clock unchanged) when a
        simulated clock cannot pay for it: the NB201 rule discards it (``if total_time_cost
        + time_cost > time_budget``). On a wall clock an evaluation started within budget
        counts (NATS-Bench) and is stamped with the time it finished."""
        if self.wall:
            self.now = self.elapsed()
            return True
        if self.now + cost > self.limit:
            return False
        self.now = self.now + cost
        return True


class _Trajectory:
    """What a run records per accepted evaluation: the best-so-far trajectory (the arch the
    searcher would return, its search-time validation accuracy, and the reported valid /
    test accuracies of that arch, never seen by the searcher) and the history of every
    evaluation. Telling the searcher happens here too, so that the recommendation read
    after each evaluation is the one that includes it."""

    def __init__(
        self, searcher: Searcher, evaluator: Evaluator, space: SearchSpace[Any], multi: bool
    ) -> None:
        self.searcher = searcher
        self.evaluator = evaluator
        self.space = space
        self.multi = multi
        self.times: list[float] = []
        self.valid: list[float] = []
        self.test: list[float] = []
        self.report_valid: list[float] = []
        self.best_index: list[int] = []
        self.h_arch: list[int] = []
        self.h_str: list[str] = []
        self.h_fid: list[int] = []
        self.h_valid: list[float] = []
        self.h_cost: list[float] = []
        self.h_ok: list[bool] = []
        self.h_obj: list[list[float | None]] = []
        # the observation behind each told: a report is made from the recommended one's
        self.obs_of: dict[Told, Observation] = {}
        self.last_rec: Told | None = None
        self.rep_valid = self.rep_test = math.nan

    def __len__(self) -> int:
        return len(self.times)

    def index_of(self, arch: Hashable) -> int:
        i = self.space.index(arch)
        return -1 if i is None else i

    def record(self, ask: Ask, obs: Observation, clock: float) -> None:
        """Tell the searcher ``obs`` and record it at ``clock``."""
        ok = obs.ok
        told = Told(
            arch=obs.arch,
            valid_acc=obs.valid_acc if ok else 0.0,
            fidelity=obs.fidelity,
            cost=obs.cost,
            resume_key=ask.resume_key,
            ok=ok,
            objectives=tuple(obs.objectives),
        )
        self.obs_of[told] = obs
        self.searcher.tell(told)
        rec = self.searcher.recommend()
        if rec is not self.last_rec and rec is not None:
            rep = self.evaluator.report(rec.arch, obs if rec is told else self.obs_of[rec])
            self.rep_valid, self.rep_test = rep.valid_acc, rep.test_acc
            self.last_rec = rec
        self.times.append(clock)
        self.valid.append(rec.valid_acc if rec is not None else math.nan)
        self.test.append(self.rep_test)
        self.report_valid.append(self.rep_valid)
        self.best_index.append(self.index_of(rec.arch) if rec is not None else -1)
        self.h_arch.append(self.index_of(obs.arch))
        self.h_str.append(self.space.to_string(obs.arch))
        self.h_fid.append(obs.fidelity)
        self.h_valid.append(obs.valid_acc if ok else math.nan)
        self.h_cost.append(obs.cost)
        self.h_ok.append(ok)
        if self.multi:
            self.h_obj.append([_json_float(v) for v in obs.objectives])

    def result(self, budget: Budget, clock_kind: str, wall_seconds: float) -> RunResult:
        """The run's :class:`RunResult`, with the searcher's final recommendation."""
        searcher, space = self.searcher, self.space
        final = searcher.recommend()
        return RunResult(
            algo=searcher.name,
            seed=searcher.seed,
            budget=str(budget),
            clock=clock_kind,
            times=np.asarray(self.times, dtype=np.float64),
            valid=np.asarray(self.valid, dtype=np.float64),
            test=np.asarray(self.test, dtype=np.float64),
            report_valid=np.asarray(self.report_valid, dtype=np.float64),
            best_index=np.asarray(self.best_index, dtype=np.int64),
            history={
                "arch_index": self.h_arch,
                "arch": self.h_str,
                "fidelity": self.h_fid,
                "valid": [_json_float(v) for v in self.h_valid],
                "cost": self.h_cost,
                "ok": self.h_ok,
                # the objective values of every evaluation (multi-objective runs only)
                **({"objectives": self.h_obj} if self.multi else {}),
            },
            final_arch=space.to_string(final.arch) if final is not None else None,
            final_valid=final.valid_acc if final is not None else math.nan,
            final_test=self.test[-1] if self.test else math.nan,
            total_cost=float(sum(self.h_cost)),
            wall_seconds=wall_seconds,
            config={
                "searcher": searcher.config(),
                "evaluator": self.evaluator.describe(),
                "space": space.name,
            },
        )


def _evaluate_batch(
    asks: list[Ask], evaluator: Evaluator, executor: Executor | None
) -> list[Observation]:
    """The observations of ``asks``, in ask order: one plain call for a single ask without
    an executor, else one batch (on ``executor`` when given)."""
    if len(asks) == 1 and executor is None:
        a = asks[0]
        return [evaluator.evaluate(a.arch, a.fidelity, resume_key=a.resume_key)]
    requests = [(a.arch, a.fidelity, a.resume_key) for a in asks]
    return evaluator.evaluate_batch(requests, executor=executor)


def run_search(
    searcher: Searcher,
    evaluator: Evaluator,
    budget: Budget | str,
    *,
    seed: int = 0,
    max_evals: int | None = None,
    parallel: int = 1,
    executor: Executor | None = None,
) -> RunResult:
    """Drive ``searcher`` against ``evaluator`` until ``budget`` is spent.

    ``seed`` resets the evaluator's own randomness (which training seed a table answers
    with) so that a run is a pure function of (searcher seed, evaluator seed). ``max_evals``
    is a safety cap on top of a time budget (an evaluator charging zero cost would otherwise
    loop forever).

    ``parallel`` > 1 asks up to that many archs at once (capped by the searcher's
    ``max_pending``) and evaluates them as one batch, on ``executor`` when given (real
    training on K workers); the outcomes are told in ask order. On a wall clock each
    outcome is stamped with the time its batch finished.
    """
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise SearchError(f"parallel={parallel!r} must be an int >= 1")
    check_max_evals(max_evals)
    budget = check_budget(budget, evaluator)
    clock_kind = evaluator.clock
    space = evaluator.space
    evaluator.reset(seed)
    searcher.start(
        SearchContext(
            fidelities=tuple(evaluator.fidelities),
            default_fidelity=evaluator.default_fidelity,
            seed=searcher.seed,
            space=space,
            objectives=tuple(getattr(evaluator, "objectives", ())),
        )
    )
    multi = bool(searcher.context is not None and searcher.context.objectives)
    # a time budget still gets a (huge) evaluation cap: a table whose entries cost 0 s
    # (failed runs) must not make a run loop forever
    limit_evals = int(budget.amount) if budget.kind == "evals" else _SAFETY_EVALS
    if max_evals is not None:
        limit_evals = min(limit_evals, max_evals)
    trajectory = _Trajectory(searcher, evaluator, space, multi)
    clock = _Clock(clock_kind, budget.amount if budget.kind == "seconds" else math.inf)
    width = parallel if searcher.max_pending is None else min(parallel, searcher.max_pending)
    stop = False
    while len(trajectory) < limit_evals and not stop:
        if clock.spent():
            break
        asks = [searcher.ask() for _ in range(min(width, limit_evals - len(trajectory)))]
        for ask, obs in zip(asks, _evaluate_batch(asks, evaluator, executor), strict=True):
            if not clock.charge(obs.cost):
                stop = True  # an evaluation the budget cannot pay for is discarded, and
                break  # so is the rest of its batch
            trajectory.record(ask, obs, clock.now)
    return trajectory.result(budget, clock_kind, clock.elapsed())

"""The Evaluator interface: how an architecture gets a validation accuracy and a cost.

A black-box search never knows which evaluator it talks to (a table, real training, a
proxy); it only sees what :func:`nasforge.search.base.run_search` tells it. An
:class:`Observation` carries the test accuracy too, but only for reporting: the loop keeps
it away from the searcher.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from nasforge.spaces import SearchSpace, get_space

#: An architecture: a value of the evaluator's space (:attr:`Evaluator.space`).
Arch = Hashable

__all__ = ["Evaluator", "NetworkSpec", "Objective", "Observation", "Reported"]


@dataclass(frozen=True, slots=True)
class NetworkSpec:
    """How to build the network of an arch that an evaluator trains (or whose results a
    table holds), for counting and timing it: the space's registered builder
    (``nasforge.nn.NETWORKS[space]``) called with ``options`` (``num_classes`` included),
    fed inputs of ``input_shape`` (batch 1) on ``device``."""

    space: str
    options: dict[str, Any]
    input_shape: tuple[int, ...]
    device: str = "cpu"


@dataclass(frozen=True, slots=True)
class Objective:
    """One objective of a multi-objective search: its ``name`` (``valid_acc``, ``params_m``,
    ...; see :mod:`nasforge.evaluate.objectives`) and whether larger values are better."""

    name: str
    maximise: bool

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "direction": "max" if self.maximise else "min"}


@dataclass(frozen=True, slots=True)
class Observation:
    """The outcome of one evaluation.

    ``valid_acc`` / ``test_acc`` in percent (``test_acc`` is for reporting only and NaN when
    unknown); ``fidelity`` = epochs trained; ``cost`` = seconds charged to the run's clock for
    this call (for a resumed training only the extra epochs); ``status`` "ok", "failed" or
    "diverged"; ``info`` free-form details (seed used, ...); ``objectives`` the values of the
    evaluator's :attr:`Evaluator.objectives`, in their order (empty: single-objective).
    """

    arch: Arch
    valid_acc: float
    fidelity: int
    cost: float
    test_acc: float = math.nan
    status: str = "ok"
    info: dict[str, Any] = field(default_factory=dict)
    objectives: tuple[float, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok" and math.isfinite(self.valid_acc)


@dataclass(frozen=True, slots=True)
class Reported:
    """What the protocol reports for an arch a search returned (never fed back to it)."""

    valid_acc: float
    test_acc: float


class Evaluator(ABC):
    """Base class of evaluators.

    ``clock`` says what a seconds budget means with this evaluator: "simulated" (costs are
    recorded training times, summed) or "wall" (real elapsed time). ``fidelities`` lists the
    epoch counts it can answer (empty: one fixed fidelity only) and ``default_fidelity`` what
    ``fidelity=None`` means. ``space`` is the search space whose archs it evaluates: the
    search loop hands it to the searcher, so the two always agree.
    """

    clock: ClassVar[Literal["simulated", "wall"]] = "simulated"

    @property
    def space(self) -> SearchSpace[Any]:
        """The space of the archs this evaluator answers for (default: NB201)."""
        return get_space()

    @property
    def fidelities(self) -> Sequence[int]:
        return ()

    @property
    def default_fidelity(self) -> int | None:
        return None

    @property
    def has_cost(self) -> bool:
        """Whether observations carry a meaningful cost in seconds."""
        return True

    @property
    def objectives(self) -> tuple[Objective, ...]:
        """The objectives every observation carries values of (``Observation.objectives``);
        empty for a single-objective evaluator (see :mod:`nasforge.evaluate.objectives`)."""
        return ()

    def known_costs(self, arch: Arch) -> dict[str, float]:
        """Costs of ``arch`` this evaluator knows without building anything (a table's
        ``params_m`` / ``flops_m`` / ``latency_s`` columns); none by default."""
        return {}

    def network_spec(self) -> NetworkSpec | None:
        """How to build the networks this evaluator answers for (None: unknown), so that
        their parameters and FLOPs can be counted and their latency measured."""
        return None

    def reset(self, seed: int) -> None:  # noqa: B027 - stateless evaluators need nothing
        """Start a new run: reseed the evaluator's randomness and forget resumable state."""

    @abstractmethod
    def evaluate(
        self, arch: Arch, fidelity: int | None = None, *, resume_key: Hashable | None = None
    ) -> Observation:
        """Evaluate ``arch`` after ``fidelity`` epochs (``None``: the default fidelity).

        With a ``resume_key`` seen before, continue that training: same seed, and only the
        epochs beyond the last evaluated fidelity are charged.
        """

    def evaluate_batch(
        self,
        requests: Sequence[tuple[Arch, int | None, Hashable | None]],
        *,
        executor: Any = None,
    ) -> list[Observation]:
        """Evaluate several ``(arch, fidelity, resume_key)`` requests, in request order.

        In-process and sequential here (``executor`` is accepted and unused: a lookup costs
        less than shipping it); an evaluator whose evaluations are expensive overrides this
        to run them on the executor (each request is independent of the others).
        """
        return [self.evaluate(a, f, resume_key=k) for a, f, k in requests]

    def report(self, arch: Arch, observation: Observation) -> Reported:
        """The accuracies to report for ``arch`` when a search returns it.

        By default those of the observation the search selected it on; a table overrides
        this with its final-training figures.
        """
        return Reported(observation.valid_acc, observation.test_acc)

    def describe(self) -> dict[str, Any]:
        """Settings of this evaluator, for the run record."""
        return {"name": type(self).__name__, "clock": self.clock}

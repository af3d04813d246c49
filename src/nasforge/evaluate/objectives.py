"""Objectives of a multi-objective search, drawn from any evaluator: :class:`ObjectiveEvaluator`.

An objective spec is a comma-separated list of names, each optionally with its direction:
``"valid_acc,latency_s"`` or ``"valid_acc:max,params_m:min"``. The registered objectives
(:data:`OBJECTIVES`) and where their values come from:

* ``valid_acc`` (max): the evaluator's search metric, the validation accuracy it answers
  (a table's 12-epoch accuracy, a trained network's accuracy on the valid split);
* ``params_m`` (min), ``flops_m`` (min; alias ``madds_m``, the same count: NB201's "FLOPs"
  are multiply-adds, ``nasforge.cost.counter``): the evaluator's known costs where it has
  them (a table's cost columns, else the space's registered counter for the table's
  networks), otherwise counted on the network the evaluator trains
  (:meth:`Evaluator.network_spec`);
* ``latency_s`` (min): the table's ``latency_s`` column where it has one (seconds per batch
  of ``Benchmark.latency_batch`` images: 256 in the official files), otherwise measured:
  median of 20 timed batch-1 forward passes after 5 warm-ups on the evaluator's device
  (``nasforge.cost.latency``), once per arch and process. A measurement takes real time but
  is not charged to a simulated clock (a wall clock includes it);
* ``train_time_s`` (min): the seconds the evaluation charged to the run's clock (the
  table's simulated training time, or the wall time of real training).

Where each value of a run came from is recorded (``describe()["objectives"]``), so a table
without a latency column is never silently mixed up with a measured one.

:class:`ObjectiveEvaluator` wraps an evaluator and attaches the objective values to every
observation (``Observation.objectives``), which the search loop passes on to searchers
(``Told.objectives``) and records in the run's history.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Literal

import numpy as np

from nasforge.errors import SearchError
from nasforge.evaluate.base import Arch, Evaluator, Objective, Observation, Reported
from nasforge.registry import Registry

__all__ = [
    "OBJECTIVES",
    "ObjectiveEvaluator",
    "ObjectiveSource",
    "parse_objectives",
    "with_objectives",
]

#: A value getter: (arch, observation) -> the objective's value (NaN: unknown).
Getter = Callable[[Arch, Observation], float]


@dataclasses.dataclass(frozen=True)
class ObjectiveSource:
    """How one objective gets its value from an evaluator: ``maximise`` is its default
    direction, ``unit`` what its values are in, ``bind(evaluator)`` returns the getter and a
    description of where the values come from (or raises :class:`SearchError` when the
    evaluator cannot give it)."""

    name: str
    maximise: bool
    unit: str
    bind: Callable[[Evaluator], tuple[Getter, str]]


OBJECTIVES: Registry[ObjectiveSource] = Registry("objective")


def _register(source: ObjectiveSource, *aliases: str) -> None:
    for key in (source.name, *aliases):
        OBJECTIVES.register(key)(lambda s=source: s)


# -- the sources --------------------------------------------------------------------------
def _bind_valid(ev: Evaluator) -> tuple[Getter, str]:
    return (lambda arch, obs: obs.valid_acc if obs.ok else math.nan), "evaluator (search metric)"


def _bind_train_time(ev: Evaluator) -> tuple[Getter, str]:
    if not ev.has_cost:
        raise SearchError(
            "objective 'train_time_s' needs an evaluator that charges training times; this "
            "one records none"
        )
    return (lambda arch, obs: float(obs.cost)), f"charged seconds ({ev.clock} clock)"


def _network(ev: Evaluator, what: str) -> Callable[[Arch], tuple[Any, tuple[int, ...], str]]:
    """A builder of ``arch``'s network (module, input shape, device), or a SearchError
    saying the evaluator cannot tell which network it answers for."""
    spec = ev.network_spec()
    if spec is None:
        raise SearchError(
            f"objective {what!r} is not in this evaluator's known costs and it names no "
            "network to count or time (no network_spec)"
        )
    from nasforge.nn import build_network

    def build(arch: Arch) -> tuple[Any, tuple[int, ...], str]:
        net = build_network(spec.space, arch, **spec.options)
        return net, spec.input_shape, spec.device

    return build


def _cached(fn: Callable[[Arch], float]) -> Callable[[Arch], float]:
    """Costs are properties of the arch: computed once per arch."""
    cache: dict[Hashable, float] = {}

    def get(arch: Arch) -> float:
        v = cache.get(arch)
        if v is None:
            v = cache[arch] = float(fn(arch))
        return v

    return get


def _bind_counted(key: str, name: str) -> Callable[[Evaluator], tuple[Getter, str]]:
    def bind(ev: Evaluator) -> tuple[Getter, str]:
        probe = ev.space.sample(np.random.default_rng(0))
        if key in ev.known_costs(probe):
            return (lambda arch, obs: float(ev.known_costs(arch).get(key, math.nan))), (
                "evaluator's known costs (table column or the space's counter)"
            )
        build = _network(ev, name)

        def count(arch: Arch) -> float:
            from nasforge.cost import module_cost

            net, shape, _ = build(arch)
            return getattr(module_cost(net, shape), key)

        get = _cached(count)
        return (lambda arch, obs: get(arch)), "counted on the built network"

    return bind


def _bind_latency(ev: Evaluator) -> tuple[Getter, str]:
    probe = ev.space.sample(np.random.default_rng(0))
    if "latency_s" in ev.known_costs(probe):
        batch = getattr(getattr(ev, "bench", None), "latency_batch", None)
        per = batch(getattr(ev, "dataset", "")) if callable(batch) else None
        note = f", per batch of {per}" if per else ""
        return (lambda arch, obs: float(ev.known_costs(arch).get("latency_s", math.nan))), (
            f"table column latency_s{note}"
        )
    build = _network(ev, "latency_s")
    spec = ev.network_spec()
    assert spec is not None

    def measure(arch: Arch) -> float:
        from nasforge.cost import latency

        net, shape, device = build(arch)
        return latency(net, shape, device=device)

    get = _cached(measure)
    return (lambda arch, obs: get(arch)), (
        f"measured on {spec.device} (batch 1, median of 20 after 5 warm-ups)"
    )


_register(ObjectiveSource("valid_acc", True, "%", _bind_valid))
_register(ObjectiveSource("params_m", False, "M", _bind_counted("params_m", "params_m")))
_register(ObjectiveSource("flops_m", False, "M", _bind_counted("flops_m", "flops_m")), "madds_m")
_register(ObjectiveSource("latency_s", False, "s", _bind_latency))
_register(ObjectiveSource("train_time_s", False, "s", _bind_train_time))

_DIRECTIONS = {"max": True, "min": False}


def parse_objectives(spec: str | Sequence[str]) -> tuple[Objective, ...]:
    """``"valid_acc,latency_s"`` / ``"valid_acc:max,params_m:min"`` as objectives.

    Raises :class:`SearchError` naming the bad entry and the valid names / directions; an
    objective named twice is an error too.
    """
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    items = [i.strip() for i in items]
    valid = ", ".join(OBJECTIVES.names())
    if not items or not all(items):
        raise SearchError(
            f"objectives {spec!r} must be a comma-separated list of names (optionally "
            f"NAME:max / NAME:min), e.g. 'valid_acc,latency_s'; valid names: {valid}"
        )
    out: list[Objective] = []
    for item in items:
        name, sep, direction = item.partition(":")
        name, direction = name.strip(), direction.strip().lower()
        if name not in OBJECTIVES:
            raise SearchError(f"objective {name!r} unknown; valid objectives: {valid}")
        if sep and direction not in _DIRECTIONS:
            raise SearchError(
                f"objective direction {direction!r} in {item!r} unknown; expected 'max' or 'min'"
            )
        source = OBJECTIVES.create(name)
        maximise = _DIRECTIONS[direction] if sep else source.maximise
        out.append(Objective(source.name, maximise))
    names = [o.name for o in out]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SearchError(f"objective(s) {', '.join(map(repr, repeated))} named more than once")
    return tuple(out)


class ObjectiveEvaluator(Evaluator):
    """``base`` answering as before, each observation carrying the values of
    ``objectives`` (a spec string or parsed objectives). Every objective is bound (and tried
    on one sampled arch) when the wrapper is made, so an objective the evaluator cannot give
    fails before a search starts. Everything else is ``base``'s own."""

    def __init__(self, base: Evaluator, objectives: str | Sequence[Objective | str]) -> None:
        if isinstance(base, ObjectiveEvaluator):
            raise SearchError("the evaluator already carries objectives; wrap the base once")
        if isinstance(objectives, str) or all(isinstance(o, str) for o in objectives):
            objs = parse_objectives(objectives)  # type: ignore[arg-type]
        else:
            objs = tuple(objectives)  # type: ignore[arg-type]
        self.base = base
        self._objectives = objs
        self._getters: list[Getter] = []
        self.sources: dict[str, str] = {}
        self.units: dict[str, str] = {}
        for o in objs:
            source = OBJECTIVES.create(o.name)
            getter, where = source.bind(base)
            self._getters.append(getter)
            self.sources[o.name] = where
            self.units[o.name] = source.unit
        probe = base.space.sample(np.random.default_rng(0))
        dummy = Observation(probe, 50.0, base.default_fidelity or 0, 1.0)
        for o, get in zip(objs, self._getters, strict=True):
            v = get(probe, dummy)
            if not math.isfinite(v):
                raise SearchError(
                    f"objective {o.name!r} has no value for {base.space.to_string(probe)} on "
                    f"this evaluator (source: {self.sources[o.name]})"
                )

    # -- the Evaluator interface, delegated -------------------------------------------------
    @property
    def clock(self) -> Literal["simulated", "wall"]:  # type: ignore[override]
        return self.base.clock

    @property
    def space(self) -> Any:
        return self.base.space

    @property
    def fidelities(self) -> Sequence[int]:
        return self.base.fidelities

    @property
    def default_fidelity(self) -> int | None:
        return self.base.default_fidelity

    @property
    def has_cost(self) -> bool:
        return self.base.has_cost

    @property
    def objectives(self) -> tuple[Objective, ...]:
        return self._objectives

    def known_costs(self, arch: Arch) -> dict[str, float]:
        return self.base.known_costs(arch)

    def network_spec(self) -> Any:
        return self.base.network_spec()

    def reset(self, seed: int) -> None:
        self.base.reset(seed)

    def values(self, arch: Arch, obs: Observation) -> tuple[float, ...]:
        """The objective values of one observation (NaN where unknown)."""
        return tuple(float(get(arch, obs)) for get in self._getters)

    def _attach(self, obs: Observation) -> Observation:
        return dataclasses.replace(obs, objectives=self.values(obs.arch, obs))

    def evaluate(
        self, arch: Arch, fidelity: int | None = None, *, resume_key: Hashable | None = None
    ) -> Observation:
        return self._attach(self.base.evaluate(arch, fidelity, resume_key=resume_key))

    def evaluate_batch(
        self,
        requests: Sequence[tuple[Arch, int | None, Hashable | None]],
        *,
        executor: Any = None,
    ) -> list[Observation]:
        return [self._attach(o) for o in self.base.evaluate_batch(requests, executor=executor)]

    def report(self, arch: Arch, observation: Observation) -> Reported:
        return self.base.report(arch, observation)

    def objective_range(self, name: str) -> tuple[float, float] | None:
        """The range of objective ``name`` over the whole space where the base knows it
        (a table: ``TabularEvaluator.objective_range``), else None."""
        fn = getattr(self.base, "objective_range", None)
        return fn(name) if callable(fn) else None

    def describe(self) -> dict[str, Any]:
        return {
            **self.base.describe(),
            "objectives": [
                {**o.to_dict(), "unit": self.units[o.name], "source": self.sources[o.name]}
                for o in self._objectives
            ],
        }

    def __getattr__(self, name: str) -> Any:
        # the base's own extras (a table's bench, optimum, ...); only called for names
        # this class does not define
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)


def with_objectives(evaluator: Evaluator, spec: str | None) -> Evaluator:
    """``evaluator`` carrying the objectives of ``spec`` (unchanged when ``spec`` is None)."""
    return evaluator if spec is None else ObjectiveEvaluator(evaluator, spec)

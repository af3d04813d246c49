"""Evaluate an arch by a zero-cost proxy: :class:`ZeroCostEvaluator`.

A proxy scores the *untrained* network of an arch on one (or a few) batches of real data
(:mod:`nasforge.evaluate.proxies` defines them). The evaluator answers with the score as the
signal (``Observation.valid_acc``, fidelity 0: zero epochs trained) and charges the measured
compute seconds as the cost, so a searcher that uses proxies pays for them on the run's
clock like for any evaluation.

:class:`WithZeroCost` puts a proxy and a real evaluator (a table, training) behind one
interface: fidelity 0 is the proxy, every other fidelity the real evaluator. A searcher that
knows about proxies (``zc-bananas``) asks fidelity 0 for its warm start; the costs of both
add up on one clock.

Determinism: for a seed, the batch drawn from the data and every network's initial weights
are fixed (``torch.manual_seed(seed)`` before each build and before each proxy), so a score
is a pure function of (arch, data, seed, batch size).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from nasforge.errors import NasforgeError, SearchError
from nasforge.evaluate.base import Evaluator, Observation, Reported
from nasforge.evaluate.proxies import LABEL_PROXIES, PASSES, PROXIES, SHARED, LossFn
from nasforge.spaces import get_space

__all__ = [
    "ProxyBatch",
    "WithZeroCost",
    "ZeroCostEvaluator",
    "check_rows",
    "compute_proxies",
    "parse_proxies",
    "proxy_batch",
    "read_rows",
    "score_archs",
    "task_proxy_batch",
]

#: Data-free cost proxies and the :class:`~nasforge.cost.Cost` field that equals each: for a
#: space with a shape cost (``nasforge.cost.SHAPE_COSTS``) they are read from the cost
#: counters in microseconds instead of building and counting the network.
ANALYTIC_PROXIES: dict[str, str] = {"params": "params_m", "flops": "flops_m"}

#: The batch size of the published NB201 zero-cost scores (NAS-Bench-Suite-Zero / NASLib
#: ``naslib/runners/zc/zc_config.yaml``: ``batch_size: 64``, one batch, "random" dataload).
DEFAULT_BATCH_SIZE = 64


class ProxyBatch:
    """The inputs and targets every proxy of one evaluation sees (on ``device``).

    Image classification (the default): normalised images and class labels, ``num_classes``
    classes. Another task (:mod:`nasforge.tasks`) gives its name as ``task``, what its
    networks are built with as ``io`` (:meth:`Task.network_io`) and its loss as ``loss``
    (``loss(output, targets) -> scalar``); :func:`task_proxy_batch` makes one.
    """

    def __init__(
        self,
        inputs: torch.Tensor,
        targets: Any,
        num_classes: int = 0,
        *,
        task: str = "classification",
        io: Mapping[str, Any] | None = None,
        loss: LossFn | None = None,
    ) -> None:
        if task == "classification":
            if inputs.dim() != 4 or inputs.shape[0] != targets.shape[0] or inputs.shape[0] < 2:
                raise NasforgeError(
                    f"a proxy batch needs N >= 2 images N x C x H x W and N labels, got "
                    f"{tuple(inputs.shape)} and {tuple(targets.shape)}"
                )
        elif (
            not isinstance(inputs, torch.Tensor)
            or not inputs.is_floating_point()
            or inputs.dim() < 2
            or inputs.shape[0] < 2
        ):
            got = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
            raise NasforgeError(
                f"task {task!r} feeds its networks {got}"
                + (f" of {inputs.dtype}" if isinstance(inputs, torch.Tensor) else "")
                + "; zero-cost proxies need a float tensor batch of N >= 2 samples"
            )
        self.inputs = inputs
        self.targets = targets
        self.num_classes = int(num_classes)
        self.task = task
        self.io = dict(io) if io is not None else {"num_classes": self.num_classes}
        self.loss = loss

    def to(self, device: str | torch.device) -> ProxyBatch:
        targets = (
            self.targets.to(device) if isinstance(self.targets, torch.Tensor) else self.targets
        )
        return ProxyBatch(
            self.inputs.to(device),
            targets,
            self.num_classes,
            task=self.task,
            io=self.io,
            loss=self.loss,
        )


def task_proxy_batch(
    task: Any,
    data: Any = None,
    *,
    dataset: str | None = None,
    root: str | Path | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    num_batches: int = 1,
    seed: int = 0,
    limit: int | None = None,
) -> ProxyBatch:
    """The proxy batch of a task (:mod:`nasforge.tasks`, by name or instance): the first
    ``batch_size * num_batches`` samples its training loader yields with ``seed`` (the task's
    own sampling: restoration's random crops, classification's shuffled images; a fixed seed
    makes the batch a pure function of the data), with the task's loss (its
    :meth:`Task.loss` under its default recipe) and network keywords. ``data``: the task's
    loaded data, or None to load ``dataset`` (default the task's) under ``root``."""
    from nasforge.tasks import get_task
    from nasforge.train.recipe import RECIPES

    t = get_task(task)
    _check_batch_args(batch_size, num_batches)
    if data is None:
        data = t.load(dataset, root, seed=seed, limit=limit)
    n = batch_size * num_batches
    loader = t.loader(data, "train", n, train=True, seed=seed)
    loader.set_epoch(0)
    inputs, targets = next(iter(loader))
    if t.batch_size(targets) < n:
        raise NasforgeError(
            f"task {t.name!r} data {getattr(data, 'name', '')!r} gave {t.batch_size(targets)} "
            f"training samples, fewer than the {n} asked (batch_size {batch_size} x "
            f"num_batches {num_batches})"
        )
    recipe = RECIPES.create(t.default_recipe)

    def loss(output: Any, y: Any) -> torch.Tensor:
        return t.loss(output, y, recipe)

    io = t.network_io(data)
    return ProxyBatch(inputs, targets, int(io.get("num_classes", 0)), task=t.name, io=io, loss=loss)


def _check_batch_args(batch_size: Any, num_batches: Any) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
        raise NasforgeError(f"batch_size {batch_size!r} must be an integer >= 2")
    if isinstance(num_batches, bool) or not isinstance(num_batches, int) or num_batches < 1:
        raise NasforgeError(f"num_batches {num_batches!r} must be an integer >= 1")


def proxy_batch(
    data: Any,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    num_batches: int = 1,
    seed: int = 0,
    split: str = "train",
    root: str | Path | None = None,
) -> ProxyBatch:
    """``batch_size * num_batches`` training images drawn with ``seed``, normalised with the
    dataset's mean/std (no augmentation: a proxy is a function of fixed data).

    ``data`` is a :class:`nasforge.data.DatasetSplits` or a dataset name for
    :func:`nasforge.data.load_splits` (with ``root``).
    """
    from nasforge.data import load_splits

    _check_batch_args(batch_size, num_batches)
    if isinstance(data, str):
        data = load_splits(data, root, seed=seed)
    part = data.split(split)
    n = batch_size * num_batches
    if len(part) < n:
        raise NasforgeError(
            f"{data.name} split {split!r} has {len(part)} images, fewer than the {n} asked "
            f"(batch_size {batch_size} x num_batches {num_batches})"
        )
    gen = torch.Generator().manual_seed(int(seed))
    idx = torch.randperm(len(part), generator=gen)[:n]
    images = part.images[idx].float().div_(255.0)
    mean = torch.tensor(data.mean).view(1, 3, 1, 1)
    std = torch.tensor(data.std).view(1, 3, 1, 1)
    return ProxyBatch((images - mean) / std, part.labels[idx].clone(), data.num_classes)


def parse_proxies(names: str | Iterable[str]) -> list[str]:
    """``"all"``, a comma-separated string or a list of registered proxy names, checked."""
    if isinstance(names, str):
        names = PROXIES.names() if names.strip() == "all" else names.split(",")
    out: list[str] = []
    for raw in names:
        name = raw.strip()
        if name not in PROXIES:
            raise NasforgeError(
                f"unknown zero-cost proxy {name!r}; expected 'all' or some of: "
                f"{', '.join(PROXIES.names())}"
            )
        if name not in out:
            out.append(name)
    if not out:
        raise NasforgeError("no zero-cost proxy given; expected 'all' or a comma-separated list")
    return out


def network_config(
    space: str, C: int | None = None, N: int | None = None, network: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The builder options a proxy network of ``space`` is made with: ``network``, plus
    ``C`` / ``N`` where given, checked against the space's builder (unknown options raise
    :class:`NasforgeError` naming what it accepts). A builder with an ``auxiliary`` option
    builds without it unless asked: an auxiliary head is a training-time loss, not part of
    the network a proxy scores (nor of its parameter count)."""
    from nasforge.nn.registry import NETWORKS, network_options

    if space not in NETWORKS:
        raise NasforgeError(
            f"space {space!r} has no network builder, so no proxy can score it; spaces with "
            f"one: {NETWORKS.names()}"
        )
    accepted = network_options(space)
    given = {**(network or {}), **{k: v for k, v in (("C", C), ("N", N)) if v is not None}}
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise NasforgeError(
            f"the {space} network has no option {', '.join(map(repr, unknown))}; it accepts "
            f"{sorted(accepted)}"
        )
    _check_network_types(space, given, accepted)
    if "auxiliary" in accepted and "auxiliary" not in given:
        given["auxiliary"] = False
    return given


#: Largest integer a network option (width C, cells N, layers ...) may take here;
#: ``NASFORGE_MAX_NETWORK_INT`` raises it (a proxy network of C=1e8 asks for ~10 GB).
MAX_NETWORK_INT = 1024


def _check_network_types(space: str, given: Mapping[str, Any], accepted: Mapping[str, Any]) -> None:
    """Each option the type of its builder default (an int option an integer within
    ``1..MAX_NETWORK_INT``, a float option a finite number, a bool option a boolean), so
    ``C=NaN`` or ``C=[1, 2]`` is one line here rather than a torch error in the build."""
    from nasforge.inputs import env_limit, excerpt

    cap = env_limit("MAX_NETWORK_INT", MAX_NETWORK_INT)
    for key, value in given.items():
        default = accepted.get(key)
        where = f"the {space} network option {key}={excerpt(value, 40)}"
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise NasforgeError(f"{where} is invalid; expected true or false")
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= cap:
                raise NasforgeError(
                    f"{where} is invalid; expected an integer in 1..{cap} "
                    "(NASFORGE_MAX_NETWORK_INT raises the maximum)"
                )
        elif isinstance(default, float) and (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise NasforgeError(f"{where} is invalid; expected a finite number")


def _as_value(space: str, arch: Any) -> Any:
    """``arch`` as a value of ``space``: parsed when it is the space's string form, as is
    when it already is a value (a space whose values are strings, e.g. a network name, is
    told apart by whether the space can print it)."""
    sp = get_space(space)
    if isinstance(arch, str):
        try:
            sp.to_string(arch)
        except Exception:  # spaces raise ArchError, AttributeError...: not a value
            return sp.from_string(arch)
    return arch


def _space_builder(
    space: str, options: Mapping[str, Any], io: Mapping[str, Any]
) -> Callable[[Any], nn.Module]:
    """The registered network of ``space`` (``nasforge.nn.build_network``) with ``options``,
    for a task's data (``io``: :meth:`Task.network_io`, classification ``num_classes``)."""

    def build(arch: Any) -> nn.Module:
        from nasforge.nn.registry import build_network

        return build_network(space, _as_value(space, arch), io=io, **options)

    return build


def _analytic_scores(
    arch: Any,
    proxies: Sequence[str],
    batch: ProxyBatch,
    space: str,
    C: int | None,
    N: int | None,
    network: Mapping[str, Any] | None,
) -> list[tuple[str, float, float]]:
    """``(proxy, score, seconds)`` of the analytic proxies in ``proxies`` that the space's
    shape cost can answer for this batch's input shape (none where it cannot)."""
    import inspect

    from nasforge.cost.registry import SHAPE_COSTS

    wanted = [p for p in proxies if p in ANALYTIC_PROXIES]
    shape = tuple(batch.inputs.shape[1:])
    if batch.task != "classification":
        return []  # the shape costs count classification networks
    if not wanted or space not in SHAPE_COSTS or len(shape) != 3 or shape[1] != shape[2]:
        return []
    options = network_config(space, C, N, network)
    fn = SHAPE_COSTS.get(space)
    if not set(options) <= set(inspect.signature(fn).parameters):
        return []  # an option the count does not model: count the built network instead
    value = _as_value(space, arch)
    out = []
    for name in wanted:
        t = time.perf_counter()
        cost = fn(value, shape[1], batch.num_classes, **options)
        out.append((name, float(getattr(cost, ANALYTIC_PROXIES[name])), time.perf_counter() - t))
    return out


def compute_proxies(
    arch: Any,
    proxies: Sequence[str],
    batch: ProxyBatch,
    *,
    seed: int = 0,
    build: Callable[[Any, int], nn.Module] | None = None,
    C: int | None = None,
    N: int | None = None,
    device: str | torch.device = "cpu",
    space: str = "nb201",
    network: Mapping[str, Any] | None = None,
    analytic: bool = True,
) -> tuple[dict[str, float], dict[str, float]]:
    """Every proxy of ``proxies`` for ``arch``: ``(scores, seconds)`` by proxy name.

    With ``analytic`` (the default), the data-free cost proxies (:data:`ANALYTIC_PROXIES`)
    of a space with a shape cost and the default builder are read from the cost counters
    (the same value the proxy computes on the built network, in microseconds); the network
    is built only when another proxy needs it.

    ``build(arch, num_classes)`` makes the network (default: the registered network of
    ``space`` with the options of :func:`network_config`, e.g. NB201's C=16 N=5 unless
    ``C`` / ``N`` say otherwise; any space whose value builds a network works). The network is built once under
    ``torch.manual_seed(seed)``; each proxy scores it from those initial weights (restored
    before each one, as NASLib scores a fresh ``get_prunable_copy``) with the global
    generator reseeded; the network is left with its initial weights.
    ``seconds[name]`` is the proxy's wall time plus its share of the build.
    """
    asked = list(proxies)
    scores: dict[str, float] = {}
    seconds: dict[str, float] = {}
    if batch.task != "classification":
        labelled = [p for p in proxies if p in LABEL_PROXIES]
        if labelled:
            raise NasforgeError(
                f"proxy {labelled[0]!r} reads class labels; task {batch.task!r} has none "
                f"(proxies for it: {', '.join(p for p in PROXIES.names() if p not in LABEL_PROXIES)})"
            )
        if build is not None:
            raise NasforgeError(
                f"a custom build(arch, num_classes) serves classification; task {batch.task!r} "
                "builds the space's registered network"
            )
    if analytic and build is None:
        for name, value, spent in _analytic_scores(arch, proxies, batch, space, C, N, network):
            scores[name], seconds[name] = value, spent
        if len(scores) == len(proxies):
            return scores, seconds
        proxies = [p for p in proxies if p not in scores]
    if build is None:
        make = _space_builder(space, network_config(space, C, N, network), batch.io)
    else:
        custom = build

        def make(a: Any) -> nn.Module:
            return custom(a, batch.num_classes)

    batch = batch.to(device)
    t0 = time.perf_counter()
    torch.manual_seed(int(seed))
    net = make(arch).to(device)
    # the proxies change weights (and synflow the dtype): restore these before each one,
    # cheaper than a deepcopy of the network per proxy
    initial = {k: v.detach().clone() for k, v in net.state_dict().items()}
    dtype = next((p.dtype for p in net.parameters()), torch.float32)
    flags = [p.requires_grad for p in net.parameters()]
    build_s = time.perf_counter() - t0

    def restore() -> None:
        net.to(dtype)
        net.load_state_dict(initial)
        for p, flag in zip(net.parameters(), flags, strict=True):
            p.requires_grad_(flag)
            p.grad = None
        net.train()

    # proxies sharing a pass (SHARED: the loss gradient, the input Jacobian) are scored
    # from one run of it, each exactly as on its own; the pass's time is split among them
    groups: dict[str, list[str]] = {}
    for name in proxies:
        PROXIES.get(name)  # an unknown name fails here
        if name in SHARED:
            groups.setdefault(SHARED[name][0], []).append(name)
    done: set[str] = set()
    try:
        for name in proxies:
            if name in done:
                continue
            t = time.perf_counter()
            restore()
            torch.manual_seed(int(seed))
            group = groups.get(SHARED[name][0], []) if name in SHARED else []
            if len(group) < 2:
                scores[name] = float(
                    PROXIES.get(name)(net, batch.inputs, batch.targets, loss=batch.loss)
                )
                seconds[name] = time.perf_counter() - t + build_s / len(proxies)
                continue
            state = PASSES[SHARED[name][0]](net, batch.inputs, batch.targets, batch.loss)
            pass_s = (time.perf_counter() - t) / len(group)
            for member in group:
                t = time.perf_counter()
                scores[member] = float(
                    SHARED[member][1](net, state, batch.inputs, batch.targets, batch.loss)
                )
                seconds[member] = time.perf_counter() - t + pass_s + build_s / len(proxies)
                done.add(member)
    finally:
        restore()
    order = [p for p in asked if p in scores]
    return {n: scores[n] for n in order}, {n: seconds[n] for n in order}


class ZeroCostEvaluator(Evaluator):
    """Answer an evaluation with a zero-cost proxy score, charging the measured seconds.

    ``proxy``: a name in :data:`nasforge.evaluate.proxies.PROXIES`. ``data``: a
    :class:`nasforge.data.DatasetSplits`, a dataset name (with ``data_dir``) or a ready
    :class:`ProxyBatch`; data-free proxies (synflow, l2_norm, params, flops) still take the
    input shape and class count from it. ``scores``: known ``arch string -> (score,
    seconds)`` (e.g. the rows of ``nasforge zc``), answered without recomputing but charged
    their recorded seconds. ``cache``: keep what was computed in this process for later
    runs, likewise charged again each time (a run must pay for a proxy as if it had
    computed it). ``charge``: seconds charged per query instead of the measured ones (the
    measured time stays in ``Observation.info["measured_s"]``), for runs that must be
    reproducible under a seconds budget: a measured time differs from run to run.
    ``analytic``: answer the data-free cost proxies (``params``, ``flops``) from the cost
    counters where the space has a shape cost (the same scores, microseconds instead of a
    network build per arch; see :func:`compute_proxies`). ``task``: a task of
    :mod:`nasforge.tasks` other than image classification scores the space's networks for
    that task on :func:`task_proxy_batch` (``data``: the task's loaded data or a dataset
    name, None for its default), with the task's loss.

    The clock is "simulated": a run's clock is the sum of the charged seconds (measured
    here), so a search's decisions do not depend on its own bookkeeping time.
    """

    clock: ClassVar[Literal["simulated", "wall"]] = "simulated"

    def __init__(
        self,
        proxy: str = "synflow",
        data: Any = None,
        *,
        data_dir: str | Path | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        num_batches: int = 1,
        seed: int = 0,
        C: int | None = None,
        N: int | None = None,
        device: str = "cpu",
        build: Callable[[Any, int], nn.Module] | None = None,
        scores: Mapping[str, tuple[float, float]] | None = None,
        cache: bool = True,
        charge: float | None = None,
        space: str = "nb201",
        network: Mapping[str, Any] | None = None,
        analytic: bool = True,
        task: str | None = None,
    ) -> None:
        from nasforge.tasks import get_task

        (self.proxy,) = parse_proxies([proxy])
        self.task = get_task(task).name  # an unknown task fails here, listing the tasks
        if self.task != "classification" and self.proxy in LABEL_PROXIES:
            raise SearchError(
                f"proxy {self.proxy!r} reads class labels; task {self.task!r} has none"
            )
        self.analytic = bool(analytic)
        self._space = get_space(space)
        self.network = (
            network_config(self._space.name, C, N, network)
            if build is None
            else dict(network or {})
        )
        if charge is not None and not (
            isinstance(charge, (int, float)) and not isinstance(charge, bool) and charge >= 0
        ):
            raise SearchError(f"charge {charge!r} must be a number of seconds >= 0 (or None)")
        self.charge = None if charge is None else float(charge)
        self.seed = int(seed)
        self.device = device
        self._build = build
        self._batch_size, self._num_batches = batch_size, num_batches
        self._data, self._data_dir = data, data_dir
        self._batch: ProxyBatch | None = data if isinstance(data, ProxyBatch) else None
        self._known: dict[str, tuple[float, float]] = dict(scores or {})
        self._cache = bool(cache)
        if (
            self._batch is None
            and data is None
            and not self._known
            and self.task == "classification"
        ):
            raise SearchError("ZeroCostEvaluator needs data (a dataset, its name or a batch)")

    @property
    def default_fidelity(self) -> int:
        return 0  # zero epochs trained: the network at initialisation

    @property
    def fidelities(self) -> Sequence[int]:
        return (0,)

    @property
    def space(self) -> Any:
        return self._space

    def batch(self) -> ProxyBatch:
        """The batch every arch is scored on (drawn once, with the evaluator's seed)."""
        if self._batch is None and self.task != "classification":
            named = self._data is None or isinstance(self._data, str)
            self._batch = task_proxy_batch(
                self.task,
                None if named else self._data,
                dataset=self._data if named else None,
                root=self._data_dir,
                batch_size=self._batch_size,
                num_batches=self._num_batches,
                seed=self.seed,
            )
        if self._batch is None:
            self._batch = proxy_batch(
                self._data,
                batch_size=self._batch_size,
                num_batches=self._num_batches,
                seed=self.seed,
                root=self._data_dir,
            )
        return self._batch

    def score(self, arch: Any) -> tuple[float, float]:
        """``(score, seconds)`` of ``arch``: recorded, or computed now and timed."""
        key = self._space.to_string(arch)
        if key in self._known:
            return self._known[key]
        scores, seconds = compute_proxies(
            arch,
            [self.proxy],
            self.batch(),
            seed=self.seed,
            build=self._build,
            device=self.device,
            space=self._space.name,
            network=self.network,
            analytic=self.analytic,
        )
        out = (scores[self.proxy], seconds[self.proxy])
        if self._cache:
            self._known[key] = out
        return out

    def evaluate(
        self, arch: Any, fidelity: int | None = None, *, resume_key: Hashable | None = None
    ) -> Observation:
        if fidelity not in (None, 0):
            raise SearchError(
                f"a zero-cost proxy scores untrained networks: fidelity {fidelity!r} asked, "
                "expected 0 (or None)"
            )
        value, seconds = self.score(arch)
        status = "ok" if math.isfinite(value) else "failed"
        info: dict[str, Any] = {"proxy": self.proxy, "seed": self.seed}
        if self.charge is not None:
            info["measured_s"] = seconds
        cost = seconds if self.charge is None else self.charge
        return Observation(arch, value, 0, cost, status=status, info=info)

    def report(self, arch: Any, observation: Observation) -> Reported:
        # a proxy knows no accuracy: nothing to report but the score itself as the signal
        return Reported(observation.valid_acc, math.nan)

    def describe(self) -> dict[str, Any]:
        return {
            "name": "ZeroCostEvaluator",
            "clock": self.clock,
            "proxy": self.proxy,
            "seed": self.seed,
            "batch_size": self._batch_size,
            "num_batches": self._num_batches,
            "space": self._space.name,
            "network": self.network,
            "charge_s": self.charge if self.charge is not None else "measured",
            **({"task": self.task} if self.task != "classification" else {}),
        }


class WithZeroCost(Evaluator):
    """A real evaluator plus a proxy at fidelity 0, on one clock.

    ``fidelities`` are 0 followed by the base evaluator's; ``Ask(fidelity=0)`` goes to the
    proxy, everything else (``None`` included) to ``base``. Reports come from ``base``
    (NaN while the recommendation rests on a proxy alone: a proxy knows no accuracy).

    A base with final metrics only (a table imported from final numbers, e.g. the NB201
    results export: its default fidelity is 0, "final, epochs unknown") is offered at
    fidelity ``final_fidelity`` instead, so that its answers never pass for proxy scores:
    by default the epochs of its recipe where the base knows them (``recipe_epochs``, e.g.
    12 for NB201's "12" recipe), else 1. Its observations are relabelled with it.
    """

    def __init__(
        self, base: Evaluator, zero_cost: ZeroCostEvaluator, *, final_fidelity: int | None = None
    ) -> None:
        if isinstance(base, (ZeroCostEvaluator, WithZeroCost)):
            raise SearchError(
                f"WithZeroCost needs a real evaluator (a table, training) as its base, got "
                f"{type(base).__name__}: a proxy answers fidelity 0 only"
            )
        self.base = base
        self.zero_cost = zero_cost
        self._final: int | None = None
        if base.default_fidelity in (0, None):
            label = final_fidelity
            if label is None:
                label = getattr(base, "recipe_epochs", None) or 1
            if isinstance(label, bool) or not isinstance(label, int) or label < 1:
                raise SearchError(f"final_fidelity {final_fidelity!r} must be an integer >= 1")
            self._final = label
        elif final_fidelity is not None:
            raise SearchError(
                "final_fidelity relabels a base with final metrics only; this base answers "
                f"fidelities {list(base.fidelities)}"
            )

    @property
    def clock(self) -> Literal["simulated", "wall"]:  # type: ignore[override]
        return self.base.clock

    @property
    def space(self) -> Any:
        return self.base.space

    @property
    def fidelities(self) -> Sequence[int]:
        if self._final is not None:
            return (0, self._final)
        return (0, *[f for f in self.base.fidelities if f != 0])

    @property
    def default_fidelity(self) -> int | None:
        return self._final if self._final is not None else self.base.default_fidelity

    @property
    def has_cost(self) -> bool:
        return self.base.has_cost

    def reset(self, seed: int) -> None:
        self.base.reset(seed)
        self.zero_cost.reset(seed)

    def evaluate(
        self, arch: Any, fidelity: int | None = None, *, resume_key: Hashable | None = None
    ) -> Observation:
        if fidelity == 0:
            return self.zero_cost.evaluate(arch, 0)
        if self._final is None:
            return self.base.evaluate(arch, fidelity, resume_key=resume_key)
        if fidelity not in (None, self._final):
            raise SearchError(
                f"fidelity {fidelity!r} asked of a base with final metrics only; expected 0 "
                f"(the proxy), {self._final} or None"
            )
        obs = self.base.evaluate(arch, None, resume_key=resume_key)
        return dataclasses.replace(obs, fidelity=self._final)

    def report(self, arch: Any, observation: Observation) -> Reported:
        if observation.fidelity == 0:
            # recommended on a proxy alone (before any real evaluation): no accuracy is known
            return Reported(math.nan, math.nan)
        return self.base.report(arch, observation)

    def describe(self) -> dict[str, Any]:
        return {
            "name": "WithZeroCost",
            "clock": self.clock,
            "base": self.base.describe(),
            "zero_cost": self.zero_cost.describe(),
            "final_fidelity": self._final,
        }


# ----------------------------------------------------------------------------------------
# scoring many archs into a resumable table (``nasforge zc``)
# ----------------------------------------------------------------------------------------
def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a proxy table written by :func:`score_archs` (CSV or JSON by suffix);
    ``[]`` when the file does not exist."""
    import csv
    import json

    path = Path(path)
    if not path.exists():
        return []
    if path.suffix == ".json":
        rows = json.loads(path.read_text())
        if not isinstance(rows, list):
            raise NasforgeError(f"{path}: expected a JSON list of rows")
        return rows
    with path.open(newline="") as fh:
        out = []
        for row in csv.DictReader(fh):
            out.append({k: (v if k == "arch" else float(v)) for k, v in row.items()})
        return out


def check_rows(path: str | Path, proxies: Sequence[str]) -> list[dict[str, Any]]:
    """The rows already in ``path``, checked to have the columns of ``proxies``."""
    columns = {"arch", *proxies, "seconds"}
    rows = read_rows(path)
    if rows and set(rows[0]) != columns:
        raise NasforgeError(
            f"{path} has columns {sorted(rows[0])}, not those asked {sorted(columns)}; "
            "use another output file or the same --proxies"
        )
    return rows


def _write_rows(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    import csv
    import io as _io

    from nasforge.io import atomic_write_json, atomic_write_text

    if path.suffix == ".json":
        atomic_write_json(path, rows)
        return
    buf = _io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
    atomic_write_text(path, buf.getvalue())


def meta_path(rows: str | Path) -> Path:
    """The settings file beside a rows file: ``ROWS.meta.json``."""
    rows = Path(rows)
    return rows.with_name(rows.name + ".meta.json")


def read_meta(rows: str | Path) -> dict[str, Any] | None:
    """The settings :func:`score_archs` recorded beside ``rows`` (None when absent)."""
    import json

    path = meta_path(rows)
    if not path.is_file():
        return None
    if path.stat().st_size > 1 << 20:
        raise NasforgeError(f"{path}: {path.stat().st_size} bytes; a settings file is < 1 MiB")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise NasforgeError(f"{path} is not a JSON settings file") from None
    if not isinstance(doc, dict):
        raise NasforgeError(f"{path}: expected a JSON object")
    return doc


def proxy_settings(
    space: str,
    dataset: str,
    batch_size: int,
    num_batches: int,
    seed: int,
    network: dict[str, Any],
    proxies: list[str] | None = None,
    *,
    task: str = "classification",
) -> dict[str, Any]:
    """What fixes a proxy score besides the arch: recorded beside `nasforge zc` rows and
    compared by `search --zc-scores` before it reuses them (the task only when it is not
    image classification, so classification rows keep their settings)."""
    out: dict[str, Any] = {
        "space": space,
        "dataset": dataset,
        "batch_size": batch_size,
        "num_batches": num_batches,
        "seed": seed,
        "network": network,
    }
    if proxies is not None:
        out["proxies"] = list(proxies)
    if task != "classification":
        out["task"] = task
    return out


def cached_scores(
    rows_path: str | Path, proxy: str, expected: Mapping[str, Any], *, charged: bool
) -> dict[str, tuple[float, float]]:
    """``arch -> (score, seconds)`` of ``proxy`` from a rows file of ``nasforge zc``, after
    checking that its recorded settings equal ``expected`` (the scores the caller would
    compute: same space, dataset, batch, seed and network). A file scoring several proxies
    records their combined seconds per arch, so it serves only a caller that charges a fixed
    time per query (``charged``)."""
    import json

    meta = read_meta(rows_path)
    if meta is None:
        raise NasforgeError(
            f"{rows_path} has no settings file {meta_path(rows_path).name}; rows written by "
            "`nasforge zc` record them (score again, or without --zc-scores)"
        )
    proxies = meta.get("proxies", [])
    if proxy not in proxies:
        raise NasforgeError(f"{rows_path} scores {proxies}, not the proxy {proxy!r}")
    want = json.loads(json.dumps(dict(expected)))
    differ = {k: (meta.get(k), v) for k, v in want.items() if meta.get(k) != v}
    if differ:
        detail = ", ".join(f"{k} {a!r} (search: {b!r})" for k, (a, b) in differ.items())
        raise NasforgeError(f"{rows_path} was scored with other settings: {detail}")
    if len(proxies) > 1 and not charged:
        raise NasforgeError(
            f"{rows_path} scores {len(proxies)} proxies and records their combined seconds; "
            "give --zc-charge (a fixed time per query) to reuse it"
        )
    return {str(r["arch"]): (float(r[proxy]), float(r["seconds"])) for r in read_rows(rows_path)}


def score_archs(
    archs: Sequence[Any],
    proxies: Sequence[str],
    batch: ProxyBatch,
    out: str | Path,
    *,
    seed: int = 0,
    C: int | None = None,
    N: int | None = None,
    device: str = "cpu",
    build: Callable[[Any, int], nn.Module] | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    space: str = "nb201",
    network: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Score ``archs`` with every proxy into ``out`` (``.csv`` or ``.json``), resumably.

    ``meta`` (what fixes the scores: dataset, batch size, seed, network, proxies) is written
    beside the rows (:func:`meta_path`), so that a search can reuse them as a cache
    (``nasforge search --zc-scores``) after checking they are the scores it would compute;
    resuming into a file written under other settings is refused.

    One row per arch: ``arch`` (string), each proxy's score, ``seconds`` (all proxies and
    the build). The whole file is rewritten atomically at most every :data:`FLUSH_S`
    seconds and when the loop ends (normally, on an error or on Ctrl-C), so an interrupted
    run leaves only complete rows, and running again skips the archs already in the file
    (their rows must have the same proxy columns).
    """
    out = Path(out)
    if out.suffix not in (".csv", ".json"):
        raise NasforgeError(f"output {str(out)!r} must end in .csv or .json")
    columns = ["arch", *proxies, "seconds"]
    rows = check_rows(out, proxies)
    if meta is not None:
        import json

        from nasforge.io import atomic_write_json

        meta = json.loads(json.dumps(dict(meta)))  # the JSON form, as it is read back
        old = read_meta(out)
        if rows and old is not None and old != meta:
            raise NasforgeError(
                f"{out} holds scores made with {old}, not {meta}; use another output file"
            )
        atomic_write_json(meta_path(out), meta)
    done = {r["arch"] for r in rows}
    sp = get_space(space)
    # The file is rewritten whole at most every FLUSH_S seconds and always at the end (also
    # on an error or Ctrl-C): fast proxies (params, flops) score thousands of archs a second,
    # and a rewrite per arch would make a table of them quadratic in its size.
    written, last = len(rows), time.perf_counter()
    try:
        for arch in archs:
            arch = _as_value(sp.name, arch)
            key = sp.to_string(arch)
            if key in done:
                continue
            row = _score_row(arch, key, proxies, batch, seed, build, C, N, device, space, network)
            rows.append(row)
            done.add(key)
            if time.perf_counter() - last >= FLUSH_S:
                _write_rows(out, rows, columns)
                written, last = len(rows), time.perf_counter()
            if on_row is not None:
                on_row(row)
    finally:
        if len(rows) > written:
            _write_rows(out, rows, columns)
    return rows


#: Longest time between two rewrites of a rows file (a kill loses at most this much work).
FLUSH_S = 1.0


def _score_row(
    arch: Any,
    key: str,
    proxies: Sequence[str],
    batch: ProxyBatch,
    seed: int,
    build: Callable[[Any, int], nn.Module] | None,
    C: int | None,
    N: int | None,
    device: str,
    space: str,
    network: Mapping[str, Any] | None,
) -> dict[str, Any]:
    scores, seconds = compute_proxies(
        arch,
        proxies,
        batch,
        seed=seed,
        build=build,
        C=C,
        N=N,
        device=device,
        space=space,
        network=network,
    )
    return {"arch": key, **scores, "seconds": sum(seconds.values())}

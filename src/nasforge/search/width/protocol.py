"""The width-search protocol behind ``nasforge width``: search, retrain, compare.

A :class:`WidthJob` holds what a search and a comparison share (backbone, data, space
binning, supernet / evolution / latency settings, device, seed, output directory);
:mod:`nasforge.report.width` writes their files.

* :meth:`WidthJob.search` (:func:`run_search` in one call) -- train a supernet (cafenet or fixed sharing) on a dataset's training
  split, search the best width configuration within a FLOPs budget on its validation split,
  and write ``search.json``, ``search_front.png`` (supernet accuracy vs FLOPs of every
  evaluated configuration and of uniform width scaling) and ``supernet.pt`` to a directory.
* :func:`run_retrain` -- retrain the searched configuration from scratch with a recipe
  (``nasforge.train.Trainer``) and write ``retrain.json``.
* :meth:`WidthJob.compare` (:func:`run_compare`) -- cafenet, fixed sharing and uniform scaling at the same FLOPs
  budgets, or (latency targets) those and AOWS at equal measured latency; every winner
  retrained with the same recipe and seed; ``compare.json`` + ``compare.png``.

Every file is written atomically. Search decisions only ever read the validation split;
the test split is reported after retraining.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from nasforge.cost.latency_model import (
    LatencyFitSettings,
    LatencyModel,
    MeasureSettings,
    fit_latency_model,
    measure_widths,
)
from nasforge.data import DatasetSplits, load_splits
from nasforge.errors import SearchError
from nasforge.io import atomic_write_json
from nasforge.nn.backbones import build_from_spec
from nasforge.report.width import (
    COMPARE_FILE,
    SEARCH_FILE,
    save_compare_record,
    save_search_record,
)
from nasforge.search.registry import WIDTH
from nasforge.search.width.algorithms import (
    Budget,
    UniformWidth,
    WidthSearch,
    WidthSearchResult,
)
from nasforge.search.width.aows import (
    AOWSSearch,
    AOWSSettings,
    check_latency_target,
    parse_latency_target,
)
from nasforge.search.width.evolution import EvolutionSettings
from nasforge.search.width.supernet import SupernetSettings
from nasforge.spaces.width import BinMode, WidthSpace, make_space
from nasforge.train import Recipe, Trainer, TrainResult
from nasforge.train.checkpoint import data_fingerprint
from nasforge.train.device import resolve_device

RETRAIN_FILE = "retrain.json"
FORMAT = "nasforge-width-1"
#: Uniform ratios whose supernet accuracy draws the uniform-scaling front in the plots.
FRONT_RATIOS: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def read_json(path: Path, kind: str) -> dict[str, Any]:
    """Read a JSON file this protocol wrote, checking its format and kind."""
    if not path.is_file():
        raise SearchError(f"{path} does not exist; expected a {kind} record written by nasforge")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SearchError(f"{path} is not valid JSON ({exc})") from None
    if data.get("format") != FORMAT or data.get("kind") != kind:
        raise SearchError(
            f"{path} is not a {kind} record (format {data.get('format')!r}, kind "
            f"{data.get('kind')!r}; expected {FORMAT!r}, {kind!r})"
        )
    return data


#: Seed of the splits that have no official file or rule (digits, synthetic, fallbacks);
#: fixed so that searches with different seeds validate on the same images.
DATA_SEED = 0


def load_data(
    dataset: str, *, seed: int = 0, limit: int | None = None, root: str | Path | None = None
) -> DatasetSplits:
    """The dataset (embedded ``digits`` / ``synthetic...`` need no files)."""
    return load_splits(dataset, root, seed=seed, limit=limit)


def space_for(
    backbone: str,
    data: DatasetSplits,
    *,
    bins: BinMode | None = None,
    levels: int | None = None,
    min_ratio: float | None = None,
) -> WidthSpace:
    """The width space of ``backbone`` at the dataset's resolution and class count."""
    return make_space(
        backbone,
        num_classes=data.num_classes,
        resolution=data.resolution,
        bins=bins,
        levels=levels,
        min_ratio=min_ratio,
    )


def train_standalone(
    space: WidthSpace,
    widths: Sequence[int],
    data: DatasetSplits,
    recipe: Recipe,
    *,
    seed: int,
    device: str | torch.device = "cpu",
    quiet: bool = True,
    eval_splits: list[str] | None = None,
) -> tuple[torch.nn.Module, TrainResult]:
    """Train the standalone network of ``widths`` from scratch (init seeded by ``seed``);
    the trained module and its record. ``eval_splits``: evaluated after every epoch
    (default all of ``data.evals``; ``[]`` for none, e.g. to evaluate once at the end)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_from_spec(space.spec, list(widths))
    trainer = Trainer(recipe, device=device, quiet=quiet)
    return model, trainer.fit(model, data, seed=seed, eval_splits=eval_splits)


def retrain_widths(
    space: WidthSpace,
    widths: Sequence[int],
    data: DatasetSplits,
    recipe: Recipe,
    *,
    seed: int,
    device: str | torch.device = "cpu",
    quiet: bool = True,
) -> TrainResult:
    """Train the standalone network of ``widths`` from scratch (init seeded by ``seed``)."""
    return train_standalone(space, widths, data, recipe, seed=seed, device=device, quiet=quiet)[1]


def uniform_front(search: WidthSearch, ratios: Sequence[float] = FRONT_RATIOS) -> list[dict]:
    """Supernet accuracy of uniform width scaling at ``ratios`` (same supernet, same scorer)."""
    out = []
    for r in ratios:
        w = search.space.uniform(r)
        out.append(
            {
                "ratio": float(r),
                "widths": list(w),
                "flops_m": float(search.space.flops(w)),
                "supernet_acc": search.score(w),
            }
        )
    return out


#: ``--method`` names of the width-search algorithms: their registered names in
#: ``nasforge.search.WIDTH`` (one name everywhere: CLI, records, README).
METHODS: tuple[str, ...] = ("cafenet", "fixed-width", "uniform-width", "aows")
#: Earlier ``--method`` spellings, still accepted (not listed in help or errors).
METHOD_ALIASES: dict[str, str] = {"fixed": "fixed-width", "uniform": "uniform-width"}


def check_method(method: str) -> str:
    """The registered algorithm name of a ``--method`` (an old alias is read as its name)."""
    method = METHOD_ALIASES.get(method, method)
    if method in METHODS:
        return method
    raise SearchError(f"unknown width method {method!r}; expected one of: {', '.join(METHODS)}")


def _make_search(
    method: str,
    space: WidthSpace,
    recipe: Recipe,
    *,
    seed: int,
    supernet: SupernetSettings | None,
    evolution: EvolutionSettings,
    r_bins: float | None,
    device: str | torch.device,
    **extra: Any,
) -> WidthSearch:
    name = check_method(method)
    return WIDTH.create(
        name,
        space,
        recipe=recipe,
        seed=seed,
        supernet=supernet,
        evolution=evolution,
        r_bins=r_bins,
        device=device,
        **extra,
    )


@dataclass(frozen=True)
class LatencySetup:
    """How the latency model of a latency-target search is obtained.

    ``model_path``: a model saved before (reused when it exists; written there after
    fitting otherwise). ``fit`` / ``measure``: sample counts, penalty, timing settings.
    """

    model_path: Path | None = None
    fit: LatencyFitSettings = field(default_factory=LatencyFitSettings)
    measure: MeasureSettings = field(default_factory=MeasureSettings)

    def model(
        self,
        space: WidthSpace,
        *,
        device: str | torch.device,
        seed: int,
        on_sample: Callable[[int, int], None] | None = None,
    ) -> LatencyModel:
        if self.model_path is not None and self.model_path.is_file():
            return LatencyModel.load(self.model_path, space)
        model = fit_latency_model(space, settings=self.fit, measure_settings=self.measure,
                                  device=device, seed=seed, on_sample=on_sample)  # fmt: skip
        if self.model_path is not None:
            model.save(self.model_path)
        return model


def _measured(
    res: WidthSearchResult, space: WidthSpace, setup: LatencySetup, device: Any
) -> WidthSearchResult:
    res.measured_latency_ms = measure_widths(space, res.widths, settings=setup.measure,
                                             device=device)  # fmt: skip
    return res


class LatencyTargetMissed(UserWarning):
    """A width search's winner, timed after the search, is slower than its latency target
    (the search only saw the latency model's prediction)."""


def latency_check(
    name: str, entry: dict[str, Any], model_info: dict[str, Any] | None
) -> str | None:
    """A warning when ``entry`` (a result dict with ``latency_target_ms`` and
    ``measured_latency_ms``) misses its target, else None; also issued as a
    :class:`LatencyTargetMissed` warning. The message names the target, the measured and
    the predicted latency and the latency model's held-out error, the likely cause."""
    target, measured = entry.get("latency_target_ms"), entry.get("measured_latency_ms")
    if target is None or measured is None or measured <= target:
        return None
    model = ""
    if model_info and "val_nrmse" in model_info:
        model = f"; the latency model's held-out error is {100 * model_info['val_nrmse']:.0f}%"
    pred = entry.get("pred_latency_ms")
    predicted = "" if pred is None else f" (predicted {pred:.4g} ms)"
    message = (
        f"{name}: the chosen widths measure {measured:.4g} ms{predicted}, "
        f"{100 * (measured / target - 1):.0f}% over the {target:.4g} ms target{model}"
    )
    warnings.warn(message, LatencyTargetMissed, stacklevel=2)
    return message


def run_retrain(
    out_dir: str | Path,
    recipe: Recipe,
    *,
    seed: int | None = None,
    with_uniform: bool = False,
    data_root: str | Path | None = None,
    device: str | torch.device = "cpu",
    quiet: bool = True,
) -> dict[str, Any]:
    """Retrain the configuration in ``out_dir/search.json``; write ``retrain.json``."""
    out = Path(out_dir)
    rec = read_json(out / SEARCH_FILE, "width-search")
    sp = rec["space"]
    seed = int(rec["data_seed"]) if seed is None else int(seed)
    data = load_data(rec["dataset"], seed=int(rec["data_seed"]), limit=rec["limit"], root=data_root)
    now = data_fingerprint(data)
    if rec.get("data", now) != now:  # records of older versions carry no fingerprint
        raise SearchError(
            f"{out / SEARCH_FILE} was searched on other {rec['dataset']} data than "
            f"{data_root or 'the default data directory'} holds (data fingerprint "
            f"{rec['data']} then, {now} now); retrain on the data of the search"
        )
    space = space_for(
        rec["backbone"], data, bins=sp["bins"], levels=sp["levels"], min_ratio=sp["min_ratio"]
    )
    runs = {"searched": rec["result"]}
    if with_uniform:
        runs["uniform"] = rec["uniform"]
    entries = {}
    for key, res in runs.items():
        tr = retrain_widths(space, res["widths"], data, recipe, seed=seed, device=device,
                            quiet=quiet)  # fmt: skip
        entries[key] = _retrain_entry(res, tr)
    record = {
        "format": FORMAT,
        "kind": "width-retrain",
        "backbone": rec["backbone"],
        "dataset": rec["dataset"],
        "budget_mflops": rec["result"]["budget_mflops"],
        "recipe": recipe.to_dict(),
        "seed": seed,
        "runs": entries,
    }
    atomic_write_json(out / RETRAIN_FILE, record)
    return record


def _retrain_entry(res: dict[str, Any], tr: TrainResult) -> dict[str, Any]:
    last = tr.epochs[-1].eval if tr.epochs else {}
    return {
        "algorithm": res["algorithm"],
        "widths": res["widths"],
        "flops_m": res["flops_m"],
        "params_m": res["params_m"],
        "supernet_acc": res.get("supernet_acc"),
        "status": tr.status,
        "valid_acc": last.get("valid", {}).get("acc"),
        "test_acc": last.get("test", {}).get("acc"),
        "train": tr.to_dict(),
    }


#: The supernet methods ``run_compare`` trains in each mode (uniform scaling is added).
COMPARE_METHODS = {"flops": ("cafenet", "fixed"), "latency": ("cafenet", "fixed", "aows")}


@dataclass(frozen=True)
class _Ground:
    """What every width job stands on: the resolved device, the data, the space, and how
    its latency model is obtained."""

    device: torch.device | str
    data: DatasetSplits
    space: WidthSpace
    setup: LatencySetup


@dataclass(frozen=True)
class WidthJob:
    """One width-search job: the backbone and data, the space's binning, the supernet and
    evolution settings, the latency setup, the device and seed, and where its files go.

    :meth:`search` (``nasforge width search``) and :meth:`compare` (``nasforge width
    compare``) run on the same job, so both read one set of options; each is a few parts
    that read on their own (ground, budgets, searches, records), and
    :mod:`nasforge.report.width` writes the files.
    """

    backbone: str
    dataset: str
    out_dir: str | Path
    seed: int = 0
    supernet: SupernetSettings | None = None
    evolution: EvolutionSettings | None = None
    r_bins: float | None = None
    bins: BinMode | None = None
    levels: int | None = None
    min_ratio: float | None = None
    limit: int | None = None
    data_root: str | Path | None = None
    device: str | torch.device = "cpu"
    latency: LatencySetup | None = None
    aows: AOWSSettings | None = None

    # -- shared parts ----------------------------------------------------------------------
    def ground(self) -> _Ground:
        """The device, the data and the width space of this job."""
        device = resolve_device(self.device, SearchError)
        # The split never follows the search seed (DATA_SEED): every seed of a method, and
        # every method, is scored on the same validation images.
        data = load_data(self.dataset, seed=DATA_SEED, limit=self.limit, root=self.data_root)
        space = space_for(
            self.backbone, data, bins=self.bins, levels=self.levels, min_ratio=self.min_ratio
        )
        return _Ground(device, data, space, self.latency or LatencySetup())

    def make_search(
        self,
        method: str,
        ground: _Ground,
        recipe: Recipe,
        *,
        supernet: SupernetSettings | None,
        **extra: Any,
    ) -> WidthSearch:
        """The registered width search ``method`` on the job's space and settings."""
        return _make_search(method, ground.space, recipe, seed=self.seed, supernet=supernet,
                            evolution=self.evolution or EvolutionSettings(),
                            r_bins=self.r_bins, device=ground.device, **extra)  # fmt: skip

    def aows_extra(
        self, ground: _Ground, target: float, model: LatencyModel | None
    ) -> dict[str, Any]:
        """The keywords AOWS takes besides the common ones: its target and latency model."""
        return {"latency_target": target, "latency_model": model, "aows": self.aows,
                "latency_fit": ground.setup.fit, "measure": ground.setup.measure}  # fmt: skip

    # -- nasforge width search ---------------------------------------------------------------
    def search(
        self,
        *,
        recipe: Recipe,
        method: str = "cafenet",
        budget: str | None = "50%",
        latency_target: str | float | None = None,
        distill: bool | None = None,
        on_epoch: Callable[[dict[str, float]], None] | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> dict[str, Any]:
        """Train a supernet, search within the budget; write the record to ``out_dir``.

        The budget is ``budget`` (FLOPs) or, when ``latency_target`` (ms per image) is
        given, that target under a latency model measured on the job's device (``latency``):
        every method then searches under the same model and every result's latency is
        measured, so methods compare at equal measured latency. ``aows`` needs a latency
        target. ``progress(phase, done, total)`` reports latency measurement and supernet
        training.
        """
        algo = check_method(method)
        target = None if latency_target is None else parse_latency_target(latency_target)
        if algo == "aows" and target is None:
            raise SearchError("aows searches under a latency target: pass --latency-target MS")
        if target is None and budget is None:
            raise SearchError("give a FLOPs budget or a latency target")
        say = progress or (lambda *_: None)
        ground = self.ground()
        lat_model, b = self._search_budget(ground, budget, target, say=say)
        extra: dict[str, Any] = {"distill": distill}
        if algo == "aows":
            assert target is not None
            extra.update(self.aows_extra(ground, target, lat_model))
        uni = UniformWidth(ground.space).search(b)
        record = self._search_head(ground, method, algo, budget, target, lat_model)
        search = None
        if algo == "uniform-width":
            result = uni
            record["settings"] = {"algorithm": algo}
        else:
            search = self.make_search(algo, ground, recipe, supernet=self.supernet, **extra)
            result = self._searched(search, ground, b, uni, record, recipe, on_epoch, say)
        if lat_model is not None:
            _measured(result, ground.space, ground.setup, ground.device)
            _measured(uni, ground.space, ground.setup, ground.device)
        record["result"] = result.to_dict()
        record["uniform"] = uni.to_dict()
        # the target is a constraint: a winner that misses it when timed is said so, in the
        # record and as a warning, never passed off as meeting it
        record["warnings"] = [
            w
            for name, entry in ((algo, record["result"]), ("uniform-width", record["uniform"]))
            if (w := latency_check(name, entry, record["latency_model"])) is not None
        ]
        supernet_file = None
        if search is not None:
            assert search.supernet is not None
            supernet_file = self._supernet_file(record, method, recipe, search)
        save_search_record(Path(self.out_dir), record, supernet_file)
        return record

    def _search_budget(
        self,
        ground: _Ground,
        budget: str | None,
        target: float | None,
        *,
        say: Callable[[str, int, int], None],
    ) -> tuple[LatencyModel | None, Budget]:
        """The search's limit: the FLOPs budget, or the latency target under a latency model
        measured (or loaded) on the job's device."""
        space = ground.space
        if target is None:
            return None, Budget.flops(space, space.parse_budget(budget))
        model = ground.setup.model(space, device=ground.device, seed=self.seed,
                                   on_sample=lambda i, n: say("latency samples", i, n))  # fmt: skip
        check_latency_target(model, target)
        return model, Budget.latency(model, target)

    def _search_head(
        self,
        ground: _Ground,
        method: str,
        algo: str,
        budget: str | None,
        target: float | None,
        lat_model: LatencyModel | None,
    ) -> dict[str, Any]:
        """The part of ``search.json`` known before any training."""
        return {
            "format": FORMAT,
            "kind": "width-search",
            "backbone": self.backbone,
            "dataset": self.dataset,
            "data_seed": DATA_SEED,
            "limit": self.limit,
            "data": data_fingerprint(ground.data),
            "budget": None if budget is None or target is not None else str(budget),
            "latency_target_ms": target,
            "method": method,
            "sharing": {"cafenet": "cafenet", "fixed-width": "fixed"}.get(algo),
            "space": ground.space.describe(),
            "latency_model": None if lat_model is None else lat_model.info,
        }

    def _searched(
        self,
        search: WidthSearch,
        ground: _Ground,
        b: Budget,
        uni: WidthSearchResult,
        record: dict[str, Any],
        recipe: Recipe,
        on_epoch: Callable[[dict[str, float]], None] | None,
        say: Callable[[str, int, int], None],
    ) -> WidthSearchResult:
        """Train ``search``'s supernet, search within ``b``; score uniform scaling on the same
        supernet; the training and the scores go into ``record``."""
        log = search.fit(ground.data, on_epoch=on_epoch,
                         progress=lambda i, n: say("supernet training", i, n))  # fmt: skip
        result = search.search(b, progress=lambda i, n: say("search", i, n))
        uni.supernet_acc = search.score(tuple(uni.widths))
        record["settings"] = search.settings()
        record["recipe"] = recipe.to_dict()  # the supernet's training recipe
        record["supernet_log"] = log.to_dict()
        record["uniform_front"] = uniform_front(search)
        if isinstance(search, AOWSSearch):
            record["unary_scores"] = {"result": search.unary_score(result.widths),
                                      "uniform": search.unary_score(uni.widths)}  # fmt: skip
        return result

    @staticmethod
    def _supernet_file(
        record: dict[str, Any], method: str, recipe: Recipe, search: WidthSearch
    ) -> dict[str, Any]:
        """The trained supernet's weights with the identity of the run that trained them (as
        every checkpoint)."""
        assert search.supernet is not None
        identity = {k: record[k] for k in ("backbone", "dataset", "data_seed", "limit", "data")}
        identity.update(
            method=method, sharing=record["sharing"], recipe=recipe.to_dict(),
            settings=record["settings"],
        )  # fmt: skip
        return {
            "format": FORMAT,
            "identity": identity,
            "state_dict": search.supernet.net.state_dict(),
        }

    # -- nasforge width compare --------------------------------------------------------------
    def compare(
        self,
        *,
        supernet_recipe: Recipe,
        retrain_recipe: Recipe,
        budgets: Sequence[str] = (),
        aows_recipe: Recipe | None = None,
        latency_targets: Sequence[str | float] | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """CafeNet, fixed sharing and uniform scaling at the same budgets, all retrained
        alike.

        FLOPs mode (``budgets``): each supernet is trained once and searched at every budget.
        Latency mode (``latency_targets``, ms per image): one latency model of the space is
        measured on the job's device (``latency``) and every method -- AOWS too -- searches
        under it at each target; every winner's latency is then *measured*, so the methods
        compare at equal measured latency. AOWS trains once, its adaptive sampling aimed at
        the middle target, and decodes (OWS) at each target. Every winner (and the uniform
        configuration of each budget) is retrained with ``retrain_recipe`` and the job's
        seed. AOWS's supernet trains with ``aows_recipe`` (``nasforge width compare``:
        AOWS's own ``aows-20e``) if given, else with ``supernet_recipe``.
        """
        say = progress or (lambda _msg: None)
        mode = "flops" if latency_targets is None else "latency"
        targets = (
            None if latency_targets is None else [parse_latency_target(t) for t in latency_targets]
        )
        if mode == "flops" and not budgets:
            raise SearchError("compare needs at least one FLOPs budget or a latency target")
        if targets is not None and not targets:
            raise SearchError("compare needs at least one latency target")
        ground = self.ground()
        lat_model, limits = self._compare_limits(ground, budgets, targets, say)
        found, logs = self._search_all(
            ground, mode, limits, targets, lat_model, supernet_recipe, aows_recipe, say
        )
        found["uniform-width"] = [UniformWidth(ground.space).search(b) for b in limits]
        methods, compare_warnings = self._retrain_all(ground, found, lat_model, retrain_recipe, say)
        record = {
            "format": FORMAT,
            "kind": "width-compare",
            "mode": mode,
            "backbone": self.backbone,
            "dataset": self.dataset,
            "device": str(ground.device),
            "seed": self.seed,
            "limit": self.limit,
            "budgets": list(budgets) if targets is None else [f"{t:g}ms" for t in targets],
            "budgets_mflops": None if targets is not None else [b.limit for b in limits],
            "latency_targets_ms": targets,
            "latency_model": None if lat_model is None else lat_model.info,
            "space": ground.space.describe(),
            "supernet_recipe": supernet_recipe.to_dict(),
            "aows_recipe": (aows_recipe or supernet_recipe).to_dict(),
            "retrain_recipe": retrain_recipe.to_dict(),
            "supernet_logs": logs,
            "methods": methods,
            "warnings": compare_warnings,
        }
        save_compare_record(Path(self.out_dir), record)
        return record

    def _compare_limits(
        self,
        ground: _Ground,
        budgets: Sequence[str],
        targets: list[float] | None,
        say: Callable[[str], None],
    ) -> tuple[LatencyModel | None, list[Budget]]:
        """One limit per budget (FLOPs) or per target (under one measured latency model)."""
        if targets is None:
            return None, [Budget.flops(ground.space, b) for b in budgets]
        say("measuring the latency model")
        model = ground.setup.model(ground.space, device=ground.device, seed=self.seed)
        for t in targets:
            check_latency_target(model, t)
        return model, [Budget.latency(model, t) for t in targets]

    def _search_all(
        self,
        ground: _Ground,
        mode: str,
        limits: list[Budget],
        targets: list[float] | None,
        lat_model: LatencyModel | None,
        supernet_recipe: Recipe,
        aows_recipe: Recipe | None,
        say: Callable[[str], None],
    ) -> tuple[dict[str, list[WidthSearchResult]], dict[str, Any]]:
        """Each method of the mode: one supernet trained, searched at every limit; the
        results per method and the supernet training logs."""
        found: dict[str, list[WidthSearchResult]] = {}
        logs: dict[str, Any] = {}
        for method in COMPARE_METHODS[mode]:
            extra: dict[str, Any] = {}
            if method == "aows":
                assert targets is not None and lat_model is not None
                extra = self.aows_extra(ground, sorted(targets)[len(targets) // 2], lat_model)
            search = self.make_search(
                method,
                ground,
                aows_recipe if method == "aows" and aows_recipe is not None else supernet_recipe,
                # AOWS keeps its own sandwich (one random width, in-place distillation).
                supernet=None if method == "aows" else self.supernet,
                **extra,
            )
            say(f"training the {search.name} supernet")
            logs[search.name] = search.fit(ground.data).to_dict()
            found[search.name] = []
            for b in limits:
                say(f"{search.name}: searching within {b.limit:.4g} {b.unit}")
                found[search.name].append(search.search(b))
        return found, logs

    def _retrain_all(
        self,
        ground: _Ground,
        found: dict[str, list[WidthSearchResult]],
        lat_model: LatencyModel | None,
        retrain_recipe: Recipe,
        say: Callable[[str], None],
    ) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
        """Every winner timed (latency mode) and retrained with one recipe and seed: the
        entries per method, and the warnings of winners that miss their latency target."""
        methods: dict[str, list[dict[str, Any]]] = {}
        compare_warnings: list[str] = []
        model_info = None if lat_model is None else lat_model.info
        for method, results in found.items():
            methods[method] = []
            for res in results:
                if lat_model is not None:
                    _measured(res, ground.space, ground.setup, ground.device)
                say(f"retraining {method} at {res.widths}")
                tr = retrain_widths(ground.space, res.widths, ground.data, retrain_recipe,
                                    seed=self.seed, device=ground.device)  # fmt: skip
                d = res.to_dict()
                entry = _retrain_entry(d, tr)
                entry["budget_mflops"] = res.budget_mflops
                for k in ("latency_target_ms", "pred_latency_ms", "measured_latency_ms"):
                    entry[k] = d[k]
                entry["evaluated"] = len(res.evaluated)
                del entry["train"]["epochs"][:-1]  # keep the final epoch only
                missed = latency_check(method, entry, model_info)
                if missed is not None:
                    compare_warnings.append(missed)
                methods[method].append(entry)
        return methods, compare_warnings


_JOB_FIELDS = frozenset(f.name for f in fields(WidthJob))


def _split_job(kwargs: dict[str, Any]) -> tuple[WidthJob, dict[str, Any]]:
    job = WidthJob(**{k: v for k, v in kwargs.items() if k in _JOB_FIELDS})
    return job, {k: v for k, v in kwargs.items() if k not in _JOB_FIELDS}


def run_search(
    *,
    backbone: str,
    dataset: str,
    out_dir: str | Path,
    recipe: Recipe,
    method: str = "cafenet",
    sharing: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """:meth:`WidthJob.search` in one call: the job's fields and the search's options as
    keywords (``sharing`` is the former name of ``method``: ``cafenet`` / ``fixed``)."""
    job, rest = _split_job({"backbone": backbone, "dataset": dataset, "out_dir": out_dir,
                            **options})  # fmt: skip
    return job.search(recipe=recipe, method=sharing if sharing is not None else method, **rest)


def run_compare(
    *, backbone: str, dataset: str, out_dir: str | Path, **options: Any
) -> dict[str, Any]:
    """:meth:`WidthJob.compare` in one call: the job's fields and the comparison's options
    as keywords (unknown keywords are a ``TypeError``, as any call's)."""
    job, rest = _split_job({"backbone": backbone, "dataset": dataset, "out_dir": out_dir,
                            **options})  # fmt: skip
    return job.compare(**rest)


__all__ = [
    "COMPARE_FILE",
    "FRONT_RATIOS",
    "RETRAIN_FILE",
    "SEARCH_FILE",
    "WidthJob",
    "load_data",
    "read_json",
    "retrain_widths",
    "run_compare",
    "run_retrain",
    "run_search",
    "space_for",
    "train_standalone",
    "uniform_front",
]

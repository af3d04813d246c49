"""SM-NAS (Yao et al., "SM-NAS: Structural-to-Modular Neural Architecture Search for
Object Detection", AAAI 2020): a two-stage, multi-objective search of detectors trained
from scratch, scored on accuracy (COCO mAP) and measured inference time.

Stage 1, structural (paper: "structural-level searching stage"): module combinations --
backbone, neck, head, input resolution -- from :class:`~nasforge.spaces.smnas.SmNasSpace`'s
grid, at base width ``width`` (16; 8 for the quickest CPU runs). Generation 0 draws ``population`` distinct combinations; each further generation
mutates one module of parents drawn from the current Pareto front (evolution on the
front, as the paper's stage 1). Stage 2, modular (paper: "modular-level searching
stage"; Vega's ``SMNasM``, vega/algorithms/nas/sm_nas/smnas_m.py): the ``parents`` best
(by mAP) front members of stage 1 are evolved by Vega's backbone mutation
(insert / remove / swap per stage, ``num_mutate`` 3: smnas_m.py:87-100) plus a width
step; each generation's ``children`` are drawn from the current front. Vega mutates
every sample from the stage-1 model's code (smnas_m.py:41-48, ``max_sample`` 2): that is
this search's first modular generation; later generations (``modular_generations`` > 1)
mutate the modular archs on the front instead, the paper's "pushes the Pareto front
forward".

Every candidate is trained from scratch (ConvWS + GroupNorm everywhere, the paper's fast
from-scratch recipe; ``--recipe``, default ``smnas-det``; ``--epochs`` overrides its
length), scored on the ``valid`` split with pycocotools' COCOeval, and timed end to end
(resize + network + decoding + NMS, batch 1, eval mode, the run's torch threads;
median of ``latency_repeats``) on this machine's CPU -- the paper measured GPU time.
Objectives: maximise mAP, minimise latency; the front is the non-dominated set
(``nasforge.search.pareto``'s non-dominated sorting, shared with NSGA-II / MO-REA). The derived arch is the
front member with the best valid mAP (``select=best-map``, the paper reports its whole
front E0-E5) or the fastest (``select=fastest``).

Written: ``candidates.json`` (every trained candidate with its stage and generation),
``front.json`` and ``front.png`` (mAP vs measured latency, both stages, front marked).

Not verified against official code: Vega ships the modular stage only (the structural
search ``SMNasS`` named in its example configuration is not in the repository), so the
structural evolution follows the paper's description; the population sizes are tiny,
CPU scale.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nasforge.errors import SearchError
from nasforge.io import atomic_save_figure, atomic_write_json
from nasforge.search.task_search import TASK_SEARCHES, TaskSearch, TaskSearchResult, TaskSearchSpec

#: Method settings (``--param KEY=VALUE``) and their defaults.
DEFAULTS: dict[str, Any] = {
    "population": 6,
    "structural_generations": 1,
    "modular_generations": 1,
    "children": 4,
    "parents": 2,
    "num_mutate": 3,
    "latency_repeats": 10,
    "select": "best-map",
    "width": 16,
}
_SELECT = ("best-map", "fastest")


@dataclass
class Candidate:
    """One trained detector: where it came from and what it scored."""

    stage: str
    generation: int
    arch: str
    map: float
    ap50: float
    latency_ms: float
    params: int
    train_time_s: float
    parent: str | None = None


def _pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the non-dominated points of (mAP to maximise, latency to minimise), by
    latency: the first front of :func:`nasforge.search.pareto.nondominated_mask` (issue
    #29's shared non-dominated sorting)."""
    from nasforge.search.pareto import nondominated_mask, to_minimisation

    if not points:
        return []
    mask = nondominated_mask(to_minimisation(points, [True, False]))
    return sorted(np.flatnonzero(mask).tolist(), key=lambda i: points[i][1])


def check_params(params: dict[str, Any]) -> dict[str, Any]:
    """The settings with defaults filled in; one-line :class:`SearchError` otherwise."""
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise SearchError(
            f"sm-nas has no --param {', '.join(unknown)}; expected some of {sorted(DEFAULTS)}"
        )
    out = {**DEFAULTS, **params}
    for key in ("population", "children", "parents", "num_mutate", "latency_repeats"):
        v = out[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise SearchError(f"sm-nas --param {key}={v!r}: expected an int >= 1")
    for key in ("structural_generations", "modular_generations"):
        v = out[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise SearchError(f"sm-nas --param {key}={v!r}: expected an int >= 0")
    if out["structural_generations"] < 1:
        raise SearchError(
            "sm-nas --param structural_generations=0: the structural stage needs >= 1"
        )
    from nasforge.spaces.smnas import WIDTHS

    if out["width"] not in WIDTHS:
        raise SearchError(f"sm-nas --param width={out['width']!r}: expected one of {list(WIDTHS)}")
    if out["select"] not in _SELECT:
        raise SearchError(
            f"sm-nas --param select={out['select']!r}: expected one of {list(_SELECT)}"
        )
    return out


@TASK_SEARCHES.register("sm-nas")
class SmNasSearch(TaskSearch):
    """SM-NAS's structural-then-modular search (module docstring)."""

    spaces = ("smnas",)
    tasks = ("detection-digits",)

    def run(self, spec: TaskSearchSpec, out: Path) -> TaskSearchResult:
        from nasforge.spaces import get_space
        from nasforge.train import get_recipe

        p = check_params(dict(spec.params))
        recipe = get_recipe(spec.recipe or spec.task.default_recipe)
        if spec.epochs is not None:
            recipe = recipe.replace(epochs=spec.epochs)
        spec.task.check_recipe(recipe)
        space = get_space(spec.space)
        data = spec.task.load(spec.dataset, spec.data_dir, seed=spec.seed, limit=spec.limit)
        rng = np.random.default_rng(spec.seed)
        t0 = time.perf_counter()
        self._models: dict[str, Any] = {}
        cands: list[Candidate] = []
        seen: set[str] = set()

        def evaluate(arch: Any, stage: str, gen: int, parent: str | None) -> None:
            key = space.to_string(arch)
            if key in seen:
                return
            seen.add(key)
            cands.append(self._train(arch, key, data, recipe, spec, p, stage, gen, parent))
            # Progress of a long search: every finished candidate is on disk at once.
            atomic_write_json(out / "candidates.json", [asdict(c) for c in cands])

        def front() -> list[Candidate]:
            return [cands[i] for i in _pareto_front([(c.map, c.latency_ms) for c in cands])]

        # Stage 1: structural.
        grid = space.structural_grid(p["width"])
        picks = rng.choice(len(grid), size=min(p["population"], len(grid)), replace=False)
        for i in picks:
            evaluate(grid[int(i)], "structural", 0, None)
        for gen in range(1, p["structural_generations"]):
            parents = front()
            for _ in range(p["children"]):
                par = parents[int(rng.integers(len(parents)))]
                evaluate(
                    space.mutate(space.from_string(par.arch), rng), "structural", gen, par.arch
                )
        structural_front = front()
        # Stage 2: modular, from the best structural combinations.
        ranked = sorted(structural_front, key=lambda c: -c.map)[: p["parents"]]
        pool = [c.arch for c in ranked]
        for gen in range(p["modular_generations"]):
            for _ in range(p["children"]):
                par = pool[int(rng.integers(len(pool)))]
                child = space.mutate_backbone(space.from_string(par), rng, p["num_mutate"])
                evaluate(child, "modular", gen, par)
            # The next generation's parents: the modular-stage archs now on the front.
            pool = [c.arch for c in front() if c.stage == "modular" or c.arch in pool] or pool
        final_front = front()
        chosen = (
            max(final_front, key=lambda c: c.map)
            if p["select"] == "best-map"
            else min(final_front, key=lambda c: c.latency_ms)
        )
        search_time = time.perf_counter() - t0
        test = self._test_metrics(chosen.arch, data, spec)
        atomic_write_json(out / "candidates.json", [asdict(c) for c in cands])
        fronts = {
            "objectives": {"map": "max (valid, %)", "latency_ms": "min (CPU, batch 1)"},
            "structural_front": [asdict(c) for c in structural_front],
            "final_front": [asdict(c) for c in final_front],
        }
        atomic_write_json(out / "front.json", fronts)
        _plot(cands, final_front, out / "front.png")
        metrics = {
            "map": chosen.map,
            "ap50": chosen.ap50,
            **{f"test_{k}": v for k, v in test.items()},
        }
        return TaskSearchResult(
            arch=chosen.arch,
            metrics=metrics,
            search_time_s=search_time,
            extra={
                "latency_ms": chosen.latency_ms,
                "params": chosen.params,
                "recipe": recipe.to_dict(),
                "candidates": len(cands),
                "front": [asdict(c) for c in final_front],
                "settings": p,
            },
        )

    def _train(
        self,
        arch: Any,
        key: str,
        data: Any,
        recipe: Any,
        spec: TaskSearchSpec,
        p: dict[str, Any],
        stage: str,
        gen: int,
        parent: str | None,
    ) -> Candidate:
        from nasforge.cost.latency import latency
        from nasforge.nn import build_network
        from nasforge.nn.smnas import EndToEnd
        from nasforge.train import fit_fresh

        io = spec.task.network_io(data)
        result, model = fit_fresh(
            lambda: build_network(spec.space, arch, io=io),
            data,
            recipe,
            seed=spec.seed,
            device=spec.device,
            task=spec.task,
            eval_splits=["valid"],
            # float32 on every device: focal loss and box targets lose too much in bf16.
            amp=False,
        )
        if result.status != "ok" or not result.epochs:
            # A diverged candidate is kept as the worst possible one, not dropped silently.
            valid = {"map": 0.0, "ap50": 0.0}
        else:
            valid = result.epochs[-1].eval["valid"]
        model = model.cpu()
        res = data.resolution
        lat = latency(EndToEnd(model), (1, 3, res, res), warmup=2, repeats=p["latency_repeats"])
        self._models[key] = model
        return Candidate(
            stage=stage,
            generation=gen,
            arch=key,
            map=float(valid["map"]),
            ap50=float(valid["ap50"]),
            latency_ms=1000.0 * lat,
            params=sum(q.numel() for q in model.parameters()),
            train_time_s=result.total_train_time,
            parent=parent,
        )

    def _test_metrics(self, key: str, data: Any, spec: TaskSearchSpec) -> dict[str, float]:
        """The chosen detector's metrics on ``test`` (when the data have it)."""
        if "test" not in data.evals:
            return {}
        task = spec.task
        loader = task.loader(data, "test", 16, train=False)
        with torch.no_grad():
            m = task.evaluate(self._models[key], loader)
        return {"map": m["map"], "ap50": m["ap50"]}


def _plot(cands: list[Candidate], front: list[Candidate], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for stage, marker in (("structural", "o"), ("modular", "s")):
        pts = [c for c in cands if c.stage == stage]
        ax.scatter(
            [c.latency_ms for c in pts], [c.map for c in pts], marker=marker, label=stage, alpha=0.7
        )
    ax.plot(
        [c.latency_ms for c in front], [c.map for c in front], "k--", lw=1, label="Pareto front"
    )
    ax.set_xlabel("CPU latency (ms, batch 1)")
    ax.set_ylabel("valid mAP@[.5:.95] (%)")
    ax.legend()
    fig.tight_layout()
    atomic_save_figure(fig, path)
    plt.close(fig)

"""Benchmark: how well does a width supernet rank widths? Fixed sharing, CafeNet, AOWS.

    .venv/bin/python benchmarks/width_ranking.py --out benchmarks/results/width_ranking.json

Data: real CIFAR-10 (``../shared/data/cifar-10-subset-py``: 10k train / 2k test), read as
the ``cifar10-valid`` setting with a seeded split (the official split files index all 50k
images and do not apply): ``numpy.random.default_rng(0).permutation(10000)`` -> 5,000
train / 5,000 valid; the 2,000 test images are reported, never used to decide. To fit a
2-core machine the images are area-downsampled to ``--resolution`` 16 px (2x2 means of the
uint8 pixels, random-crop padding scaled from 4 to 2): every network, supernet and
stand-alone, sees the same 16 px data, so the ranking question is unchanged while each
step costs a quarter. ResNet-20 with FLOPs-sensitive bins (FLOPs at 16 px).

1. trains, for each of ``--seeds`` supernet seeds: a fixed-sharing supernet with in-place
   distillation (sandwich rule, as AutoSlim / BigNAS), a CafeNet supernet (locally free
   sharing, free zone of 1 FLOPs-sensitive bin, min-min over 3 placements, no
   distillation) and an AOWS supernet (fixed sharing + in-place distillation, adaptive
   sampling under a latency model measured here);
2. draws ``--configs`` width configurations spread over the FLOPs range (stratified by
   FLOPs quantile) and scores each: fixed / CafeNet by supernet validation accuracy after
   BN recalibration on 2,048 training images; AOWS by the sum of its learnt unaries;
3. trains every configuration stand-alone from scratch with two seeds (one ground truth
   shared by all methods: the mean of the two validation accuracies); the pairs give the
   noise floor of that ground truth (seed-to-seed SD against the spread across
   configurations, and the tau between the two seeds' rankings). ``--noise-configs`` N <
   ``--configs`` repeats only N of them and uses the first seed as the ground truth;
4. reports Kendall's tau of each method against the stand-alone accuracies, averaged over
   supernet seeds, with bootstrap 95% CIs (configurations and supernet seeds resampled),
   and the paired bootstrap CI of CafeNet minus fixed sharing: the verdict says whether
   CafeNet's claim (a better ranking than fixed sharing) holds here.

Work runs on ``--workers`` local processes (``nasforge.run``), one torch thread each;
``--work-dir`` keeps every finished unit (one supernet, one stand-alone training) so an
interrupted run resumes where it stopped. The JSON records wall time and CPU time
(``getrusage`` SELF + CHILDREN, and per unit; summed over the invocations of a resumed run);
the machine it ran on was shared, so timing claims rest on CPU time. It also measures the
analytic FLOPs throughput (a batch of configurations vs counting each built module). A figure (tau with CIs per method; stand-alone accuracy vs
FLOPs) is written next to the JSON.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import resource
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import kendalltau

from nasforge.cost import count_flops
from nasforge.cost.latency_model import (
    LatencyFitSettings,
    LatencyModel,
    MeasureSettings,
    fit_latency_model,
)
from nasforge.data import DatasetSplits, DeviceLoader
from nasforge.data.base import Split
from nasforge.data.splits import FallbackSplitWarning
from nasforge.io import atomic_write_json
from nasforge.nn.backbones import build_from_spec
from nasforge.run import create_executor
from nasforge.search.width import CafeNetSearch, FixedWidthSearch
from nasforge.search.width.aows import AOWSSearch, AOWSSettings
from nasforge.search.width.protocol import load_data, space_for, train_standalone
from nasforge.train import evaluate, get_recipe

#: Real CIFAR-10 subset shipped beside the repository (see ../shared/data/README.md).
DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cifar-10-subset-py"

METHODS = {"fixed-width": FixedWidthSearch, "cafenet": CafeNetSearch, "aows": AOWSSearch}
#: What each method's supernet is, for the JSON and the figure.
LABELS = {
    "fixed-width": "fixed sharing + in-place distillation (AutoSlim/BigNAS sandwich)",
    "cafenet": "CafeNet: locally free sharing (r=1 bin), min-min over 3 placements",
    "aows": "AOWS unaries: fixed sharing + in-place distillation, adaptive sampling",
}
SHORT = {"fixed-width": "fixed+distill", "cafenet": "CafeNet", "aows": "AOWS unaries"}


def downsample(data: DatasetSplits, resolution: int) -> DatasetSplits:
    """Every split area-downsampled to ``resolution`` px (means of f x f uint8 pixels,
    rounded); the random-crop padding scales with it (at least 1 pixel)."""
    if resolution == data.resolution:
        return data
    f = data.resolution // resolution
    if f < 2 or f * resolution != data.resolution:
        raise SystemExit(f"--resolution must divide {data.resolution}, got {resolution}")

    def down(s: Split) -> Split:
        x = F.avg_pool2d(s.images.float(), f).round().clamp(0, 255).to(torch.uint8)
        return Split(s.name, x.contiguous(), s.labels)

    return DatasetSplits(
        data.name,
        down(data.train),
        {k: down(v) for k, v in data.evals.items()},
        data.num_classes,
        resolution,
        data.mean,
        data.std,
        max(1, round(data.pad / f)),
        data.flip,
        (*data.notes, f"area-downsampled {data.resolution} -> {resolution} px"),
    )


@functools.lru_cache(maxsize=2)
def _setup(key: tuple) -> tuple:
    args = argparse.Namespace(**dict(key))
    data = load_data(args.dataset, seed=args.seed, limit=args.limit, root=args.data_dir)
    data = downsample(data, args.resolution)
    space = space_for(args.backbone, data)
    sup = get_recipe("nb201-200e", epochs=args.supernet_epochs, batch_size=args.batch_size)
    sa = get_recipe("nb201-200e", epochs=args.standalone_epochs, batch_size=args.batch_size)
    return data, space, sup, sa


#: The arguments that decide a unit's result (the cache key of ``--work-dir``).
RESULT_ARGS = ("backbone", "dataset", "data_dir", "limit", "resolution", "seed",
               "supernet_epochs", "standalone_epochs", "batch_size")  # fmt: skip


def _setup_key(args: argparse.Namespace) -> tuple:
    return tuple((k, getattr(args, k)) for k in RESULT_ARGS)


def stratified_configs(space: Any, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` configurations at evenly spaced FLOPs quantiles (5%..95%) of random samples."""
    pool = space.sample(rng, 20000)
    order = np.argsort(space.flops(pool))
    picks = np.round(np.linspace(0.05, 0.95, n) * (len(pool) - 1)).astype(int)
    return pool[order[picks]]


def tau(a: Any, b: Any) -> float:
    t = kendalltau(a, b).statistic
    return float(t) if np.isfinite(t) else float("nan")


def _task(task: tuple) -> dict:
    """One unit of work (runs in a worker process): a supernet or a stand-alone training."""
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", FallbackSplitWarning)
    kind, key, payload = task
    data, space, sup_recipe, sa_recipe = _setup(key)
    t, c = time.perf_counter(), time.process_time()
    if kind == "supernet":
        name, seed, configs, extra = payload
        if "latency_model_path" in extra:
            extra = dict(extra)
            extra["latency_model"] = LatencyModel.load(extra.pop("latency_model_path"), space)
        search = METHODS[name](space, recipe=sup_recipe, seed=seed, **extra)
        log = search.fit(data)
        train_s, train_cpu = time.perf_counter() - t, time.process_time() - c
        cfgs = [tuple(int(v) for v in w) for w in configs]
        if isinstance(search, AOWSSearch):
            scores = [search.unary_score(w) for w in cfgs]  # AOWS ranks by its unaries
        else:
            scores = [search.score(w) for w in cfgs]
        last = log.epochs[-1]
        return {
            "name": name,
            "seed": seed,
            "scores": scores,
            "train_s": train_s,
            "train_cpu_s": train_cpu,
            "wall_s": time.perf_counter() - t,
            "cpu_s": time.process_time() - c,
            "info": {
                "final_train_acc_largest": last["acc_largest"],
                "final_train_acc_smallest": last["acc_smallest"],
                "free_win_rate": log.to_dict()["free_win_rate"],
                "settings": {
                    k: v
                    for k, v in search.settings().items()
                    if k not in ("recipe", "latency_model")
                },
            },
        }
    widths, seed = payload
    # Evaluated once, after the last epoch (per-epoch evaluation would cost ~40% more).
    model, tr = train_standalone(space, [int(v) for v in widths], data, sa_recipe, seed=seed,
                                 eval_splits=[])  # fmt: skip
    acc = {
        s: evaluate(model, DeviceLoader(data.split(s), data, 256, train=False))["acc"]
        for s in ("valid", "test")
    }
    return {
        "widths": [int(v) for v in widths],
        "seed": seed,
        "valid": acc["valid"],
        "test": acc["test"],
        "train_acc": tr.final("train"),
        "wall_s": time.perf_counter() - t,
        "cpu_s": time.process_time() - c,
    }


def _unit_name(kind: str, key: tuple, payload: tuple) -> str:
    if kind == "supernet":
        name, seed, configs, _ = payload
        ident: Any = [name, seed, np.asarray(configs).tolist()]
    else:
        ident = [[int(v) for v in payload[0]], payload[1]]
    blob = json.dumps([kind, [[k, str(v)] for k, v in key], ident]).encode()
    return f"{kind}-{hashlib.sha1(blob).hexdigest()[:16]}.json"


def bootstrap_tau(
    scores: dict[str, list[list[float]]],
    truth: list[float],
    rng: np.random.Generator,
    n_boot: int,
) -> dict:
    """Mean-over-seeds Kendall tau per method with bootstrap 95% CIs.

    Each resample draws the configurations with replacement (the same draw for every
    method, so differences between methods are paired) and, per method, its supernet
    seeds with replacement (the supernets of two methods are independent networks).
    """
    n = len(truth)
    t = np.asarray(truth)
    idx = rng.integers(0, n, size=(n_boot, n))
    per_seed = {
        m: np.array([[tau(np.asarray(s)[sel], t[sel]) for s in v] for sel in idx])
        for m, v in scores.items()
    }
    boots = {}
    for m, v in per_seed.items():
        k = v.shape[1]
        pick = rng.integers(0, k, size=(n_boot, k))
        boots[m] = np.nanmean(np.take_along_axis(v, pick, axis=1), axis=1)

    def ci(x: np.ndarray) -> list[float]:
        return [float(np.nanpercentile(x, 2.5)), float(np.nanpercentile(x, 97.5))]

    out: dict[str, Any] = {}
    for m, v in scores.items():
        seeds = [tau(s, truth) for s in v]
        out[m] = {"label": LABELS[m], "tau": float(np.nanmean(seeds)), "tau_per_seed": seeds,
                  "ci95": ci(boots[m])}  # fmt: skip
    for m in scores:
        if m != "fixed-width" and "fixed-width" in boots:
            d = boots[m] - boots["fixed-width"]
            out[f"{m}_minus_fixed-width"] = {
                "tau": out[m]["tau"] - out["fixed-width"]["tau"],
                "ci95": ci(d),
                "p_boot_le_0": float(np.mean(d <= 0)),
            }
    return out


def noise_floor(
    sa_valid: list[float], first: list[float], second: list[float], *, truth_seeds: int = 1
) -> dict:
    """Seed-to-seed noise of the stand-alone accuracies against their spread over configs.

    ``seed_sd_acc``: the SD of one run's accuracy (from the repeated pairs); the ground
    truth, a mean of ``truth_seeds`` runs, has ``seed_sd / sqrt(truth_seeds)``; it is above
    its noise floor when the spread across configurations exceeds 3 such SDs.
    """
    a, b = np.asarray(first), np.asarray(second)
    one = float(np.std(a - b, ddof=1) / np.sqrt(2)) if len(a) > 1 else float("nan")
    sd = one / np.sqrt(truth_seeds)
    spread = float(np.std(sa_valid, ddof=1))
    s = np.sort(np.asarray(sa_valid))
    gaps = np.diff(s)
    return {
        "repeated_configs": len(a),
        "seed_sd_acc": one,
        "truth_seeds": truth_seeds,
        "truth_sd_acc": sd,
        "mean_abs_repeat_diff": float(np.mean(np.abs(a - b))),
        "spread_sd_acc": spread,
        "range_acc": [float(s[0]), float(s[-1])],
        "spread_over_noise": spread / sd if sd > 0 else float("inf"),
        "median_neighbour_gap_acc": float(np.median(gaps)),
        "tau_repeat": tau(a, b),
        "above_noise_floor": bool(sd > 0 and spread > 3 * sd),
    }


def plot(out: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nasforge.io import atomic_save_figure

    kt = out["kendall_tau"]
    methods = [m for m in METHODS if m in kt]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11.0, 4.0), dpi=120)
    try:
        for i, m in enumerate(methods):
            r = kt[m]
            lo, hi = r["ci95"]
            ax.errorbar([i], [r["tau"]], yerr=[[r["tau"] - lo], [hi - r["tau"]]], fmt="o",
                        capsize=5, color=f"C{i}", label="mean over seeds, 95% CI")  # fmt: skip
            ax.scatter([i + 0.12] * len(r["tau_per_seed"]), r["tau_per_seed"], s=12,
                       color=f"C{i}", alpha=0.5, label="one supernet seed")  # fmt: skip
        ref = kt["flops (reference)"]["tau"]
        ax.axhline(ref, color="gray", ls="--", lw=1, label=f"FLOPs alone ({ref:.2f})")
        nf = kt["standalone repeat (noise floor, subset)"]["tau"]
        ax.axhline(nf, color="k", ls=":", lw=1, label=f"stand-alone repeat ({nf:.2f})")
        ax.axhline(0, color="gray", lw=0.6)
        ax.set_xticks(range(len(methods)), [SHORT[m] for m in methods])
        ax.set_ylabel("Kendall tau vs stand-alone valid acc")
        h, lab = ax.get_legend_handles_labels()
        keep = {lab_: h_ for h_, lab_ in zip(h, lab, strict=True)}
        ax.legend(keep.values(), keep.keys(), fontsize=7, loc="lower left")
        ax.set_title(f"ranking quality, {len(out['configs'])} configs, "
                     f"{len(out['supernet_seeds'])} seeds", fontsize=10)  # fmt: skip
        ax.grid(alpha=0.3)
        cf = out["configs"]
        ax2.scatter([c["flops_m"] for c in cf],
                    [c.get("standalone_valid_acc_seed0", c["standalone_valid_acc"]) for c in cf],
                    s=14, label="stand-alone, seed 0")  # fmt: skip
        rep = [c for c in cf if "standalone_valid_acc_repeat" in c]
        ax2.scatter([c["flops_m"] for c in rep], [c["standalone_valid_acc_repeat"] for c in rep],
                    s=14, marker="x", color="C3", label="repeat, seed 1")  # fmt: skip
        ax2.set_xlabel("MFLOPs")
        ax2.set_ylabel("stand-alone valid accuracy (%)")
        ax2.set_title(f"{out['backbone']} on {out['dataset']} ({out['resolution']} px)",
                      fontsize=10)  # fmt: skip
        ax2.legend(fontsize=7)
        ax2.grid(alpha=0.3)
        fig.tight_layout()
        atomic_save_figure(fig, path)
    finally:
        plt.close(fig)


def flops_throughput(space: Any, rng: np.random.Generator) -> dict:
    """Analytic FLOPs of a batch of configurations vs counting each built module."""
    batch = space.sample(rng, 100_000)
    t = time.perf_counter()
    space.flops(batch)
    vec = time.perf_counter() - t
    few = batch[:20]
    shape = (1, 3, space.spec.resolution, space.spec.resolution)
    t = time.perf_counter()
    counted = [count_flops(build_from_spec(space.spec, list(w)), shape) for w in few]
    mod = (time.perf_counter() - t) / len(few)
    return {
        "configs_per_s_analytic": len(batch) / vec,
        "configs_per_s_module_counter": 1.0 / mod,
        "speedup": (len(batch) / vec) * mod,
        "analytic_equals_counter": bool(np.allclose(counted, space.flops(few), rtol=1e-12)),
    }


def _cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backbone", default="resnet20")
    ap.add_argument("--dataset", default="cifar10-valid")
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--limit", type=int, default=2000,
                    help="keep N samples per split (default 2000: 2,000 each)")  # fmt: skip
    ap.add_argument("--resolution", type=int, default=16, help="area-downsample to R px")
    ap.add_argument("--configs", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=3, help="supernet seeds per method")
    ap.add_argument("--methods", default="fixed-width,cafenet,aows")
    ap.add_argument("--supernet-epochs", type=int, default=4)
    ap.add_argument("--standalone-epochs", type=int, default=8)
    ap.add_argument("--noise-configs", type=int, default=20,
                    help="configs retrained with a second seed (noise floor; all of them: "
                    "the ground truth is the mean of the two seeds)")  # fmt: skip
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--latency-samples", type=int, default=200)
    ap.add_argument("--latency-batch", type=int, default=16)
    ap.add_argument("--bootstrap", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2, help="worker processes (1 thread each)")
    ap.add_argument("--work-dir", type=Path, default=None,
                    help="keep finished units here and reuse them (resume)")  # fmt: skip
    ap.add_argument("--skip-standalone", action="store_true",
                    help="supernets only (timing slices); no taus")  # fmt: skip
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", FallbackSplitWarning)
    t_start, cpu_start = time.perf_counter(), _cpu_s()
    rng = np.random.default_rng(args.seed)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or args.configs < 3 or args.seeds < 1:
        raise SystemExit(f"methods must be among {sorted(METHODS)} (got {unknown}); "
                         f"need >= 3 configs and >= 1 seed")  # fmt: skip
    key = _setup_key(args)
    data, space, sup_recipe, sa_recipe = _setup(key)
    configs = stratified_configs(space, args.configs, rng)
    flops = space.flops(configs).tolist()
    n_noise = min(args.noise_configs, len(configs))
    sub = np.round(np.linspace(0, len(configs) - 1, n_noise)).astype(int).tolist()
    work = args.work_dir
    if work is not None:
        work.mkdir(parents=True, exist_ok=True)
    extras: dict[str, dict] = {m: {} for m in methods}
    lat_info = None
    if "aows" in methods:
        # One latency model for every AOWS seed, measured here (1 thread, as the workers);
        # kept in --work-dir so a resumed run trains against the same model.
        t, c = time.perf_counter(), time.process_time()
        lat_path = (work or Path("/nonexistent")) / "latency_model.json"
        if work is not None and lat_path.is_file():
            lat = LatencyModel.load(lat_path, space)
        else:
            lat = fit_latency_model(
                space,
                settings=LatencyFitSettings(samples=args.latency_samples, val_samples=50),
                measure_settings=MeasureSettings(
                    batch_size=args.latency_batch, warmup=2, repeats=5
                ),
                seed=args.seed,
            )
            if work is not None:
                lat.save(lat_path)
        lat_info = {**lat.info, "fit_s": time.perf_counter() - t,
                    "fit_cpu_s": time.process_time() - c}  # fmt: skip
        target = float(np.median(lat.predict(configs)))
        extras["aows"] = {"latency_target": target,
                          "aows": AOWSSettings(warmup=max(1, args.supernet_epochs // 4))}  # fmt: skip
        if work is not None:
            extras["aows"]["latency_model_path"] = str(lat_path)
        else:
            extras["aows"]["latency_model"] = lat
    out: dict = {
        "benchmark": "width_ranking",
        "command": " ".join(["python", *sys.argv]),
        "backbone": args.backbone,
        "dataset": args.dataset,
        "data_dir": str(args.data_dir),
        "resolution": args.resolution,
        "split": f"seeded fallback split, numpy.random.default_rng({args.seed})",
        "data": data.summary(),
        "data_notes": list(data.notes),
        "space": {k: v for k, v in space.describe().items() if k != "groups"},
        "supernet_recipe": sup_recipe.to_dict(),
        "standalone_recipe": sa_recipe.to_dict(),
        "seed": args.seed,
        "supernet_seeds": list(range(args.seed, args.seed + args.seeds)),
        "methods": {m: LABELS[m] for m in methods},
        "workers": args.workers,
        "threads_per_worker": 1,
        "latency_model": lat_info,
        "flops_throughput": flops_throughput(space, np.random.default_rng([args.seed, 5])),
        "configs": [
            {"widths": [int(v) for v in w], "flops_m": f}
            for w, f in zip(configs, flops, strict=True)
        ],
    }
    seeds = out["supernet_seeds"]
    tasks = [("supernet", key, (m, s, configs, extras[m])) for s in seeds for m in methods]
    n_sup = len(tasks)
    if not args.skip_standalone:
        tasks += [("standalone", key, (configs[i], args.seed)) for i in range(len(configs))]
        tasks += [("standalone", key, (configs[i], args.seed + 1)) for i in sub]
    # Run order: the first seed's supernets, the ground truth, then the other seeds, so an
    # interrupted run (resumed with --work-dir) has complete results for fewer seeds early.
    first = len(methods)
    order = [*range(first), *range(n_sup, len(tasks)), *range(first, n_sup)]
    results: list = [None] * len(tasks)
    todo = []
    for i in order:
        kind, k, payload = tasks[i]
        f = None if work is None else work / _unit_name(kind, k, payload)
        if f is not None and f.is_file():
            results[i] = json.loads(f.read_text())
        else:
            todo.append(i)
    print(f"{len(tasks) - len(todo)} units reused from {work}, {len(todo)} to run",
          file=sys.stderr)  # fmt: skip
    with create_executor("local", workers=args.workers, threads_per_worker=1) as ex:
        for o in ex.map(_task, [tasks[i] for i in todo]):
            if not o.ok:
                raise RuntimeError(f"task {todo[o.index]} failed:\n{o.error}")
            i = todo[o.index]
            results[i] = o.value
            if work is not None:
                atomic_write_json(work / _unit_name(*tasks[i]), o.value)
            print(f"done unit {i} ({tasks[i][0]}, {o.value['cpu_s']:.0f} CPU-s, "
                  f"{o.value['wall_s']:.0f} s); {time.perf_counter() - t_start:.0f} s so far",
                  file=sys.stderr)  # fmt: skip
    sup_results = results[:n_sup]
    scores = {m: [r["scores"] for r in sup_results if r["name"] == m] for m in methods}
    out["supernets"] = [{k: r[k] for k in ("name", "seed", "info")} for r in sup_results]
    for i, c in enumerate(out["configs"]):
        c["scores"] = {m: [v[i] for v in scores[m]] for m in methods}
    if not args.skip_standalone:
        standalone = results[n_sup : n_sup + len(configs)]
        second = [r["valid"] for r in results[n_sup + len(configs) :]]
        first_valid = [s["valid"] for s in standalone]
        # The ground truth: with every configuration trained twice, the mean of its two
        # seeds (half the seed variance); else the first seed's accuracy.
        sa_valid = list(first_valid)
        both = len(sub) == len(configs)
        if both:
            sa_valid = [(a + b) / 2 for a, b in zip(first_valid, second, strict=True)]
        out["ground_truth"] = (
            "mean valid accuracy of 2 stand-alone seeds per configuration"
            if both
            else "valid accuracy of 1 stand-alone seed per configuration"
        )
        for i, c in enumerate(out["configs"]):
            c["standalone_valid_acc"] = sa_valid[i]
            c["standalone_valid_acc_seed0"] = first_valid[i]
            c["standalone_test_acc"] = standalone[i]["test"]
            c["standalone_train_acc"] = standalone[i]["train_acc"]
        for i, v in zip(sub, second, strict=True):
            out["configs"][i]["standalone_valid_acc_repeat"] = v
        kt = bootstrap_tau(scores, sa_valid, np.random.default_rng([args.seed, 9]),
                           args.bootstrap)  # fmt: skip
        kt["flops (reference)"] = {"tau": tau(flops, sa_valid)}
        kt["standalone repeat (noise floor, subset)"] = {
            "tau": tau([first_valid[i] for i in sub], second),
            "note": "tau between two stand-alone seeds: the agreement of one-seed ground truths",
        }
        kt["test split"] = {
            m: float(np.nanmean([tau(s, [x["test"] for x in standalone]) for s in scores[m]]))
            for m in methods
        }
        out["kendall_tau"] = kt
        out["noise_floor"] = noise_floor(sa_valid, [first_valid[i] for i in sub], second,
                                         truth_seeds=2 if both else 1)  # fmt: skip
        out["noise_floor_subset"] = sub
        if "cafenet_minus_fixed-width" in kt:
            d = kt["cafenet_minus_fixed-width"]
            lo, hi = d["ci95"]
            what = (
                "holds: CafeNet ranks better than fixed sharing + distillation"
                if lo > 0
                else "does not hold: CafeNet ranks WORSE than fixed sharing + distillation"
                if hi < 0
                else "is not shown: no significant difference between CafeNet and fixed "
                "sharing + distillation"
            )
            out["verdict"] = (
                f"CafeNet's claim {what} (tau {kt['cafenet']['tau']:.3f} vs "
                f"{kt['fixed-width']['tau']:.3f}; difference {d['tau']:+.3f}, 95% CI "
                f"[{lo:+.3f}, {hi:+.3f}])"
            )
            nf = out["noise_floor"]
            if not nf["above_noise_floor"]:
                out["verdict"] += (
                    f"; caveat: the stand-alone ground truth is not clearly above its noise "
                    f"floor (spread across configurations {nf['spread_sd_acc']:.2f} points = "
                    f"{nf['spread_over_noise']:.2f}x its seed noise SD {nf['truth_sd_acc']:.2f})"
                )
    units = [r for r in results if r is not None]
    wall, cpu = time.perf_counter() - t_start, _cpu_s() - cpu_start
    # Every invocation's cost (a resumed run sums them), kept beside the units.
    calls: list[dict] = []
    log_path = None if work is None else work / "invocations.json"
    if log_path is not None and log_path.is_file():
        calls = json.loads(log_path.read_text())
    calls.append({"wall_s": wall, "cpu_s_rusage_self_children": cpu, "units_run": len(todo)})
    if log_path is not None:
        atomic_write_json(log_path, calls)
    out["timings"] = {
        "supernets": {
            f"{r['name']}_seed{r['seed']}": {
                k: r[k] for k in ("train_s", "train_cpu_s", "wall_s", "cpu_s")
            }
            for r in sup_results
        },
        "standalone_cpu_s_total": sum(r["cpu_s"] for r in results[n_sup:]),
        "units_cpu_s_total": sum(r["cpu_s"] for r in units),
        "units_reused": len(tasks) - len(todo),
        "invocations": calls,
        "wall_s": sum(c["wall_s"] for c in calls),
        "cpu_s_rusage_self_children": sum(c["cpu_s_rusage_self_children"] for c in calls),
        "machine": "2 CPU cores shared with other jobs: wall time depends on load, CPU time "
        "is the cost",
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.out is not None:
        atomic_write_json(args.out, out)
        if "kendall_tau" in out:
            plot(out, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()

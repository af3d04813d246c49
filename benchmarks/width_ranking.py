"""Benchmark: how well does a width supernet rank widths? Fixed sharing, CafeNet, AOWS.

    .venv/bin/python benchmarks/width_ranking.py --out benchmarks/results/width_ranking.json

Default data: real CIFAR-10 (``../shared/data/cifar-10-subset-py``: 10k train / 2k test),
read as the ``cifar10-valid`` setting with a seeded split (the official split files index
all 50k images and do not apply): ``numpy.random.default_rng(seed).permutation(10000)`` ->
5,000 train / 5,000 valid; the 2,000 test images are reported, never used to decide.
ResNet-20 with FLOPs-sensitive bins.

1. trains, for each of ``--seeds`` supernet seeds, a fixed-sharing supernet (sandwich +
   in-place distillation, as AutoSlim / BigNAS), a CafeNet supernet (free zone of 1
   FLOPs-sensitive bin, min-min) and an AOWS supernet (sandwich + in-place distillation,
   adaptive sampling under a latency model measured on this machine);
2. draws ``--configs`` width configurations spread over the FLOPs range (stratified by
   FLOPs quantile) and scores each: fixed / CafeNet by supernet validation accuracy after
   BN recalibration on >= 2,000 training images; AOWS by the sum of its learnt unaries;
3. trains every configuration stand-alone from scratch and takes its validation accuracy
   (a subset twice, with another seed: the noise floor of the ground truth);
4. reports Kendall's tau of each method against the stand-alone accuracies, averaged over
   supernet seeds, with bootstrap 95% confidence intervals (configurations resampled), and
   the paired bootstrap CI of CafeNet minus fixed sharing: the verdict says whether
   CafeNet's claim (a better ranking than fixed sharing) holds here.

Work runs on ``--workers`` local processes (``nasforge.run``), one torch thread each. A
figure (tau with CIs per method) is written next to the JSON.

Sizing (defaults: 2,000 train / 2,000 valid images, 20 configurations, 3 seeds x 3
methods, 5 supernet and 5 stand-alone epochs, batch 128): an estimated ~230 CPU-minutes,
extrapolated (not run) from one measured cost -- a full-width ResNet-20 train step takes
37 ms/image on one thread of the loaded 2-core machine -- and the FLOPs of each phase:
about 2 h wall on 2 workers there; an idle machine should be several times faster. The
full subset (``--limit 5000``: 5,000 / 5,000) with 10 epochs is ~5x that.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau

from nasforge.cost import count_flops
from nasforge.cost.latency_model import LatencyFitSettings, MeasureSettings, fit_latency_model
from nasforge.data.splits import FallbackSplitWarning
from nasforge.io import atomic_write_json
from nasforge.nn.backbones import build_from_spec
from nasforge.run import create_executor
from nasforge.search.width import CafeNetSearch, FixedWidthSearch
from nasforge.search.width.aows import AOWSSearch, AOWSSettings
from nasforge.search.width.protocol import load_data, retrain_widths, space_for
from nasforge.train import get_recipe

#: Real CIFAR-10 subset shipped beside the repository (see ../shared/data/README.md).
DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cifar-10-subset-py"


def stratified_configs(space, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` configurations at evenly spaced FLOPs quantiles (5%..95%) of random samples."""
    pool = space.sample(rng, 20000)
    order = np.argsort(space.flops(pool))
    picks = np.round(np.linspace(0.05, 0.95, n) * (len(pool) - 1)).astype(int)
    return pool[order[picks]]


def tau(a: list[float], b: list[float]) -> float:
    t = kendalltau(a, b).statistic
    return float(t) if np.isfinite(t) else float("nan")


def flops_throughput(space, rng: np.random.Generator) -> dict:
    batch = space.sample(rng, 100_000)
    t = time.perf_counter()
    space.flops(batch)
    vec = time.perf_counter() - t
    few = batch[:20]
    t = time.perf_counter()
    counted = [
        count_flops(build_from_spec(space.spec, list(w)), (1, 3, space.spec.resolution,
                    space.spec.resolution))
        for w in few
    ]  # fmt: skip
    mod = (time.perf_counter() - t) / len(few)
    exact = bool(np.allclose(counted, space.flops(few), rtol=1e-12))
    return {
        "configs_per_s_analytic": len(batch) / vec,
        "configs_per_s_module_counter": 1.0 / mod,
        "speedup": (len(batch) / vec) * mod,
        "analytic_equals_counter": exact,
    }


def _setup(args: argparse.Namespace):
    data = load_data(args.dataset, seed=args.seed, limit=args.limit, root=args.data_dir)
    space = space_for(args.backbone, data)
    sup = get_recipe("nb201-200e", epochs=args.supernet_epochs, batch_size=args.batch_size)
    sa = get_recipe("nb201-200e", epochs=args.standalone_epochs, batch_size=args.batch_size)
    return data, space, sup, sa


METHODS = {"fixed-width": FixedWidthSearch, "cafenet": CafeNetSearch, "aows": AOWSSearch}


def _task(task: tuple) -> dict:
    """One unit of work (runs in a worker process): a supernet or a stand-alone training."""
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", FallbackSplitWarning)
    kind, args, payload = task
    data, space, sup_recipe, sa_recipe = _setup(args)
    t = time.perf_counter()
    if kind == "supernet":
        name, seed, configs, extra = payload
        search = METHODS[name](space, recipe=sup_recipe, seed=seed, **extra)
        log = search.fit(data)
        train_s = time.perf_counter() - t
        t = time.perf_counter()
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
            "scoring_s": time.perf_counter() - t,
            "info": {
                "final_train_acc_largest": last["acc_largest"],
                "final_train_acc_smallest": last["acc_smallest"],
                "free_win_rate": log.to_dict()["free_win_rate"],
                "settings": {k: v for k, v in search.settings().items() if k != "recipe"},
            },
        }
    widths, seed = payload
    tr = retrain_widths(space, [int(v) for v in widths], data, sa_recipe, seed=seed)
    return {"valid": tr.final("valid"), "test": tr.final("test"), "s": time.perf_counter() - t}


def bootstrap_tau(
    scores: dict[str, list[list[float]]],
    truth: list[float],
    rng: np.random.Generator,
    n_boot: int,
) -> dict:
    """Mean-over-seeds Kendall tau per method with bootstrap 95% CIs (configurations
    resampled with replacement; the same resamples for every method, so differences are
    paired)."""
    n = len(truth)
    t = np.asarray(truth)
    idx = rng.integers(0, n, size=(n_boot, n))

    def mean_tau(per_seed: list[list[float]], sel: np.ndarray) -> float:
        vals = [tau(list(np.asarray(s)[sel]), list(t[sel])) for s in per_seed]
        return float(np.nanmean(vals))

    boots = {m: np.array([mean_tau(v, i) for i in idx]) for m, v in scores.items()}
    out = {
        m: {
            "tau": mean_tau(v, np.arange(n)),
            "tau_per_seed": [tau(s, truth) for s in v],
            "ci95": [
                float(np.nanpercentile(boots[m], 2.5)),
                float(np.nanpercentile(boots[m], 97.5)),
            ],
        }
        for m, v in scores.items()
    }
    if "cafenet" in boots and "fixed-width" in boots:
        d = boots["cafenet"] - boots["fixed-width"]
        out["cafenet_minus_fixed"] = {
            "tau": out["cafenet"]["tau"] - out["fixed-width"]["tau"],
            "ci95": [float(np.nanpercentile(d, 2.5)), float(np.nanpercentile(d, 97.5))],
        }
    return out


def plot(out: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nasforge.io import atomic_save_figure

    rows = [
        (m, r) for m, r in out["kendall_tau"].items() if "ci95" in r and m != "cafenet_minus_fixed"
    ]
    fig, ax = plt.subplots(figsize=(6.0, 3.6), dpi=120)
    try:
        for i, (_, r) in enumerate(rows):
            lo, hi = r["ci95"]
            ax.errorbar([i], [r["tau"]], yerr=[[r["tau"] - lo], [hi - r["tau"]]], fmt="o",
                        capsize=4, color=f"C{i}")  # fmt: skip
        ax.set_xticks(range(len(rows)), [m for m, _ in rows])
        ax.axhline(0, color="gray", lw=0.8)
        ax.set_ylabel("Kendall tau vs stand-alone valid acc")
        ax.set_title(f"{out['backbone']} on {out['dataset']}: ranking quality (95% bootstrap CI)")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        atomic_save_figure(fig, path)
    finally:
        plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backbone", default="resnet20")
    ap.add_argument("--dataset", default="cifar10-valid")
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--limit", type=int, default=2000,
                    help="keep N samples per split (default 2000: train/valid/test 2000 each)")  # fmt: skip
    ap.add_argument("--configs", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=3, help="supernet seeds per method")
    ap.add_argument("--methods", default="fixed-width,cafenet,aows")
    ap.add_argument("--supernet-epochs", type=int, default=5)
    ap.add_argument("--standalone-epochs", type=int, default=5)
    ap.add_argument("--noise-configs", type=int, default=6,
                    help="configs retrained with a second seed (noise floor)")  # fmt: skip
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--latency-samples", type=int, default=300)
    ap.add_argument("--latency-batch", type=int, default=16)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2, help="worker processes (1 thread each)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", FallbackSplitWarning)
    t_start = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or args.configs < 3 or args.seeds < 1:
        raise SystemExit(f"methods must be among {sorted(METHODS)} (got {unknown}); "
                         f"need >= 3 configs and >= 1 seed")  # fmt: skip
    data, space, sup_recipe, sa_recipe = _setup(args)
    configs = stratified_configs(space, args.configs, rng)
    flops = space.flops(configs).tolist()
    sub = np.round(np.linspace(0, len(configs) - 1, args.noise_configs)).astype(int).tolist()
    extras: dict[str, dict] = {m: {} for m in methods}
    lat_info = None
    if "aows" in methods:
        # One latency model for every AOWS seed, measured here (1 thread, as the workers).
        t = time.perf_counter()
        lat = fit_latency_model(
            space,
            settings=LatencyFitSettings(samples=args.latency_samples, val_samples=50),
            measure_settings=MeasureSettings(batch_size=args.latency_batch, warmup=2, repeats=5),
            seed=args.seed,
        )
        lat_info = {**lat.info, "fit_s": time.perf_counter() - t}
        target = float(np.median(lat.predict(configs)))
        extras["aows"] = {"latency_target": target, "latency_model": lat,
                          "aows": AOWSSettings(warmup=max(1, args.supernet_epochs // 4))}  # fmt: skip
    out: dict = {
        "benchmark": "width_ranking",
        "command": " ".join(sys.argv),
        "backbone": args.backbone,
        "dataset": args.dataset,
        "data_dir": str(args.data_dir),
        "split": f"seeded fallback split, numpy.random.default_rng({args.seed})",
        "data": data.summary(),
        "space": {k: v for k, v in space.describe().items() if k != "groups"},
        "supernet_recipe": sup_recipe.to_dict(),
        "standalone_recipe": sa_recipe.to_dict(),
        "seed": args.seed,
        "supernet_seeds": list(range(args.seed, args.seed + args.seeds)),
        "workers": args.workers,
        "threads_per_worker": 1,
        "latency_model": lat_info,
        "flops_throughput": flops_throughput(space, rng),
        "configs": [
            {"widths": [int(v) for v in w], "flops_m": f}
            for w, f in zip(configs, flops, strict=False)
        ],
    }
    seeds = out["supernet_seeds"]
    tasks = [("supernet", args, (m, s, configs, extras[m])) for s in seeds for m in methods]
    n_sup = len(tasks)
    tasks += [("standalone", args, (configs[i], args.seed)) for i in range(len(configs))]
    tasks += [("standalone", args, (configs[i], args.seed + 1)) for i in sub]
    results: list = [None] * len(tasks)
    with create_executor("local", workers=args.workers, threads_per_worker=1) as ex:
        for o in ex.map(_task, tasks):
            if not o.ok:
                raise RuntimeError(f"task {o.index} failed:\n{o.error}")
            results[o.index] = o.value
            print(f"done {o.index + 1}/{len(tasks)} ({o.run_time:.0f} s)", file=sys.stderr)
    sup_results = results[:n_sup]
    scores = {m: [r["scores"] for r in sup_results if r["name"] == m] for m in methods}
    standalone = results[n_sup : n_sup + len(configs)]
    second = [r["valid"] for r in results[n_sup + len(configs) :]]
    sa_valid = [s["valid"] for s in standalone]
    for i, c in enumerate(out["configs"]):
        c["scores"] = {m: [v[i] for v in scores[m]] for m in methods}
        c["standalone_valid_acc"] = sa_valid[i]
        c["standalone_test_acc"] = standalone[i]["test"]
    out["supernets"] = [{k: r[k] for k in ("name", "seed", "info")} for r in sup_results]
    out["kendall_tau"] = bootstrap_tau(scores, sa_valid, np.random.default_rng([args.seed, 9]),
                                       args.bootstrap)  # fmt: skip
    out["kendall_tau"]["flops (reference)"] = {"tau": tau(flops, sa_valid)}
    out["kendall_tau"]["standalone seed0 vs seed1 (noise floor, subset)"] = {
        "tau": tau([sa_valid[i] for i in sub], second)
    }
    out["noise_floor_subset"] = sub
    if "cafenet_minus_fixed" in out["kendall_tau"]:
        lo, hi = out["kendall_tau"]["cafenet_minus_fixed"]["ci95"]
        out["verdict"] = (
            "CafeNet ranks better than fixed sharing (95% CI of the difference above 0)"
            if lo > 0
            else "CafeNet ranks worse than fixed sharing (95% CI of the difference below 0)"
            if hi < 0
            else "no significant difference between CafeNet and fixed sharing (95% CI spans 0)"
        )
    out["timings"] = {
        **{f"{r['name']}_seed{r['seed']}_train_s": r["train_s"] for r in sup_results},
        "standalone_train_s_total": sum(r["s"] for r in results[n_sup:]),
        "wall_s": time.perf_counter() - t_start,
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.out is not None:
        atomic_write_json(args.out, out)
        plot(out, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()

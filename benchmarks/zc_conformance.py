"""Zero-cost proxies on real CIFAR-10 against the published NB201 scores.

For a seeded sample of the architectures of ``../shared/nb201/reference_archs.json`` (whose
``zc_*`` scores were published with NAS-Bench-Suite-Zero, measured on real CIFAR-10 with
NASLib), compute every proxy with nasforge on the real CIFAR-10 subset
(``../shared/data/cifar-10-subset-py``, one batch of 64 training images, network C=16 N=5,
seed 0), and report per proxy the Spearman rank correlation between our scores and the
published ones, and of each with the archs' published validation accuracy.

The proxy rows are written resumably (``--rows``), so the script can be stopped and rerun;
the statistics are over the rows present. Prints JSON.

    PYTHONPATH=src python benchmarks/zc_conformance.py --archs 60 \
        --rows benchmarks/results/zc_conformance_rows.csv > benchmarks/results/zc_conformance.json
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from nasforge.evaluate.proxies import PROXIES
from nasforge.evaluate.zero_cost import proxy_batch, score_archs

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def _rho(a: list[float], b: list[float]) -> float | None:
    x, y = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return None
    r = spearmanr(x[ok], y[ok]).statistic
    return None if not math.isfinite(r) else round(float(r), 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--archs", type=int, default=60, help="how many archs to sample")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=64)
    # one intra-op thread: the batch is small and the machine shared, so a second thread
    # mostly adds synchronisation (538 s/arch measured with 2 threads under load, ~45 s of
    # CPU with 1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--cpu-minutes",
        type=float,
        default=None,
        help="stop starting new archs once this process has used this much CPU time",
    )
    ap.add_argument("--rows", default="benchmarks/results/zc_conformance_rows.csv")
    ap.add_argument("--no-compute", action="store_true", help="only summarise the rows present")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    ref_path = SHARED / "nb201" / "reference_archs.json"
    data_dir = SHARED / "data" / "cifar-10-subset-py"
    if not ref_path.exists() or not data_dir.exists():
        sys.exit(f"needs {ref_path} and {data_dir}")
    ref = [r for r in json.loads(ref_path.read_text()) if r["dataset"] == "cifar10"]
    rng = np.random.default_rng(args.seed)
    sample = [ref[int(i)] for i in rng.permutation(len(ref))[: args.archs]]
    proxies = PROXIES.names()
    t0 = time.perf_counter()

    def cpu_s() -> float:
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    cpu0 = cpu_s()

    def within_budget(archs: list[str]):
        for arch in archs:
            if args.cpu_minutes is not None and cpu_s() - cpu0 > 60.0 * args.cpu_minutes:
                print("CPU budget spent; rerun to continue", file=sys.stderr)
                return
            yield arch

    if not args.no_compute:
        batch = proxy_batch("cifar10", root=data_dir, batch_size=args.batch_size, seed=args.seed)
        score_archs(
            within_budget([r["arch"] for r in sample]),
            proxies,
            batch,
            args.rows,
            seed=args.seed,
            on_row=lambda row: print(f"{row['arch']} {row['seconds']:.1f}s", file=sys.stderr),
        )
    from nasforge.evaluate.zero_cost import read_rows

    ours = {r["arch"]: r for r in read_rows(args.rows)}
    by_arch = {r["arch"]: r for r in sample}
    archs = [a for a in by_arch if a in ours]
    val = [by_arch[a]["val_accuracy"] for a in archs]
    table = {}
    for name in proxies:
        mine = [ours[a][name] for a in archs]
        pub_key = f"zc_{name}"
        pub = [by_arch[a].get(pub_key, math.nan) for a in archs]
        if name == "params":
            pub = [by_arch[a]["params_m"] for a in archs]
        elif name == "flops":
            pub = [by_arch[a]["flops_m"] for a in archs]
        has_pub = any(math.isfinite(p) for p in pub)
        table[name] = {
            "rho_ours_vs_published": _rho(mine, pub) if has_pub else None,
            "rho_published_vs_val": _rho(pub, val) if has_pub else None,
            "rho_ours_vs_val": _rho(mine, val),
        }
    # the cost proxies of every reference arch, from the analytic counter (equal to the
    # params / flops proxies, tested in tests/test_zero_cost.py): cheap enough for all 725
    from nasforge.cost import arch_cost

    costs = [arch_cost(r["arch"], "cifar10") for r in ref]
    val_all = [r["val_accuracy"] for r in ref]
    all_archs = {
        name: {
            "rho_ours_vs_published": _rho([getattr(c, f"{name}_m") for c in costs], pub),
            "rho_published_vs_val": _rho(pub, val_all),
            "rho_ours_vs_val": _rho([getattr(c, f"{name}_m") for c in costs], val_all),
        }
        for name, pub in (
            ("params", [r["params_m"] for r in ref]),
            ("flops", [r["flops_m"] for r in ref]),
        )
    }
    secs = [ours[a]["seconds"] for a in archs]
    print(
        json.dumps(
            {
                "benchmark": "zc_conformance",
                "data": "cifar-10-subset-py (real CIFAR-10, 10k train images), one batch",
                "published": "reference_archs.json zc_* (NAS-Bench-Suite-Zero), params_m/flops_m",
                "batch_size": args.batch_size,
                "network": {"C": 16, "N": 5},
                "seed": args.seed,
                "num_archs": len(archs),
                "seconds_per_arch_all_proxies": {
                    "mean": round(float(np.mean(secs)), 2) if secs else None,
                    "median": round(float(np.median(secs)), 2) if secs else None,
                    "threads": args.threads,
                    "note": "wall seconds on a shared 2-core machine (rows of earlier calls "
                    "included); CPU time of this call below",
                },
                "wall_seconds_this_call": round(time.perf_counter() - t0, 1),
                "cpu_seconds_this_call": round(cpu_s() - cpu0, 1),
                "spearman": table,
                "cost_proxies_all_archs": {"num_archs": len(ref), "spearman": all_archs},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

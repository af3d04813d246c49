"""Benchmark: our table vs the official NAS-Bench-201 API — open time, RSS, query latency.

    .venv/bin/python benchmarks/bench_api.py [--workdir DIR] [--official-fraction 0.03125]

1. Generates the full-size synthetic table (15,625 archs x 3 datasets x 3 seeds x
   {12, 200} epochs, the metric set of the official files) in our format.
2. Writes the same numbers in the official NB201 ``.pth`` format with the official
   package's own classes (``nas_201_api.ArchResults`` / ``ResultsCount``). A full-size
   official file needs ~25-30 GB of RAM to build or load (the issue quotes ~28 GB for
   v1.1), more than this machine has, so the official side holds a documented fraction of
   the archs (every k-th index; ``meta_archs`` still lists all 15,625) and its open time
   and RSS are also extrapolated linearly to the full size. Our side is always full size.
3. Measures each API in a fresh subprocess: open time, RSS after open (VmRSS; also the
   increase over the process after its imports), and the mean latency of queries:
   ours ``Benchmark.query`` / ``simulate`` and the compat ``get_more_info``; the official
   ``get_more_info``. Prints JSON (and writes it with ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATASETS = ("cifar10-valid", "cifar100", "ImageNet16-120")
HPS = {"12": 12, "200": 200}
SEEDS = (777, 888, 999)
TARGETS = {"open_s": 1.0, "rss_mb": 300.0, "query_us": 20.0}
N_QUERIES = 20000


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# -- measurement children (run in fresh interpreters) ------------------------------------------
def measure_ours(path: str) -> dict:
    import random

    import numpy as np

    from nasforge.bench import Benchmark
    from nasforge.bench.compat import NASBench201API

    rss0 = _rss_mb()
    t0 = time.perf_counter()
    bench = Benchmark.open(path)
    open_s = time.perf_counter() - t0
    rss_open = _rss_mb()
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 15625, N_QUERIES).tolist()
    ds = [DATASETS[i] for i in rng.integers(0, 3, N_QUERIES)]
    ep = rng.integers(1, 201, N_QUERIES).tolist()

    first_pass: dict[str, float] = {}
    cpu: dict[str, float] = {}

    def timed(fn, name: str) -> float:
        # Pass 1 maps the queried pages in (page faults); pass 2 is the steady state a
        # search loop sees. Both are reported; the headline is the steady state.
        runs, cpus = [], []
        for _ in range(2):
            t, c = time.perf_counter(), time.process_time()
            for i in range(N_QUERIES):
                fn(i)
            runs.append((time.perf_counter() - t) / N_QUERIES * 1e6)
            cpus.append((time.process_time() - c) / N_QUERIES * 1e6)
        first_pass[name] = runs[0]
        cpu[name] = cpus[1]
        return runs[1]

    out = {
        "open_s": open_s,
        "rss_after_open_mb": rss_open,
        "rss_open_increase_mb": rss_open - rss0,
        "query_mean_us": timed(lambda i: bench.query(idx[i], ds[i], hp="200"), "query_mean_us"),
        "query_one_seed_us": timed(
            lambda i: bench.query(idx[i], ds[i], hp="200", seed=888), "query_one_seed_us"
        ),
        "simulate_us": timed(
            lambda i: bench.simulate(idx[i], ds[i], hp="200", epoch=ep[i], seed=777),
            "simulate_us",
        ),
    }
    api = NASBench201API(bench, rng=random.Random(0))
    out["compat_get_more_info_us"] = timed(
        lambda i: api.get_more_info(idx[i], ds[i], ep[i] - 1, "200", False),
        "compat_get_more_info_us",
    )
    out["compat_get_more_info_random_us"] = timed(
        lambda i: api.get_more_info(idx[i], ds[i], ep[i] - 1, "200", True),
        "compat_get_more_info_random_us",
    )
    out["first_pass_us"] = first_pass
    out["cpu_time_us"] = cpu
    out["rss_after_queries_mb"] = _rss_mb()
    out["rss_note"] = (
        "rss_after_queries counts the file pages the queries mapped (shared page cache, "
        "reclaimable), not heap"
    )
    return out


def measure_official(path: str, indices_file: str) -> dict:
    import random

    import numpy as np
    from nas_201_api import NASBench201API

    indices = json.loads(Path(indices_file).read_text())
    rss0 = _rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    api = NASBench201API(path, verbose=False)
    open_s, open_cpu = time.perf_counter() - t0, time.process_time() - c0
    rss_open = _rss_mb()
    rng = np.random.default_rng(0)
    idx = [indices[i] for i in rng.integers(0, len(indices), N_QUERIES)]
    ds = [DATASETS[i] for i in rng.integers(0, 3, N_QUERIES)]
    ep = rng.integers(1, 201, N_QUERIES).tolist()
    random.seed(0)

    cpu: dict[str, float] = {}

    def timed(fn, name: str) -> float:
        for i in range(200):
            fn(i)
        t, c = time.perf_counter(), time.process_time()
        for i in range(N_QUERIES):
            fn(i)
        cpu[name] = (time.process_time() - c) / N_QUERIES * 1e6
        return (time.perf_counter() - t) / N_QUERIES * 1e6

    out = {
        "open_s": open_s,
        "open_cpu_s": open_cpu,
        "rss_after_open_mb": rss_open,
        "rss_open_increase_mb": rss_open - rss0,
        "get_more_info_us": timed(
            lambda i: api.get_more_info(idx[i], ds[i], ep[i] - 1, "200", False), "get_more_info_us"
        ),
        "get_more_info_random_us": timed(
            lambda i: api.get_more_info(idx[i], ds[i], ep[i] - 1, "200", True),
            "get_more_info_random_us",
        ),
    }
    out["cpu_time_us"] = cpu
    return out


# -- building the two files ----------------------------------------------------------------------
def build_official(table: Path, out: Path, indices: list[int]) -> None:
    """The same numbers as ``table``, in the official NB201 .pth layout."""
    import torch
    from nas_201_api import ArchResults, ResultsCount

    from nasforge.bench import Benchmark
    from nasforge.spaces.nb201 import Arch

    bench = Benchmark.open(table)
    sets = {
        "cifar10-valid": (("x-valid", "valid"), ("ori-test", "test")),
        "cifar100": (("x-valid", "valid"), ("x-test", "test"), ("ori-test", "valtest")),
        "ImageNet16-120": (("x-valid", "valid"), ("x-test", "test"), ("ori-test", "valtest")),
    }
    classes = {"cifar10-valid": 10, "cifar100": 100, "ImageNet16-120": 120}
    arch2infos = {}
    for index in indices:
        arch_str = Arch.from_index(index).to_string()
        infos = {}
        for key, hp in (("less", "12"), ("full", "200")):
            ar = ArchResults(index, arch_str)
            for ds in DATASETS:
                cost = bench.cost(index, ds)
                cfg = {
                    "channel": 16,
                    "num_cells": 5,
                    "arch_str": arch_str,
                    "class_num": classes[ds],
                }
                for seed in SEEDS:
                    c = {
                        k: v.tolist()
                        for k, v in bench.query(index, ds, hp=hp, seed=seed).curves.items()
                    }
                    E = len(c["train_acc"])
                    rc = ResultsCount(
                        ds,
                        None,
                        None,
                        None,
                        cost["params_m"],
                        cost["flops_m"],
                        cfg,
                        seed,
                        E,
                        [cost["latency_s"]],
                    )
                    rc.update_train_info(
                        dict(enumerate(c["train_acc"])),
                        None,
                        dict(enumerate(c["train_loss"])),
                        dict(enumerate(c["epoch_time"])),
                    )
                    accs, losses, times = {}, {}, {}
                    for name, ours in sets[ds]:
                        for i in range(E):
                            accs[f"{name}@{i}"] = c[f"{ours}_acc"][i]
                            losses[f"{name}@{i}"] = c[f"{ours}_loss"][i]
                            times[f"{name}@{i}"] = c[f"{ours}_time"][i]
                    rc.update_eval(accs, losses, times)
                    ar.update(ds, seed, rc)
            infos[key] = ar.state_dict()
        arch2infos[index] = infos
    meta = [Arch.from_index(i).to_string() for i in range(15625)]
    torch.save({"meta_archs": meta, "arch2infos": arch2infos, "evaluated_indexes": indices}, out)


def _child(args: list[str]) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, env=env, check=False
    )
    if r.returncode != 0:
        raise RuntimeError(f"measurement child {args} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--official-fraction", type=float, default=1 / 32)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--reuse", action="store_true", help="reuse the files already in --workdir")
    ap.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.measure:
        kind, *rest = a.measure
        res = measure_ours(*rest) if kind == "ours" else measure_official(*rest)
        print(json.dumps(res))
        return

    from nasforge.bench import make_synthetic_table

    work = a.workdir or Path(tempfile.mkdtemp(prefix="bench_api-"))
    work.mkdir(parents=True, exist_ok=True)
    ours_path, official_path = work / "nb201-synthetic.table", work / "nb201-official-format.pth"
    step = max(1, round(1 / a.official_fraction))
    indices = list(range(0, 15625, step))
    gen_s = build_s = None
    reuse = a.reuse and ours_path.exists() and official_path.exists()
    if reuse and json.loads((work / "indices.json").read_text()) != indices:
        reuse = False
    if not reuse:
        t = time.perf_counter()
        make_synthetic_table(
            ours_path, datasets=DATASETS, hps=HPS, seeds=SEEDS, dtype="float32", overwrite=True
        )
        gen_s = time.perf_counter() - t
        t = time.perf_counter()
        build_official(ours_path, official_path, indices)
        build_s = time.perf_counter() - t
        (work / "indices.json").write_text(json.dumps(indices))
        (work / "build_times.json").write_text(json.dumps([gen_s, build_s]))
    else:  # the figures of the run that built the files
        gen_s, build_s = json.loads((work / "build_times.json").read_text())

    ours = _child(["--measure", "ours", str(ours_path)])
    official = _child(["--measure", "official", str(official_path), str(work / "indices.json")])
    scale = 15625 / len(indices)
    official["extrapolated_full"] = {
        "open_s": official["open_s"] * scale,
        "rss_open_increase_mb": official["rss_open_increase_mb"] * scale,
    }
    table_bytes = sum(p.stat().st_size for p in ours_path.rglob("*") if p.is_file())
    result = {
        "benchmark": "bench_api",
        "config": {
            "archs": 15625,
            "datasets": list(DATASETS),
            "seeds": list(SEEDS),
            "hps": HPS,
            "dtype": "float32",
            "queries_per_measure": N_QUERIES,
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
        },
        "ours": {
            **ours,
            "table_bytes": table_bytes,
            "generate_s": gen_s,
            "note": "full size; page cache warm (the table was just written)",
        },
        "official": {
            **official,
            "file_bytes": official_path.stat().st_size,
            "archs": len(indices),
            "fraction": len(indices) / 15625,
            "build_s": build_s,
            "note": (
                f"official .pth holds every {step}th arch ({len(indices)} of 15,625): a full "
                "file needs ~25-30 GB of RAM to build/load, over this machine's 24 GB. "
                "extrapolated_full scales open time and RSS increase linearly to 15,625."
            ),
        },
    }
    ratios = {
        "open_time_official_full_over_ours": official["extrapolated_full"]["open_s"]
        / ours["open_s"],
        "open_time_official_fraction_over_ours": official["open_s"] / ours["open_s"],
        "get_more_info_cpu_official_over_our_query": official["cpu_time_us"]["get_more_info_us"]
        / ours["cpu_time_us"]["query_mean_us"],
        "rss_increase_official_full_over_ours": official["extrapolated_full"][
            "rss_open_increase_mb"
        ]
        / max(ours["rss_open_increase_mb"], 1e-3),
        "rss_official_fraction_over_ours": official["rss_after_open_mb"]
        / ours["rss_after_open_mb"],
        "get_more_info_official_over_our_query": official["get_more_info_us"]
        / ours["query_mean_us"],
        "get_more_info_official_over_our_compat": official["get_more_info_us"]
        / ours["compat_get_more_info_us"],
    }
    result["ratios"] = ratios
    result["targets"] = {
        **TARGETS,
        "met": {
            "open_s": ours["open_s"] < TARGETS["open_s"],
            "rss_mb": ours["rss_after_open_mb"] < TARGETS["rss_mb"],
            "query_us": ours["query_mean_us"] < TARGETS["query_us"],
            "query_us_cpu_time": ours["cpu_time_us"]["query_mean_us"] < TARGETS["query_us"],
        },
        "load_average_at_end": os.getloadavg(),
        "note": (
            "wall-clock latencies on a shared 2-core machine include time waiting for a core; "
            "cpu_time_us (process CPU time per query) is the load-independent figure"
        ),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

"""Benchmark: `nasforge bench import` of each official file format — wall time and peak RSS.

    .venv/bin/python benchmarks/import_official.py [--archs 256] [--out FILE]

Builds, with the official packages' own classes (``nas_201_api`` / ``nats_bench``
``ArchResults`` / ``ResultsCount``), a fixture of ``--archs`` architectures (every k-th
official index) in each official layout, with the shape of the real files: 4 datasets,
1-3 seeds (777 / 888 / 999), recipes 12 and 200 epochs, the official evaluation sets and
per-epoch times:

* ``nb201``: ``NAS-Bench-201-v1_1-096897.pth`` (one ``torch.save`` dict);
* ``nb201-archive``: ``NAS-Bench-201-v1_1-archive/NNNNNN-FULL.pth`` (one file per arch);
* ``nats-tss``: ``NATS-tss-v1_0-3ffb9-simple/NNNNNN.pickle.pbz2`` (+ ``meta.pickle.pbz2``);
* ``nats-tss-single``: ``NATS-tss-v1_0-3ffb9.pickle.pbz2`` (one bz2 pickle).

Each import runs ``python -m nasforge.cli bench import SRC -o TABLE`` in a fresh process;
its wall time and peak RSS (the child's own ``VmHWM``) are measured, and extrapolated
linearly in the number of archs to the full 15,625 (stated as an extrapolation). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

NUM_ARCHS = 15625
DATASETS = {
    "cifar10-valid": ("x-valid", "ori-test"),
    "cifar10": ("ori-test",),
    "cifar100": ("x-valid", "x-test", "ori-test"),
    "ImageNet16-120": ("x-valid", "x-test", "ori-test"),
}
HPS = {"12": 12, "200": 200}


def _arch_results(mod, index: int, arch: str, epochs: int, rng) -> object:
    ar = mod.ArchResults(index, arch)
    for ds, sets in DATASETS.items():
        for seed in (777, 888, 999)[: 1 + (index + len(ds)) % 3]:
            cfg = {"channel": 16, "num_cells": 5, "arch_str": arch, "class_num": 10}
            acc = dict(enumerate(rng.uniform(10, 99, epochs).tolist()))
            loss = dict(enumerate(rng.uniform(0, 2.3, epochs).tolist()))
            rc = mod.ResultsCount(ds, None, acc, loss, 0.5, 80.0, cfg, seed, epochs, None)
            rc.update_train_info(
                acc, None, loss, dict(enumerate(rng.uniform(5, 20, epochs).tolist()))
            )
            for name in sets:
                keys = [f"{name}@{i}" for i in range(epochs)]
                rc.update_eval(
                    *(
                        dict(zip(keys, rng.uniform(0, 99, epochs).tolist(), strict=True))
                        for _ in "alt"
                    )
                )
            ar.update(ds, seed, rc)
        ar.reset_latency(ds, None, 0.01)
    return ar


def build(root: Path, n_archs: int) -> dict[str, Path]:
    """The four official layouts of the same ``n_archs`` archs under ``root``."""
    import nas_201_api
    import nats_bench
    import torch
    from nats_bench.api_utils import pickle_save

    from nasforge.spaces.nb201 import Arch

    meta = [Arch.from_index(i).to_string() for i in range(NUM_ARCHS)]
    indices = np.linspace(0, NUM_ARCHS - 1, n_archs).astype(int).tolist()
    rng = np.random.default_rng(0)
    out = {
        "nb201": root / "NAS-Bench-201-v1_1-096897.pth",
        "nb201-archive": root / "NAS-Bench-201-v1_1-archive",
        "nats-tss": root / "NATS-tss-v1_0-3ffb9-simple",
        "nats-tss-single": root / "NATS-tss-v1_0-3ffb9.pickle.pbz2",
    }
    out["nb201-archive"].mkdir()
    out["nats-tss"].mkdir()
    pickle_save({"meta_archs": meta}, str(out["nats-tss"] / "meta.pickle"))
    nb201, nats = {}, {}
    for i in indices:
        less, full = (_arch_results(nas_201_api, i, meta[i], HPS[h], rng) for h in HPS)
        nb201[i] = {"less": less.state_dict(), "full": full.state_dict()}
        torch.save(nb201[i], out["nb201-archive"] / f"{i:06d}-FULL.pth")
        nats[i] = {
            h: _arch_results(nats_bench, i, meta[i], e, rng).state_dict() for h, e in HPS.items()
        }
        pickle_save(nats[i], str(out["nats-tss"] / f"{i:06d}.pickle"))
    whole = {"meta_archs": meta, "evaluated_indexes": indices}
    torch.save({**whole, "arch2infos": nb201}, out["nb201"])
    pickle_save({**whole, "arch2infos": nats}, str(root / "NATS-tss-v1_0-3ffb9.pickle"))
    return out


def _size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*")) if p.is_dir() else p.stat().st_size


_CHILD = """
import json, sys, time
from nasforge.bench import Benchmark
from nasforge.bench.importers import import_table
def status(key):  # kB; VmHWM is this process's own peak (ru_maxrss keeps the parent's
    return int(next(l for l in open("/proc/self/status") if l.startswith(key)).split()[1])
rss0 = status("VmRSS:")
t0 = time.perf_counter()
path = import_table(sys.argv[1], sys.argv[2])
wall = time.perf_counter() - t0
n = len(Benchmark.open(path))
peak = status("VmHWM:")
print(json.dumps({"wall_s": wall, "peak_rss_mb": peak / 1024, "rss_after_imports_mb": rss0 / 1024,
                  "archs_imported": n}))
"""


def measure(src: Path, table: Path) -> dict:
    """Wall time and peak RSS of one import (what `nasforge bench import SRC -o TABLE` runs:
    ``import_table``) in a fresh process, measured by the process itself."""
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(src), str(table)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()}


def _extrapolate(small: dict, large: dict, n1: int, n2: int, key: str) -> float:
    """Linear in the number of archs through the two measurements, out to 15,625."""
    slope = (large[key] - small[key]) / (n2 - n1)
    return large[key] + slope * (NUM_ARCHS - n2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, nargs=2, default=[64, 256], metavar=("N1", "N2"))
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    n1, n2 = sorted(args.archs)
    runs: dict[int, dict] = {}
    for n in (n1, n2):
        root = Path(tempfile.mkdtemp(prefix="nasforge-import-"))
        try:
            t0 = time.perf_counter()
            files = build(root, n)
            runs[n] = {"fixture_build_s": round(time.perf_counter() - t0, 1)}
            for kind, src in files.items():
                r = measure(src, root / f"{kind}.table")
                r["source_mb"] = round(_size(src) / 2**20, 1)
                runs[n][kind] = r
        finally:
            shutil.rmtree(root, ignore_errors=True)
    results = {}
    for kind in runs[n2]:
        if kind == "fixture_build_s":
            continue
        a, b = runs[n1][kind], runs[n2][kind]
        results[kind] = {
            "command": f"nasforge bench import {kind_source(kind)} -o TABLE",
            f"wall_s@{n1}": a["wall_s"],
            f"wall_s@{n2}": b["wall_s"],
            f"peak_rss_mb@{n1}": a["peak_rss_mb"],
            f"peak_rss_mb@{n2}": b["peak_rss_mb"],
            "rss_after_imports_mb": b["rss_after_imports_mb"],
            f"source_mb@{n2}": b["source_mb"],
            "extrapolated_full_wall_s": round(_extrapolate(a, b, n1, n2, "wall_s")),
            "extrapolated_full_peak_rss_mb": round(_extrapolate(a, b, n1, n2, "peak_rss_mb")),
            "extrapolated_full_source_mb": round(_extrapolate(a, b, n1, n2, "source_mb")),
        }
    report = {
        "archs": [n1, n2],
        "full_archs": NUM_ARCHS,
        "fixture_build_s": {n: runs[n]["fixture_build_s"] for n in runs},
        "results": results,
        "note": "extrapolated_* are linear extrapolations in the number of archs through the "
        "two measured sizes, not measurements; peak RSS includes the interpreter and torch",
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


def kind_source(kind: str) -> str:
    return {
        "nb201": "NAS-Bench-201-v1_1-096897.pth",
        "nb201-archive": "NAS-Bench-201-v1_1-archive",
        "nats-tss": "NATS-tss-v1_0-3ffb9-simple",
        "nats-tss-single": "NATS-tss-v1_0-3ffb9.pickle.pbz2",
    }[kind]


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[1] / "src"))
    main()

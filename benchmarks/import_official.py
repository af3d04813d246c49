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
* ``nats-tss-single``: ``NATS-tss-v1_0-3ffb9.pickle.pbz2`` (one bz2 pickle);
* ``nats-sss`` / ``nats-sss-single``: the same two NATS layouts for the size space
  (``NATS-sss-v1_0-50262``: 32,768 channel configurations, recipes 01 / 12 / 90 epochs).

Each import runs ``import_table`` (what ``nasforge bench import SRC -o TABLE`` runs) in a
fresh process; its wall time, CPU time and peak RSS (the child's own ``VmHWM``) are
measured, and extrapolated linearly in the number of archs to the full 15,625 / 32,768
(stated as an extrapolation). ``--baseline-src DIR`` measures every import a second time
with another nasforge source tree (e.g. the commit before a change, from ``git worktree``)
in the same run, on the same fixture. Prints JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import resource
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
#: The size space: 5 layers x {8, ..., 64} channels, official order (sss-collect.py
#: ``traverse_net``), and its recipes (``hps = ["01", "12", "90"]``).
SSS_ARCHS = [":".join(map(str, c)) for c in itertools.product(range(8, 65, 8), repeat=5)]
SSS_HPS = {"01": 1, "12": 12, "90": 90}
FULL_SIZE = {"nats-sss": len(SSS_ARCHS), "nats-sss-single": len(SSS_ARCHS)}


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
    # the size space, same number of archs spread over its 32,768
    out["nats-sss"] = root / "NATS-sss-v1_0-50262-simple"
    out["nats-sss-single"] = root / "NATS-sss-v1_0-50262.pickle.pbz2"
    out["nats-sss"].mkdir()
    pickle_save({"meta_archs": SSS_ARCHS}, str(out["nats-sss"] / "meta.pickle"))
    sss = {}
    for i in np.linspace(0, len(SSS_ARCHS) - 1, n_archs).astype(int).tolist():
        sss[i] = {
            h: _arch_results(nats_bench, i, SSS_ARCHS[i], e, rng).state_dict()
            for h, e in SSS_HPS.items()
        }
        pickle_save(sss[i], str(out["nats-sss"] / f"{i:06d}.pickle"))
    whole = {"meta_archs": SSS_ARCHS, "evaluated_indexes": sorted(sss)}
    pickle_save({**whole, "arch2infos": sss}, str(root / "NATS-sss-v1_0-50262.pickle"))
    return out


def _size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*")) if p.is_dir() else p.stat().st_size


_CHILD = """
import json, resource, sys, time
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
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_mb": peak / 1024,
                  "rss_after_imports_mb": rss0 / 1024, "archs_imported": n}))
"""


def measure(src: Path, table: Path, source_tree: Path | None = None) -> dict:
    """Wall time, CPU time and peak RSS of one import (what `nasforge bench import SRC -o
    TABLE` runs: ``import_table``) in a fresh process, measured by the process itself, with
    nasforge from ``source_tree`` (default: this checkout)."""
    env = dict(os.environ)
    if source_tree is not None:
        env["PYTHONPATH"] = str(source_tree)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(src), str(table)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()}


def _extrapolate(small: dict, large: dict, n1: int, n2: int, key: str, full: int) -> float:
    """Linear in the number of archs through the two measurements, out to ``full``."""
    slope = (large[key] - small[key]) / (n2 - n1)
    return large[key] + slope * (full - n2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, nargs=2, default=[64, 256], metavar=("N1", "N2"))
    ap.add_argument("--out", type=Path)
    ap.add_argument(
        "--baseline-src",
        type=Path,
        help="another nasforge src/ to measure the same imports with (before/after)",
    )
    args = ap.parse_args()
    n1, n2 = sorted(args.archs)
    started = time.perf_counter()
    runs: dict[int, dict] = {}
    base: dict[int, dict] = {}
    for n in (n1, n2):
        root = Path(tempfile.mkdtemp(prefix="nasforge-import-"))
        try:
            t0 = time.perf_counter()
            files = build(root, n)
            runs[n] = {"fixture_build_s": round(time.perf_counter() - t0, 1)}
            base[n] = {}
            for kind, src in files.items():
                r = measure(src, root / f"{kind}.table")
                r["source_mb"] = round(_size(src) / 2**20, 1)
                runs[n][kind] = r
                if args.baseline_src is not None:
                    # a format the baseline cannot import is left out of the comparison
                    with contextlib.suppress(subprocess.CalledProcessError):
                        base[n][kind] = measure(src, root / f"{kind}.base", args.baseline_src)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    results = {}
    for kind in runs[n2]:
        if kind == "fixture_build_s":
            continue
        a, b = runs[n1][kind], runs[n2][kind]
        full = FULL_SIZE.get(kind, NUM_ARCHS)
        results[kind] = {
            "command": f"nasforge bench import {kind_source(kind)} -o TABLE",
            "full_archs": full,
            f"wall_s@{n1}": a["wall_s"],
            f"wall_s@{n2}": b["wall_s"],
            f"cpu_s@{n1}": round(a["cpu_s"], 2),
            f"cpu_s@{n2}": round(b["cpu_s"], 2),
            f"peak_rss_mb@{n1}": a["peak_rss_mb"],
            f"peak_rss_mb@{n2}": b["peak_rss_mb"],
            "rss_after_imports_mb": b["rss_after_imports_mb"],
            f"source_mb@{n2}": b["source_mb"],
            "extrapolated_full_wall_s": round(_extrapolate(a, b, n1, n2, "wall_s", full)),
            "extrapolated_full_cpu_s": round(_extrapolate(a, b, n1, n2, "cpu_s", full)),
            "extrapolated_full_peak_rss_mb": round(_extrapolate(a, b, n1, n2, "peak_rss_mb", full)),
            "extrapolated_full_source_mb": round(_extrapolate(a, b, n1, n2, "source_mb", full)),
        }
        if kind in base.get(n1, {}) and kind in base.get(n2, {}):
            a0, b0 = base[n1][kind], base[n2][kind]
            results[kind]["baseline"] = {
                f"wall_s@{n1}": a0["wall_s"],
                f"wall_s@{n2}": b0["wall_s"],
                f"cpu_s@{n2}": round(b0["cpu_s"], 2),
                f"peak_rss_mb@{n1}": a0["peak_rss_mb"],
                f"peak_rss_mb@{n2}": b0["peak_rss_mb"],
                "extrapolated_full_peak_rss_mb": round(
                    _extrapolate(a0, b0, n1, n2, "peak_rss_mb", full)
                ),
            }
    ru_self = resource.getrusage(resource.RUSAGE_SELF)
    ru_kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = {
        "archs": [n1, n2],
        "full_archs": NUM_ARCHS,
        "total_wall_s": round(time.perf_counter() - started, 1),
        "total_cpu_s": round(
            ru_self.ru_utime + ru_self.ru_stime + ru_kids.ru_utime + ru_kids.ru_stime, 1
        ),
        "machine": "2 cores shared with other jobs: timings are noisy, CPU times and RSS are not",
        "baseline_src": None if args.baseline_src is None else str(args.baseline_src),
        "fixture_build_s": {n: runs[n]["fixture_build_s"] for n in runs},
        "results": results,
        "note": "extrapolated_* are linear extrapolations in the number of archs through the "
        "two measured sizes, not measurements; peak RSS includes the interpreter and torch; "
        "baseline: the same imports with --baseline-src (the importer before streaming)",
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
        "nats-sss": "NATS-sss-v1_0-50262-simple",
        "nats-sss-single": "NATS-sss-v1_0-50262.pickle.pbz2",
    }[kind]


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[1] / "src"))
    main()

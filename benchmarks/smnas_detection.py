"""Benchmark: SM-NAS's structural-to-modular front on ``digits-on-textures`` against fixed
detectors built from the same blocks, under the same data, recipe and epochs (CPU scale).

    PYTHONPATH=src python benchmarks/smnas_detection.py --out benchmarks/results/smnas_detection.json

1. Runs ``sm-nas`` (the same code path as ``nasforge search --task detection-digits
   --space smnas --algo sm-nas``) with ``--population``, ``--children`` per stage, one
   structural and one modular generation by default.
2. Trains the fixed references in the same run, same seed, data and recipe: a
   RetinaNet-style and an FCOS-style detector on ResNet-18 (``11-21-21-21``, width 16)
   with an FPN over P3-P5 at 64 px, and a RetinaNet-style ResNet-10 with no neck (all at
   the structural width, ``--width``).
3. Times every trained detector again, interleaved (one pass of each per round, median of
   ``--rounds``) on a real valid image: latencies taken minutes apart during the search
   drift with the shared machine's load (both are in the JSON; fronts use the second).
4. Prints JSON: every candidate (stage, arch, valid mAP / AP50, CPU latency, params), the
   fronts, the references, which references the final front dominates, the CPU model,
   torch threads, and the chosen arch's test mAP. The machine may be shared: latencies
   are what this run measured.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch

REFERENCES = {
    "retinanet-r18-fpn": "backbone=11-21-21-21,width=16,neck=fpn-p3p5,head=retina,res=64",
    "fcos-r18-fpn": "backbone=11-21-21-21,width=16,neck=fpn-p3p5,head=fcos,res=64",
    "retinanet-r10-noneck": "backbone=1-2-2-2,width=16,neck=none,head=retina,res=64",
}


def _cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def _interleaved_latency_ms(models: dict, x: torch.Tensor, rounds: int) -> dict[str, float]:
    """Median end-to-end latency (ms) of every detector on ``x``, one pass of each per
    round, so that load changes on a shared machine hit all of them alike."""
    from nasforge.nn.smnas import EndToEnd

    nets = {k: EndToEnd(m).eval() for k, m in models.items()}
    times: dict[str, list[float]] = {k: [] for k in nets}
    with torch.inference_mode():
        for net in nets.values():  # warm-up
            net(x)
        for _ in range(rounds):
            for k, net in nets.items():
                t0 = time.perf_counter()
                net(x)
                times[k].append(1000.0 * (time.perf_counter() - t0))
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--limit", type=int, default=300, help="images per split")
    ap.add_argument("--population", type=int, default=5)
    ap.add_argument("--children", type=int, default=3)
    ap.add_argument("--structural-generations", type=int, default=1)
    ap.add_argument("--modular-generations", type=int, default=1)
    ap.add_argument("--width", type=int, default=16, help="structural base width (and references')")
    ap.add_argument("--workdir", type=Path, default=None, help="keep the search's files here")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=20, help="interleaved latency rounds")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from nasforge.io import atomic_write_json
    from nasforge.search.detection.smnas import SmNasSearch, _pareto_front
    from nasforge.search.task_search import TaskSearchSpec
    from nasforge.spaces import get_space
    from nasforge.tasks import get_task
    from nasforge.train import get_recipe

    task = get_task("detection-digits")
    params = {
        "population": args.population,
        "children": args.children,
        "structural_generations": args.structural_generations,
        "modular_generations": args.modular_generations,
        "width": args.width,
    }
    spec = TaskSearchSpec(
        task=task,
        space="smnas",
        seed=args.seed,
        epochs=args.epochs,
        limit=args.limit,
        params=params,
    )
    # The search's own run (what `nasforge search ... --algo sm-nas` calls), kept in hand so
    # that its trained detectors can be timed again below.
    runner = SmNasSearch()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.workdir if args.workdir is not None else Path(tmp) / "search"
        out.mkdir(parents=True, exist_ok=True)
        result = runner.run(spec, out)
        candidates = json.loads((out / "candidates.json").read_text())
        fronts = json.loads((out / "front.json").read_text())
    # The references: the search's own training/timing path, same data, recipe, seed, width.
    space = get_space("smnas")
    recipe = get_recipe("smnas-det").replace(epochs=args.epochs)
    data = task.load(seed=args.seed, limit=args.limit)
    p = {"latency_repeats": 10}
    refs = {}
    for name, text in REFERENCES.items():
        text = text.replace("width=16", f"width={args.width}")
        c = runner._train(
            space.from_string(text), text, data, recipe, spec, p, "reference", 0, None
        )
        refs[name] = asdict(c)
    # Latency measured during the search drifts with the shared machine's load; time every
    # trained detector again, interleaved round by round, on a real valid image.
    x, _ = next(iter(task.loader(data, "valid", 1, train=False)))
    timed = _interleaved_latency_ms(runner._models, x, args.rounds)
    everything = candidates + list(refs.values())
    for c in everything:
        c["latency_ms_search"] = c.pop("latency_ms")
        c["latency_ms"] = timed[c["arch"]]
    searched = [c for c in everything if c["stage"] != "reference"]
    front = [searched[i] for i in _pareto_front([(c["map"], c["latency_ms"]) for c in searched])]
    dominated = {
        name: [
            f["arch"]
            for f in front
            if f["map"] >= r["map"]
            and f["latency_ms"] <= r["latency_ms"]
            and (f["map"] > r["map"] or f["latency_ms"] < r["latency_ms"])
        ]
        for name, r in refs.items()
    }
    joint = [
        everything[i]["arch"]
        for i in _pareto_front([(c["map"], c["latency_ms"]) for c in everything])
    ]
    report = {
        "cpu": _cpu(),
        "threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "recipe": recipe.to_dict(),
        "data": data.summary(),
        "chosen": {
            "arch": result.arch,
            **result.metrics,
            "latency_ms": result.extra["latency_ms"],
            "params": result.extra["params"],
        },
        "search_time_s": result.search_time_s,
        "candidates": candidates,
        "structural_front_during_search": fronts["structural_front"],
        "final_front_during_search": fronts["final_front"],
        "final_front": front,
        "latency_rounds": args.rounds,
        "references": refs,
        "front_members_dominating_reference": dominated,
        "joint_front_with_references": joint,
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.out is not None:
        atomic_write_json(args.out, report)


if __name__ == "__main__":
    main()

"""Local attention vs depth-wise vs dynamic depth-wise convolution on real CIFAR-10, then a
search over the per-stage choice (Han et al., ICLR 2022; ``nasforge.nn.local_blocks``).

1. Study: the ``local-stages`` network with the same block in every stage -- Swin's window
   attention (the reference), DWNet's depth-wise convolution, dynamic DWNet -- at matched
   parameters (``match_params``: the convolution blocks' MLPs sized to the attention block),
   trained with one recipe for every seed; test accuracy (mean, sample std over seeds),
   params, multiply-adds (``nasforge.cost``), and measured throughput: inference and
   training images/s at ``--batch-size``, the three networks interleaved round by round
   (median over rounds) so they share the machine's load; ratios against attention.
2. Search: ``random`` search (any black-box searcher: ``--algo``) over the 27 per-stage
   choices against a training evaluator (``TrainingEvaluator``: each asked arch trained
   ``--search-epochs`` epochs on the cifar10-valid setting's train half, scored on its
   valid half), the returned arch's test accuracy reported, never seen by the search.

Prints JSON (``-o`` also writes it atomically).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import time
from typing import Any

import torch

from nasforge.cost import module_cost
from nasforge.data import DatasetSplits, load_splits
from nasforge.evaluate import EVALUATORS
from nasforge.io import atomic_write_text
from nasforge.nn import build_network
from nasforge.search.protocol import run_protocol
from nasforge.spaces.local_stages import BLOCKS, NUM_STAGES
from nasforge.train import Trainer, get_recipe, set_seed


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _net(arch: tuple[str, ...], args: argparse.Namespace, classes: int = 10) -> torch.nn.Module:
    return build_network(
        "local-stages", arch, num_classes=classes, C=args.C, match_params=args.match_params
    )


def _recipe(args: argparse.Namespace, epochs: int) -> Any:
    return get_recipe("nb201-12e").replace(
        epochs=epochs, batch_size=args.batch_size, lr=args.lr, grad_clip=args.grad_clip
    )


def study(args: argparse.Namespace, data: DatasetSplits) -> list[dict[str, Any]]:
    rows = []
    for block in BLOCKS:
        arch = (block,) * NUM_STAGES
        accs, cpu = [], []
        for seed in args.seeds:
            set_seed(seed)
            model = _net(arch, args)
            cost = module_cost(model, (1, 3, 32, 32))
            c0 = time.process_time()
            res = Trainer(_recipe(args, args.epochs), quiet=True, channels_last=False).fit(
                model, data, seed=seed
            )
            cpu.append(time.process_time() - c0)
            accs.append(float(res.epochs[-1].eval["test"]["acc"]))
            print(json.dumps({"block": block, "seed": seed, "test_acc": accs[-1]}), flush=True)
        rows.append(
            {
                "block": block,
                "params_m": cost.params_m,
                "macs_m": round(cost.flops_m, 3),
                "test_acc": accs,
                "test_acc_mean": round(statistics.fmean(accs), 2),
                "test_acc_std": round(statistics.stdev(accs), 2) if len(accs) > 1 else None,
                "train_cpu_s_per_run": round(statistics.fmean(cpu), 1),
            }
        )
    return rows


def throughput(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Images/s, the networks interleaved round by round (rotated order)."""
    torch.manual_seed(0)
    x = torch.randn(args.batch_size, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch_size,))
    nets = {b: _net((b,) * NUM_STAGES, args) for b in BLOCKS}
    opts = {b: torch.optim.SGD(n.parameters(), lr=0.01) for b, n in nets.items()}
    infer: dict[str, list[float]] = {b: [] for b in BLOCKS}
    train: dict[str, list[float]] = {b: [] for b in BLOCKS}
    for r in range(args.rounds + 1):  # round 0 warms up
        order = BLOCKS[r % len(BLOCKS) :] + BLOCKS[: r % len(BLOCKS)]
        for b in order:
            net = nets[b]
            net.eval()
            with torch.no_grad():
                t = time.perf_counter()
                net(x)
                dt_i = time.perf_counter() - t
            net.train()
            t = time.perf_counter()
            opts[b].zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opts[b].step()
            dt_t = time.perf_counter() - t
            if r:
                infer[b].append(args.batch_size / dt_i)
                train[b].append(args.batch_size / dt_t)
    ref = BLOCKS[0]
    out = {}
    for b in BLOCKS:
        i, t = statistics.median(infer[b]), statistics.median(train[b])
        out[b] = {
            "infer_img_s": round(i, 1),
            "train_img_s": round(t, 1),
            "infer_vs_attention": round(i / statistics.median(infer[ref]), 3),
            "train_vs_attention": round(t / statistics.median(train[ref]), 3),
        }
    return out


def search(args: argparse.Namespace) -> dict[str, Any]:
    data = load_splits("cifar10-valid", args.data_dir, limit=args.search_limit)
    ev = EVALUATORS.create(
        "train",
        _recipe(args, args.search_epochs),
        data,
        space="local-stages",
        network={"C": args.C, "match_params": args.match_params},
    )
    c0 = time.process_time()
    (run,) = run_protocol(args.algo, ev, f"{args.search_evals}evals", seed=args.seeds[0])
    hist = run.to_dict()["history"]
    return {
        "algo": args.algo,
        "budget": f"{args.search_evals}evals",
        "fidelity_epochs": args.search_epochs,
        "train_valid_test_images": [
            len(data.train),
            len(data.evals["valid"]),
            len(data.evals["test"]),
        ],
        "data_notes": list(data.notes),
        "evaluated": [
            {"arch": a, "valid_acc": v, "wall_s": round(c, 1)}
            for a, v, c in zip(hist["arch"], hist["valid"], hist["cost"], strict=True)
        ],
        "returned_arch": run.final_arch,
        "returned_valid_acc": run.final_valid,
        "returned_test_acc": run.final_test,
        "cpu_s": round(time.process_time() - c0, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="../shared/data/cifar-10-subset-py")
    ap.add_argument("--train-limit", type=int, default=2000, help="first N training images")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--C", type=int, default=16)
    ap.add_argument("--match-params", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--grad-clip", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=10, help="throughput rounds")
    ap.add_argument("--algo", default="random")
    ap.add_argument("--search-evals", type=int, default=6)
    ap.add_argument("--search-epochs", type=int, default=2)
    ap.add_argument("--search-limit", type=int, default=1000, help="images per split (search)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["study", "throughput", "search"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("-o", "--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    full = load_splits("cifar10", args.data_dir)
    data = dataclasses.replace(full, train=full.train.head(args.train_limit))
    c0, w0 = time.process_time(), time.perf_counter()
    out: dict[str, Any] = {
        "benchmark": "local_blocks_study",
        "config": {
            **vars(args),
            "train_images": len(data.train),
            "test_images": len(data.evals["test"]),
        },
        "cpu": _cpu_model(),
        "threads": torch.get_num_threads(),
    }
    if "throughput" not in args.skip:
        out["throughput"] = throughput(args)
        print(json.dumps(out["throughput"]), flush=True)
    if "study" not in args.skip:
        out["study"] = study(args, data)
    if "search" not in args.skip:
        out["search"] = search(args)
    out["cpu_s_total"] = round(time.process_time() - c0, 1)
    out["wall_s_total"] = round(time.perf_counter() - w0, 1)
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        atomic_write_text(args.out, text + "\n")


if __name__ == "__main__":
    main()

"""ACDC trade-off on real CIFAR-10: parameters vs accuracy per coefficient-sharing level,
against the standard ResNet-18 trained with the same recipe in the same run.

Every network is the CIFAR ResNet-18 of ``nasforge.nn.atoms`` at ``--width`` (64 is the
published one); the standard network has ordinary 3x3 convolutions, the others
atom-decomposed ones (``--atoms`` atoms each) whose coefficients are shared per layer
(DCFNet, no sharing), per stage or across the whole network (ACDC). Same data, seed, recipe
(NB201's SGD: lr 0.1 Nesterov, weight decay 5e-4, cosine; ``--epochs``, ``--batch-size``) and
evaluation for all.

``--adapt`` adds ACDC's adaptation claim on a held-out class split: a network-level ACDC
network and a standard one are pre-trained on classes 0-4, then adapted to classes 5-9 from
``--shots`` images per class, either updating only the atoms (+ the new classifier) or
every parameter (full fine-tuning); accuracy on the test images of classes 5-9.

Prints JSON (``-o`` also writes it atomically). CPU-scale: state the sizes with the numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from typing import Any

import torch

from nasforge.cost import module_cost
from nasforge.data import DatasetSplits, load_splits
from nasforge.data.base import Split
from nasforge.io import atomic_write_text
from nasforge.nn.atoms import SHARING_LEVELS, atom_parameters, atom_resnet18
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


def _classes(split: Split, classes: list[int], per_class: int | None = None) -> Split:
    """The images of ``classes`` (relabelled 0..len-1), the first ``per_class`` of each."""
    keep = []
    for new, c in enumerate(classes):
        idx = (split.labels == c).nonzero().flatten()
        keep.append((idx[:per_class] if per_class else idx, new))
    idx = torch.cat([i for i, _ in keep])
    labels = torch.cat([torch.full((len(i),), new, dtype=torch.int64) for i, new in keep])
    order = torch.argsort(idx)  # keep the dataset's order, not grouped by class
    return Split(split.name, split.images[idx[order]].contiguous(), labels[order])


def _train(model: torch.nn.Module, data: DatasetSplits, recipe: Any, seed: int) -> dict[str, Any]:
    c0 = time.process_time()
    result = Trainer(recipe, quiet=True, channels_last=False).fit(model, data, seed=seed)
    return {
        "test_acc": float(result.epochs[-1].eval["test"]["acc"]),
        "train_acc": float(result.epochs[-1].train_acc),
        "cpu_s": round(time.process_time() - c0, 1),
        "status": result.status,
    }


def _build(level: str | None, args: argparse.Namespace, classes: int) -> torch.nn.Module:
    return atom_resnet18(
        classes, width=args.width, level=level, num_atoms=args.atoms, mode=args.mode
    )


def tradeoff(args: argparse.Namespace, data: DatasetSplits) -> list[dict[str, Any]]:
    recipe = get_recipe("nb201-12e").replace(epochs=args.epochs, batch_size=args.batch_size)
    rows = []
    for level in [None, *SHARING_LEVELS]:
        for seed in args.seeds:
            set_seed(seed)
            model = _build(level, args, data.num_classes)
            cost = module_cost(model, (1, 3, 32, 32))
            row = {
                "network": "standard" if level is None else f"acdc-{level}",
                "level": level,
                "seed": seed,
                "params_m": cost.params_m,
                "macs_m": round(cost.flops_m, 3),
                **_train(model, data, recipe, seed),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    ref = {r["seed"]: r for r in rows if r["level"] is None}
    for r in rows:
        r["params_ratio"] = round(r["params_m"] / ref[r["seed"]]["params_m"], 4)
        r["acc_minus_standard"] = round(r["test_acc"] - ref[r["seed"]]["test_acc"], 2)
    return rows


def adaptation(args: argparse.Namespace, data: DatasetSplits) -> list[dict[str, Any]]:
    old, new = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]
    base = dataclasses.replace(
        data,
        train=_classes(data.train, old),
        evals={"test": _classes(data.evals["test"], old)},
        num_classes=5,
    )
    shots = dataclasses.replace(
        data,
        train=_classes(data.train, new, args.shots),
        evals={"test": _classes(data.evals["test"], new)},
        num_classes=5,
    )
    pre = get_recipe("nb201-12e").replace(epochs=args.epochs, batch_size=args.batch_size)
    batch = min(args.batch_size, len(shots.train))
    adapt = get_recipe("nb201-12e").replace(
        epochs=args.adapt_epochs, batch_size=batch, lr=args.adapt_lr
    )
    rows = []
    for level in ("network", None):
        seed = args.seeds[0]
        set_seed(seed)
        model = _build(level, args, 5)
        pretrained = _train(model, base, pre, seed)
        state = {k: v.clone() for k, v in model.state_dict().items()}
        for how in ("atoms", "full") if level is not None else ("full",):
            model.load_state_dict(state)
            torch.manual_seed(seed)
            model.linear.reset_parameters()  # a new head for the new classes
            for p in model.parameters():
                p.requires_grad_(how == "full")
            if how == "atoms":
                for p in [*atom_parameters(model), *model.linear.parameters()]:
                    p.requires_grad_(True)
            trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
            out = _train(model, shots, adapt, seed)
            row = {
                "network": "standard" if level is None else f"acdc-{level}",
                "adapted": how,
                "trained_params": trained,
                "pretrain_test_acc_old_classes": pretrained["test_acc"],
                "adapt_test_acc_new_classes": out["test_acc"],
                "adapt_cpu_s": out["cpu_s"],
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            for p in model.parameters():
                p.requires_grad_(True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="../shared/data/cifar-10-subset-py")
    ap.add_argument("--train-limit", type=int, default=3000, help="first N training images")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--width", type=int, default=8, help="ResNet-18 base width (64 published)")
    ap.add_argument("--atoms", type=int, default=8)
    ap.add_argument("--mode", default="reconstruct", choices=["reconstruct", "atoms-first"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--adapt", action="store_true")
    ap.add_argument("--shots", type=int, default=20, help="images per new class")
    ap.add_argument("--adapt-epochs", type=int, default=15)
    ap.add_argument("--adapt-lr", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("-o", "--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    full = load_splits("cifar10", args.data_dir)
    data = dataclasses.replace(full, train=full.train.head(args.train_limit))
    c0, w0 = time.process_time(), time.perf_counter()
    out: dict[str, Any] = {
        "benchmark": "atoms_tradeoff",
        "config": {
            **vars(args),
            "train_images": len(data.train),
            "test_images": len(data.evals["test"]),
        },
        "cpu": _cpu_model(),
        "threads": torch.get_num_threads(),
        "tradeoff": tradeoff(args, data),
    }
    if args.adapt:
        out["adaptation"] = adaptation(args, data)
    out["cpu_s_total"] = round(time.process_time() - c0, 1)
    out["wall_s_total"] = round(time.perf_counter() - w0, 1)
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        atomic_write_text(args.out, text + "\n")


if __name__ == "__main__":
    main()

"""Training throughput of the nasforge pipeline against the usual PyTorch loop, same run.

Ours: ``Trainer.fit`` (whole split as one uint8 tensor, batched pad+crop+flip+normalise,
metrics accumulated on the device, the layout ``Trainer`` picks by default:
``nasforge.train.device.default_channels_last``, channels_last for NB201 on x86-64 CPUs).
Reference: the way NAS-Bench-201 trains (xautodl ``procedure``): a ``torch.utils.data``
Dataset that augments each sample in Python with PIL the way torchvision's
``RandomHorizontalFlip``, ``RandomCrop(32, padding=4)``, ``ToTensor``, ``Normalize`` do,
``DataLoader(shuffle=True, num_workers=0)`` on the same thread budget, a default
(NCHW) model, ``loss.item()`` per step for the running averages.
Both: the same NB201 network (C=16, N=5, same init), batch size, SGD recipe (nb201-12e
hyper-parameters), 32x32 inputs, thread count. Ours runs exactly the code ``Trainer.fit``
runs per step (``DeviceLoader`` batches into ``Trainer.train_step``).
The third pipeline, ours with ``channels_last=False``, separates the data-pipeline gain
from the memory-format gain.

The machine this runs on may be shared, so the pipelines are interleaved step by step
(rotating their order each round): all three see the same background load, and the
figures are the median step time (images/s) plus the total process CPU time per image.
Prints JSON; see --help.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from nasforge.data import DatasetSplits, DeviceLoader, make_synthetic
from nasforge.nn.nb201 import NB201Network
from nasforge.train import Trainer, get_recipe, set_seed
from nasforge.train.device import cpu_model, default_channels_last

DEFAULT_ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"


class PerSampleDataset(torch.utils.data.Dataset):
    """HWC uint8 images augmented one at a time in Python, as torchvision does."""

    def __init__(self, data: DatasetSplits, seed: int) -> None:
        self.images = data.train.images.permute(0, 2, 3, 1).contiguous().numpy()  # HWC
        self.labels = data.train.labels.numpy()
        self.mean = torch.tensor(data.mean).view(3, 1, 1)
        self.std = torch.tensor(data.std).view(3, 1, 1)
        self.pad = data.pad
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = Image.fromarray(self.images[i])
        if self.rng.random() < 0.5:  # RandomHorizontalFlip
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        w, h = img.size  # RandomCrop(size, padding=pad): zero pad then a random window
        img = ImageOps.expand(img, border=self.pad, fill=0)
        top, left = self.rng.integers(0, 2 * self.pad + 1, size=2)
        img = img.crop((int(left), int(top), int(left) + w, int(top) + h))
        x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)
        x = x.float().div(255)  # ToTensor
        return (x - self.mean) / self.std, int(self.labels[i])  # Normalize


def reference_steps(arch, data, recipe, seed, stats: dict) -> Iterator[None]:
    """The usual loop, one step per ``next()``; ``stats["data_s"]`` sums batch-fetch time."""
    set_seed(seed)
    model = NB201Network(arch, 16, 5, data.num_classes)
    opt = recipe.build_optimizer(model.parameters())
    loader = torch.utils.data.DataLoader(
        PerSampleDataset(data, seed),
        batch_size=recipe.batch_size,
        shuffle=True,
        num_workers=0,
        generator=torch.Generator().manual_seed(seed),
    )
    model.train()
    losses = []
    while True:
        it = iter(loader)
        while True:
            td = time.perf_counter()
            batch = next(it, None)
            stats["data_s"] = stats.get("data_s", 0.0) + time.perf_counter() - td
            if batch is None:
                break
            x, y = batch
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())  # the running average every such loop logs
            yield


def ours_steps(arch, data, recipe, seed, channels_last: bool | None) -> Iterator[None]:
    """The nasforge pipeline, one step per ``next()``: what ``Trainer.fit`` runs per step
    (``channels_last=None``: the layout ``Trainer.fit`` picks by default for this model)."""
    trainer = Trainer(recipe, channels_last=channels_last)
    set_seed(seed)
    model = NB201Network(arch, 16, 5, data.num_classes)
    if channels_last is None:
        channels_last = default_channels_last(model, "cpu")
    if channels_last:
        model.to(memory_format=torch.channels_last)
    opt = recipe.build_optimizer(model.parameters())
    loader = DeviceLoader(
        data.train, data, recipe.batch_size, train=True, seed=seed, channels_last=channels_last
    )
    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64)
    counts: dict[str, torch.Tensor] = {}  # the task's training counts (correct predictions)
    while True:
        for x, y in loader:
            trainer.train_step(model, model, opt, x, y, loss_sum, counts)
            yield


def interleave(
    pipes: dict[str, Iterator[None]],
    warmup: int,
    steps: int,
    *,
    sync: Callable[[], None] = lambda: None,
    on_timed_start: Callable[[], None] = lambda: None,
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Advance the step generators in turn (rotating their order every round) for
    ``warmup`` untimed then ``steps`` timed rounds; ``(wall, cpu)`` seconds per timed step
    of each pipeline. ``sync`` waits for the device around each step."""
    names = list(pipes)
    wall: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    for r in range(warmup + steps):
        if r == warmup:
            on_timed_start()
        k = r % len(names)
        for name in names[k:] + names[:k]:
            sync()
            t0, c0 = time.perf_counter(), time.process_time()
            next(pipes[name])
            sync()
            if r >= warmup:
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    return wall, cpu


def images_per_s(
    wall: dict[str, list[float]], cpu: dict[str, list[float]], batch: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Images/s from the median step wall time, and per second of process CPU time."""
    ips = {k: batch / statistics.median(v) for k, v in wall.items()}
    cpu_ips = {k: batch * len(v) / sum(v) for k, v in cpu.items()}
    return ips, cpu_ips


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--arch", default=DEFAULT_ARCH)
    p.add_argument("--steps", type=int, default=10, help="timed steps per pipeline")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per pipeline first")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument(
        "--threads",
        type=int,
        default=2,
        help="intra-op threads of both pipelines (on a busy shared machine pass 1: with more\n"
        "threads per process the figures mostly measure the OS scheduler)",
    )
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    recipe = get_recipe("nb201-12e", batch_size=args.batch_size)
    n = (args.steps + args.warmup) * args.batch_size
    data = make_synthetic(10, 32, n_train=n, n_valid=1, n_test=1, seed=args.seed)
    ref_stats: dict[str, float] = {}
    pipes = {
        "reference": reference_steps(args.arch, data, recipe, args.seed, ref_stats),
        "ours": ours_steps(args.arch, data, recipe, args.seed, None),
        "ours_nchw": ours_steps(args.arch, data, recipe, args.seed, False),
    }
    wall, cpu = interleave(
        pipes, args.warmup, args.steps, on_timed_start=lambda: ref_stats.update(data_s=0.0)
    )
    bs = args.batch_size
    ips, cpu_ips = images_per_s(wall, cpu, bs)
    out = {
        "benchmark": "train_throughput",
        "setup": {
            "arch": args.arch,
            "C": 16,
            "N": 5,
            "input": [3, 32, 32],
            "classes": 10,
            "batch_size": bs,
            "timed_steps": args.steps,
            "warmup_steps": args.warmup,
            "threads": args.threads,
            "reference": "DataLoader(num_workers=0) over a per-sample PIL-augmenting Dataset "
            "(torchvision-style flip, pad+crop, ToTensor, Normalize), NCHW model, "
            "loss.item() per step",
            "ours": "DeviceLoader + Trainer.train_step in the layout Trainer picks by default "
            "(default_channels_last: channels_last for NB201 on x86-64 CPUs)",
            "timing": "pipelines interleaved step by step; median step wall time, and "
            "process CPU time per step (ratio_cpu_time_median)",
            "device": "cpu",
            "torch": torch.__version__,
            "machine": platform.machine(),
        },
        "reference_images_per_s": round(ips["reference"], 2),
        "ours_images_per_s": round(ips["ours"], 2),
        "ours_nchw_images_per_s": round(ips["ours_nchw"], 2),
        "ratio": round(ips["ours"] / ips["reference"], 3),
        "ratio_nchw": round(ips["ours_nchw"] / ips["reference"], 3),
        "ratio_cpu_time": round(cpu_ips["ours"] / cpu_ips["reference"], 3),
        "ratio_nchw_cpu_time": round(cpu_ips["ours_nchw"] / cpu_ips["reference"], 3),
        # The median over steps of the CPU time per step (what a loaded machine moves least,
        # with --threads 1): reference / ours.
        "ratio_cpu_time_median": round(
            statistics.median(cpu["reference"]) / statistics.median(cpu["ours"]), 3
        ),
        "ratio_nchw_cpu_time_median": round(
            statistics.median(cpu["reference"]) / statistics.median(cpu["ours_nchw"]), 3
        ),
        "cpu_model": cpu_model(),
        "loadavg_at_end": os.getloadavg(),
        "reference_data_fraction": round(ref_stats["data_s"] / sum(wall["reference"]), 4),
        "target_ratio": 1.5,
        "step_wall_s": {k: [round(t, 3) for t in v] for k, v in wall.items()},
    }
    out["meets_target"] = out["ratio"] >= out["target_ratio"]
    out["meets_target_cpu_time"] = out["ratio_cpu_time_median"] >= out["target_ratio"]
    out["step_cpu_s"] = {k: [round(t, 3) for t in v] for k, v in cpu.items()}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

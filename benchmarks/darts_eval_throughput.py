"""DARTS evaluation training throughput: NetworkCIFAR(PC_DARTS_cifar) in our pipeline
against the official DARTS / PC-DARTS loop, measured in the same run.

Ours: what ``Trainer.fit`` runs per step with the ``darts-cifar-600e`` recipe: the split
as one uint8 tensor in a ``DeviceLoader`` (batched pad+crop+flip+normalise, then batched
cutout 16), ``Trainer.train_step`` (main + 0.4 x auxiliary loss, grad clip 5, SGD),
metrics accumulated on the device.
Reference: PC-DARTS ``train.py``'s loop (train.py:121-150 with utils.py:40-79): a
``torch.utils.data`` Dataset that augments each sample in Python (torchvision-style
RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, Normalize, then ``Cutout(16)``
with a numpy mask), ``DataLoader(shuffle=True, num_workers=0)``, ``logits, logits_aux =
model(x)``, the same loss, ``clip_grad_norm_``, ``loss.item()`` per step for the meters.
Both: the same network (C=36, 20 cells, auxiliary head, same init, drop-path 0.15 -- the
recipe's mid-run rate), batch size, recipe, thread count, NCHW layout (the layout the
trainer picks for networks with 1x1 stride-2 convolutions on CPU).

Pipelines are interleaved step by step (rotating order) so both see the same background
load; figures are median step times (images/s) and process CPU time per image. On CUDA
(``--device cuda``) the run also projects the wall time of the full 600-epoch recipe
(50,000 images per epoch) from ours. Prints JSON; see --help.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for train_throughput below
from nasforge.data import DatasetSplits, DeviceLoader, make_synthetic
from nasforge.nn.darts import NetworkCIFAR
from nasforge.spaces.darts import PUBLISHED
from nasforge.train import Recipe, Trainer, get_recipe, set_seed
from train_throughput import PerSampleDataset, images_per_s, interleave

DROP_PATH = 0.15


class CutoutDataset(PerSampleDataset):
    """The per-sample pipeline plus DARTS's ``utils.Cutout`` on the normalised tensor."""

    def __init__(self, data: DatasetSplits, seed: int, length: int) -> None:
        super().__init__(data, seed)
        self.length = length

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img, label = super().__getitem__(i)
        h, w = img.shape[1:]
        mask = np.ones((h, w), np.float32)
        y, x = int(self.rng.integers(h)), int(self.rng.integers(w))
        half = self.length // 2
        mask[
            np.clip(y - half, 0, h) : np.clip(y + half, 0, h),
            np.clip(x - half, 0, w) : np.clip(x + half, 0, w),
        ] = 0.0
        return img * torch.from_numpy(mask).expand_as(img), label


def _model(data: DatasetSplits, seed: int, device: torch.device) -> NetworkCIFAR:
    set_seed(seed)
    model = NetworkCIFAR(PUBLISHED["PC_DARTS_cifar"], 36, data.num_classes, 20, auxiliary=True)
    model.drop_path_prob = DROP_PATH
    return model.to(device).train()


def reference_steps(
    data: DatasetSplits, recipe: Recipe, seed: int, device: torch.device
) -> Iterator[None]:
    model = _model(data, seed, device)
    opt = recipe.build_optimizer(model.parameters())
    loader = torch.utils.data.DataLoader(
        CutoutDataset(data, seed, recipe.cutout),
        batch_size=recipe.batch_size,
        shuffle=True,
        num_workers=0,
        generator=torch.Generator().manual_seed(seed),
    )
    while True:
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            opt.zero_grad()
            logits, logits_aux = model(x)
            loss = F.cross_entropy(logits, y) + recipe.auxiliary_weight * F.cross_entropy(
                logits_aux, y
            )
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
            opt.step()
            loss.item()  # the meters' update every step
            yield


def ours_steps(
    data: DatasetSplits, recipe: Recipe, seed: int, device: torch.device
) -> Iterator[None]:
    trainer = Trainer(recipe, device=device, channels_last=False)
    model = _model(data, seed, device)
    opt = recipe.build_optimizer(model.parameters())
    loader = DeviceLoader(
        data.train,
        data,
        recipe.batch_size,
        train=True,
        seed=seed,
        device=device,
        cutout=recipe.cutout,
    )
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    while True:
        for x, y in loader:
            trainer.train_step(model, model, opt, x, y, loss_sum, correct)
            yield


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=4, help="timed steps per pipeline")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per pipeline first")
    p.add_argument("--batch-size", type=int, default=96, help="the recipe's 96; pass less on CPU")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads of both pipelines")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    recipe = get_recipe("darts-cifar-600e", batch_size=args.batch_size)
    n = (args.steps + args.warmup) * args.batch_size
    data = make_synthetic(10, 32, n_train=n, n_valid=1, n_test=1, seed=args.seed)
    pipes = {
        "reference": reference_steps(data, recipe, args.seed, device),
        "ours": ours_steps(data, recipe, args.seed, device),
    }
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    wall, cpu = interleave(pipes, args.warmup, args.steps, sync=sync)
    bs = args.batch_size
    ips, cpu_ips = images_per_s(wall, cpu, bs)
    out = {
        "benchmark": "darts_eval_throughput",
        "command": " ".join(["python benchmarks/darts_eval_throughput.py", *sys.argv[1:]]),
        "setup": {
            "network": "NetworkCIFAR(PC_DARTS_cifar, C=36, layers=20, auxiliary=True)",
            "recipe": recipe.name,
            "drop_path_prob": DROP_PATH,
            "input": [3, 32, 32],
            "batch_size": bs,
            "timed_steps": args.steps,
            "warmup_steps": args.warmup,
            "threads": args.threads,
            "device": str(device),
            "reference": "PC-DARTS train.py loop: DataLoader(num_workers=0) over a per-sample "
            "PIL crop/flip + ToTensor + Normalize + numpy Cutout(16) Dataset, loss.item() per step",
            "ours": "DeviceLoader(cutout=16) + Trainer.train_step",
            "layout": "NCHW (both)",
            "timing": "pipelines interleaved step by step; median step wall time",
            "torch": torch.__version__,
            "machine": platform.machine(),
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
            "cpus": os.cpu_count(),
        },
        "reference_images_per_s": round(ips["reference"], 2),
        "ours_images_per_s": round(ips["ours"], 2),
        "ratio": round(ips["ours"] / ips["reference"], 3),
        "ratio_cpu_time": round(cpu_ips["ours"] / cpu_ips["reference"], 3),
        "step_wall_s": {k: [round(t, 3) for t in v] for k, v in wall.items()},
    }
    if device.type == "cuda":
        out["projected_600_epoch_hours"] = round(600 * 50_000 / ips["ours"] / 3600, 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

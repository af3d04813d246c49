"""Training throughput of the nasforge pipeline against the usual PyTorch loop, same run.

Ours: ``Trainer.fit`` (whole split as one uint8 tensor, batched pad+crop+flip+normalise,
metrics accumulated on the device, channels_last on CPU).
Reference: the way NAS-Bench-201 trains (xautodl ``procedure``): a ``torch.utils.data``
Dataset that augments each sample in Python with PIL the way torchvision's
``RandomHorizontalFlip``, ``RandomCrop(32, padding=4)``, ``ToTensor``, ``Normalize`` do,
``DataLoader(shuffle=True, num_workers=0)`` on the same thread budget, a default
(NCHW) model, ``loss.item()`` per step for the running averages.
Both: the same NB201 network (C=16, N=5, same init), batch size, SGD recipe (nb201-12e
hyper-parameters), 32x32 inputs, the same number of timed steps after warm-up steps.
The third figure, ours with ``channels_last=False``, separates the data-pipeline gain
from the memory-format gain. Prints JSON; see --help.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from nasforge.data import DatasetSplits, make_synthetic
from nasforge.nn.nb201 import NB201Network
from nasforge.train import Trainer, get_recipe, set_seed

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


def reference_images_per_s(arch, data, recipe, steps, warmup, seed) -> dict:
    set_seed(seed)
    model = NB201Network(arch, 16, 5, data.num_classes)
    opt = recipe.build_optimizer(model.parameters())
    loader = torch.utils.data.DataLoader(
        PerSampleDataset(data, seed),
        batch_size=recipe.batch_size,
        shuffle=True,
        num_workers=0,
        drop_last=True,
        generator=torch.Generator().manual_seed(seed),
    )
    model.train()
    it = iter(loader)
    data_time = 0.0
    t0 = 0.0
    losses = []
    for step in range(warmup + steps):
        if step == warmup:
            t0, data_time = time.perf_counter(), 0.0
        td = time.perf_counter()
        x, y = next(it)
        data_time += time.perf_counter() - td
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    wall = time.perf_counter() - t0
    return {
        "images_per_s": steps * recipe.batch_size / wall,
        "wall_s": wall,
        "data_fraction": data_time / wall,
    }


def ours_images_per_s(arch, data, recipe, steps, warmup, seed, channels_last) -> dict:
    trainer = Trainer(recipe.replace(epochs=1), channels_last=channels_last)
    bs = recipe.batch_size

    def subset(n: int) -> DatasetSplits:
        tr = data.train.head(n)
        return DatasetSplits(
            data.name, tr, {}, data.num_classes, data.resolution, data.mean, data.std, data.pad
        )

    set_seed(seed)
    model = NB201Network(arch, 16, 5, data.num_classes)
    trainer.fit(model, subset(warmup * bs), seed=seed)  # warm-up (oneDNN primitive cache)
    set_seed(seed)
    model = NB201Network(arch, 16, 5, data.num_classes)
    res = trainer.fit(model, subset(steps * bs), seed=seed)
    wall = res.total_train_time
    return {"images_per_s": steps * bs / wall, "wall_s": wall}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--arch", default=DEFAULT_ARCH)
    p.add_argument("--steps", type=int, default=12, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2, help="alternating rounds; best of each kept")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    recipe = get_recipe("nb201-12e", batch_size=args.batch_size)
    n = (args.steps + args.warmup) * args.batch_size
    data = make_synthetic(10, 32, n_train=n, n_valid=1, n_test=1, seed=args.seed)
    runs: dict[str, list[dict]] = {"reference": [], "ours": [], "ours_nchw": []}
    for _ in range(args.repeats):
        runs["reference"].append(
            reference_images_per_s(args.arch, data, recipe, args.steps, args.warmup, args.seed)
        )
        runs["ours"].append(
            ours_images_per_s(args.arch, data, recipe, args.steps, args.warmup, args.seed, True)
        )
        runs["ours_nchw"].append(
            ours_images_per_s(args.arch, data, recipe, args.steps, args.warmup, args.seed, False)
        )
    best = {k: max(v, key=lambda r: r["images_per_s"]) for k, v in runs.items()}
    out = {
        "benchmark": "train_throughput",
        "setup": {
            "arch": args.arch,
            "C": 16,
            "N": 5,
            "input": [3, 32, 32],
            "classes": 10,
            "batch_size": args.batch_size,
            "timed_steps": args.steps,
            "warmup_steps": args.warmup,
            "threads": args.threads,
            "repeats": args.repeats,
            "reference": "DataLoader(num_workers=0) over a per-sample PIL augmenting Dataset, "
            "NCHW model, loss.item() per step",
            "device": "cpu",
            "torch": torch.__version__,
            "machine": platform.machine(),
        },
        "reference_images_per_s": round(best["reference"]["images_per_s"], 2),
        "reference_data_fraction": round(best["reference"]["data_fraction"], 4),
        "ours_images_per_s": round(best["ours"]["images_per_s"], 2),
        "ours_nchw_images_per_s": round(best["ours_nchw"]["images_per_s"], 2),
        "ratio": round(best["ours"]["images_per_s"] / best["reference"]["images_per_s"], 3),
        "ratio_nchw": round(
            best["ours_nchw"]["images_per_s"] / best["reference"]["images_per_s"], 3
        ),
        "target_ratio": 1.5,
        "all_runs": {k: [round(r["images_per_s"], 2) for r in v] for k, v in runs.items()},
    }
    out["meets_target"] = out["ratio"] >= out["target_ratio"]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

"""HiNAS's hierarchical search, and plain DARTS over the same space.

The loop (hkzhang91/HiNAS one_stage_nas/engine/searcher.py:48-150, solver/build.py:48-57):
per epoch, the weights train on one half of the training images (SGD, lr 0.025 cosine-
annealed to 0.001, momentum 0.9, weight decay 3e-4: config/defaults.py:95-98) and, after
``arch_start`` of the epochs (``ARCH_START_EPOCH: 20`` of ``MAX_EPOCH: 100``), every weight
step is preceded by one first-order architecture step on a batch of the other half (Adam,
lr 1e-3, weight decay 1e-3: defaults.py:100-101). Inner space (alphas, one cell arch per
layer shared by the cells of all widths of that layer) and outer space (betas of the
routers, with cell sharing) are optimised together; the arch is derived by the official
genotype rule and Viterbi (:meth:`HinasSupernet.derive`).

``darts-hinas`` is plain DARTS over the same space: no layerwise architecture sharing (one
alpha set per cell), no cell sharing (one cell per path), arch steps from the first epoch
(DARTS has no warm-up), the same optimisers. Comparing the two measures what HiNAS's
sharing saves.

CPU-scale deviations (say so in reports): batch and epochs come from ``--param`` /
``--epochs``; the loss is the task's (L1 / MSE) without the official log-SSIM term.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from nasforge.errors import SearchError
from nasforge.nn.hinas import HinasSupernet
from nasforge.search.restoration.common import (
    RESTORATION_TASKS,
    ActivationMeter,
    cycle,
    halves,
    peak_rss_mb,
    settings_from_params,
)
from nasforge.search.task_search import TASK_SEARCHES, TaskSearch, TaskSearchResult, TaskSearchSpec
from nasforge.spaces import get_space


@dataclass(frozen=True)
class HinasSettings:
    """Search settings (``--param KEY=VALUE``); defaults per task in :func:`defaults_for`."""

    C: int = 10
    layers: int = 3
    blocks: int = 4
    batch_size: int = 6
    epochs: int = 100
    arch_start: float = 0.2
    w_lr: float = 0.025
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    a_lr: float = 1e-3
    a_weight_decay: float = 1e-3
    cell_sharing: bool = True
    share_alphas: str = "layer"

    def check(self, algo: str) -> None:
        for k in ("C", "layers", "blocks", "batch_size", "epochs"):
            if getattr(self, k) < 1:
                raise SearchError(f"{algo}: --param {k}={getattr(self, k)}; expected >= 1")
        if not 0 <= self.arch_start < 1:
            raise SearchError(f"{algo}: --param arch_start={self.arch_start}; expected in [0, 1)")
        if self.share_alphas not in ("layer", "all", "none"):
            raise SearchError(
                f"{algo}: --param share_alphas={self.share_alphas!r}; expected layer, all or none"
            )
        for k in ("w_lr", "a_lr"):
            if not getattr(self, k) > 0:
                raise SearchError(f"{algo}: --param {k}={getattr(self, k)}; expected > 0")


def defaults_for(task: str) -> HinasSettings:
    """Official search configs: SR 2 layers x 3 blocks, C = 8, batch 24 (configs/sr/
    DIV2K_2c3n/03_search_CR.yaml:15-18, :24); denoising 3 x 4, C = 10, batch 6 (configs/dn/
    BSD500_3c4n/03_search_CR_R0.yaml:15-18, :25)."""
    if task.startswith("sr-"):
        return HinasSettings(C=8, layers=2, blocks=3, batch_size=24)
    return HinasSettings()


class _SupernetSearch(TaskSearch):
    """The one search loop of HiNAS and of plain DARTS over its space."""

    spaces = ("hinas",)
    tasks = RESTORATION_TASKS
    algo = ""
    #: Settings this method fixes on top of the task defaults.
    overrides: ClassVar[dict[str, Any]] = {}

    def settings(self, spec: TaskSearchSpec) -> HinasSettings:
        base = settings_from_params(defaults_for(spec.task.name), self.overrides, self.algo)
        params = dict(spec.params)
        if spec.epochs is not None:
            params["epochs"] = spec.epochs
        return settings_from_params(base, params, self.algo)

    def run(self, spec: TaskSearchSpec, out: Path) -> TaskSearchResult:
        s = self.settings(spec)  # before any work
        task = spec.task
        data = task.load(spec.dataset, spec.data_dir, seed=0, limit=spec.limit)
        io = task.network_io(data)
        torch.manual_seed(spec.seed)
        device = torch.device(spec.device)
        net = HinasSupernet(
            **io,
            C=s.C,
            layers=s.layers,
            blocks=s.blocks,
            cell_sharing=s.cell_sharing,
            share_alphas=s.share_alphas,
        ).to(device)
        w_opt = torch.optim.SGD(
            net.weight_parameters(), s.w_lr, momentum=s.w_momentum, weight_decay=s.w_weight_decay
        )
        a_opt = torch.optim.Adam(net.arch_parameters(), s.a_lr, weight_decay=s.a_weight_decay)
        data_w, data_a = halves(data)
        recipe_loss = task.default_recipe

        def batches(d: Any, seed: int) -> Any:
            def make(epoch: int) -> Any:
                ld = task.loader(d, "train", s.batch_size, train=True, seed=seed, device=device)
                ld.set_epoch(epoch)
                return iter(ld)

            return make

        from nasforge.train import get_recipe

        recipe = get_recipe(recipe_loss)
        arch_batches = cycle(batches(data_a, spec.seed * 2 + 1))
        start = math.floor(s.arch_start * s.epochs)
        activation_bytes = 0
        steps = 0
        t0 = time.perf_counter()
        losses: list[float] = []
        for epoch in range(s.epochs):
            lr = s.w_lr_min + (s.w_lr - s.w_lr_min) * (1 + math.cos(math.pi * epoch / s.epochs)) / 2
            for g in w_opt.param_groups:
                g["lr"] = lr
            net.train()
            total, n = 0.0, 0
            for x, y in batches(data_w, spec.seed * 2)(epoch):
                if epoch >= start:
                    xa, ya = next(arch_batches)
                    a_opt.zero_grad(set_to_none=True)
                    task.loss(net(xa), ya, recipe).backward()
                    a_opt.step()
                w_opt.zero_grad(set_to_none=True)
                with ActivationMeter() as meter:
                    loss = task.loss(net(x), y, recipe)
                activation_bytes = max(activation_bytes, meter.bytes)
                loss.backward()
                w_opt.step()
                total += float(loss.detach()) * int(y.shape[0])
                n += int(y.shape[0])
                steps += 1
            losses.append(total / max(n, 1))
        search_time = time.perf_counter() - t0
        arch = net.derive()
        split = "valid" if "valid" in data.evals else next(iter(data.evals))
        metrics = task.evaluate(net, task.loader(data, split, 1, train=False, device=device))
        space = get_space("hinas")
        return TaskSearchResult(
            arch=space.to_string(arch),
            metrics={f"supernet_{split}_{k}": v for k, v in metrics.items()},
            search_time_s=search_time,
            peak_memory_mb=peak_rss_mb(),
            extra={
                "settings": s.__dict__,
                "train_loss": losses,
                "steps": steps,
                "activation_mb_per_step": activation_bytes / 2**20,
                "supernet_params": sum(p.numel() for p in net.weight_parameters()),
                "memory_note": "peak_memory_mb is the process's peak RSS; "
                "activation_mb_per_step the tensors saved for backward by one weight step",
                "betas": torch.softmax(net.arch_betas, -1).tolist(),
            },
        )


@TASK_SEARCHES.register("hinas")
class HinasSearch(_SupernetSearch):
    """HiNAS: layerwise architecture sharing + cell sharing, arch steps after 20% warm-up."""

    algo = "hinas"
    overrides: ClassVar[dict[str, Any]] = {}


@TASK_SEARCHES.register("darts-hinas")
class DartsHinasSearch(_SupernetSearch):
    """Plain DARTS (first order) over HiNAS's space: no sharing, no warm-up."""

    algo = "darts-hinas"
    overrides: ClassVar[dict[str, Any]] = {
        "cell_sharing": False,
        "share_alphas": "none",
        "arch_start": 0.0,
    }

"""Trilevel NAS (Wu et al., arXiv 2101.06658): one-phase search and training for SR.

Every step trains the architecture (network-level ``gamma``, cell-level ``alpha``,
kernel-level ``ratio``) on a batch of one half of the training images and the weights on a
batch of the other half; the sparsestmax radius grows linearly from 0 to ``rad_max`` over
the run, so the network-, cell- and kernel-level weights sparsify while the weights train
(the authors' analysis script evaluates ``sparsestmax(., epoch / 100)``; they derive with
radius 1). The weight loss sums the L1 losses at the sampled, the widest and the narrowest
widths (their ``_loss``); the architecture loss adds ``order_weight`` times the order term
on ``gamma`` (the sorting constraint as their ``_criterion`` writes it; their runs are
named ``..._order_1e-5`` / ``1e-6``). At the end the arch is derived by argmax and its
network *inherits* the supernet's weights -- that network is the result (one phase);
``finetune_epochs`` continues training it with the task's recipe.

Unverified (the authors' optimiser settings could not be read): the weights use Adam
(their configs: ``opt = 'Adam'``, betas 0.9/0.999, lr 2e-4 for their from-scratch runs),
the architecture Adam with DARTS's arch settings (lr 3e-4, betas 0.5/0.999, weight decay
1e-3). ``relaxation=softmax`` replaces sparsestmax by softmax (their ``sparse_type``
option): a plain DARTS-style relaxation of the same space.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nasforge.errors import SearchError
from nasforge.nn.trilevel import TrilevelNetwork, TrilevelSupernet
from nasforge.search.restoration.common import (
    RESTORATION_TASKS,
    ActivationMeter,
    cycle,
    halves,
    peak_rss_mb,
    settings_from_params,
)
from nasforge.search.task_search import TASK_SEARCHES, TaskSearch, TaskSearchResult, TaskSearchSpec
from nasforge.spaces.trilevel import TrilevelSpace


@dataclass(frozen=True)
class TrilevelSettings:
    """``--param KEY=VALUE`` settings of the trilevel search."""

    nf: int = 64
    stem: int = 1
    path: int = 4
    ops: int = 5
    batch_size: int = 16
    epochs: int = 100
    w_lr: float = 2e-4
    a_lr: float = 3e-4
    a_weight_decay: float = 1e-3
    rad_max: float = 1.0
    order_weight: float = 1e-5
    sandwich: bool = True
    relaxation: str = "sparsestmax"
    finetune_epochs: int = 0

    def check(self, algo: str) -> None:
        for k in ("nf", "stem", "ops", "batch_size", "epochs"):
            if getattr(self, k) < 1:
                raise SearchError(f"{algo}: --param {k}={getattr(self, k)}; expected >= 1")
        for k in ("path", "finetune_epochs"):
            if getattr(self, k) < 0:
                raise SearchError(f"{algo}: --param {k}={getattr(self, k)}; expected >= 0")
        if self.relaxation not in ("sparsestmax", "softmax"):
            raise SearchError(
                f"{algo}: --param relaxation={self.relaxation!r}; expected sparsestmax or softmax"
            )
        if not (self.w_lr > 0 and self.a_lr > 0 and self.rad_max >= 0):
            raise SearchError(f"{algo}: learning rates must be > 0 and rad_max >= 0")


@TASK_SEARCHES.register("trilevel")
class TrilevelSearch(TaskSearch):
    """Trilevel NAS: network/cell/kernel levels with sparsestmax, one phase."""

    spaces = ("trilevel-sr",)
    tasks = tuple(t for t in RESTORATION_TASKS if t.startswith("sr-"))

    def run(self, spec: TaskSearchSpec, out: Path) -> TaskSearchResult:
        params = dict(spec.params)
        if spec.epochs is not None:
            params["epochs"] = spec.epochs
        s = settings_from_params(TrilevelSettings(), params, "trilevel")
        task = spec.task
        data = task.load(spec.dataset, spec.data_dir, seed=0, limit=spec.limit)
        io = task.network_io(data)
        device = torch.device(spec.device)
        torch.manual_seed(spec.seed)
        net = TrilevelSupernet(
            **io, nf=s.nf, stem=s.stem, path=s.path, ops=s.ops, relaxation=s.relaxation
        ).to(device)
        w_opt = torch.optim.Adam(net.weight_parameters(), s.w_lr, betas=(0.9, 0.999))
        a_opt = torch.optim.Adam(
            net.arch_parameters(), s.a_lr, betas=(0.5, 0.999), weight_decay=s.a_weight_decay
        )
        from nasforge.train import get_recipe

        recipe = get_recipe(task.default_recipe)
        data_w, data_a = halves(data)

        def batches(d: Any, seed: int) -> Any:
            def make(epoch: int) -> Any:
                ld = task.loader(d, "train", s.batch_size, train=True, seed=seed, device=device)
                ld.set_epoch(epoch)
                return iter(ld)

            return make

        arch_batches = cycle(batches(data_a, spec.seed * 2 + 1))
        modes = ("sample", "max", "min") if s.sandwich else ("sample",)
        trace: list[dict[str, Any]] = []
        activation_bytes = 0
        t0 = time.perf_counter()
        for epoch in range(s.epochs):
            net.rad = s.rad_max * epoch / s.epochs
            net.train()
            total, n = 0.0, 0
            for x, y in batches(data_w, spec.seed * 2)(epoch):
                xa, ya = next(arch_batches)
                net.widths = "sample"
                a_opt.zero_grad(set_to_none=True)
                a_loss = task.loss(net(xa), ya, recipe) + s.order_weight * net.order_loss()
                a_loss.backward()
                a_opt.step()
                w_opt.zero_grad(set_to_none=True)
                loss = torch.zeros((), device=device)
                with ActivationMeter() as meter:
                    for mode in modes:
                        net.widths = mode
                        loss = loss + task.loss(net(x), y, recipe)
                activation_bytes = max(activation_bytes, meter.bytes)
                loss.backward()
                w_opt.step()
                total += float(loss.detach()) * int(y.shape[0])
                n += int(y.shape[0])
            with torch.no_grad():
                g, a = net.relax(net.arch_gamma), net.relax(net.arch_alpha)
            trace.append(
                {
                    "epoch": epoch,
                    "rad": net.rad,
                    "train_loss": total / max(n, 1),
                    "gamma_nonzero": int((g > 0).sum()),
                    "alpha_nonzero_mean": float((a > 0).sum(-1).double().mean()),
                }
            )
        search_time = time.perf_counter() - t0
        net.widths = "max"
        arch = net.derive()
        fixed = TrilevelNetwork(arch, **io, nf=s.nf).to(device).inherit(net)
        metrics: dict[str, float] = {}
        for split in data.evals:
            m = task.evaluate(fixed, task.loader(data, split, 1, train=False, device=device))
            metrics.update({f"inherited_{split}_{k}": v for k, v in m.items()})
        if s.finetune_epochs:
            from nasforge.train import Trainer

            rec = recipe.replace(epochs=s.finetune_epochs, batch_size=s.batch_size)
            res = Trainer(rec, task=task, device=device).fit(fixed, data, seed=spec.seed)
            last = res.epochs[-1].eval if res.epochs else {}
            for split, m in last.items():
                metrics.update({f"finetuned_{split}_{k}": v for k, v in m.items()})
        return TaskSearchResult(
            arch=TrilevelSpace(s.stem, s.path, s.ops).to_string(arch),
            metrics=metrics,
            search_time_s=search_time,
            peak_memory_mb=peak_rss_mb(),
            extra={
                "settings": s.__dict__,
                "trace": trace,
                "depth": arch.depth,
                "params": sum(p.numel() for p in fixed.parameters()),
                "supernet_params": sum(p.numel() for p in net.weight_parameters()),
                "activation_mb_per_step": activation_bytes / 2**20,
                "memory_note": "peak_memory_mb is the process's peak RSS; "
                "activation_mb_per_step the tensors saved for backward by one weight step",
                "final_gamma": net.relax(net.arch_gamma).tolist(),
            },
        )

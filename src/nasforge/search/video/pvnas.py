"""PV-NAS: gradient-based search of the video space with a diversity learning-rate scheduler.

The method (Wang et al., arXiv:2011.00826; abstract only -- see :mod:`nasforge.spaces.pvnas`
for what was and was not verifiable) relaxes the layer-wise op and width choices of the
spatial-temporal space and learns them by gradient descent, DARTS-style, with a learning
rate scheduler designed to keep the searched networks diverse rather than stuck in a
sub-optimal solution.

The loop is first-order DARTS (quark0/darts ``cnn/train_search.py:23-43,147-155``): the
training split is halved (``train_portion`` 0.5; weights on the first half, architecture
parameters on the second), and each iteration takes one Adam step of the architecture
parameters (lr 3e-4, betas (0.5, 0.999), weight decay 1e-3; ``architect.py:17-18``) on a
batch of the second half, then one SGD step of the weights (momentum 0.9, weight decay
3e-4, gradient norm clipped at 5) on a batch of the first. The arch is derived by taking
the strongest op and width of every layer (:meth:`PVNASSupernet.derive`).

Weight learning-rate schedulers (``--param scheduler=``):

- ``diversity`` (default): cosine annealing with warm restarts -- ``cycles`` cosine
  decays from ``lr`` to ``lr_min`` of equal length, stepped per iteration, each restart
  going back to ``lr``. **Not verified against the paper:** its schedule's formula could not
  be read here; this is the reconstruction its abstract's description admits (a schedule
  whose rate rises again so that the weights, and with them the op ranking, can leave the
  solution they settled in), and what it adds is measured, not assumed: the search records
  the arch derived at the end of every cycle and ``benchmarks/pvnas_video.py`` compares the
  spread of derived archs across seeds with plain cosine.
- ``cosine``: one cosine decay over the whole search (DARTS' schedule, per iteration).

An optional cost term (``macs_weight``, default 0, off) adds ``macs_weight * E[MACs] /
MACs(widest arch)`` to the architecture loss, the expectation under the op and width
softmaxes, to steer the search to a multiply-add budget.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nasforge.errors import SearchError
from nasforge.search.task_search import TASK_SEARCHES, TaskSearch, TaskSearchResult, TaskSearchSpec

SCHEDULERS = ("diversity", "cosine")

#: Defaults of ``--param`` (DARTS' values where DARTS fixes one; CPU-scale elsewhere).
DEFAULTS: dict[str, Any] = {
    "scheduler": "diversity",
    "cycles": 3,
    "epochs": 12,
    "batch_size": 32,
    "lr": 0.025,
    "lr_min": 0.001,
    "momentum": 0.9,
    "weight_decay": 3e-4,
    "grad_clip": 5.0,
    "arch_lr": 3e-4,
    "arch_weight_decay": 1e-3,
    "C": 8,
    "macs_weight": 0.0,
}


def scheduled_lr(
    scheduler: str, lr: float, lr_min: float, t: float, total: float, cycles: int = 1
) -> float:
    """The weight learning rate at iteration ``t`` of ``total`` (0-based, fractional ok).

    ``cosine``: ``lr_min + (lr - lr_min) * (1 + cos(pi * t / total)) / 2``;
    ``diversity``: the same within each of ``cycles`` equal cycles, restarting at ``lr``."""
    if scheduler == "cosine":
        cycles = 1
    elif scheduler != "diversity":
        raise SearchError(f"scheduler {scheduler!r}; expected one of {list(SCHEDULERS)}")
    period = total / cycles
    within = t - period * min(int(t // period), cycles - 1)
    return lr_min + (lr - lr_min) * (1 + math.cos(math.pi * within / period)) / 2


def _check_params(params: dict[str, Any], spec: TaskSearchSpec) -> dict[str, Any]:
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise SearchError(f"pv-nas has no --param {unknown}; expected some of {sorted(DEFAULTS)}")
    p = {**DEFAULTS, **params}
    if spec.epochs is not None:
        p["epochs"] = spec.epochs
    if p["scheduler"] not in SCHEDULERS:
        raise SearchError(
            f"--param scheduler={p['scheduler']!r}; expected one of {list(SCHEDULERS)}"
        )
    for k in ("cycles", "epochs", "batch_size", "C"):
        if isinstance(p[k], bool) or not isinstance(p[k], int) or p[k] < 1:
            raise SearchError(f"--param {k}={p[k]!r}; expected an int >= 1")
    for k in ("lr", "arch_lr"):
        if not isinstance(p[k], (int, float)) or not p[k] > 0:
            raise SearchError(f"--param {k}={p[k]!r}; expected a number > 0")
    for k in ("lr_min", "momentum", "weight_decay", "arch_weight_decay", "macs_weight"):
        if not isinstance(p[k], (int, float)) or not math.isfinite(p[k]) or p[k] < 0:
            raise SearchError(f"--param {k}={p[k]!r}; expected a finite number >= 0")
    if p["lr_min"] > p["lr"]:
        raise SearchError(f"--param lr_min={p['lr_min']} exceeds lr={p['lr']}")
    if not isinstance(p["grad_clip"], (int, float)) or p["grad_clip"] <= 0:
        raise SearchError(f"--param grad_clip={p['grad_clip']!r}; expected a number > 0")
    if p["scheduler"] == "diversity" and p["cycles"] > p["epochs"]:
        raise SearchError(
            f"--param cycles={p['cycles']} exceeds the {p['epochs']} search epochs; expected "
            "at most one cycle per epoch"
        )
    return p


def _macs_table(frames: int, size: int, C: int) -> tuple[torch.Tensor, float]:
    """Per layer, op and width: multiply-adds (layers x ops x widths), and the widest
    arch's total (the normaliser)."""
    from nasforge.spaces.pvnas import OPS, SKELETON, WIDTHS, layer_cost

    table = torch.tensor(
        [
            [[layer_cost(i, o, w, frames=frames, size=size, C=C)[0] for w in WIDTHS] for o in OPS]
            for i in range(len(SKELETON))
        ],
        dtype=torch.float32,
    )
    return table, float(table.amax(dim=(1, 2)).sum())


@TASK_SEARCHES.register("pv-nas")
class PVNASSearch(TaskSearch):
    """PV-NAS on a video task: supernet search, derivation, the arch per cycle."""

    spaces = ("pvnas",)
    tasks = ("video-digits",)

    def run(self, spec: TaskSearchSpec, out: Path) -> TaskSearchResult:
        from nasforge.data.video import SubsetClips
        from nasforge.nn.video import PVNASSupernet
        from nasforge.spaces.pvnas import PVNASSpace
        from nasforge.train import set_seed

        p = _check_params(dict(spec.params), spec)
        task, space = spec.task, PVNASSpace()
        data = task.load(spec.dataset, spec.data_dir, seed=spec.seed, limit=spec.limit)
        n = len(data.train)
        if n < 2:
            raise SearchError(f"pv-nas splits the training clips in two; got {n} clip(s)")
        order = np.random.default_rng([spec.seed, 11]).permutation(n)
        halves = {
            "weights": SubsetClips(data.train, np.sort(order[: n // 2])),
            "arch": SubsetClips(data.train, np.sort(order[n // 2 :])),
        }
        io = task.network_io(data)
        set_seed(spec.seed)
        net = PVNASSupernet(C=p["C"], **io).to(spec.device)
        w_opt = torch.optim.SGD(
            net.weight_parameters(), lr=p["lr"], momentum=p["momentum"],
            weight_decay=p["weight_decay"],
        )  # fmt: skip
        a_opt = torch.optim.Adam(
            net.arch_parameters(), lr=p["arch_lr"], betas=(0.5, 0.999),
            weight_decay=p["arch_weight_decay"],
        )  # fmt: skip
        size = int(data.crop_size)
        macs, macs_norm = _macs_table(int(io["frames"]), size, p["C"])
        loaders = {
            k: task.loader(
                _View(data, src),
                "train",
                p["batch_size"],
                train=True,
                seed=spec.seed + i,
                device=spec.device,
            )
            for i, (k, src) in enumerate(halves.items())
        }
        epochs, steps = p["epochs"], min(len(loaders["weights"]), len(loaders["arch"]))
        total = epochs * steps
        period = epochs / (p["cycles"] if p["scheduler"] == "diversity" else 1)
        history: list[dict[str, Any]] = []
        cycle_archs: list[str] = []
        t0 = time.perf_counter()
        for epoch in range(epochs):
            for ld in loaders.values():
                ld.set_epoch(epoch)
            net.train()
            loss_sum, n_seen = 0.0, 0
            for step, ((xw, yw), (xa, ya)) in enumerate(
                zip(loaders["weights"], loaders["arch"], strict=False)
            ):
                if step >= steps:
                    break
                lr = scheduled_lr(
                    p["scheduler"], p["lr"], p["lr_min"], epoch * steps + step, total, p["cycles"]
                )
                for g in w_opt.param_groups:
                    g["lr"] = lr
                # Architecture step first, on the held-out half (train_search.py:147-155).
                a_opt.zero_grad(set_to_none=True)
                arch_loss = F.cross_entropy(net(xa), ya)
                if p["macs_weight"] > 0:
                    a, b = net.alpha.softmax(-1), net.beta.softmax(-1)
                    expected = (a[:, :, None] * b[:, None, :] * macs).sum()
                    arch_loss = arch_loss + p["macs_weight"] * expected / macs_norm
                arch_loss.backward()
                a_opt.step()
                w_opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(net(xw), yw)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.weight_parameters(), p["grad_clip"])
                w_opt.step()
                loss_sum += float(loss.detach()) * len(yw)
                n_seen += len(yw)
            derived = space.to_string(net.derive())
            history.append(
                {
                    "epoch": epoch,
                    "train_loss": loss_sum / max(n_seen, 1),
                    "lr_end": lr,
                    "arch": derived,
                    "alpha": net.alpha.detach().softmax(-1).tolist(),
                    "beta": net.beta.detach().softmax(-1).tolist(),
                }
            )
            # The end of a cycle: the arch it settled on (the last epoch ends the last one).
            if (epoch + 1) >= period * (len(cycle_archs) + 1) - 1e-9:
                cycle_archs.append(derived)
            if not spec.quiet:
                print(
                    f"epoch {epoch + 1}/{epochs} lr {lr:.4f} loss {history[-1]['train_loss']:.4f} {derived}"
                )
        search_time = time.perf_counter() - t0
        valid = task.evaluate(
            net, task.loader(data, "valid", p["batch_size"], train=False, device=spec.device)
        )
        arch = net.derive()
        from nasforge.spaces.pvnas import pvnas_cost

        cost = pvnas_cost(
            arch, frames=int(io["frames"]), size=size, in_channels=int(io["in_channels"]),
            num_classes=int(io["num_classes"]),
        )  # fmt: skip
        return TaskSearchResult(
            space.to_string(arch),
            {},
            search_time_s=search_time,
            extra={
                "settings": p,
                "supernet_valid": valid,
                "derived_macs": cost["macs"],
                "derived_params": cost["params"],
                "cycle_archs": cycle_archs,
                "distinct_epoch_archs": len({h["arch"] for h in history}),
                "history": history,
            },
        )


class _View:
    """A dataset object whose train split is one half of the real one (for the loaders)."""

    def __init__(self, data: Any, train: Any) -> None:
        self._data, self.train = data, train

    def split(self, name: str) -> Any:
        return self.train if name == "train" else self._data.split(name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._data, name)

"""A realistic synthetic NB201 table with a known optimum, for tests and benchmarks.

Accuracy depends smoothly on the arch's ops: a convolution on an edge helps (3x3 more than
1x1), ``skip_connect`` helps most on the long edge 0->3 (the residual path), pooling helps
little, ``none`` removes the edge; an arch whose output is cut off from its input stays at
chance. Learning curves rise and saturate; epoch times are proportional to the FLOPs;
valid and test accuracies are correlated but not identical. Every noise term is bounded
(``tanh`` of a Gaussian) and smaller than the gap between the best arch and its runners-up,
so :data:`SYNTHETIC_OPTIMUM` is the best arch by final valid (and test) accuracy on every
dataset, recipe and seed.

Absolute figures are made up; only their shape mimics NAS-Bench-201 (Dong & Yang, ICLR 2020:
top CIFAR-10 test accuracy ~94.4 %, CIFAR-100 ~73.5 %, ImageNet16-120 ~47 %).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from nasforge.bench.schema import STATUS_CODES
from nasforge.bench.store import CostData, GroupData, write_table
from nasforge.errors import BenchError
from nasforge.spaces.nb201 import NUM_ARCHS, NUM_EDGES, NUM_OPS, Arch, code_of_index

#: The best arch of every synthetic table (conv3x3 everywhere but a skip on edge 0->3; the
#: real NB201 optimum on CIFAR-10 has the same shape).
SYNTHETIC_OPTIMUM = Arch(
    ("nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_3x3", "nor_conv_3x3")
)

#: Manifest ``meta`` key marking a table whose figures are made up (this generator's).
SYNTHETIC_META = "synthetic"

# Per edge (official order 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2), the value of each op
# (none, skip, conv1x1, conv3x3, avg_pool).
_OP_VALUE = np.array(
    [
        [0.0, 0.30, 0.55, 1.00, 0.15],
        [0.0, 0.30, 0.55, 1.00, 0.15],
        [0.0, 0.30, 0.55, 1.00, 0.15],
        [0.0, 1.00, 0.60, 0.75, 0.20],
        [0.0, 0.30, 0.55, 1.00, 0.15],
        [0.0, 0.30, 0.55, 1.00, 0.15],
    ]
)
_EDGE_WEIGHT = np.array([0.9, 0.8, 0.9, 0.8, 0.9, 1.0])

# (top valid acc, test - valid offset, chance, #train images, #valid, #test, eval sets)
_DATASETS: dict[str, tuple[float, float, float, int, int, int, tuple[str, ...]]] = {
    "cifar10-valid": (91.6, 2.8, 10.0, 25000, 25000, 10000, ("valid", "test")),
    "cifar10": (94.4, 0.0, 10.0, 50000, 0, 10000, ("test",)),
    "cifar100": (73.5, 0.0, 1.0, 50000, 5000, 5000, ("valid", "test", "valtest")),
    "ImageNet16-120": (46.7, 0.4, 100 / 120, 151700, 3000, 3000, ("valid", "test", "valtest")),
}


def _op_ids(indices: np.ndarray) -> np.ndarray:
    codes = code_of_index()[indices]
    pows = NUM_OPS ** np.arange(NUM_EDGES - 1, -1, -1)
    return (codes[:, None] // pows[None, :]) % NUM_OPS


def _quality(ops: np.ndarray) -> np.ndarray:
    """In [0, 1]: how good an arch is; 0 when the output is cut off from the input."""
    on = ops != 0
    n1 = on[:, 0]
    n2 = on[:, 1] | (on[:, 2] & n1)
    n3 = on[:, 3] | (on[:, 4] & n1) | (on[:, 5] & n2)
    # An edge matters if its source is reachable and its target feeds the output.
    used2 = on[:, 5]
    used1 = on[:, 4] | (on[:, 2] & used2)
    src_ok = np.stack([np.ones_like(n1), np.ones_like(n1), n1, np.ones_like(n1), n1, n2], 1)
    dst_used = np.stack(
        [used1, used2, used2, np.ones_like(n1), np.ones_like(n1), np.ones_like(n1)], 1
    )
    vals = _OP_VALUE[np.arange(NUM_EDGES)[None, :], ops] * src_ok * dst_used
    score = (vals * _EDGE_WEIGHT).sum(1) / (_EDGE_WEIGHT * _OP_VALUE.max(1)).sum()
    # Concave near zero, still rising at the top (so the optimum keeps a clear margin).
    q = 0.75 * (1 - np.exp(-4 * score)) / (1 - np.exp(-4)) + 0.25 * score**2
    return np.where(n3, q, 0.0)


def _bounded(rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> np.ndarray:
    return scale * np.tanh(rng.standard_normal(shape))


@lru_cache(maxsize=8)
def _skeleton_cost(dataset: str) -> tuple[float, float]:
    """Params / FLOPs (M) of the NB201 network with every edge ``none`` (one network count)."""
    from nasforge.cost.nb201 import network_cost

    c = network_cost(Arch(("none",) * NUM_EDGES), dataset)
    return c.params_m, c.flops_m


def _op_deltas(dataset: str) -> np.ndarray:
    """[5 ops, 2]: params / FLOPs (M) one edge adds, per op.

    NB201 network (C=16, N=5): three stages of 5 cells at C = 16, 32, 64 on 32x32, 16x16,
    8x8 maps (half that for ImageNet16-120's 16x16 input). A conv edge is ReLU-Conv(k x k,
    no bias)-BN(affine): k*k*C*C + 2C params and k*k*C*C*H*W FLOPs; skip, pooling (not
    counted in the NB201 convention) and none add nothing.
    """
    from nasforge.cost import dataset_shape

    res, _ = dataset_shape(dataset)
    out = np.zeros((NUM_OPS, 2))
    for k, op in ((1, 2), (3, 3)):  # kernel size of nor_conv_1x1 / nor_conv_3x3
        for stage, c in enumerate((16, 32, 64)):
            hw = (res // 2**stage) ** 2
            out[op, 0] += 5 * (k * k * c * c + 2 * c) / 1e6
            out[op, 1] += 5 * (k * k * c * c * hw) / 1e6
    return out


def _curve(
    rng: np.random.Generator,
    fin: np.ndarray,
    noise: float,
    chance: float,
    shape: np.ndarray,
    wobble: np.ndarray,
) -> np.ndarray:
    """[seeds, archs, epochs] accuracy rising from near chance to ``fin``, noisy early."""
    c = chance + (fin[..., None] - chance) * shape
    c += noise * wobble * np.tanh(rng.standard_normal((*fin.shape, len(shape))))
    return np.clip(c, 0.0, 100.0)


def _loss(acc: np.ndarray, chance: float) -> np.ndarray:
    """Cross-entropy-like loss: log(#classes) at chance, ~0 at 100 %."""
    frac = np.clip((acc - chance) / (100 - chance), 0, 1)
    return np.log(100 / chance) * (1 - frac) ** 1.3 + 0.02


def _costs(indices: np.ndarray, ops: np.ndarray, dataset: str) -> np.ndarray:
    """[n, 3] params_m, flops_m (exact, NB201 convention), latency_s (synthetic)."""
    base_p, base_f = _skeleton_cost(dataset)
    per_op = _op_deltas(dataset)
    params = np.round(base_p + per_op[ops, 0].sum(1), 6)
    flops = np.round(base_f + per_op[ops, 1].sum(1), 6)
    latency = 0.006 + 0.00008 * flops + 0.0015 * (ops != 0).sum(1)
    return np.stack([params, flops, latency], 1)


def _arch_indices(archs: str | Sequence[Arch | str | int] | None) -> np.ndarray:
    if archs is None or (isinstance(archs, str) and archs == "all"):
        return np.arange(NUM_ARCHS)
    if isinstance(archs, str):
        raise BenchError(f"archs={archs!r}: expected None, 'all' or a list of archs")
    idx = np.unique([Arch.parse(a).to_index() for a in archs])
    if not len(idx):
        raise BenchError("archs is an empty list")
    return idx.astype(np.int64)


def synthetic_groups(
    indices: np.ndarray,
    datasets: Sequence[str],
    hps: dict[str, int],
    seeds: Sequence[int],
    seed: int,
    final_only: bool,
    dtype: np.dtype,
) -> Iterator[GroupData]:
    ops = _op_ids(indices)
    q = _quality(ops)
    n, S = len(indices), len(seeds)
    for d_i, ds in enumerate(datasets):
        top, test_off, chance, n_train, n_valid, n_test, sets = _DATASETS[ds]
        costs = _costs(indices, ops, ds)
        flops = costs[:, 1]
        rng = np.random.default_rng([seed, d_i])
        # Arch "luck" shared by all seeds and recipes; one more term for test vs valid.
        luck = _bounded(rng, (n,), 0.15)
        test_luck = _bounded(rng, (n,), 0.15)
        final200 = chance + (top - chance) * q + luck
        final200 = np.where(q > 0, final200, chance + 0.05 * luck)
        max_epochs = max(hps.values())
        hp_items = [("final", max_epochs)] if final_only else sorted(hps.items())
        for hp, E in hp_items:
            # Shorter schedules reach a lower plateau (NB201: 12 epochs ~ 10 points lower).
            ratio = 1.0 - 0.12 * (1 - min(E, 200) / 200) ** 0.5
            final = chance + (final200 - chance) * ratio
            seed_noise = _bounded(rng, (S, n), 0.2)
            valid_fin = final[None, :] + seed_noise * (q[None, :] > 0)
            test_fin = valid_fin + test_off + test_luck[None, :] * (q[None, :] > 0)
            if sets[0] != "valid":  # cifar10: only the test set exists
                test_fin = final[None, :] + test_off + seed_noise * (q[None, :] > 0)
            t_epoch = (n_train / 50000) * (4.0 + 0.05 * flops)  # seconds
            jitter = 1 + _bounded(rng, (S, n), 0.02)
            train_fin = np.minimum(valid_fin + (100 - valid_fin) * 0.85 * q[None, :], 99.95)

            curves: dict[str, np.ndarray] = {}
            if final_only:
                curves["train_acc"] = train_fin[..., None]
                if "valid" in sets:
                    curves["valid_acc"] = valid_fin[..., None]
                curves["test_acc"] = test_fin[..., None]
                curves["train_time"] = (jitter * t_epoch[None, :] * E)[..., None]
            else:
                p = (np.arange(1, E + 1) - 1) / max(E - 1, 1)
                shape = 0.35 + 0.65 * (1 - np.exp(-6 * p)) / (1 - np.exp(-6))
                wobble = (1 - p) ** 2  # per-epoch noise fades out as training converges

                curves["train_acc"] = _curve(rng, train_fin, 1.5, chance, shape, wobble)
                curves["train_loss"] = _loss(curves["train_acc"], chance)
                if "valid" in sets:
                    curves["valid_acc"] = _curve(rng, valid_fin, 1.5, chance, shape, wobble)
                    curves["valid_loss"] = _loss(curves["valid_acc"], chance)
                curves["test_acc"] = _curve(rng, test_fin, 1.5, chance, shape, wobble)
                curves["test_loss"] = _loss(curves["test_acc"], chance)
                if "valtest" in sets:  # ori-test = x-valid + x-test, equal halves
                    curves["valtest_acc"] = (curves["valid_acc"] + curves["test_acc"]) / 2
                    curves["valtest_loss"] = (curves["valid_loss"] + curves["test_loss"]) / 2
                et = jitter[..., None] * t_epoch[None, :, None] * np.ones(E)
                et = et * (1 + _bounded(rng, (S, n, E), 0.01))
                curves["epoch_time"] = et
                eval_rate = 0.3 / n_train  # forward only: ~0.3 of a training step per image
                for name, count in (("valid", n_valid), ("test", n_test)):
                    if name in sets:
                        curves[f"{name}_time"] = et * eval_rate * count
                if "valtest" in sets:
                    curves["valtest_time"] = curves["valid_time"] + curves["test_time"]
                curves["train_time"] = np.cumsum(et, axis=2)
            from nasforge.bench.schema import metric_order

            metrics = metric_order(list(curves))
            data = np.empty((n, S, len(metrics), 1 if final_only else E), dtype=dtype)
            for m_i, m in enumerate(metrics):
                data[:, :, m_i, :] = curves.pop(m).swapaxes(0, 1)
            yield GroupData(
                dataset=ds,
                hp=hp,
                seeds=[int(s) for s in seeds],
                rows=indices,
                metrics=metrics,
                epochs=1 if final_only else E,
                final_only=final_only,
                status=np.full((n, S), STATUS_CODES["ok"], np.uint8),
                data=data,
            )
            del data


def make_synthetic_table(
    path: str | os.PathLike[str],
    *,
    datasets: Sequence[str] = ("cifar10-valid", "cifar100", "ImageNet16-120"),
    hps: dict[str, int] | None = None,
    seeds: Sequence[int] = (777, 888, 999),
    archs: str | Sequence[Arch | str | int] | None = None,
    seed: int = 0,
    final_only: bool = False,
    dtype: str = "float32",
    overwrite: bool = False,
) -> Path:
    """Write a synthetic table at ``path`` and return the path.

    ``hps`` maps recipe keys to epoch counts (default ``{"12": 12, "200": 200}``);
    ``archs`` is ``None`` / ``"all"`` (all 15,625) or a list of archs; ``seed`` fixes every
    random draw; ``final_only`` writes one ``"final"`` group per dataset holding the
    longest recipe's final ``train_acc`` / ``valid_acc`` / ``test_acc`` and total
    ``train_time`` (like a community CSV). The full 15,625 x 3 x 3 x 200 table takes a few
    seconds. :data:`SYNTHETIC_OPTIMUM` is its best arch.
    """
    hps = {"12": 12, "200": 200} if hps is None else dict(hps)
    for ds in datasets:
        if ds not in _DATASETS:
            raise BenchError(f"synthetic dataset {ds!r} unknown; expected one of {list(_DATASETS)}")
    if len(set(datasets)) != len(datasets):
        raise BenchError(f"datasets {list(datasets)} contain duplicates")
    for hp, E in hps.items():
        if not isinstance(E, int) or E < 1:
            raise BenchError(f"hps[{hp!r}]={E!r} must be a positive epoch count")
    if not seeds or len(set(seeds)) != len(seeds):
        raise BenchError(f"seeds {list(seeds)} must be distinct and non-empty")
    indices = _arch_indices(archs)
    groups = synthetic_groups(indices, datasets, hps, seeds, seed, final_only, np.dtype(dtype))
    costs = []
    ops = _op_ids(np.arange(NUM_ARCHS))
    for ds in datasets:
        values = np.full((NUM_ARCHS, 3), np.nan)
        values[indices] = _costs(indices, ops[indices], ds)
        costs.append(CostData(ds, ["params_m", "flops_m", "latency_s"], values))
    meta = {
        # Made-up figures: `bench info`, summaries and plots must say so (SYNTHETIC_META).
        SYNTHETIC_META: True,
        "source": "synthetic",
        "seed": seed,
        "optimum": SYNTHETIC_OPTIMUM.to_string(),
        "final_only": final_only,
    }
    return write_table(path, groups, costs, meta=meta, overwrite=overwrite)

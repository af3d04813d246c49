"""Recipes, the trainer (records, determinism, divergence, resume) and ``nasforge train``."""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from nasforge.data import make_synthetic
from nasforge.errors import CheckpointError, DataError, RecipeError
from nasforge.nn.nb201 import NB201Network
from nasforge.train import (
    CHECKPOINT_NAME,
    NB201_12E,
    NB201_200E,
    RECIPES,
    Recipe,
    Trainer,
    TrainResult,
    get_recipe,
    set_seed,
    train_arch,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
TINY = dict(epochs=3, batch_size=32)


def tiny_data():
    return make_synthetic(num_classes=4, resolution=16, n_train=96, n_valid=40, n_test=40, seed=1)


def strip_times(result: TrainResult) -> dict:
    d = result.to_dict()
    for k in ("total_train_time", "total_eval_time", "resumed_from_epoch"):
        d.pop(k)
    for r in d["epochs"]:
        r.pop("epoch_time")
        r.pop("eval_time")
    return d


# ----------------------------------------------------------------------------- recipes
def test_official_recipes_match_nb201_configs():
    # xautodl configs/nas-benchmark/hyper-opts/200E.config and 12E.config.
    for recipe, epochs in ((NB201_200E, 200), (NB201_12E, 12)):
        assert recipe == RECIPES.create(recipe.name)
        assert (recipe.epochs, recipe.batch_size, recipe.lr, recipe.momentum) == (
            epochs,
            256,
            0.1,
            0.9,
        )
        assert (recipe.nesterov, recipe.weight_decay, recipe.eta_min) == (True, 5e-4, 0.0)
        assert (recipe.scheduler, recipe.warmup_epochs, recipe.loss) == ("cosine", 0, "ce")
    assert set(RECIPES.names()) >= {"nb201-200e", "nb201-12e"}


def test_cosine_schedule_is_per_epoch_like_xautodl():
    r = NB201_200E
    assert r.lr_at(0) == 0.1 and r.lr_at(0, 100, 196) == 0.1
    assert math.isclose(r.lr_at(100), 0.05)
    assert math.isclose(r.lr_at(199), 0.05 * (1 + math.cos(math.pi * 199 / 200)))
    assert r.lr_at(199) > 0
    lrs = [r.lr_at(e) for e in range(200)]
    assert all(a > b for a, b in itertools.pairwise(lrs))
    w = r.replace(warmup_epochs=2)
    assert w.lr_at(0, 0, 10) == 0 and math.isclose(w.lr_at(0, 5, 10), 0.025)
    assert math.isclose(w.lr_at(1, 5, 10), 0.075) and w.lr_at(2) == 0.1
    # After warm-up xautodl's cosine runs on epoch - warmup with T_max = epochs (not
    # epochs - warmup): cos(pi * 100 / 200) at epoch 102.
    assert math.isclose(w.lr_at(102), 0.05)
    assert math.isclose(w.lr_at(199), 0.05 * (1 + math.cos(math.pi * 197 / 200)))
    assert w.lr_at(200) == w.eta_min


def test_resolve_device(monkeypatch) -> None:
    from nasforge.errors import NasforgeError, SearchError
    from nasforge.train.device import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(NasforgeError, match="device 'gpu' invalid"):
        resolve_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SearchError, match="'cuda:1' requested but CUDA is not available"):
        resolve_device("cuda:1", SearchError)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(NasforgeError, match="only 1 CUDA device"):
        resolve_device("cuda:1")


def test_recipe_replace_and_validation():
    r = get_recipe("nb201-12e", epochs=2, batch_size=None)
    assert r.epochs == 2 and r.batch_size == 256 and r.name == "nb201-12e[epochs=2]"
    assert r.replace(name="mine").name == "mine"
    assert get_recipe("nb201-12e") is not None and get_recipe(r) is r
    assert Recipe.from_dict(r.to_dict()) == r
    with pytest.raises(RecipeError, match=r"unknown recipe 'nb201-1e'.*nb201-12e"):
        get_recipe("nb201-1e")
    with pytest.raises(RecipeError, match=r"epochs=0.*>= 1"):
        NB201_12E.replace(epochs=0)
    with pytest.raises(RecipeError, match="lr=-1"):
        NB201_12E.replace(lr=-1.0)
    with pytest.raises(RecipeError, match=r"unknown recipe fields.*'lrr'"):
        NB201_12E.replace(lrr=0.1)
    with pytest.raises(RecipeError, match="scheduler='step'"):
        NB201_12E.replace(scheduler="step")
    with pytest.raises(RecipeError, match="warmup_epochs"):
        NB201_12E.replace(warmup_epochs=12)


# ----------------------------------------------------------------------------- trainer
def test_trainer_records_and_same_seed_same_metrics():
    data = tiny_data()
    recipe = get_recipe("nb201-12e", **TINY)
    a = train_arch(ARCH, data, recipe, seed=7, C=4, N=1)
    b = train_arch(ARCH, data, recipe, seed=7, C=4, N=1)
    assert a.status == "ok" and a.error is None and len(a.epochs) == 3
    assert strip_times(a) == strip_times(b)
    c = train_arch(ARCH, data, recipe, seed=8, C=4, N=1)
    assert strip_times(c)["epochs"] != strip_times(a)["epochs"]
    r0 = a.epochs[0]
    assert list(r0.eval) == ["valid", "test"]
    assert 0 <= r0.train_acc <= 100 and r0.train_loss > 0 and r0.epoch_time > 0
    assert [r.lr for r in a.epochs] == [recipe.lr_at(e) for e in range(3)]
    assert a.model == ARCH and a.num_params > 0 and a.recipe == recipe.to_dict()
    # The record is plain data: JSON round trip.
    again = TrainResult.from_dict(json.loads(json.dumps(a.to_dict())))
    assert again.to_dict() == a.to_dict()
    assert a.final("valid") == a.epochs[-1].eval["valid"]["acc"]


def test_eval_splits_selection():
    data = tiny_data()
    t = Trainer(get_recipe("nb201-12e", epochs=1, batch_size=32))
    set_seed(0)
    res = t.fit(NB201Network(ARCH, 4, 1, 4), data, seed=0, eval_splits=[])
    assert res.epochs[0].eval == {}
    with pytest.raises(DataError, match="no eval split 'xtest'"):
        t.fit(NB201Network(ARCH, 4, 1, 4), data, seed=0, eval_splits=["xtest"])


def test_network_learns_synthetic_data_well_above_chance():
    data = make_synthetic(num_classes=4, resolution=16, n_train=512, n_valid=200, n_test=8)
    recipe = get_recipe("nb201-12e", epochs=4, batch_size=64)
    res = train_arch(ARCH, data, recipe, seed=0, C=8, N=1, eval_splits=["valid"])
    assert res.final("valid") > 70.0, res.to_dict()  # chance is 25%


class _Exploding(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = NB201Network(ARCH, 4, 1, 4)

    def forward(self, x):
        return self.net(x) * 1e30


def test_divergence_is_a_result_not_a_crash():
    data = tiny_data()
    res = Trainer(get_recipe("nb201-12e", epochs=3, batch_size=32, lr=1e6)).fit(
        _Exploding(), data, seed=0
    )
    assert res.status == "diverged"
    assert "non-finite training loss" in res.error and "epoch 0" in res.error
    assert res.epochs == []
    json.dumps(res.to_dict(), allow_nan=False)


_CHILD = textwrap.dedent(
    """
    import os, signal, sys, torch
    torch.set_num_threads(int(sys.argv[2]))
    from tests.test_train import ARCH, TINY, tiny_data
    from nasforge.train import get_recipe, train_arch
    from nasforge.train import trainer as T

    def kill_after_epoch_1(record):
        if record.epoch == 1:
            os.kill(os.getpid(), signal.SIGKILL)

    orig_fit = T.Trainer.fit
    def fit(self, *a, **k):
        return orig_fit(self, *a, callback=kill_after_epoch_1, **k)
    T.Trainer.fit = fit
    train_arch(ARCH, tiny_data(), get_recipe("nb201-12e", **TINY), seed=3, C=4, N=1,
               checkpoint_dir=sys.argv[1])
    """
)


def test_resume_after_sigkill_is_bit_identical(tmp_path):
    ckpt = tmp_path / "ckpt"
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(ckpt), str(torch.get_num_threads())],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert sorted(p.name for p in ckpt.iterdir()) == [CHECKPOINT_NAME]  # no temp files left
    assert torch.load(ckpt / CHECKPOINT_NAME, weights_only=True)["epoch"] == 1

    data, recipe = tiny_data(), get_recipe("nb201-12e", **TINY)
    set_seed(3)
    resumed_model = NB201Network(ARCH, 4, 1, 4)
    resumed = Trainer(recipe).fit(resumed_model, data, seed=3, checkpoint_dir=ckpt, resume=True)
    set_seed(3)
    full_model = NB201Network(ARCH, 4, 1, 4)
    full = Trainer(recipe).fit(full_model, data, seed=3)
    assert resumed.resumed_from_epoch == 2 and len(resumed.epochs) == 3
    assert strip_times(resumed) == strip_times(full)
    for (k, v), (k2, v2) in zip(
        resumed_model.state_dict().items(), full_model.state_dict().items(), strict=True
    ):
        assert k == k2 and torch.equal(v, v2), k
    # A checkpoint of another configuration is refused, not silently mixed in.
    with pytest.raises(CheckpointError, match=r"seed: 3 in the checkpoint, 4 now"):
        Trainer(recipe).fit(
            NB201Network(ARCH, 4, 1, 4), data, seed=4, checkpoint_dir=ckpt, resume=True
        )


def test_resume_after_exception_and_of_finished_run(tmp_path):
    data, recipe = tiny_data(), get_recipe("nb201-12e", epochs=2, batch_size=32)

    def boom(record):
        if record.epoch == 0:
            raise KeyboardInterrupt

    set_seed(0)
    with pytest.raises(KeyboardInterrupt):
        Trainer(recipe).fit(
            NB201Network(ARCH, 4, 1, 4), data, seed=0, checkpoint_dir=tmp_path, callback=boom
        )
    set_seed(0)
    res = Trainer(recipe).fit(
        NB201Network(ARCH, 4, 1, 4), data, seed=0, checkpoint_dir=tmp_path, resume=True
    )
    assert res.resumed_from_epoch == 1 and len(res.epochs) == 2
    done = Trainer(recipe).fit(
        NB201Network(ARCH, 4, 1, 4), data, seed=0, checkpoint_dir=tmp_path, resume=True
    )
    assert strip_times(done) == strip_times(res)


# ----------------------------------------------------------------------------- CLI
def test_cli_train_writes_json(tmp_path):
    from nasforge.cli import app

    out = tmp_path / "run.json"
    args = [
        "train",
        "--arch",
        ARCH,
        "--dataset",
        "synthetic-16px-4c",
        "--recipe",
        "nb201-12e",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--limit",
        "64",
        "--C",
        "4",
        "--N",
        "1",
        "--seed",
        "2",
        "--quiet",
        "--out",
        str(out),
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "status ok" in res.output and "wrote" in res.output
    # The recipe's name keeps its brackets (rich would read them as markup and drop them).
    assert "nb201-12e[batch_size=32,epochs=1]" in res.output
    record = json.loads(out.read_text())
    assert record["status"] == "ok" and record["seed"] == 2 and len(record["epochs"]) == 1
    assert record["recipe"]["epochs"] == 1 and record["dataset"] == "synthetic-16px-4c"
    bad = CliRunner().invoke(app, [*args[:5], "--recipe", "nope", "--quiet"])
    assert bad.exit_code != 0 and isinstance(bad.exception, RecipeError)


def test_cli_train_seed_does_not_change_the_split(tmp_path, monkeypatch):
    import nasforge.data
    from nasforge.cli import app

    real, seen = nasforge.data.load_splits, []

    def recording(*args, **kwargs):
        data = real(*args, **kwargs)
        seen.append(data.evals["valid"].images)
        return data

    monkeypatch.setattr(nasforge.data, "load_splits", recording)
    base = ["train", "--arch", ARCH, "--dataset", "digits", "--epochs", "1", "--limit", "32"]
    base += ["--C", "4", "--N", "1", "--quiet"]
    for seed in ("1", "2"):
        res = CliRunner().invoke(app, [*base, "--seed", seed])
        assert res.exit_code == 0, res.output
    # Two training seeds validate on the same images; --data-seed alone moves the split.
    assert torch.equal(seen[0], seen[1])
    res = CliRunner().invoke(app, [*base, "--seed", "1", "--data-seed", "5"])
    assert res.exit_code == 0, res.output
    assert not torch.equal(seen[0], seen[2])

"""Resuming refuses a checkpoint of another run (issue 11, item 4): training, one-shot search,
width retraining; and ``--resume`` with nothing to resume fails instead of starting afresh."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from nasforge.cli import app
from nasforge.data import load_splits, make_synthetic
from nasforge.errors import CheckpointError, SearchError
from nasforge.nn.nb201 import NB201Network
from nasforge.search import ONESHOT
from nasforge.search.oneshot import run_search
from nasforge.train import CHECKPOINT_NAME, Trainer, get_recipe, set_seed
from nasforge.train.checkpoint import data_fingerprint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

runner = CliRunner()
ARCH_A = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
ARCH_B = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
TRAIN = ["train", "--dataset", "digits", "--epochs", "2", "--batch-size", "16", "--quiet"]


def _train(ckpt: Path, *extra: str):
    return runner.invoke(app, [*TRAIN, "--checkpoint-dir", str(ckpt), *extra])


@pytest.fixture(scope="module")
def checkpointed(tmp_path_factory) -> Path:
    """A training run of arch A (C=4, N=1, limit 32) checkpointed after its 2 epochs; resuming
    it with the same settings is accepted (the identity holds nothing run-dependent)."""
    ckpt = tmp_path_factory.mktemp("ckpt")
    same = ["--arch", ARCH_A, "--C", "4", "--N", "1", "--limit", "32"]
    res = _train(ckpt, *same)
    assert res.exit_code == 0, res.output
    assert (ckpt / CHECKPOINT_NAME).is_file()
    again = _train(ckpt, *same, "--resume")
    assert again.exit_code == 0, again.output
    return ckpt


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (["--arch", ARCH_B, "--C", "4", "--N", "1", "--limit", "32"], "model"),  # was: rc 0
        (["--arch", ARCH_A, "--C", "4", "--N", "1", "--limit", "24"], "limit"),  # was: rc 0
        (["--arch", ARCH_A, "--C", "8", "--N", "1", "--limit", "32"], "C"),  # was: traceback
        (["--arch", ARCH_A, "--C", "4", "--N", "1", "--limit", "32", "--seed", "1"], "seed"),
        (["--arch", ARCH_A, "--C", "4", "--N", "1", "--limit", "32", "--lr", "0.05"], "recipe.lr"),
    ],
)
def test_train_resume_of_another_run_is_refused(checkpointed, change, field):
    before = (checkpointed / CHECKPOINT_NAME).read_bytes()
    res = _train(checkpointed, *change, "--resume")
    assert isinstance(res.exception, CheckpointError), res.output
    msg = str(res.exception)
    assert "another run" in msg and f"{field}: " in msg and "\n" not in msg
    assert (checkpointed / CHECKPOINT_NAME).read_bytes() == before  # left as it was


def test_resume_mismatch_exits_2_with_one_line(checkpointed, monkeypatch, capsys):
    from nasforge.cli import main

    argv = [*TRAIN, "--checkpoint-dir", str(checkpointed), "--arch", ARCH_B, "--C", "4"]
    monkeypatch.setattr(sys, "argv", ["nasforge", *argv, "--N", "1", "--limit", "32", "--resume"])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot resume") and "\n" not in err and "model: " in err


@pytest.mark.parametrize("make_dir", [False, True])
def test_resume_with_nothing_to_resume_fails_before_loading_data(tmp_path, make_dir):
    ckpt = tmp_path / "ck"
    if make_dir:
        ckpt.mkdir()
    # cifar10 without a data directory would fail on loading: the resume check comes first.
    res = runner.invoke(
        app, ["train", "--arch", "1", "--dataset", "cifar10", "--checkpoint-dir", str(ckpt),
              "--resume", "--quiet"],
    )  # fmt: skip
    assert isinstance(res.exception, CheckpointError), res.output
    assert "nothing to resume" in str(res.exception) and str(ckpt) in str(res.exception)
    assert list(tmp_path.iterdir()) == ([ckpt] if make_dir else [])


def test_trainer_resume_needs_an_existing_checkpoint(tmp_path):
    data = make_synthetic(num_classes=4, resolution=16, n_train=32, n_valid=16, n_test=16, seed=1)
    trainer = Trainer(get_recipe("nb201-12e", epochs=1, batch_size=16))
    with pytest.raises(CheckpointError, match="nothing to resume"):
        trainer.fit(NB201Network(ARCH_A, 4, 1, 4), data, seed=0, checkpoint_dir=tmp_path,
                    resume=True)  # fmt: skip
    with pytest.raises(CheckpointError, match="needs a checkpoint directory"):
        trainer.fit(NB201Network(ARCH_A, 4, 1, 4), data, seed=0, resume=True)


def test_trainer_refuses_other_data_of_the_same_shape(tmp_path):
    """Same sizes, same name, other images: only the data fingerprint tells them apart."""
    recipe = get_recipe("nb201-12e", epochs=2, batch_size=16)

    def data(seed: int):
        return make_synthetic(num_classes=4, resolution=16, n_train=32, n_valid=16, n_test=16,
                              seed=seed)  # fmt: skip

    set_seed(0)
    Trainer(recipe).fit(NB201Network(ARCH_A, 4, 1, 4), data(1), seed=0, checkpoint_dir=tmp_path)
    assert data_fingerprint(data(1)) == data_fingerprint(data(1))
    with pytest.raises(CheckpointError) as exc:
        Trainer(recipe).fit(NB201Network(ARCH_A, 4, 1, 4), data(2), seed=0,
                            checkpoint_dir=tmp_path, resume=True)  # fmt: skip
    assert "data: " in str(exc.value) and "splits" not in str(exc.value)


def test_checkpoint_without_identity_is_refused(tmp_path):
    """A checkpoint of the previous format (no identity) cannot be checked: refused."""
    data = make_synthetic(num_classes=4, resolution=16, n_train=32, n_valid=16, n_test=16, seed=1)
    model = NB201Network(ARCH_A, 4, 1, 4)
    torch.save({"format": "nasforge-checkpoint-1", "epoch": 0, "seed": 0, "dataset": data.name,
                "model": model.state_dict()}, tmp_path / CHECKPOINT_NAME)  # fmt: skip
    with pytest.raises(CheckpointError, match="not a training checkpoint of this nasforge"):
        Trainer(get_recipe("nb201-12e", epochs=2, batch_size=16)).fit(
            model, data, seed=0, checkpoint_dir=tmp_path, resume=True
        )


# -- one-shot ----------------------------------------------------------------------------------
TINY_GDAS = {"epochs": 2, "C": 4, "N": 1, "batch_size": 16, "steps_per_epoch": 2,
             "eval_batch_size": 32, "valid_batches": 1}  # fmt: skip


def test_oneshot_resume_refuses_other_data_of_the_same_shape(tmp_path):
    first = load_splits("digits", seed=0, limit=48)
    other = load_splits("digits", seed=1, limit=48)  # another split of the same size
    assert first.summary() == other.summary()
    run_search(ONESHOT.create("gdas", **TINY_GDAS), first, tmp_path, seed=0, plot=False)
    with pytest.raises(CheckpointError, match=r"another run \(data: "):
        run_search(ONESHOT.create("gdas", **TINY_GDAS), other, tmp_path, seed=0, plot=False)


@pytest.mark.parametrize(
    "content",
    [b"", b"not a checkpoint", b"PK\x03\x04" + b"\x00" * 40, b"\x80\x02K\x01."],
    ids=["empty", "text", "broken-zip", "pickled-int"],
)
def test_corrupt_oneshot_checkpoint_is_a_clear_error(tmp_path, content):
    (tmp_path / "checkpoint.pt").write_bytes(content)
    data = load_splits("digits", limit=32)
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt") as exc:
        run_search(ONESHOT.create("gdas", **TINY_GDAS), data, tmp_path, seed=0, plot=False)
    assert "weights_only" not in str(exc.value)  # no advice to load unsafely
    assert not (tmp_path / "search.json").exists()  # nothing ran


# -- width -------------------------------------------------------------------------------------
def test_width_retrain_refuses_data_other_than_the_searched(tmp_path, monkeypatch):
    from nasforge.search.width import protocol

    class Reached(Exception):
        pass

    def past_the_check(*args, **kwargs):
        raise Reached

    monkeypatch.setattr(protocol, "space_for", past_the_check)  # the step after the check
    data = load_splits("digits", seed=0, limit=32)
    record = {
        "format": "nasforge-width-1", "kind": "width-search", "backbone": "resnet20",
        "dataset": "digits", "data_seed": 0, "limit": 32,
        "space": {"bins": "flops", "levels": 10, "min_ratio": 0.1},
        "data": "0" * 24,  # the fingerprint of other data
    }  # fmt: skip
    search_json = tmp_path / protocol.SEARCH_FILE
    search_json.write_text(json.dumps(record))
    recipe = get_recipe("nb201-12e", epochs=1, batch_size=16)
    with pytest.raises(SearchError, match="searched on other digits data"):
        protocol.run_retrain(tmp_path, recipe)
    record["data"] = data_fingerprint(data)  # the same data: accepted
    search_json.write_text(json.dumps(record))
    with pytest.raises(Reached):
        protocol.run_retrain(tmp_path, recipe)


def test_checkpoint_with_missing_state_is_a_clear_error(tmp_path):
    """A checkpoint whose identity matches but whose state is damaged: one clear error."""
    data = make_synthetic(num_classes=4, resolution=16, n_train=32, n_valid=16, n_test=16, seed=1)
    recipe = get_recipe("nb201-12e", epochs=2, batch_size=16)
    set_seed(0)
    Trainer(recipe).fit(NB201Network(ARCH_A, 4, 1, 4), data, seed=0, checkpoint_dir=tmp_path)
    state = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    del state["optimizer"]
    torch.save(state, tmp_path / CHECKPOINT_NAME)
    with pytest.raises(CheckpointError, match=r"is damaged \(KeyError: 'optimizer'\)"):
        Trainer(recipe).fit(NB201Network(ARCH_A, 4, 1, 4), data, seed=0,
                            checkpoint_dir=tmp_path, resume=True)  # fmt: skip

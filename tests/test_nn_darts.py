"""DARTS evaluation networks, costs, recipes, and their training through the one Trainer."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from typer.testing import CliRunner

from nasforge.cli import app
from nasforge.cli.darts import read_genotype
from nasforge.cost.counter import count_params
from nasforge.cost.darts import darts_cost
from nasforge.data import DatasetSplits, DeviceLoader
from nasforge.data.base import Split
from nasforge.data.loader import epoch_generator
from nasforge.errors import NasforgeError, RecipeError
from nasforge.nn.darts import Cell, NetworkCIFAR, NetworkImageNet, drop_path
from nasforge.spaces.darts import PUBLISHED, Genotype, GenotypeError
from nasforge.train import Trainer, get_recipe
from nasforge.train.recipe import RECIPES

# Parameter counts of the official networks (quark0/darts cnn/model.py, identical in
# yuhuixu1993/PC-DARTS model.py) with the official genotypes, measured by running those
# definitions: utils.count_parameters_in_MB (every parameter whose name lacks "auxiliary"),
# and the total number of parameters with the auxiliary head.
# CIFAR: NetworkCIFAR(C=36, 10 classes, 20 layers, auxiliary=True).
OFFICIAL_CIFAR = {
    "DARTS_V1": (3.169414, 3645840),
    "DARTS_V2": (3.349342, 3825768),  # DARTS paper: 3.3M
    "PC_DARTS_cifar": (3.634678, 4111104),  # PC-DARTS paper: 3.6M
    "PC_DARTS_image": (3.72151, 4197936),
    "NASNet": (3.83095, 4288944),
    "AmoebaNet": (3.145078, 3603072),
}
# ImageNet: NetworkImageNet(C=48, 1000 classes, 14 layers, auxiliary=True).
OFFICIAL_IMAGENET = {
    "DARTS_V1": (4.510432, 5771208),
    "DARTS_V2": (4.718752, 5979528),  # DARTS paper: 4.7M
    "PC_DARTS_cifar": (5.27056, 6531336),
    "PC_DARTS_image": (5.342464, 6603240),  # PC-DARTS paper: 5.3M
    "NASNet": (5.56432, 6800520),
    "AmoebaNet": (4.62736, 5863560),
}
# Tiny networks run fastest, and least disturbed by a busy machine, on one thread.
pytestmark = pytest.mark.usefixtures("one_torch_thread")

PUBLISHED_SETTINGS = [
    ("cifar", "DARTS_V2"),
    ("cifar", "PC_DARTS_cifar"),
    ("imagenet", "PC_DARTS_image"),
]

SHARED_CIFAR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cifar-10-subset-py"


def _official_case(kind: str, name: str) -> tuple[nn.Module, tuple[float, int]]:
    g = PUBLISHED[name]
    if kind == "cifar":
        return NetworkCIFAR(g, 36, 10, 20, auxiliary=True), OFFICIAL_CIFAR[name]
    return NetworkImageNet(g, 48, 1000, 14, auxiliary=True), OFFICIAL_IMAGENET[name]


@pytest.mark.parametrize(("kind", "name"), PUBLISHED_SETTINGS)
def test_published_parameter_counts_equal_the_official_networks(kind: str, name: str) -> None:
    net, (params_m, total) = _official_case(kind, name)
    assert count_params(net) == pytest.approx(params_m, abs=1e-6)
    assert sum(p.numel() for p in net.parameters()) == total  # auxiliary head included


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "name"),
    [
        (k, n)
        for k in ("cifar", "imagenet")
        for n in OFFICIAL_CIFAR
        if (k, n) not in PUBLISHED_SETTINGS
    ],
)
def test_every_shipped_genotype_counts_as_the_official_network(kind: str, name: str) -> None:
    net, (params_m, total) = _official_case(kind, name)
    assert count_params(net) == pytest.approx(params_m, abs=1e-6)
    assert sum(p.numel() for p in net.parameters()) == total


def test_darts_cost_params_and_multiply_adds() -> None:
    cost = darts_cost("PC_DARTS_cifar", "cifar10")
    assert cost.params_m == pytest.approx(3.634678, abs=1e-6)
    # Our counter: conv + linear multiply-adds of one 32x32 image (see cost/darts.py).
    assert cost.flops_m == pytest.approx(556.670602, abs=1e-6)
    assert darts_cost(PUBLISHED["PC_DARTS_cifar"], "cifar10") is cost  # cached per genotype
    with pytest.raises(NasforgeError, match="'mnist'"):
        darts_cost("DARTS_V2", "mnist")


@pytest.mark.slow
def test_darts_cost_imagenet() -> None:
    cost = darts_cost("PC_DARTS_image", "imagenet")
    assert cost.params_m == pytest.approx(5.342464, abs=1e-6)
    assert cost.flops_m == pytest.approx(581.628328, abs=1e-6)  # PC-DARTS paper: 597M
    assert darts_cost("DARTS_V2", "imagenet").flops_m == pytest.approx(529.912552, abs=1e-6)


def _tiny_step(net: nn.Module, x: torch.Tensor, classes: int) -> None:
    net.train()
    out = net(x)
    assert isinstance(out, tuple) and len(out) == 2
    logits, aux = out
    assert logits.shape == aux.shape == (x.shape[0], classes)
    (logits.sum() + aux.sum()).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
    assert torch.isfinite(torch.stack([p.grad.abs().sum() for p in net.parameters()])).all()
    net.eval()
    with torch.no_grad():
        ev = net(x)
    assert isinstance(ev, torch.Tensor) and ev.shape == (x.shape[0], classes)


def test_network_cifar_tiny_forward_backward() -> None:
    torch.manual_seed(0)
    net = NetworkCIFAR(PUBLISHED["PC_DARTS_cifar"], C=4, num_classes=10, layers=5)
    net.drop_path_prob = 0.2
    _tiny_step(net, torch.randn(2, 3, 32, 32), 10)
    assert sum(c.reduction for c in net.cells) == 2 and net.cells[1].reduction
    without = NetworkCIFAR(
        PUBLISHED["PC_DARTS_cifar"], C=4, num_classes=10, layers=5, auxiliary=False
    )
    assert isinstance(without.train()(torch.randn(2, 3, 32, 32)), torch.Tensor)


def test_network_imagenet_tiny_forward_backward() -> None:
    torch.manual_seed(0)
    # The ImageNet auxiliary head is built for the 7x7 map a 224x224 input gives.
    net = NetworkImageNet(PUBLISHED["PC_DARTS_image"], C=8, num_classes=7, layers=5)
    _tiny_step(net, torch.randn(2, 3, 224, 224), 7)


def test_drop_path_drops_whole_samples_and_rescales() -> None:
    torch.manual_seed(0)
    x = torch.ones(4000, 2, 3, 3)
    y = drop_path(x, 0.3)
    per_sample = y.flatten(1)
    kept = torch.isclose(per_sample, torch.tensor(1 / 0.7)).all(1)
    assert ((per_sample == 0).all(1) | kept).all()
    dropped = (per_sample == 0).all(1).float().mean().item()
    assert abs(dropped - 0.3) < 0.03
    assert drop_path(x, 0.0) is x


def test_identity_edges_are_never_dropped() -> None:
    skips = [("skip_connect", 0), ("skip_connect", 1)] * 4
    g = Genotype(skips, [2, 3, 4, 5], skips, [2, 3, 4, 5])
    cell = Cell(g, 8, 8, 4, reduction=False, reduction_prev=False).train()
    s0, s1 = torch.randn(3, 8, 6, 6), torch.randn(3, 8, 6, 6)
    torch.manual_seed(1)
    assert torch.equal(cell(s0, s1, 0.9), cell(s0, s1, 0.0))
    # A cell of convolutions does drop: some samples' node outputs lose terms.
    convs = [("sep_conv_3x3", 0), ("sep_conv_3x3", 1)] * 4
    cell = Cell(Genotype(convs, [2, 3, 4, 5], convs, [2, 3, 4, 5]), 8, 8, 4, False, False).train()
    assert not torch.equal(cell(s0, s1, 0.5), cell(s0, s1, 0.0))
    cell.eval()
    assert torch.equal(cell(s0, s1, 0.5), cell(s0, s1, 0.0))  # never at evaluation


def _toy_data(n: int, res: int = 32, value: int = 255) -> DatasetSplits:
    images = torch.full((n, 3, res, res), value, dtype=torch.uint8)
    labels = torch.arange(n) % 2
    split = Split("train", images, labels)
    return DatasetSplits(
        "toy", split, {"test": split}, 2, res, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), pad=4
    )


def _official_cutout_mask(h: int, w: int, y: int, x: int, length: int) -> np.ndarray:
    """DARTS utils.Cutout's mask for a given centre (PC-DARTS utils.py:44-57)."""
    mask = np.ones((h, w), np.float32)
    y1, y2 = np.clip(y - length // 2, 0, h), np.clip(y + length // 2, 0, h)
    x1, x2 = np.clip(x - length // 2, 0, w), np.clip(x + length // 2, 0, w)
    mask[y1:y2, x1:x2] = 0.0
    return mask


def test_cutout_on_the_device_matches_darts_cutout_and_keeps_the_other_streams() -> None:
    data = _toy_data(64, value=200)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 3, 32, 32), generator=g, dtype=torch.uint8)
    data = DatasetSplits(
        "toy", Split("train", images, data.train.labels), {}, 2, 32, data.mean, data.std, pad=4
    )
    plain = next(iter(DeviceLoader(data.train, data, 64, train=True, seed=5)))[0]
    cut = next(iter(DeviceLoader(data.train, data, 64, train=True, seed=5, cutout=16)))[0]
    gen = epoch_generator(5, 0, stream=1)
    cy, cx = torch.randint(0, 32, (64,), generator=gen), torch.randint(0, 32, (64,), generator=gen)
    for i in range(64):
        mask = torch.from_numpy(_official_cutout_mask(32, 32, int(cy[i]), int(cx[i]), 16))
        assert torch.equal(cut[i], plain[i] * mask)  # same crop/flip/order, then the cut
    # Every image loses between a quarter (corner) and all of a 16x16 square.
    zeroed = (cut == 0).all(1).flatten(1).sum(1) - (plain == 0).all(1).flatten(1).sum(1)
    assert int(zeroed.min()) >= 64 and int(zeroed.max()) <= 256
    evals = next(iter(DeviceLoader(data.train, data, 64, train=False, cutout=16)))[0]
    assert not (evals == 0).all(1).any()  # no cutout when evaluating


class _AuxToy(nn.Module):
    """Returns (logits, logits_aux) in training, like a DARTS network with its head on."""

    def __init__(self) -> None:
        super().__init__()
        self.main = nn.Linear(3 * 32 * 32, 2)
        self.auxiliary_head = nn.Linear(3 * 32 * 32, 2)
        self.drop_path_prob = 0.0
        self.seen: list[float] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        f = x.flatten(1)
        if self.training:
            self.seen.append(self.drop_path_prob)
            return self.main(f), self.auxiliary_head(f)
        return self.main(f)


def test_trainer_adds_the_weighted_auxiliary_loss_with_label_smoothing() -> None:
    torch.manual_seed(0)
    model = _AuxToy()
    x, y = torch.randn(8, 3, 32, 32), torch.arange(8) % 2
    for recipe, smooth, w in [
        (get_recipe("darts-cifar-600e"), 0.0, 0.4),
        (get_recipe("darts-imagenet-250e"), 0.1, 0.4),
        (get_recipe("darts-cifar-600e", auxiliary_weight=0.0), 0.0, 0.0),
    ]:
        with torch.no_grad():
            logits, aux = model.train()(x)
            want = F.cross_entropy(logits, y, label_smoothing=smooth) + w * F.cross_entropy(
                aux, y, label_smoothing=smooth
            )
        trainer = Trainer(recipe, channels_last=False)
        opt = recipe.build_optimizer(model.parameters())
        loss_sum, counts = torch.zeros((), dtype=torch.float64), {}
        trainer.train_step(model, model, opt, x, y, loss_sum, counts)
        assert int(counts["correct"]) == int((logits.argmax(1) == y).sum())
        assert float(loss_sum) / 8 == pytest.approx(float(want), rel=1e-5)
        # With weight 0 the head is left out of the loss and gets no gradient.
        assert (model.auxiliary_head.weight.grad is None) == (w == 0)


def test_trainer_ramps_drop_path_per_epoch() -> None:
    model = _AuxToy()
    recipe = get_recipe("darts-cifar-600e", epochs=4, batch_size=8)
    Trainer(recipe).fit(model, _toy_data(8), seed=0, eval_splits=[])
    # DARTS train.py:108: drop_path_prob * epoch / epochs at each epoch start.
    assert model.seen == pytest.approx([0.0, 0.075, 0.15, 0.225])


def test_darts_recipes_match_pc_darts() -> None:
    c = RECIPES.create("darts-cifar-600e")
    assert (c.epochs, c.batch_size, c.lr, c.momentum, c.nesterov, c.weight_decay) == (
        600,
        96,
        0.025,
        0.9,
        False,
        3e-4,
    )
    assert (c.cutout, c.drop_path_prob, c.auxiliary_weight, c.grad_clip) == (16, 0.3, 0.4, 5.0)
    assert c.lr_at(0) == 0.025 and c.lr_at(300) == pytest.approx(0.0125)
    assert c.lr_at(599) == pytest.approx(0.0125 * (1 + math.cos(math.pi * 599 / 600)))
    i = RECIPES.create("darts-imagenet-250e")
    assert (i.epochs, i.batch_size, i.lr, i.weight_decay, i.label_smoothing) == (
        250,
        1024,
        0.5,
        3e-5,
        0.1,
    )
    assert (i.auxiliary_weight, i.drop_path_prob, i.cutout, i.grad_clip) == (0.4, 0.0, 0, 5.0)
    # train_imagenet.py:156-158 warm-up, then adjust_lr :186-194.
    lrs = [i.lr_at(e, step=3, steps_per_epoch=10) for e in range(250)]
    assert lrs[:5] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    assert lrs[5] == pytest.approx(0.5 * 240 / 245) and lrs[244] == pytest.approx(0.5 / 245)
    assert lrs[245] == pytest.approx(0.5 * 5 / (245 * 5))
    assert lrs[249] == pytest.approx(0.5 * 1 / (245 * 5))
    assert get_recipe("darts-imagenet-250e", epochs=6, warmup_epochs=0).lr_at(5) > 0
    with pytest.raises(RecipeError, match="cutout"):
        c.replace(cutout=-1)
    with pytest.raises(RecipeError, match="warmup_style"):
        c.replace(warmup_style="cosine")


def test_nb201_recipes_keep_their_dict() -> None:
    # The fields added for DARTS leave an NB201 recipe's dict (its run identity) as it was.
    d = RECIPES.create("nb201-12e").to_dict()
    assert set(d) == {
        "name",
        "epochs",
        "batch_size",
        "lr",
        "momentum",
        "nesterov",
        "weight_decay",
        "scheduler",
        "eta_min",
        "warmup_epochs",
        "loss",
        "optimizer",
        "grad_clip",
    }
    c = RECIPES.create("darts-cifar-600e")
    assert type(c).from_dict(c.to_dict()) == c and c.to_dict()["cutout"] == 16


def test_arch_info_and_genotype_files(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["arch", "info", "--space", "darts", "PC_DARTS_cifar", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["params_m"] == pytest.approx(3.634678, abs=1e-6)
    assert info["flops_m"] == pytest.approx(556.670602, abs=1e-6)
    assert Genotype.from_string(info["arch"]) == PUBLISHED["PC_DARTS_cifar"]
    assert info["published_as"] == ["PCDARTS", "PC_DARTS_cifar"]
    f = tmp_path / "g.json"
    f.write_text(json.dumps(PUBLISHED["DARTS_V2"].to_dict()))
    assert read_genotype(str(f)) == PUBLISHED["DARTS_V2"]
    r = tmp_path / "g.txt"
    r.write_text(PUBLISHED["DARTS_V1"].to_string() + "\n")
    assert read_genotype(str(r)) == PUBLISHED["DARTS_V1"]
    with pytest.raises(GenotypeError, match="does not exist"):
        read_genotype(str(tmp_path / "missing.json"))


@pytest.mark.slow
def test_train_cli_one_epoch_of_a_darts_genotype_on_cifar(tmp_path: Path) -> None:
    if not (SHARED_CIFAR / "data_batch_1").is_file():
        pytest.skip(f"shared CIFAR-10 subset not found at {SHARED_CIFAR}")
    out = tmp_path / "run.json"
    args = ["train", "--space", "darts", "--arch", "PC_DARTS_cifar", "--dataset", "cifar10"]
    args += ["--data-dir", str(SHARED_CIFAR), "--recipe", "darts-cifar-600e", "--epochs", "1"]
    # 192 images: two steps of the recipe's batch of 96.
    args += ["--limit", "192", "--C", "4", "--N", "5", "--quiet"]
    res = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert res.exit_code == 0, res.output
    record = json.loads(out.read_text())
    assert record["status"] == "ok" and len(record["epochs"]) == 1
    assert record["model"] == PUBLISHED["PC_DARTS_cifar"].to_string()
    assert record["recipe"]["cutout"] == 16 and record["recipe"]["auxiliary_weight"] == 0.4
    assert record["meta"]["C"] == 4 and record["meta"]["layers"] == 5
    assert math.isfinite(record["epochs"][0]["train_loss"])
    assert math.isfinite(record["epochs"][0]["eval"]["test"]["loss"])


def test_train_cli_rejects_a_bad_genotype_before_loading_data() -> None:
    bad = PUBLISHED["DARTS_V2"].to_string().replace("dil_conv_3x3", "sep_conv_9x9")
    res = CliRunner().invoke(
        app, ["train", "--space", "darts", "--arch", bad, "--dataset", "cifar10", "--quiet"]
    )
    assert isinstance(res.exception, GenotypeError) and "'sep_conv_9x9'" in str(res.exception)
    res = CliRunner().invoke(app, ["train", "--space", "nope", "--arch", "x", "--quiet"])
    assert res.exit_code == 2 and "nope" in res.output
    # The CIFAR auxiliary head cannot fit 16 px inputs: refused before any training.
    args = ["train", "--space", "darts", "--arch", "DARTS_V2", "--dataset", "synthetic-16px-4c"]
    res = CliRunner().invoke(app, [*args, "--recipe", "darts-cifar-600e", "--epochs", "1"])
    assert isinstance(res.exception, RecipeError) and "16 px" in str(res.exception)


@pytest.mark.slow  # two real (tiny) trainings of sampled DARTS networks
def test_rea_with_the_training_evaluator_on_the_darts_space() -> None:
    from nasforge.evaluate import TrainingEvaluator
    from nasforge.search.base import run_search
    from nasforge.search.protocol import build_searcher
    from nasforge.spaces import get_space

    ev = TrainingEvaluator(
        "darts-cifar-600e",
        "synthetic-32px-4c",
        space="darts",
        C=4,
        network={"layers": 3},  # the fewest cells: two reductions, the head after the second
        limit=32,
        recipe_overrides={"epochs": 1, "batch_size": 32},
    )
    r = run_search(build_searcher("rea", 0), ev, "2evals", seed=0)
    assert r.num_evals == 2 and all(r.history["ok"])
    space = get_space("darts")
    archs = [space.from_string(s) for s in r.history["arch"]]
    assert len(set(archs)) == 2 and all(space.canonical(a) == a for a in archs)
    assert all(0.0 <= v <= 100.0 for v in r.history["valid"])

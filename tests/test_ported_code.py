"""Small frictions for code ported from the official repositories and for notebooks:
summaries instead of tensor dumps, and the official ``(features, logits)`` network return."""

from __future__ import annotations

import pytest
import torch

from nasforge.data import load_splits
from nasforge.nn.nb201 import NB201Network

ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"


def test_printing_splits_gives_a_summary_not_tensors():
    data = load_splits("digits")
    text = repr(data)
    assert text.startswith("DatasetSplits('digits': train=") and "10 classes" in text
    assert "tensor(" not in text and len(text) < 200
    assert repr(data.train) == f"Split('train', {len(data.train)} images of 3x16x16 uint8)"
    assert "tensor(" not in str(data.evals)


def test_nb201_network_can_return_features_and_logits():
    torch.manual_seed(0)
    plain = NB201Network(ARCH, C=4, N=1, num_classes=5).eval()
    paired = NB201Network(ARCH, C=4, N=1, num_classes=5, return_features=True).eval()
    paired.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 16, 16)
    features, logits = paired(x)
    assert features.shape == (2, 16) and torch.equal(logits, plain(x))
    assert torch.equal(paired.classifier(features), logits)


def test_features_and_logits_are_the_official_tiny_network_pair():
    xautodl = pytest.importorskip("xautodl")  # pip install --no-deps xautodl (+ pyyaml)
    from xautodl.models.cell_infers.tiny_network import TinyNetwork
    from xautodl.models.cell_searchs.genotypes import Structure

    del xautodl
    ours = NB201Network(ARCH, C=4, N=1, num_classes=5, return_features=True).eval()
    official = TinyNetwork(4, 1, Structure.str2structure(ARCH), 5).eval()
    official.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 16, 16)
    for a, b in zip(ours(x), official(x), strict=True):
        assert torch.equal(a, b)


def test_train_and_search_share_the_width_flags():
    from typer.testing import CliRunner

    from nasforge.cli import app

    runner = CliRunner()
    for cmd in ("train", "search"):
        out = runner.invoke(app, [cmd, "--help"], env={"COLUMNS": "200"}).output
        assert "--channels" in out and "--cells" in out, cmd
    # the old spellings still parse (the value is checked, not rejected as unknown)
    r = runner.invoke(app, ["train", "--arch", "0", "--C", "0", "--N", "1"])
    assert "No such option" not in r.output

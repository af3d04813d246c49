"""One-shot search from the space: the supernet adapters (ONESHOT_SPACES), one registry of
methods (ONESHOT) whose published settings are keyed by (method, space), and the search
registries split by kind. A toy space registered through the registry's own API runs the
methods end to end."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from nasforge.data import load_splits
from nasforge.errors import SearchError
from nasforge.search import BLACKBOX, ONESHOT, WIDTH, algorithm_kind
from nasforge.search.oneshot import OneShotConfig, SupernetAdapter, run_search
from nasforge.search.oneshot.settings import NB201_CONFIGS, quick_profile
from nasforge.search.protocol import build_searcher, search_algorithm
from nasforge.search.registry import ONESHOT_CONFIGS, ONESHOT_SPACES

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOY_OPS = ("none", "skip_connect", "conv_3x3")


class _Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class ToyChainSupernet(nn.Module):
    """A chain of ``rows`` choice blocks (none / skip / conv) between a stem and a linear
    classifier: the forward protocol the one-shot methods speak (``weights``, ``index``,
    ``edge_weights``, ``forward_arch``, ``path_parameters``)."""

    def __init__(self, C: int, rows: int, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        self.blocks = nn.ModuleList(
            nn.ModuleList(
                [
                    _Zero(),
                    nn.Identity(),
                    nn.Sequential(
                        nn.ReLU(),
                        nn.Conv2d(C, C, 3, padding=1, bias=False),
                        nn.BatchNorm2d(C, affine=False),
                    ),
                ]
            )
            for _ in range(rows)
        )
        self.classifier = nn.Linear(C, num_classes)

    def forward(
        self,
        x: torch.Tensor,
        weights: torch.Tensor | None = None,
        index: Sequence[int] | None = None,
        edge_weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        h = self.stem(x)
        for r, ops in enumerate(self.blocks):
            if index is not None:  # one op; GDAS passes its straight-through weight too
                k = int(index[r])
                out = ops[k](h) if weights is None else weights[r, k] * ops[k](h)
            else:
                assert weights is not None
                out = sum(weights[r, k] * op(h) for k, op in enumerate(ops))
            h = out if edge_weights is None else edge_weights[r] * out
        return self.classifier(h.mean(dim=(2, 3)))

    def forward_arch(self, x: torch.Tensor, arch: Sequence[str]) -> torch.Tensor:
        return self.forward(x, index=[TOY_OPS.index(op) for op in arch])

    def path_parameters(self, index: Sequence[int]) -> list[nn.Parameter]:
        return [p for r, k in enumerate(index) for p in self.blocks[r][int(k)].parameters()]


class ToyChainAdapter(SupernetAdapter):
    """A 3-row chain space whose single paths are archs (tuples of op names)."""

    name = "toy-chain"
    rows = 3
    ops = TOY_OPS
    provides = frozenset({"path-archs"})

    def build_supernet(
        self,
        config: OneShotConfig,
        num_classes: int,
        *,
        partial_k: int = 1,
        pool_bn: bool = False,
        affine: bool = False,
    ) -> nn.Module:
        return ToyChainSupernet(config.C, self.rows, num_classes)

    def derive(
        self,
        weights: np.ndarray,
        edge_weights: np.ndarray | None = None,
        *,
        rule: str = "edges",
        tie_break: np.ndarray | None = None,
    ) -> tuple[str, ...]:
        return self.path_arch(np.argmax(weights, axis=1).tolist())

    def path_arch(self, path: Sequence[int]) -> tuple[str, ...]:
        return tuple(TOY_OPS[int(k)] for k in path)

    def arch_path(self, arch: Any) -> list[int]:
        return [TOY_OPS.index(op) for op in arch]

    def arch_fields(self, arch: Any) -> dict[str, Any]:
        return {
            "arch": "-".join(arch),
            "arch_index": None,
            "skip_share": arch.count("skip_connect") / len(arch),
        }

    def write_arch(self, arch: Any, out_dir: Path) -> dict[str, str]:
        path = Path(out_dir) / "toy-arch.json"
        path.write_text(json.dumps(list(arch)))
        return {"toy": str(path)}

    def plot(self, records: list[dict[str, Any]], path: Any, title: str = "", **_: Any) -> Path:
        # The plot hook receives the records; a text "figure" keeps the test fast.
        Path(path).write_text(json.dumps([r["arch"] for r in records]))
        return Path(path)


TINY = {
    "epochs": 1,
    "C": 4,
    "batch_size": 8,
    "steps_per_epoch": 2,
    "eval_batch_size": 16,
    "valid_batches": 1,
}


@pytest.fixture(scope="module")
def digits():
    return load_splits("digits", limit=32)


@pytest.mark.parametrize(
    ("name", "extra"), [("darts-v1", {}), ("rsps", {"select_num": 3}), ("gdas", {})]
)
def test_a_registered_toy_space_runs_one_shot_methods_end_to_end(
    name: str, extra: dict[str, Any], digits, tmp_path: Path
) -> None:
    with ONESHOT_SPACES.temporary("toy-chain", ToyChainAdapter):
        method = ONESHOT.create(name, space="toy-chain", **TINY, **extra)
        assert method.space_name == "toy-chain"
        # a space without config fields of its own: the method's own config class
        assert type(method.config) is ONESHOT.get(name).config_class
        result = run_search(method, digits, tmp_path, seed=0)
        files = method.write_arch(result.arch, tmp_path)
    assert "toy-chain" not in ONESHOT_SPACES  # the name is free again
    assert isinstance(result.arch, tuple) and set(result.arch) <= set(TOY_OPS)
    (record,) = result.epochs
    assert np.asarray(record["probs"]).shape == (3, 3)
    assert record["arch_index"] is None and record["arch"].count("-") == 2
    saved = json.loads((tmp_path / "search.json").read_text())
    assert saved["space"] == "toy-chain" and saved["arch"] == "-".join(result.arch)
    assert json.loads((tmp_path / "search.png").read_text()) == [record["arch"]]
    assert json.loads(Path(files["toy"]).read_text()) == list(result.arch)


def test_methods_refuse_a_space_without_what_they_need_in_one_line() -> None:
    with ONESHOT_SPACES.temporary("toy-chain", ToyChainAdapter):
        # SETN ranks every arch of the space (top-k), which the toy adapter does not offer
        with pytest.raises(SearchError, match=r"needs \['top-k'\].*'toy-chain'") as exc:
            ONESHOT.create("setn", space="toy-chain")
        assert "\n" not in str(exc.value)
    # a DARTS-space path is not a genotype: the sampled-path methods do not run there
    with pytest.raises(SearchError, match=r"'rsps' needs \['path-archs'\].*searches \['nb201'\]"):
        ONESHOT.create("rsps", space="darts")
    # single-level DARTS has no DARTS-space settings
    with pytest.raises(SearchError, match=r"no settings for the 'darts' space.*\['nb201'\]"):
        ONESHOT.create("single-darts", space="darts")
    with pytest.raises(SearchError, match="no one-shot supernet for space 'nasnet'"):
        ONESHOT.create("darts-v1", space="nasnet")


def test_the_settings_table_covers_every_method_and_space() -> None:
    # NB201: every method's own config class; the DARTS space: the five published methods
    assert set(NB201_CONFIGS) == set(ONESHOT.names())
    for name in ONESHOT.names():
        assert ONESHOT_CONFIGS.get(f"{name}/nb201") is ONESHOT.get(name).config_class
    darts = sorted(n for n in ONESHOT.names() if "darts" in ONESHOT.get(n).supported_spaces())
    assert darts == ["darts-v1", "darts-v2", "ddpnas", "gdas", "pc-darts"]
    # the procedure the DARTS-space config fixes: quark0/darts' order and clipping
    v1 = ONESHOT.create("darts-v1", space="darts").config
    assert (v1.arch_step_first, v1.clip_alphas) == (True, False)
    assert "arch_step_first" not in v1.to_dict()  # not a field: neither set nor recorded
    with pytest.raises(SearchError, match="arch_step_first"):
        v1.replace(arch_step_first=False)
    nb = ONESHOT.create("darts-v1").config
    assert (nb.arch_step_first, nb.clip_alphas) == (False, True)
    # quick profiles: the space's skeleton, then the method's entry
    assert quick_profile("pc-darts", "darts") == {
        "C": 8,
        "N": 5,
        "batch_size": 64,
        "eval_batch_size": 512,
        "epochs": 10,
        "warmup_epochs": 3,
        "lr": 0.025,
        "arch_lr": 6e-3,
    }
    assert quick_profile("rsps", "toy-chain") == {"epochs": 10, "select_num": 20}


def test_each_registry_holds_one_kind_and_search_finds_a_name_in_them() -> None:
    kinds = {"blackbox": BLACKBOX, "oneshot": ONESHOT, "width": WIDTH}
    for kind, registry in kinds.items():
        for name in registry:
            assert algorithm_kind(name) == kind
            assert sum(name in r for r in kinds.values()) == 1
    assert search_algorithm("rea") is BLACKBOX.get("rea")
    assert search_algorithm("pc-darts") is ONESHOT.get("pc-darts")
    with pytest.raises(SearchError, match="nasforge width search --method aows"):
        search_algorithm("aows")
    with pytest.raises(SearchError, match="unknown search algorithm 'nope'") as exc:
        search_algorithm("nope")
    assert "aows" not in str(exc.value) and "rsps" in str(exc.value)
    with pytest.raises(SearchError, match="'gdas' is 'oneshot', not a black-box searcher"):
        build_searcher("gdas", seed=0)
    assert algorithm_kind("nope") is None

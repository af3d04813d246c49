"""The NATS-Bench size space (nats-sss): strings, count, official index, network, cost."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from nasforge.cost import space_cost
from nasforge.errors import ArchError
from nasforge.nn import build_network
from nasforge.search.base import run_search
from nasforge.search.protocol import build_searcher
from nasforge.spaces import CategoricalSpace, SearchSpace, get_space
from nasforge.spaces.nats_sss import CELL


@pytest.fixture(scope="module")
def space():
    return get_space("nats-sss")


def test_protocol_count_and_round_trip(space) -> None:
    assert isinstance(space, SearchSpace) and isinstance(space, CategoricalSpace)
    assert space.size() == 32768 == len(set(space.enumerate()))
    assert [len(c.options) for c in space.choices()] == [8] * 5
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = space.sample(rng)
        s = space.to_string(a)
        assert space.from_string(s) == a and space.to_string(space.from_string(s)) == s
        assert space.arch_from_index(space.index(a)) == a
        assert space.from_choices(space.to_choices(a)) == a
        assert space.mutate(a, rng) != a
    assert space.to_string((8, 16, 32, 64, 64)) == "8:16:32:64:64"
    for bad in ("8:16:32:64", "8:16:32:64:65", "8:16:x:64:64", "8,16,32,64,64"):
        with pytest.raises(ArchError, match="nats-sss"):
            space.from_string(bad)


def test_index_is_the_official_traversal_order(space) -> None:
    # AutoDL-Projects exps/NATS-Bench/main-sss.py `traverse_net`: layer 0 outermost.
    cands = [8, 16, 24, 32, 40, 48, 56, 64]
    nets = [""]
    for _ in range(5):
        nets = [str(c) if n == "" else f"{n}:{c}" for n in nets for c in cands]
    assert len(nets) == 32768
    for i in (0, 1, 7, 8, 4095, 4096, 12345, 32767):
        assert space.index(space.from_string(nets[i])) == i
        assert space.to_string(space.arch_from_index(i)) == nets[i]
    assert [space.to_string(a) for a in itertools.islice(space.enumerate(), 10)] == nets[:10]
    assert space.index(space.from_string("16:8:8:8:8")) == 4096


@pytest.mark.slow  # builds and counts three networks (~10 s on a shared CPU)
def test_network_shapes_and_cost(space) -> None:
    arch = space.from_string("8:16:24:32:64")
    net = build_network("nats-sss", arch, num_classes=100)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 100)
    # The cell whose width changes (c1 = 16 -> c2 = 24) turns its skip edge into a 1x1 conv.
    assert net.cells[2].layers[3].conv.weight.shape == (24, 16, 1, 1)
    small = space_cost("nats-sss", "8:8:8:8:8", "cifar10")
    big = space_cost("nats-sss", (64, 64, 64, 64, 64), "cifar10")
    assert 0 < small.flops_m < big.flops_m and 0 < small.params_m < big.params_m
    assert space_cost("nats-sss", "8:8:8:8:8", "ImageNet16-120").flops_m < small.flops_m


@pytest.mark.slow  # importing xautodl alone takes seconds
def test_network_matches_the_official_dynamic_shape_tiny_net(space) -> None:
    """Same modules, same parameter order and shapes, same outputs as xautodl's
    DynamicShapeTinyNet for the same weights."""
    pytest.importorskip("xautodl", reason="xautodl (official reference code) not installed")
    from xautodl.config_utils import dict2config
    from xautodl.models import get_cell_based_tiny_net
    from xautodl.models.cell_searchs.genotypes import Structure

    torch.manual_seed(0)
    for text in ("48:24:8:8:56", "64:64:64:64:64"):
        ours = build_network("nats-sss", space.from_string(text), num_classes=10).eval()
        cfg = dict(name="infer.shape.tiny", channels=text,
                   genotype=Structure.str2structure(CELL), num_classes=10)  # fmt: skip
        theirs = get_cell_based_tiny_net(dict2config(cfg, None)).eval()
        mine, ref = ours.state_dict(), theirs.state_dict()
        assert [tuple(v.shape) for v in mine.values()] == [tuple(v.shape) for v in ref.values()]
        theirs.load_state_dict(dict(zip(ref, mine.values(), strict=True)))
        x = torch.randn(2, 3, 32, 32)
        torch.testing.assert_close(ours(x), theirs(x)[1])


@pytest.mark.slow  # two tiny real trainings
def test_rea_searches_nats_sss_with_a_training_evaluator(one_torch_thread) -> None:
    from nasforge.evaluate import TrainingEvaluator

    ev = TrainingEvaluator(
        "nb201-12e",
        "digits",
        space="nats-sss",
        limit=64,
        recipe_overrides={"epochs": 1, "batch_size": 32},
    )
    r = run_search(build_searcher("rea", 0), ev, "2evals", seed=0)
    assert r.num_evals == 2 and all(r.history["ok"])
    sp = get_space("nats-sss")
    assert all(sp.index(sp.from_string(s)) is not None for s in r.history["arch"])
    assert all(0.0 <= v <= 100.0 for v in r.history["valid"])


@pytest.mark.slow  # importing xautodl alone takes seconds
def test_costs_equal_the_official_counter(space) -> None:
    """Params and FLOPs of ``space_cost('nats-sss', ...)`` equal xautodl's own counter
    (``xautodl.utils.get_model_infos``, what NATS-Bench's ``main-sss.py`` records) on the
    official ``DynamicShapeTinyNet``, at both input sizes of the benchmark (32 and 16 px)."""
    pytest.importorskip("xautodl", reason="xautodl (official reference code) not installed")
    from xautodl.config_utils import dict2config
    from xautodl.models import get_cell_based_tiny_net
    from xautodl.models.cell_searchs.genotypes import Structure
    from xautodl.utils import get_model_infos

    shapes = {"cifar100": (32, 100), "ImageNet16-120": (16, 120)}
    for text, dataset in itertools.product(("8:8:8:8:8", "48:24:8:8:56", "16:40:64:8:32"), shapes):
        res, classes = shapes[dataset]
        cfg = dict(name="infer.shape.tiny", channels=text,
                   genotype=Structure.str2structure(CELL), num_classes=classes)  # fmt: skip
        flops, params = get_model_infos(get_cell_based_tiny_net(dict2config(cfg, None)),
                                        (1, 3, res, res))  # fmt: skip
        ours = space_cost("nats-sss", text, dataset)
        assert ours.params_m == pytest.approx(params, rel=1e-9), (text, dataset)
        assert ours.flops_m == pytest.approx(flops, rel=1e-9), (text, dataset)


def test_width_backbone_is_the_benchmark_network() -> None:
    """The nats-sss width backbone (``width search --backbone nats-sss``) builds the
    benchmark's own network: analytic costs equal the counted ones (a skip projection
    only where two widths differ), and a slimmable supernet's sub-network computes
    exactly its extracted standalone network."""
    from nasforge.nn.slimmable import Placement, SlimmableNetwork
    from nasforge.spaces.width import make_space

    width = make_space("nats-sss", resolution=32, num_classes=10)
    assert width.spec.conditional
    for arch in ((8, 8, 8, 8, 8), (48, 24, 8, 8, 56), (16, 40, 64, 8, 32)):
        c = space_cost("nats-sss", arch, "cifar10")
        assert float(width.flops(arch)) == pytest.approx(c.flops_m, rel=1e-12)
        assert float(width.params(arch)) == pytest.approx(c.params_m, rel=1e-12)
    torch.manual_seed(0)
    supernet = SlimmableNetwork(width.spec).eval()
    x = torch.randn(2, 3, 32, 32)
    for arch in ((48, 24, 8, 8, 56), (16, 16, 16, 16, 16)):
        p = Placement.prefix(arch)
        sub = supernet.extract(p)
        assert isinstance(sub, type(build_network("nats-sss", arch, num_classes=10)))
        torch.testing.assert_close(supernet(x, p), sub(x))

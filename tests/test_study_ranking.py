"""The weight-sharing ranking study: partitioned supernets, prefix sharing, arch sets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from nasforge.data import load_splits
from nasforge.errors import ArchError, SearchError
from nasforge.nn.supernet import NB201Supernet, share_prefix
from nasforge.search.oneshot.rsps import RSPS
from nasforge.spaces.nb201 import Arch
from nasforge.study.ranking import (
    PartitionedRSPS,
    PartitionedSupernet,
    RankingConfig,
    part_functions,
    run_ranking_study,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = {"C": 4, "N": 1, "batch_size": 16, "steps_per_epoch": 2, "eval_batch_size": 32}


@pytest.fixture(scope="module")
def digits():
    return load_splits("digits", limit=64)


def _ids(params) -> set[int]:
    return {id(p) for p in params}


def test_prefix_parameters_are_shared_objects_and_suffixes_are_not() -> None:
    torch.manual_seed(0)
    nets = [NB201Supernet(4, 1, 10) for _ in range(3)]
    share_prefix(nets, 2)  # the stem, the first searched cell and the first reduction block
    a, b, c = nets
    for net in (b, c):
        assert net.stem is a.stem
        assert net.cells[0] is a.cells[0] and net.cells[1] is a.cells[1]
        assert _ids(net.stem.parameters()) == _ids(a.stem.parameters())
        for i in (2, 3, 4):
            assert not _ids(net.cells[i].parameters()) & _ids(a.cells[i].parameters())
        assert not _ids(net.classifier.parameters()) & _ids(a.classifier.parameters())
    # One parameter set for the prefix in the wrapper an optimizer sees.
    wrapper = PartitionedSupernet(nets, lambda arch: 0)
    prefix = sum(p.numel() for m in (a.stem, a.cells[0], a.cells[1]) for p in m.parameters())
    per_net = sum(p.numel() for p in a.parameters())
    assert sum(p.numel() for p in wrapper.parameters()) == prefix + 3 * (per_net - prefix)


def test_prefix_must_leave_a_suffix() -> None:
    nets = [NB201Supernet(4, 1, 10) for _ in range(2)]
    with pytest.raises(ArchError, match=r"prefix of 5 cells invalid; expected an int in 0\.\.4"):
        share_prefix(nets, 5)
    with pytest.raises(ArchError, match="prefix of 9 cells"):
        PartitionedRSPS(2, lambda arch: 0, 9, C=4, N=1)
    with pytest.raises(SearchError, match="partition='none'"):
        RankingConfig(prefix=1)


def test_a_step_trains_each_part_and_the_shared_prefix_gets_every_gradient(digits) -> None:
    data = digits
    groups, part_of = part_functions(RankingConfig(partition="random", groups=2), seed=0)
    method = PartitionedRSPS(groups, part_of, 1, **TINY)
    method.setup(data.num_classes, seed=0)
    net = method.supernet
    assert isinstance(net, PartitionedSupernet)
    m0, m1 = net.members
    before = {id(p): p.detach().clone() for p in net.parameters()}
    x, y = data.train.images[:16].float() / 255, data.train.labels[:16]
    method.train_step((x, y), None, 0)
    moved = {id(p) for p in net.parameters() if not torch.equal(p, before[id(p)])}
    # Each member's classifier trained (one path per part per step), and the shared stem.
    assert _ids(m0.classifier.parameters()) <= moved and _ids(m1.classifier.parameters()) <= moved
    assert _ids(m0.stem.parameters()) <= moved and m0.stem is m1.stem
    # Each arch runs through its part's member.
    arch = Arch.from_index(123)
    assert net.member(arch.op_ids) is net.members[part_of(arch)]


def test_one_part_is_rsps_step_for_step(digits) -> None:
    data = digits
    ours, rsps = PartitionedRSPS(1, lambda arch: 0, **TINY), RSPS(**TINY)
    for m in (ours, rsps):
        m.setup(data.num_classes, seed=3)
    x, y = data.train.images[:16].float() / 255, data.train.labels[:16]
    for _ in range(2):
        ours.train_step((x, y), None, 0)
        rsps.train_step((x, y), None, 0)
    assert ours.supernet is not None and rsps.supernet is not None
    for p, q in zip(ours.supernet.parameters(), rsps.supernet.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.slow
def test_study_on_an_arch_set_with_prefix_sharing(tmp_path: Path, digits) -> None:
    from nasforge.bench import make_synthetic_table

    chosen = [Arch.from_index(i) for i in (5, 700, 1400, 9000, 15000)]
    table = make_synthetic_table(
        tmp_path / "t", datasets=("cifar10-valid",), hps={"12": 12}, archs=chosen
    )
    data = digits
    cfg = RankingConfig(partition="random", groups=2, prefix=0, step_every=1, eval_batches=1)
    result = run_ranking_study(
        table, data, tmp_path / "s", config=cfg, supernet={**TINY, "epochs": 1}, archs=chosen
    )
    assert result["archs"] == [a.to_string() for a in chosen]
    assert result["variant"] == "random 2 parts, shared stem"
    assert [s["label"] for s in result["snapshots"]] == ["e1s1", "e1"]
    assert result["timing"]["cpu_s"] > 0 and result["timing"]["wall_s"] > 0
    on_disk = json.loads((tmp_path / "s" / "ranking.json").read_text())
    assert on_disk["snapshots"][-1]["tau"] == result["snapshots"][-1]["tau"]
    # An arch of the set without a truth in the table is an error naming it.
    missing = [*chosen, Arch.from_index(42)]
    with pytest.raises(SearchError, match=re.escape(Arch.from_index(42).to_string())):
        run_ranking_study(
            table, data, tmp_path / "m", config=cfg, supernet={**TINY, "epochs": 1}, archs=missing
        )


def test_cli_rejects_a_bad_prefix_before_training(tmp_path: Path, monkeypatch, capsys) -> None:
    import sys

    import nasforge.data
    from nasforge.cli import main

    def forbidden(*args, **kwargs):
        raise AssertionError("work started before the bad input was refused")

    monkeypatch.setattr(nasforge.data, "load_splits", forbidden)
    args = ["study", "ranking", "--bench", str(tmp_path / "none"), "-o", str(tmp_path / "o")]
    monkeypatch.setattr(sys, "argv", ["nasforge", *args, "--prefix", "1"])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "partition='none'" in err and len(err.strip().splitlines()) == 1


def _fake_study(variant: str, taus: list[float], seed: int = 0) -> dict:
    snaps = [
        {"label": f"e{i + 1}", "tau": t, "rho": t, "tau_prev": None if i == 0 else 0.5}
        | {"topk_true_ranks": [1, 2], "oneshot_acc": [10.0, 20.0, 30.0]}
        for i, t in enumerate(taus)
    ]
    return {
        "variant": variant,
        "config": {"partition": "none"},
        "groups": 1,
        "archs": ["a", "b", "c"],
        "truth": [1.0, 2.0, 3.0],
        "snapshots": snaps,
        "table": {"dataset": "cifar10", "hp": "3", "truth": "test_acc"},
        "dataset": "cifar10",
        "supernet": {"C": 8, "N": 1, "epochs": 2},
        "seed": seed,
        "timing": {"cpu_s": 1.0, "wall_s": 2.0},
    }


def test_compare_puts_variants_side_by_side(tmp_path: Path) -> None:
    from nasforge.study.ranking import compare_variants

    runs = [_fake_study("full sharing", [0.1, 0.4]), _fake_study("random 2", [0.2, 0.6])]
    runs.append(_fake_study("full sharing", [0.0, 0.3], seed=1))  # a second study seed
    out = compare_variants(runs, tmp_path / "cmp.json", noise={"tau": 0.8}, meta={"k": 1})
    assert [v["final"]["tau"] for v in out["variants"]] == [0.4, 0.6, 0.3]
    assert [v["seed"] for v in out["variants"]] == [0, 0, 1]
    assert out["variants"][1]["tau"] == [0.2, 0.6] and out["truth_noise"]["tau"] == 0.8
    assert json.loads((tmp_path / "cmp.json").read_text())["meta"] == {"k": 1}
    assert (tmp_path / "cmp.png").stat().st_size > 0
    other = _fake_study("other", [0.3, 0.3]) | {"archs": ["a", "b", "d"]}
    with pytest.raises(SearchError, match="another arch set"):
        compare_variants([runs[0], other], tmp_path / "bad.json")


def test_truth_agreement_of_two_seeds(tmp_path: Path) -> None:
    from nasforge.bench import Benchmark, make_synthetic_table
    from nasforge.study.ranking import kendall_tau, truth_agreement

    archs = [Arch.from_index(i) for i in (1, 50, 900, 4000, 12000)]
    kw = {"datasets": ("cifar10-valid",), "hps": {"12": 12}, "archs": archs, "seeds": (777,)}
    a = Benchmark.open(make_synthetic_table(tmp_path / "a", **kw))
    b = Benchmark.open(make_synthetic_table(tmp_path / "b", seed=1, **kw))
    got = truth_agreement(a, b, [*archs, Arch.from_index(7)], "cifar10-valid", "12", "test_acc")
    assert len(got["archs"]) == 5  # the arch neither table holds is left out
    assert got["tau"] == pytest.approx(kendall_tau(got["table"], got["replicate"]))
    assert got["mean_abs_diff"] >= 0

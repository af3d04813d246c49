"""Adversarial probes of the official importers (issue 23, item 6): they validate values and
seeds exactly as the CSV / Parquet importers do, so a seed of 2**70 or an infinite accuracy
is refused at import instead of being stored (and ranked, or crashing ``bench export``)."""

from __future__ import annotations

import math

import pytest
import torch

from nasforge.bench import Benchmark
from nasforge.bench.importers import import_table
from nasforge.errors import BenchError
from nasforge.spaces.nb201 import NUM_ARCHS, Arch


def _rc(seed: int, test_acc: float = 91.0, train_acc: float = 99.0) -> dict:
    """One ResultsCount state (the fields the official file holds) of a 2-epoch trial."""
    return {
        "name": "cifar10",
        "seed": seed,
        "epochs": 2,
        "train_acc1es": {0: 50.0, 1: train_acc},
        "train_losses": {0: 1.0, 1: 0.5},
        "train_times": {0: 1.0, 1: 1.0},
        "eval_names": ["ori-test"],
        "eval_acc1es": {"ori-test@0": 40.0, "ori-test@1": test_acc},
        "eval_losses": {"ori-test@0": 1.5, "ori-test@1": 0.9},
        "eval_times": {"ori-test@0": 0.5, "ori-test@1": 0.5},
        "flop": 10.0,
        "params": 0.1,
        "latency": [0.01],
    }


def _nb201_file(tmp_path, name: str, **rc_kw) -> str:
    seed = rc_kw.pop("seed", 777)
    state = {
        "arch_index": 5,
        "arch_str": Arch.from_index(5).to_string(),
        "all_results": {("cifar10", seed): _rc(seed, **rc_kw)},
        "dataset_seed": {"cifar10": [seed]},
        "clear_net_done": True,
    }
    meta = [Arch.from_index(i).to_string() for i in range(NUM_ARCHS)]
    path = tmp_path / f"{name}.pth"
    torch.save(
        {
            "meta_archs": meta,
            "arch2infos": {5: {"less": state, "full": state}},
            "evaluated_indexes": [5],
        },
        path,
    )
    return str(path)


def test_a_well_formed_file_imports(tmp_path):
    table = import_table(_nb201_file(tmp_path, "ok"), tmp_path / "ok.table", format="nb201")
    assert Benchmark.open(table).query(5, "cifar10", hp="200", seed=777).final["test_acc"] == 91.0


@pytest.mark.parametrize(
    ("kw", "says"),
    [
        ({"seed": 2**70}, "int64"),
        ({"test_acc": math.inf}, "infinite"),
        ({"train_acc": 1e30}, "outside [0, 100]"),
        ({"test_acc": -3.0}, "outside [0, 100]"),
    ],
)
def test_official_values_are_checked_like_plain_ones(tmp_path, kw, says):
    src = _nb201_file(tmp_path, "bad", **kw)
    with pytest.raises(BenchError, match=says.replace("[", r"\[").replace("]", r"\]")):
        import_table(src, tmp_path / "bad.table", format="nb201")
    assert not (tmp_path / "bad.table").exists()
    assert not list(tmp_path.glob(".bad.table.import-*"))


def _seed_csv(tmp_path, n: int):
    arch = Arch.from_index(0).to_string()
    src = tmp_path / f"seeds{n}.csv"
    rows = "".join(f"{arch},cifar10,{s},50\n" for s in range(n))
    src.write_text("arch,dataset,seed,valid_acc\n" + rows)
    return src


def test_seeds_per_group_are_bounded_and_the_bound_can_be_raised(tmp_path, monkeypatch):
    src = _seed_csv(tmp_path, 1500)
    with pytest.raises(BenchError, match=r"1500 seeds; expected at most 1000.*NASFORGE_MAX_SEEDS"):
        import_table(src, tmp_path / "t", format="csv")
    assert not (tmp_path / "t").exists()
    assert not list(tmp_path.glob(".t.building-*"))
    monkeypatch.setenv("NASFORGE_MAX_SEEDS", "2000")
    table = import_table(src, tmp_path / "t", format="csv")
    assert len(Benchmark.open(table).query(0, "cifar10", hp="final", seed=1499).final) > 0


def test_projected_table_size_is_checked_before_writing(tmp_path, monkeypatch):
    monkeypatch.setenv("NASFORGE_MAX_TABLE_BYTES", "1000")
    with pytest.raises(BenchError, match="NASFORGE_MAX_TABLE_BYTES"):
        import_table(_seed_csv(tmp_path, 200), tmp_path / "t", format="csv")
    assert not (tmp_path / "t").exists()

"""Official-format import (NB201 .pth, NATS-Bench tss directory), the restricted unpickler,
and the compatibility facade checked side by side against the official APIs on the same
small files (written with the official packages' own classes)."""

from __future__ import annotations

import math
import os
import pickle
import random

import numpy as np
import pytest
import torch

from nasforge.bench import Benchmark
from nasforge.bench.compat import NASBench201API, NATStopologyAPI
from nasforge.bench.importers import detect_format, import_table
from nasforge.bench.safe_pickle import loads as safe_loads
from nasforge.errors import BenchError
from nasforge.spaces.nb201 import NUM_ARCHS, Arch

nas_201_api = pytest.importorskip("nas_201_api")
nats_bench = pytest.importorskip("nats_bench")

INDICES = (0, 11, 301, 15624)
DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
EVAL_SETS = {
    "cifar10-valid": ("x-valid", "ori-test"),
    "cifar10": ("ori-test",),
    "cifar100": ("x-valid", "x-test", "ori-test"),
    "ImageNet16-120": ("x-valid", "x-test", "ori-test"),
}
HPS = {"12": 12, "200": 7}  # a short "200" recipe keeps the fixture small


def _results_count(mod, dataset, seed, epochs, rng, index):
    """One trial, built with the official ResultsCount class."""
    train_acc = {i: float(rng.uniform(10, 99)) for i in range(epochs)}
    train_loss = {i: float(rng.uniform(0.01, 2.3)) for i in range(epochs)}
    train_times = {i: float(rng.uniform(5, 20)) for i in range(epochs)}
    classes = {"cifar100": 100, "ImageNet16-120": 120}.get(dataset, 10)
    cfg = {
        "channel": 16,
        "num_cells": 5,
        "arch_str": Arch.from_index(index).to_string(),
        "class_num": classes,
    }
    params, flop = 0.1 + index * 1e-5, 10.0 + index * 1e-3
    rc = mod.ResultsCount(
        dataset, None, train_acc, train_loss, params, flop, cfg, seed, epochs, [0.01 + seed * 1e-6]
    )
    rc.update_train_info(train_acc, None, train_loss, train_times)
    accs, losses, times = {}, {}, {}
    for name in EVAL_SETS[dataset]:
        for i in range(epochs):
            accs[f"{name}@{i}"] = float(rng.uniform(10, 95))
            losses[f"{name}@{i}"] = float(rng.uniform(0.1, 2.3))
            times[f"{name}@{i}"] = float(rng.uniform(0.5, 2))
    rc.update_eval(accs, losses, times)
    return rc


def _arch_results(mod, index, epochs, rng, seeds_of):
    ar = mod.ArchResults(index, Arch.from_index(index).to_string())
    for ds in DATASETS:
        for seed in seeds_of(ds):
            ar.update(ds, seed, _results_count(mod, ds, seed, epochs, rng, index))
    return ar


def _seeds(index):
    # Vary the seed sets like the real files (1-3 trials per arch).
    return lambda ds: (777, 888, 999)[: 1 + (index + len(ds)) % 3]


@pytest.fixture(scope="module")
def nb201_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    arch2infos = {}
    for index in INDICES:
        arch2infos[index] = {
            "less": _arch_results(nas_201_api, index, HPS["12"], rng, _seeds(index)).state_dict(),
            "full": _arch_results(nas_201_api, index, HPS["200"], rng, _seeds(index)).state_dict(),
        }
    meta = [Arch.from_index(i).to_string() for i in range(NUM_ARCHS)]
    path = tmp_path_factory.mktemp("nb201") / "NAS-Bench-201-v1_1-tiny.pth"
    torch.save({"meta_archs": meta, "arch2infos": arch2infos, "evaluated_indexes": INDICES}, path)
    return path


@pytest.fixture(scope="module")
def nb201_pair(nb201_file, tmp_path_factory):
    official = nas_201_api.NASBench201API(str(nb201_file), verbose=False)
    table = import_table(nb201_file, tmp_path_factory.mktemp("t") / "nb201.table")
    return official, NASBench201API(table), table


@pytest.fixture(scope="module")
def nats_dir(tmp_path_factory):
    from nats_bench.api_utils import pickle_save

    rng = np.random.default_rng(1)
    root = tmp_path_factory.mktemp("nats") / "NATS-tss-v1_0-3ffb9-simple"
    root.mkdir()
    meta = [Arch.from_index(i).to_string() for i in range(NUM_ARCHS)]
    pickle_save({"meta_archs": meta}, str(root / "meta.pickle"))
    for index in INDICES:
        obj = {
            hp: _arch_results(nats_bench, index, e, rng, _seeds(index + 1)).state_dict()
            for hp, e in HPS.items()
        }
        pickle_save(obj, str(root / f"{index:06d}.pickle"))
    return root


def _assert_same(ours, theirs, where):
    assert set(ours) == set(theirs), (where, sorted(ours), sorted(theirs))
    for k, v in theirs.items():
        if v is None or isinstance(v, str):
            assert ours[k] == v, (where, k)
        else:
            assert ours[k] == pytest.approx(float(v), rel=1e-12, abs=1e-12), (where, k)


# -- import: every value survives ------------------------------------------------------------
def test_nb201_import_keeps_every_value(nb201_file, nb201_pair):
    official, _, table = nb201_pair
    bench = Benchmark.open(table)
    assert detect_format(nb201_file) == "nb201"
    assert sorted(a.to_index() for a in bench) == sorted(INDICES)
    assert sorted(bench.datasets) == sorted(DATASETS)
    for index in INDICES:
        for hp, epochs in HPS.items():
            ar = official.query_meta_info_by_index(index, hp)
            for ds in DATASETS:
                assert bench.num_epochs(ds, hp) == epochs
                for seed, rc in ar.query(ds).items():
                    rec = bench.query(index, ds, hp=hp, seed=seed)
                    for i in range(epochs):
                        assert rec.curves["train_acc"][i] == rc.train_acc1es[i]
                        assert rec.curves["train_loss"][i] == rc.train_losses[i]
                        assert rec.curves["epoch_time"][i] == rc.train_times[i]
                        for name in EVAL_SETS[ds]:
                            prefix = {"x-valid": "valid", "x-test": "test"}.get(name)
                            if name == "ori-test":
                                prefix = "test" if ds in ("cifar10", "cifar10-valid") else "valtest"
                            key = f"{name}@{i}"
                            assert rec.curves[f"{prefix}_acc"][i] == rc.eval_acc1es[key]
                            assert rec.curves[f"{prefix}_loss"][i] == rc.eval_losses[key]
                            assert rec.curves[f"{prefix}_time"][i] == rc.eval_times[key]
                    assert rec.final["train_time"] == pytest.approx(sum(rc.train_times.values()))
                cost = bench.cost(index, ds)
                assert cost["flops_m"] == pytest.approx(rc.flop)
                assert cost["params_m"] == pytest.approx(rc.params)
                assert cost["latency_s"] == pytest.approx(official.get_latency(index, ds, hp))
    # cifar10 has no validation set: the valid metrics are absent, never 0
    assert "valid_acc" not in bench.metrics("cifar10", "200")


def test_nats_import_matches_official(nats_dir, tmp_path):
    table = import_table(nats_dir, tmp_path / "nats.table")
    assert detect_format(nats_dir) == "nats-tss"
    official = nats_bench.create(str(nats_dir), "tss", fast_mode=True, verbose=False)
    ours = NATStopologyAPI(table)
    for index in INDICES:
        for ds in DATASETS:
            for hp in HPS:
                for iepoch in (None, 0, 3):
                    args = (index, ds, iepoch, hp, False)
                    _assert_same(ours.get_more_info(*args), official.get_more_info(*args), args)
                _assert_same(
                    ours.get_cost_info(index, ds, hp), official.get_cost_info(index, ds, hp), ds
                )


# -- the compatibility facade ------------------------------------------------------------------
def test_compat_get_more_info_matches_official(nb201_pair):
    official, ours, _ = nb201_pair
    for index in INDICES:
        seeds_of = _seeds(index)
        for ds in DATASETS:
            for hp in HPS:
                for iepoch in (None, 0, 4):
                    for is_random in (False, *seeds_of(ds)):
                        args = (index, ds, iepoch, hp, is_random)
                        _assert_same(ours.get_more_info(*args), official.get_more_info(*args), args)


def test_compat_random_trial_and_simulate_match_official(nb201_pair):
    official, ours, _ = nb201_pair
    arch_str = Arch.from_index(301).to_string()
    for ds in ("cifar10", "cifar100", "ImageNet16-120"):
        for hp in HPS:
            random.seed(5)
            theirs = official.simulate_train_eval(arch_str, ds, hp=hp)
            random.seed(5)
            mine = ours.simulate_train_eval(arch_str, ds, hp=hp)
            assert mine == pytest.approx(theirs, rel=1e-12)
            random.seed(9)
            theirs = official.get_more_info(301, ds if ds != "cifar10" else "cifar10-valid", hp=hp)
            random.seed(9)
            mine = ours.get_more_info(301, ds if ds != "cifar10" else "cifar10-valid", hp=hp)
            _assert_same(mine, theirs, (ds, hp))
    # a reproducible rng instead of the global random module
    api = NASBench201API(ours.benchmark, rng=random.Random(3))
    api2 = NASBench201API(ours.benchmark, rng=random.Random(3))
    assert [api.get_more_info(0, "cifar100", hp="200") for _ in range(5)] == [
        api2.get_more_info(0, "cifar100", hp="200") for _ in range(5)
    ]


def test_compat_index_cost_and_best_match_official(nb201_pair):
    official, ours, _ = nb201_pair
    assert len(ours) == len(official) == NUM_ARCHS
    for i in (0, 1, 7777, 15624):
        assert ours.arch(i) == official.arch(i) == ours[i]
        assert ours.query_index_by_arch(official.arch(i)) == i
        assert ours.query_index_by_arch(i) == official.query_index_by_arch(i)
    assert ours.query_index_by_arch("|bogus~0|") == official.query_index_by_arch("|bogus~0|") == -1
    for ds in DATASETS:
        for hp in HPS:
            for index in INDICES:
                _assert_same(
                    ours.get_cost_info(index, ds, hp), official.get_cost_info(index, ds, hp), ds
                )
    for ds, metric_set in (("cifar10", "valid"), ("cifar10", "test"), ("cifar100", "x-test")):
        for hp in HPS:
            theirs = official.find_best(ds, metric_set, hp=hp)
            mine = ours.find_best(ds, metric_set, hp=hp)
            assert mine[0] == theirs[0] and mine[1] == pytest.approx(theirs[1])
    # nas_201_api's statistics() walks all 15,625 indices (it needs the full file): count
    # the official way over the archs this small file has, the rest have 0 trials.
    expected = {0: NUM_ARCHS - len(INDICES)}
    for index in INDICES:
        n = len(official.arch2infos_dict[index]["200"].dataset_seed["cifar100"])
        expected[n] = expected.get(n, 0) + 1
    assert ours.statistics("cifar100", "200") == expected
    assert ours.get_net_config(11, "cifar100") == official.get_net_config(11, "cifar100")


def test_compat_missing_arch_is_an_error_not_zero(nb201_pair):
    _, ours, _ = nb201_pair
    with pytest.raises(BenchError, match="5"):
        ours.get_more_info(5, "cifar100", hp="200")
    with pytest.raises(BenchError, match="iepoch"):
        ours.get_more_info(0, "cifar100", iepoch=99, hp="200")
    with pytest.raises(BenchError, match="seed"):
        ours.get_more_info(0, "cifar100", hp="200", is_random=1234)


# -- refusing unsafe or foreign files -----------------------------------------------------------
class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pth_is_refused_without_side_effect(tmp_path):
    marker = tmp_path / "pwned"
    src = tmp_path / "evil.pth"
    meta = [Arch.from_index(i).to_string() for i in range(3)]
    torch.save({"meta_archs": meta, "arch2infos": {0: _Evil(marker)}}, src)
    with pytest.raises(BenchError, match="refused"):
        import_table(src, tmp_path / "out", format="nb201")
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_malicious_nats_pickle_is_refused_without_side_effect(tmp_path):
    import bz2

    marker = tmp_path / "pwned"
    root = tmp_path / "NATS-tss-v1_0-3ffb9-simple"
    root.mkdir()
    with bz2.BZ2File(root / "meta.pickle.pbz2", "wb") as f:
        pickle.dump({"meta_archs": _Evil(marker)}, f)
    with pytest.raises(BenchError, match=r"posix\.system|os\.system|refused"):
        import_table(root, tmp_path / "out")
    assert not marker.exists()
    with pytest.raises(BenchError, match="refused"):
        safe_loads(pickle.dumps(_Evil(marker)))
    with pytest.raises(BenchError, match=r"builtins\.eval"):
        safe_loads(b"cbuiltins\neval\n(S'1+1'\ntR.")
    assert not marker.exists()


def test_foreign_official_files_are_refused(tmp_path):
    src = tmp_path / "weights.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, src)
    with pytest.raises(BenchError, match="meta_archs"):
        import_table(src, tmp_path / "a")
    src2 = tmp_path / "shuffled.pth"
    meta = [Arch.from_index(i).to_string() for i in range(NUM_ARCHS)]
    meta[0], meta[1] = meta[1], meta[0]
    torch.save({"meta_archs": meta, "arch2infos": {}, "evaluated_indexes": []}, src2)
    with pytest.raises(BenchError, match="official"):
        import_table(src2, tmp_path / "b")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file at all")
    with pytest.raises(BenchError):
        import_table(junk, tmp_path / "c")


def test_dropped_tensors_in_full_archives(tmp_path):
    """'-full' files carry trained weights: they are dropped, the metrics are kept."""
    rng = np.random.default_rng(2)
    ar = _arch_results(nas_201_api, 11, 3, rng, lambda ds: (777,))
    for rc in ar.all_results.values():
        rc.net_state_dict = {"w": torch.ones(3)}
    src = tmp_path / "000011-FULL.pth"
    arch_dir = tmp_path / "NAS-Bench-201-v1_1-archive"
    arch_dir.mkdir()
    torch.save({"less": ar.state_dict(), "full": ar.state_dict()}, arch_dir / src.name)
    table = import_table(arch_dir, tmp_path / "t")
    rec = Benchmark.open(table).query(11, "cifar100", hp="200", seed=777)
    rc = ar.query("cifar100", 777)
    assert rec.final["train_acc"] == rc.train_acc1es[2]
    assert math.isclose(rec.final["train_time"], sum(rc.train_times.values()))


@pytest.mark.slow  # ~15 s: tracemalloc slows the unpickling of 28 arch files
def test_import_holds_one_arch_at_a_time(tmp_path):
    """The importer spills each arch's curves to disk as it reads them and writes the table
    row by row: importing 6x more archs costs no more memory (the curves of 20 more archs of
    200 epochs held at once, as before, take ~9 MB), and nothing is left beside the table."""
    import bz2
    import tracemalloc

    from nasforge.bench.spaces import table_space

    rng = np.random.default_rng(5)
    one = {
        hp: _arch_results(nats_bench, 7, e, rng, _seeds(1)).state_dict() for hp, e in HPS.items()
    }
    one["200"] = _arch_results(nats_bench, 7, 200, rng, lambda ds: (777, 888, 999)).state_dict()
    blob = bz2.compress(pickle.dumps(one, protocol=4))
    meta = bz2.compress(pickle.dumps({"meta_archs": table_space("nb201").strings()}))

    def peak_of(n):
        root = tmp_path / f"NATS-tss-v1_0-3ffb9-simple-{n}"
        root.mkdir()
        (root / "meta.pickle.pbz2").write_bytes(meta)
        for i in range(n):
            (root / f"{i * 97:06d}.pickle.pbz2").write_bytes(blob)
        tracemalloc.start()
        try:
            import_table(root, tmp_path / f"t{n}", format="nats-tss")
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak_of(4), peak_of(24)
    assert large - small < 3e6, (small, large)
    bench = Benchmark.open(tmp_path / "t24")
    assert len(bench) == 24 and bench.num_epochs("cifar100", "200") == 200
    rc = one["200"]["all_results"][("cifar100", 888)]
    rec = bench.query(23 * 97, "cifar100", hp="200", seed=888)
    assert rec.curves["valid_acc"][199] == rc["eval_acc1es"]["x-valid@199"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []

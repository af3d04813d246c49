"""NATS-Bench size space (``nats-sss``) tables: importing the official ``-simple`` directory
and the single full pickle, side by side with the official ``NATSsize`` API on the same
files (written with nats_bench's own classes), the table's read path for the second space,
and crafted size-space files that must never run anything."""

from __future__ import annotations

import bz2
import os
import pickle
import sys

import numpy as np
import pytest

from nasforge.bench import Benchmark
from nasforge.bench.compat import NATSsizeAPI, create
from nasforge.bench.importers import detect_format, import_table
from nasforge.bench.schema import ResultEntry
from nasforge.bench.writer import TableWriter
from nasforge.errors import BenchError
from test_bench_import_security import ATTACKS, RISKY_MODULES
from test_compat_scripts import (
    DATASETS,
    SSS_HPS,
    SSS_INDICES,
    _arch_results,
    sss_meta_archs,
    write_sss_dir,
)

nats_bench = pytest.importorskip("nats_bench")


@pytest.fixture(scope="module")
def sss_dir(tmp_path_factory):
    return write_sss_dir(
        tmp_path_factory.mktemp("sss") / "NATS-sss-v1_0-50262-simple", np.random.default_rng(7)
    )


@pytest.fixture(scope="module")
def sss_file(tmp_path_factory):
    """The single-file form (``NATS-sss-v1_0-50262.pickle.pbz2``), as sss-collect.py saves
    it: meta_archs, total_archs, arch2infos {index: {hp: ArchResults state}}, indexes."""
    from nats_bench.api_utils import pickle_save

    rng = np.random.default_rng(8)
    meta = sss_meta_archs()
    arch2infos = {
        i: {
            hp: _arch_results(nats_bench, i, e, rng, 1, arch_str=meta[i]).state_dict()
            for hp, e in SSS_HPS.items()
        }
        for i in SSS_INDICES
    }
    path = tmp_path_factory.mktemp("sssf") / "NATS-sss-v1_0-50262.pickle"
    pickle_save(
        {
            "meta_archs": meta,
            "total_archs": len(meta),
            "arch2infos": arch2infos,
            "evaluated_indexes": set(SSS_INDICES),
        },
        str(path),
    )
    return path.with_name(path.name + ".pbz2")


def _same(ours, theirs, where):
    assert set(ours) == set(theirs), (where, sorted(ours), sorted(theirs))
    for k, v in theirs.items():
        if v is None or isinstance(v, (str, dict)):
            assert ours[k] == v, (where, k)
        else:
            assert ours[k] == pytest.approx(float(v), rel=1e-12, abs=1e-12), (where, k)


@pytest.mark.parametrize("form", ["simple-dir", "full-file"])
def test_size_space_import_matches_official_api(form, sss_dir, sss_file, tmp_path):
    src = sss_dir if form == "simple-dir" else sss_file
    assert detect_format(src) == "nats-sss"
    table = import_table(src, tmp_path / "sss.table")
    bench = Benchmark.open(table)
    assert bench.space == "nats-sss" and bench.space_size == 32768
    assert [bench.arch_string(a) for a in bench] == [sss_meta_archs()[i] for i in SSS_INDICES]
    assert bench.hps("cifar100") == ["01", "12", "90"]
    if form == "simple-dir":
        official = nats_bench.create(str(src), "sss", fast_mode=True, verbose=False)
    else:
        official = nats_bench.create(str(src), "sss", fast_mode=False, verbose=False)
    ours = create(table, "sss", fast_mode=True, verbose=False)
    assert isinstance(ours, NATSsizeAPI) and len(ours) == len(official) == 32768
    for index in SSS_INDICES:
        arch = official.arch(index)
        assert ours.arch(index) == arch and ours.query_index_by_arch(arch) == index
        for ds in DATASETS:
            for hp, epochs in SSS_HPS.items():
                for iepoch in {None, 0, epochs // 2}:
                    args = (index, ds, iepoch, hp, False)
                    _same(ours.get_more_info(*args), official.get_more_info(*args), args)
                _same(ours.get_cost_info(index, ds, hp), official.get_cost_info(index, ds, hp), ds)
            assert ours.get_net_config(index, ds) == official.get_net_config(index, ds)
        assert ours.query_info_str_by_arch(arch, "90") == official.query_info_str_by_arch(
            arch, "90"
        )
    # the table's own read path speaks the space's strings and values
    rec = bench.query("64:64:64:64:64", "cifar10-valid", hp="90")
    assert rec.arch == (64, 64, 64, 64, 64) and rec.to_dict()["index"] == 32767
    assert rec.to_dict()["arch"] == "64:64:64:64:64"
    assert bench.query(32767, "cifar10-valid", hp="90").final == rec.final
    best, _ = bench.best("cifar100", "valid_acc", hp="12")
    assert best in [tuple(int(c) for c in sss_meta_archs()[i].split(":")) for i in SSS_INDICES]


def test_size_table_keeps_query_speed(sss_dir, tmp_path):
    """A query on a size table is an index computation like on a topology table: 2,000
    queries by arch string well under a second (a whole-table parse would not be)."""
    import time

    bench = Benchmark.open(import_table(sss_dir, tmp_path / "t"))
    archs = [sss_meta_archs()[i] for i in SSS_INDICES] * 500
    t0 = time.perf_counter()
    for a in archs:
        bench.query(a, "cifar100", hp="90")
    assert time.perf_counter() - t0 < 2.0


def test_renamed_size_directory_is_told_by_its_archs(sss_dir, tmp_path):
    renamed = tmp_path / "my-bench-copy"
    renamed.mkdir()
    for p in sss_dir.iterdir():
        (renamed / p.name).write_bytes(p.read_bytes())
    assert detect_format(renamed) == "nats-sss"
    assert Benchmark.open(import_table(renamed, tmp_path / "t")).space == "nats-sss"
    # asked for topology, a size file is refused naming the sizes
    with pytest.raises(BenchError, match="32768 entries; expected 15625"):
        import_table(renamed, tmp_path / "u", format="nats-tss")
    assert not (tmp_path / "u").exists()


def test_size_file_in_another_order_is_refused(tmp_path):
    from nats_bench.api_utils import pickle_save

    root = tmp_path / "NATS-sss-v1_0-50262-simple"
    root.mkdir()
    meta = sss_meta_archs()
    meta[1], meta[8] = meta[8], meta[1]
    pickle_save({"meta_archs": meta}, str(root / "meta.pickle"))
    with pytest.raises(BenchError, match=r"meta_archs\[1\].*official nats-sss order"):
        import_table(root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_writer_and_reader_keep_the_spaces_apart(sss_dir, tmp_path):
    table = import_table(sss_dir, tmp_path / "t")
    with pytest.raises(BenchError, match="holds space 'nats-sss', not 'nb201'"):
        TableWriter(table)
    entry = ResultEntry("8:8:8:8:24", "cifar10", "12", 1, curves={"train_acc": [50.0] * 12})
    with TableWriter(table, space="nats-sss") as w:
        w.append(entry)
        w.set_cost((8, 8, 8, 8, 24), "cifar10", flops_m=1.5)
    bench = Benchmark.open(table)
    assert bench.query("8:8:8:8:24", "cifar10", hp="12", seed=1).final["train_acc"] == 50.0
    assert bench.cost(2, "cifar10") == {"flops_m": 1.5}
    with pytest.raises(BenchError, match="space 'darts'"):
        TableWriter(tmp_path / "x", space="darts")


# -- a crafted size-space file never runs anything ----------------------------------------------
class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("where", ["meta", "arch", "full"])
def test_malicious_size_pickles_are_refused_without_side_effect(tmp_path, where):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(
        {"meta_archs": _Evil(marker)}
        if where != "arch"
        else {"90": {"arch_index": 0, "all_results": _Evil(marker)}}
    )
    if where == "full":
        src = tmp_path / "NATS-sss-v1_0-50262.pickle.pbz2"
        src.write_bytes(bz2.compress(payload))
    else:
        src = tmp_path / "NATS-sss-v1_0-50262-simple"
        src.mkdir()
        meta = pickle.dumps({"meta_archs": sss_meta_archs()})
        (src / "meta.pickle.pbz2").write_bytes(bz2.compress(payload if where == "meta" else meta))
        if where == "arch":
            (src / "000000.pickle.pbz2").write_bytes(bz2.compress(payload))
    with pytest.raises(BenchError, match=r"refused|system") as exc:
        import_table(src, tmp_path / "out")
    assert "\n" not in str(exc.value)
    assert not marker.exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", sorted(set(ATTACKS) - {"deep nesting"}))
def test_crafted_size_arch_files_are_refused(sss_dir, tmp_path, monkeypatch, name):
    """Every crafted stream of the topology attack set, placed as one arch file of a genuine
    size directory: a one-line error naming that file, nothing written, nothing imported."""
    monkeypatch.chdir(tmp_path)
    before = {m for m in RISKY_MODULES if m in sys.modules}
    root = tmp_path / "NATS-sss-v1_0-50262-simple"
    root.mkdir()
    (root / "meta.pickle.pbz2").write_bytes((sss_dir / "meta.pickle.pbz2").read_bytes())
    bad = root / "004096.pickle.pbz2"
    bad.write_bytes(bz2.compress(ATTACKS[name]))
    with pytest.raises(BenchError) as exc:
        import_table(root, tmp_path / "out")
    assert str(bad) in str(exc.value) and "\n" not in str(exc.value)
    assert sorted(os.listdir(tmp_path)) == [root.name]
    assert {m for m in RISKY_MODULES if m in sys.modules} == before


def test_table_index_is_the_space_index():
    """The table's fast string table agrees with the registered nats-sss space."""
    from nasforge.bench.spaces import table_space
    from nasforge.spaces import get_space

    space, ts = get_space("nats-sss"), table_space("nats-sss")
    for i in range(0, 32768, 7):
        arch = space.arch_from_index(i)
        assert ts.string(i) == space.to_string(arch) and ts.index(arch) == i
        assert ts.index(space.to_string(arch)) == i
    assert ts.index(" 8: 8:8:8:16") == 1  # spacing is parsed by the space
    with pytest.raises(Exception, match="channel count '12'"):
        ts.index("8:8:8:8:12")


def test_cli_imports_shows_and_exports_a_size_table(sss_dir, tmp_path):
    from typer.testing import CliRunner

    from nasforge.cli import app

    runner = CliRunner(env={"COLUMNS": "250"})
    table = tmp_path / "sss.table"
    res = runner.invoke(app, ["bench", "import", str(sss_dir), "-o", str(table)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["bench", "info", str(table)])
    assert res.exit_code == 0 and "space=nats-sss" in res.output, res.output
    out = tmp_path / "sss.csv"
    res = runner.invoke(app, ["bench", "export", str(table), "-o", str(out), "--format", "csv"])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert "64:64:64:64:64" in text and "|nor_conv" not in text
    res = runner.invoke(app, ["bench", "top", str(table), "--dataset", "cifar100", "--json"])
    assert res.exit_code == 0 and ":" in res.output, res.output


def test_black_box_search_runs_on_a_size_table(tmp_path):
    """nats-sss tables serve the black-box protocol like topology tables (issue 17: black-box
    searchers run on the size space); the space must match the table's."""
    from typer.testing import CliRunner

    from nasforge.bench.store import GroupData, write_table
    from nasforge.cli import app

    runner = CliRunner(env={"COLUMNS": "250"})
    # a complete size table (every one of the 32,768 archs; 12-epoch curves of 2 metrics)
    rng = np.random.default_rng(0)
    n = 32768
    data = rng.uniform(10, 90, (n, 1, 3, 12))
    data[:, :, 2, :] = np.cumsum(np.full((n, 1, 12), 5.0), axis=-1)  # train_time
    group = GroupData(
        "cifar100",
        "12",
        [777],
        np.arange(n),
        ["valid_acc", "test_acc", "train_time"],
        12,
        False,
        np.ones((n, 1), np.uint8),
        data,
    )
    table = write_table(tmp_path / "sss.table", [group], space="nats-sss")
    args = ["search", "--algo", "random", "--bench", str(table), "--dataset", "cifar100"]
    args += ["--hp", "12", "--budget", "3evals", "--quiet", "--seed", "1"]
    res = runner.invoke(app, [*args, "--space", "nats-sss", "-o", str(tmp_path / "s")])
    assert res.exit_code == 0, res.output
    assert "search results" in res.output
    import json

    run = json.loads((tmp_path / "s" / "trajectories.jsonl").read_text().splitlines()[0])
    assert ":" in json.dumps(run)  # archs recorded as channel strings
    res = runner.invoke(app, [*args, "-o", str(tmp_path / "t")])  # default --space nb201
    assert "answers for 'nats-sss' archs: pass --space nats-sss" in str(res.exception)

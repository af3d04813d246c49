"""The benchmark builder: arch selection, resume, retries, costs, kill-and-resume."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nasforge.bench import Benchmark, ResultEntry, TableWriter
from nasforge.bench.build import (
    BuildConfig,
    TrainTask,
    build,
    entry_curves,
    read_build_meta,
    resolve_archs,
)
from nasforge.errors import ArchError, BenchError, NasforgeError
from nasforge.spaces.nb201 import NUM_ARCHS, NUM_UNIQUE, Arch, all_archs, unique_archs

# Tiny but real: 1 cell per stage, 4 channels, 64 digits per split, 1 epoch.
TINY = dict(dataset="digits", limit=64, C=4, N=1, epochs=1)
TIMING = {"epoch_time", "train_time"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def curves_of(path: Path, dataset: str, hp: str) -> dict[tuple[int, int], dict[str, np.ndarray]]:
    bench = Benchmark.open(path)
    out = {}
    for arch in bench:
        for seed in bench.seeds(dataset, hp):
            rec = bench.query(arch, dataset, hp=hp, seed=seed)
            out[(arch.to_index(), seed)] = {k: v for k, v in rec.curves.items() if k not in TIMING}
    return out


# -- which archs --------------------------------------------------------------------------
def test_resolve_archs_all_unique_and_n():
    assert len(resolve_archs("all")) == NUM_ARCHS
    uniq = resolve_archs("unique")
    assert len(uniq) == NUM_UNIQUE
    assert len({a.canonical() for a in uniq}) == NUM_UNIQUE
    first5 = resolve_archs(5)
    assert first5 == resolve_archs("5")  # CLI passes a string
    assert resolve_archs(8)[:5] == first5  # a bigger build extends a smaller one
    assert resolve_archs(5, order_seed=1) != first5
    # the order is a seeded permutation, not the official index order
    assert [a.to_index() for a in first5] != list(range(5))


def test_resolve_archs_from_files(tmp_path):
    a, b = Arch.from_index(3), Arch.from_index(15624)
    txt = tmp_path / "archs.txt"
    txt.write_text(f"# my archs\n{a.to_string()}\n\n15624  # by index\n{a.to_string()}\n")
    assert resolve_archs(str(txt)) == [a, b]  # duplicates dropped, order kept
    js = tmp_path / "archs.json"
    js.write_text(json.dumps([15624, a.to_string()]))
    assert resolve_archs(str(js)) == [b, a]


@pytest.mark.parametrize(
    "spec, match",
    [(0, "out of range"), (NUM_ARCHS + 1, "out of range"), ("nope.txt", "neither 'all'")],
)
def test_resolve_archs_rejects_bad_specs(spec, match):
    with pytest.raises(ArchError, match=match):
        resolve_archs(spec)


def test_config_validation():
    with pytest.raises(NasforgeError, match="seeds must be distinct"):
        BuildConfig(dataset="digits", seeds=(1, 1))
    with pytest.raises(NasforgeError, match="unknown space 'darts'"):
        BuildConfig(dataset="digits", space="darts")
    with pytest.raises(NasforgeError, match="C must be an int >= 1"):
        BuildConfig(dataset="digits", C=0)
    assert BuildConfig(dataset="digits").hp_key() == "12"  # official key of nb201-12e
    assert BuildConfig(dataset="digits", recipe="nb201-200e").hp_key() == "200"
    assert BuildConfig(dataset="digits", epochs=3).hp_key() == "3"


def test_entry_curves_maps_trainer_records_to_schema():
    result = {
        "epochs": [
            {
                "epoch": e,
                "train_loss": 2.0 - e,
                "train_acc": 10.0 * e,
                "epoch_time": 0.5,
                "eval_time": 0.1,
                "lr": 0.1,
                "eval": {
                    "valid": {"loss": 1.5, "acc": 40.0 + e},
                    "test": {"loss": 1.6, "acc": 39.0},
                },
            }
            for e in (1, 2)
        ]
    }
    c = entry_curves(result)
    assert c["train_acc"] == [10.0, 20.0]
    assert c["valid_acc"] == [41.0, 42.0]
    assert c["test_loss"] == [1.6, 1.6]
    assert c["epoch_time"] == [0.5, 0.5]
    assert "valtest_acc" not in c and "valid_time" not in c  # not measured: missing, not 0


# -- building ------------------------------------------------------------------------------
def test_build_then_resume_skips_everything(tmp_path):
    cfg = BuildConfig(seeds=(777, 888), archs=3, **TINY)
    path = tmp_path / "t"
    rep = build(cfg, path, progress=False)
    assert (rep.total, rep.skipped, rep.trained, rep.ok, rep.failed) == (6, 0, 6, 6, 0)
    bench = Benchmark.open(path)
    assert len(bench) == 3 and bench.seeds("digits", "1") == [777, 888]
    arch = resolve_archs(3)[0]
    rec = bench.query(arch, "digits", hp="1", seed=777)
    assert 0 <= rec.final["valid_acc"] <= 100 and 0 <= rec.final["test_acc"] <= 100
    assert rec.final["train_time"] > 0
    # costs: the network as built for digits (16x16, 10 classes) with C=4, N=1
    from nasforge.cost import module_cost
    from nasforge.nn.nb201 import NB201Network

    want = module_cost(NB201Network(arch, C=4, N=1, num_classes=10), (1, 3, 16, 16))
    assert rec.cost["params_m"] == pytest.approx(want.params_m)
    assert rec.cost["flops_m"] == pytest.approx(want.flops_m)
    # one latency name, latency_s, with the batch it was measured at in the metadata: 1 for
    # a build; the compat API serves only the official batch-256 figure (nas_201_api
    # get_latency), which a build does not measure
    assert rec.cost["latency_s"] > 0 and bench.latency_batch("digits") == 1
    from nasforge.bench.compat import NASBench201API

    assert NASBench201API(bench).get_latency(arch.to_index(), "digits", hp="1") is None
    meta = read_build_meta(path)["digits/1"]
    assert meta["unique"] is False and meta["C"] == 4 and meta["seeds"] == [777, 888]

    again = build(cfg, path, progress=False)
    assert (again.skipped, again.trained, again.attempts) == (6, 0, 0)
    # A third seed extends the table; nothing done before is trained again.
    more = build(BuildConfig(seeds=(777, 888, 999), archs=3, **TINY), path, progress=False)
    assert (more.skipped, more.trained) == (6, 3)
    assert read_build_meta(path)["digits/1"]["seeds"] == [777, 888, 999]
    # Other training settings on the same group are refused instead of mixed in.
    with pytest.raises(BenchError, match="other settings"):
        build(BuildConfig(seeds=(777,), archs=3, **{**TINY, "C": 8}), path, progress=False)


def test_failures_are_recorded_retried_and_never_stop_the_build(tmp_path, monkeypatch):
    import nasforge.train

    real = nasforge.train.train_arch
    calls: dict[tuple[str, int], int] = {}
    always_bad = resolve_archs(2)[1].to_string()

    def flaky(arch, data, recipe, *, seed, **kw):
        key = (arch.to_string(), seed)
        calls[key] = calls.get(key, 0) + 1
        if arch.to_string() == always_bad:
            raise RuntimeError("CUDA out of memory (simulated)")
        if seed == 888 and calls[key] == 1:
            raise RuntimeError("transient failure (simulated)")
        return real(arch, data, recipe, seed=seed, **kw)

    monkeypatch.setattr(nasforge.train, "train_arch", flaky)
    cfg = BuildConfig(seeds=(777, 888), archs=2, max_retries=1, **TINY)
    rep = build(cfg, tmp_path / "t", progress=False)
    # The good arch's 2 seeds are ok (seed 888 after one retry); the bad arch fails both
    # seeds after 1 + max_retries attempts each.
    assert (rep.ok, rep.failed, rep.trained) == (2, 2, 4)
    assert rep.attempts == 1 + 2 + 2 * 2
    assert calls[(always_bad, 777)] == 2
    bench = Benchmark.open(tmp_path / "t")
    assert always_bad not in {a.to_string() for a in bench}  # failed runs are never served
    with pytest.raises(BenchError, match="no ok run"):
        bench.query(always_bad, "digits", hp="1")
    errors = bench.failures()
    # One error per failed (arch, seed): the last attempt's traceback + the earlier ones'.
    assert len(errors) == 2 and all(e["status"] == "failed" for e in errors)
    for e in errors:
        assert e["error"].startswith("attempt 2/2: Traceback")
        assert "earlier attempts:\nattempt 1: RuntimeError: CUDA out of memory" in e["error"]
    assert not any("transient" in e["error"] for e in errors)  # superseded by the ok retry
    # The failed arch's cost was still measured (before its training raised).
    assert bench.cost(always_bad, "digits")["params_m"] > 0
    # Resuming retries only the failed entries (fresh budget), or none with retry_failed off.
    monkeypatch.setattr(nasforge.train, "train_arch", real)
    skip = build(dataclasses.replace(cfg, retry_failed=False), tmp_path / "t", progress=False)
    assert (skip.skipped, skip.trained) == (4, 0)
    rep2 = build(cfg, tmp_path / "t", progress=False)
    assert (rep2.skipped, rep2.trained, rep2.ok) == (2, 2, 2)
    assert always_bad in {a.to_string() for a in Benchmark.open(tmp_path / "t")}


def test_task_runs_alone_and_reports_costs():
    from nasforge.bench.build import run_train_task
    from nasforge.train import get_recipe

    arch = Arch.from_index(1234)
    task = TrainTask(
        arch=arch.to_string(),
        seed=1,
        dataset="digits",
        recipe=get_recipe("nb201-12e", epochs=1).to_dict(),
        limit=32,
        C=4,
        N=1,
        device="cpu",
        with_cost=True,
    )
    out = run_train_task(task)
    assert out["status"] == "ok" and out["device"] == "cpu"
    assert set(out["cost"]) == {"params_m", "flops_m", "latency_s"}
    assert len(out["result"]["epochs"]) == 1
    assert not math.isnan(out["result"]["epochs"][0]["eval"]["valid"]["acc"])


# -- kill -9 mid-way, resume, compare with an uninterrupted build ---------------------------
CLI = "import sys; from nasforge.cli import main; sys.argv[0] = 'nasforge'; main()"


@pytest.mark.slow
def test_killed_build_resumes_to_the_same_table(tmp_path):
    args = [
        "--dataset",
        "digits",
        "--seeds",
        "777",
        "888",
        "--archs",
        "5",
        "--limit",
        "128",
        "--epochs",
        "2",
        "--C",
        "4",
        "--N",
        "1",
        "--no-progress",
    ]
    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "bench", "build", *args, "-o", str(killed)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    done = 0
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if (killed / "manifest.json").exists():
                try:
                    done = int(Benchmark.open(killed).table("digits", "2").ok.sum())
                except BenchError:  # no group yet
                    done = 0
                if done >= 2:
                    break
            time.sleep(0.1)
        assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    part = curves_of(killed, "digits", "2")
    assert 2 <= len(part) < 10, "the kill must land mid-way"

    cfg = BuildConfig(dataset="digits", seeds=(777, 888), archs=5, limit=128, epochs=2, C=4, N=1)
    rep = build(cfg, killed, progress=False)  # re-run = resume
    assert rep.skipped == len(part) and rep.trained == 10 - len(part)
    resumed = curves_of(killed, "digits", "2")
    ref = tmp_path / "ref"
    build(cfg, ref, progress=False)
    expected = curves_of(ref, "digits", "2")
    assert sorted(resumed) == sorted(expected) and len(expected) == 10
    for key, curves in expected.items():
        assert sorted(curves) == sorted(resumed[key])
        for name, values in curves.items():
            np.testing.assert_array_equal(resumed[key][name], values, err_msg=f"{key} {name}")
    # Entries finished before the kill were kept as they were, not retrained.
    for key, curves in part.items():
        for name, values in curves.items():
            np.testing.assert_array_equal(resumed[key][name], values)


def test_unique_builds_are_marked_in_the_metadata(tmp_path):
    from nasforge.bench.build import _record_meta

    cfg = BuildConfig(dataset="digits", archs="unique", epochs=1)
    with TableWriter(tmp_path / "t") as writer:
        _record_meta(writer, cfg, cfg.get_recipe(), "1")
    meta = read_build_meta(tmp_path / "t")["digits/1"]
    assert meta["unique"] is True and meta["archs"] == "unique"
    assert Benchmark.open(tmp_path / "t").meta["answer_by_class"] is True
    # Extending a unique build with more archs keeps the class guarantee.
    with TableWriter(tmp_path / "t") as writer:
        _record_meta(writer, dataclasses.replace(cfg, archs=10), cfg.get_recipe(), "1")
    meta = read_build_meta(tmp_path / "t")["digits/1"]
    assert meta["unique"] is True and meta["archs"] == "mixed"


def test_a_unique_table_answers_for_every_arch_through_its_class(tmp_path):
    reps = unique_archs()[:40]
    members = [a for a in all_archs() if a.canonical() in set(reps) and a not in set(reps)]
    assert members, "the first classes have more than one member"

    def fill(path, archs):
        with TableWriter(path) as writer:
            for k, arch in enumerate(archs):
                writer.append(
                    ResultEntry(
                        arch, "cifar10-valid", "12", 777, curves={"valid_acc": [k, k + 1.0]}
                    )
                )
        return path

    plain = Benchmark.open(fill(tmp_path / "plain", reps))
    with TableWriter(tmp_path / "uniq") as writer:
        writer.set_meta("answer_by_class", True)
    uniq = Benchmark.open(fill(tmp_path / "uniq", reps))
    m = members[0]
    # Without the flag a missing arch stays missing; with it, it is answered by its class.
    with pytest.raises(BenchError, match="no entry"):
        plain.query(m, "cifar10-valid", hp="12")
    want = uniq.query(m.canonical(), "cifar10-valid", hp="12").final["valid_acc"]
    assert uniq.query(m, "cifar10-valid", hp="12").final["valid_acc"] == want
    assert uniq.simulate(m, "cifar10-valid", hp="12").valid_acc == want
    t = uniq.table("cifar10-valid", "12")
    assert t.ok[0, m.to_index()] and t.valid_acc[0, m.to_index(), -1] == want
    assert len(plain) == len(reps) < len(uniq)
    assert m in uniq and m not in plain


def test_archs_with_cost_is_the_vectorised_mask(tmp_path):
    from nasforge.bench import TableWriter
    from nasforge.bench.build import _archs_with_cost

    path = tmp_path / "t"
    assert _archs_with_cost(path, "digits") == set()
    with TableWriter(path) as w:
        w.set_cost(3, "cifar10-valid", params_m=1.0)
        w.set_cost(7, "cifar10-valid", flops_m=2.0)
        w.set_cost(8, "cifar100", flops_m=2.0)
    assert _archs_with_cost(path, "cifar10-valid") == {3, 7}
    assert _archs_with_cost(path, "cifar10") == {3, 7}  # same network as cifar10-valid
    assert _archs_with_cost(path, "digits") == set()


# -- bad requests fail before any work; failures give a non-zero exit ----------------------
def _cli(monkeypatch, capsys, *args):
    """Run the console entry point in-process: (exit code, stdout, stderr)."""
    from nasforge.cli import main

    monkeypatch.setattr(sys, "argv", ["nasforge", *map(str, args)])
    with pytest.raises(SystemExit) as exc:
        main()
    out = capsys.readouterr()
    # rich wraps long lines at the (test) terminal's width: compare words, not layout.
    return exc.value.code, " ".join(out.out.split()), " ".join(out.err.split())


TINY_ARGS = ["--limit", "64", "--C", "4", "--N", "1", "--epochs", "1", "--no-progress"]


def test_bad_build_requests_fail_before_any_work(tmp_path, monkeypatch, capsys):
    import torch

    import nasforge.bench.build as build_mod

    started = []
    monkeypatch.setattr(build_mod, "run_train_task", lambda task: started.append(task))
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    binary = tmp_path / "archs.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    out = tmp_path / "out"
    cases = [
        (["--dataset", "nope"], "unknown dataset 'nope'"),
        (["--dataset", "digits", "--device", "gpu"], "device 'gpu' invalid"),
        (["--dataset", "digits", "--workers", "0"], "--workers 0 must be >= 1"),
        (["--dataset", "digits", "--archs", binary], "is not a text file"),
        (["--dataset", " cifar10"], "dataset ' cifar10' must be a non-empty name"),
        (["--dataset", "digits", "--hp", "a/b"], "hp 'a/b' must be a non-empty"),
    ]
    if not torch.cuda.is_available():
        cases.append((["--dataset", "digits", "--device", "cuda"], "CUDA is not available"))
    for args, message in cases:
        code, _, err = _cli(monkeypatch, capsys, "bench", "build", *args, "-o", out, *TINY_ARGS)
        assert code == 2 and message in err and "Traceback" not in err, (args, err)
        assert not out.exists(), args  # no table of failures left behind
    for target, message in ((a_file, "is a file"), (a_file / "sub", "which is a file")):
        code, _, err = _cli(
            monkeypatch, capsys, "bench", "build", "--dataset", "digits", "-o", target, *TINY_ARGS
        )
        assert code == 2 and message in err, err
    assert started == []


def test_a_build_with_failed_entries_exits_non_zero(tmp_path, monkeypatch, capsys):
    import nasforge.train

    def broken(arch, data, recipe, **kw):
        raise RuntimeError("simulated failure [not markup]")

    monkeypatch.setattr(nasforge.train, "train_arch", broken)
    args = ["--dataset", "digits", "--archs", "1", "--max-retries", "0", *TINY_ARGS]
    code, out, err = _cli(monkeypatch, capsys, "bench", "build", *args, "-o", tmp_path / "t")
    assert code == 1, err
    assert "1 failed" in out and "simulated failure [not markup]" in out
    code, out, _ = _cli(
        monkeypatch, capsys, "bench", "build", *args, "-o", tmp_path / "t", "--json"
    )
    assert code == 1 and json.loads(out)["failed"] == 1


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_kill_9_of_a_parallel_build_leaves_no_process_behind(tmp_path):
    from test_run import kill_9_and_check_no_process_survives

    cmd = [sys.executable, "-c", CLI, "bench", "build", "--dataset", "digits", "--archs", "50"]
    cmd += ["--workers", "2", *TINY_ARGS, "-o", str(tmp_path / "t")]
    # The driver's two pool workers and multiprocessing's resource tracker.
    kill_9_and_check_no_process_survives(cmd, 3, within=5.0)

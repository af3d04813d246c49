"""The store: crash-safe journal, compaction, refusal of corrupt / foreign tables."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from nasforge.bench import Benchmark, ResultEntry, TableWriter, verify
from nasforge.bench.store import JOURNAL_MAGIC, encode_record
from nasforge.errors import BenchError


def _curves(index: int, seed: int, epochs: int = 5) -> dict[str, list[float]]:
    base = (index % 97) + seed / 1000
    return {
        "train_acc": [base + e for e in range(epochs)],
        "valid_acc": [base + 0.5 * e for e in range(epochs)],
        "test_acc": [base + 0.25 * e for e in range(epochs)],
        "epoch_time": [1.0 + index / 1e4] * epochs,
    }


def test_writer_roundtrip_failed_entries_and_costs(tmp_path):
    path = tmp_path / "t"
    with TableWriter(path) as w:
        for i in range(4):
            w.append(ResultEntry(i, "cifar10-valid", "12", 777, curves=_curves(i, 777)))
        w.append(ResultEntry(9, "cifar10-valid", "12", 888, status="diverged", error="nan loss"))
        w.set_cost(2, "cifar10-valid", params_m=0.5, flops_m=20.0)
        assert w.has(2, "cifar10-valid", "12", 777) and not w.has(2, "cifar10-valid", "12", 888)
        assert w.status(9, "cifar10-valid", "12", 888) == "diverged"
        # readable before compaction: the journal is replayed on open
        assert len(Benchmark.open(path)) == 4
        with pytest.raises(BenchError, match="another writer"):
            TableWriter(path)
    bench = Benchmark.open(path)
    assert bench.info()["journal_records"] == 0  # compacted on close
    rec = bench.query(2, "cifar10-valid", hp="12")
    assert rec.seeds == (777,)
    np.testing.assert_array_equal(rec.curves["valid_acc"], _curves(2, 777)["valid_acc"])
    assert rec.final["train_time"] == pytest.approx(5 * (1 + 2 / 1e4))
    assert rec.cost == {"params_m": 0.5, "flops_m": 20.0}  # latency unknown: absent, not 0
    assert bench.query(1, "cifar10-valid", hp="12").cost == {}
    with pytest.raises(BenchError, match="no ok run"):
        bench.query(9, "cifar10-valid", hp="12")  # failed runs are never served
    assert bench.failures()[0]["error"] == "nan loss"
    with pytest.raises(BenchError, match="no entry"):
        bench.query(5, "cifar10-valid", hp="12")
    with pytest.raises(BenchError, match="hp"):
        bench.query(2, "cifar10-valid", hp="200")
    with pytest.raises(BenchError, match="dataset"):
        bench.query(2, "cifar100", hp="12")
    # a second writer appends a seed and retries the diverged run
    with TableWriter(path) as w:
        w.append(ResultEntry(2, "cifar10-valid", "12", 888, curves=_curves(2, 888)))
        w.append(ResultEntry(9, "cifar10-valid", "12", 888, curves=_curves(9, 888)))
        with pytest.raises(BenchError, match="epochs"):
            w.append(ResultEntry(3, "cifar10-valid", "12", 888, curves=_curves(3, 888, 7)))
    bench = Benchmark.open(path)
    assert bench.seeds("cifar10-valid", "12") == [777, 888]
    rec = bench.query(2, "cifar10-valid", hp="12")
    assert rec.seeds == (777, 888)
    assert rec.final["valid_acc"] == pytest.approx(
        (_curves(2, 777)["valid_acc"][-1] + _curves(2, 888)["valid_acc"][-1]) / 2
    )
    assert bench.query(9, "cifar10-valid", hp="12").seeds == (888,)
    assert bench.failures() == []
    table = bench.table("cifar10-valid", "12")
    assert table.valid_acc.shape == (2, 15625, 5)
    assert math.isnan(table.valid_acc[1, 0, -1]) and not table.ok[1, 0]
    assert table.valid_acc[0, 0, -1] == _curves(0, 777)["valid_acc"][-1]
    # only the files of the current generation remain
    names = sorted(p.name for p in (path / "arrays").iterdir())
    assert all(n.startswith(f"{bench.info()['generation']:06d}-") for n in names if "-g" in n)


def test_bad_entries_are_refused(tmp_path):
    with TableWriter(tmp_path / "t") as w:
        with pytest.raises(BenchError, match="unknown per-epoch metric"):
            w.append(ResultEntry(0, "cifar100", "200", 1, curves={"acc": [1.0]}))
        with pytest.raises(BenchError, match="equal lengths"):
            w.append(
                ResultEntry(0, "cifar100", "200", 1, curves={"train_acc": [1], "valid_acc": []})
            )
        with pytest.raises(BenchError, match="status"):
            w.append(ResultEntry(0, "cifar100", "200", 1, status="meh"))
        with pytest.raises(Exception, match="index"):
            w.append(ResultEntry(99999, "cifar100", "200", 1, curves={"train_acc": [1.0]}))
        with pytest.raises(BenchError, match="cost"):
            w.set_cost(0, "cifar100", bogus_s=1.0)


_WRITER = r"""
import sys
from nasforge.bench import ResultEntry, TableWriter
sys.path.insert(0, {tests!r})
from test_bench_store import _curves
w = TableWriter({path!r})
i = 0
while True:
    w.append(ResultEntry(i % 15625, "cifar100", "200", 777 + i // 15625,
                         curves=_curves(i % 15625, 777 + i // 15625, 200)))
    print(i, flush=True)
    i += 1
"""


def test_kill_9_mid_stream_keeps_every_completed_record(tmp_path):
    path = tmp_path / "t"
    script = _WRITER.format(tests=os.path.dirname(__file__), path=str(path))
    for round_ in range(2):  # the second round resumes a table a killed writer left behind
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        done = -1
        deadline = time.time() + 60
        while done < 40 * (round_ + 1) and time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            done = int(line)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert done >= 40, "the writer did not get going"
        bench = Benchmark.open(path)  # never a half record, every completed one
        assert len(bench) >= min(done + 1, 15625)
        for i in range(done + 1):
            rec = bench.query(i, "cifar100", hp="200", seed=777)
            np.testing.assert_array_equal(
                rec.curves["valid_acc"], _curves(i, 777, 200)["valid_acc"]
            )
    # a new writer truncates any torn tail, appends and compacts cleanly
    with TableWriter(path) as w:
        w.append(ResultEntry(15000, "cifar100", "200", 777, curves=_curves(15000, 777, 200)))
    bench = Benchmark.open(path)
    assert bench.info()["journal_records"] == 0
    assert bench.query(15000, "cifar100", hp="200").final["train_acc"] == 15000 % 97 + 0.777 + 199
    verify(path)


def test_torn_tail_ignored_and_mid_corruption_refused(tmp_path):
    path = tmp_path / "t"
    w = TableWriter(path)
    for i in range(3):
        w.append(ResultEntry(i, "cifar10", "200", 1, curves=_curves(i, 1)))
    w.close(compact=False)
    manifest = json.loads((path / "manifest.json").read_text())
    journal = path / manifest["journal"]
    good = journal.read_bytes()
    half = encode_record({"t": "entry", "arch": 5})[:-7]
    journal.write_bytes(good + half)
    assert len(Benchmark.open(path)) == 3  # torn record ignored
    journal.write_bytes(good + half[:3])
    assert len(Benchmark.open(path)) == 3  # torn inside the record header
    # flip one byte inside the first record's payload: records follow, so it is corruption
    bad = bytearray(good)
    bad[len(JOURNAL_MAGIC) + 20] ^= 0xFF
    journal.write_bytes(bytes(bad))
    with pytest.raises(BenchError, match="corrupt"):
        Benchmark.open(path)
    journal.write_bytes(good)
    assert len(Benchmark.open(path)) == 3


def test_corrupt_or_foreign_tables_are_refused(tmp_path):
    from nasforge.bench import make_synthetic_table

    path = make_synthetic_table(
        tmp_path / "t", datasets=("cifar100",), hps={"12": 4}, seeds=(1,), archs=[0, 1, 2]
    )
    Benchmark.open(path)
    verify(path)
    manifest_path = path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    # hand-edited manifest: its checksum no longer matches
    edited = dict(manifest, generation=99)
    manifest_path.write_text(json.dumps(edited))
    with pytest.raises(BenchError, match="sha256"):
        Benchmark.open(path)
    manifest_path.write_text(json.dumps(dict(manifest, format="something-else")))
    with pytest.raises(BenchError, match="foreign"):
        Benchmark.open(path)
    manifest_path.write_text("{not json")
    with pytest.raises(BenchError, match="corrupt"):
        Benchmark.open(path)
    manifest_path.write_text(json.dumps(manifest))
    # a bit flip in a column: open stays fast (size check passes), verify() catches it
    data_file = path / next(f for f in manifest["files"] if f.endswith("-data.npy"))
    blob = bytearray(data_file.read_bytes())
    blob[-3] ^= 0x01
    data_file.write_bytes(bytes(blob))
    Benchmark.open(path)
    with pytest.raises(BenchError, match="sha256"):
        verify(path)
    data_file.write_bytes(bytes(blob[:-8]))  # truncated
    with pytest.raises(BenchError, match="bytes"):
        Benchmark.open(path)
    with pytest.raises(BenchError, match="not a nasforge benchmark table"):
        Benchmark.open(tmp_path)
    with pytest.raises(BenchError, match="does not exist"):
        Benchmark.open(tmp_path / "nope")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "x.txt").write_text("hi")
    with pytest.raises(BenchError, match="not empty"):
        TableWriter(tmp_path / "foreign")


def test_appends_are_linear_merged_once_per_group_at_compaction(tmp_path, monkeypatch):
    # Merging copies a whole group; it must not happen per append (quadratic builds).
    from nasforge.bench.store import read as store

    calls: list[int] = []
    real = store._merge_group
    monkeypatch.setattr(store, "_merge_group", lambda b, r: calls.append(len(r)) or real(b, r))
    path = tmp_path / "t"
    n = 60
    with TableWriter(path) as w:
        for i in range(n):
            w.append(ResultEntry(i, "cifar10-valid", "12", 777, curves=_curves(i, 777)))
            w.append(ResultEntry(i, "cifar100", "12", 777, curves=_curves(i, 777)))
            w.set_cost(i, "cifar100", params_m=float(i))
        w.append(ResultEntry(n, "cifar100", "12", 888, status="failed", error="boom"))
        assert calls == []  # no merge while appending, whatever n
        assert w.status(3, "cifar100", "12", 777) == "ok" and w.has(
            n - 1, "cifar10-valid", "12", 777
        )
        assert w.status(n, "cifar100", "12", 888) == "failed"
        assert not w.has(n, "cifar100", "12", 777) and w.pending == 3 * n + 1
        with pytest.raises(BenchError, match="epochs"):  # shape check from the overlay
            w.append(ResultEntry(0, "cifar100", "12", 999, curves=_curves(0, 999, epochs=3)))
        # a reader replays the journal tail: one merge per group, not per record
        bench = Benchmark.open(path)
        assert sorted(calls) == [n, n + 1] and len(bench) == n
        assert bench.cost(5, "cifar100") == {"params_m": 5.0}
        calls.clear()
    assert sorted(calls) == [n, n + 1]  # close: one merge per touched group
    bench = Benchmark.open(path)
    assert bench.info()["journal_records"] == 0 and len(bench) == n
    assert (
        bench.query(7, "cifar100", hp="12").final["valid_acc"] == _curves(7, 777)["valid_acc"][-1]
    )
    assert [e["error"] for e in bench.failures()] == ["boom"]
    # a resumed writer sees the compacted runs (from the columns, not the overlay)
    with TableWriter(path) as w:
        assert w.status(n, "cifar100", "12", 888) == "failed" and w.has(0, "cifar100", "12", 777)
        w.append(ResultEntry(n, "cifar100", "12", 888, curves=_curves(n, 888)))
    assert Benchmark.open(path).failures() == []  # the retry replaced the error


def test_crash_between_the_two_renames_of_an_overwrite_is_undone(tmp_path):
    from nasforge.bench.store import GroupData, write_table

    def group(value: float) -> GroupData:
        return GroupData(
            "cifar100", "final", [0], np.array([3]), ["test_acc"], 1, True,
            np.ones((1, 1), np.uint8), np.full((1, 1, 1, 1), value),
        )  # fmt: skip

    path = tmp_path / "run[1]"  # glob metacharacters in the name
    write_table(path, [group(50.0)])
    # the state a crash leaves after os.replace(root, old), before os.replace(tmp, root)
    os.replace(path, tmp_path / ".run[1].old-4242")
    (tmp_path / ".run[1].building-4242").mkdir()  # the unpublished new build
    assert not path.exists()
    bench = Benchmark.open(path)  # restored on open
    assert bench.query(3, "cifar100", hp="final").final["test_acc"] == 50.0
    assert not (tmp_path / ".run[1].old-4242").exists()
    # ... and on write: an overwrite after a crash replaces the restored table
    os.replace(path, tmp_path / ".run[1].old-4243")
    with pytest.raises(BenchError, match="already exists"):
        write_table(path, [group(60.0)])
    write_table(path, [group(60.0)], overwrite=True)
    assert Benchmark.open(path).query(3, "cifar100", hp="final").final["test_acc"] == 60.0
    # and for a writer
    os.replace(path, tmp_path / ".run[1].old-4244")
    with TableWriter(path) as w:
        assert w.has(3, "cifar100", "final", 0)


# -- a damaged journal is refused, never silently cut, and repaired on demand --------------
def _six_record_table(tmp_path):
    """A table whose journal holds six entries (archs 0..5) and the records' offsets."""
    path = tmp_path / "t"
    w = TableWriter(path)
    for i in range(6):
        w.append(ResultEntry(i, "cifar10", "200", 1, curves=_curves(i, 1)))
    w.close(compact=False)
    journal = path / json.loads((path / "manifest.json").read_text())["journal"]
    blob = journal.read_bytes()
    offsets, pos = [], len(JOURNAL_MAGIC)
    while pos < len(blob):
        offsets.append(pos)
        pos += 12 + int.from_bytes(blob[pos + 4 : pos + 8], "little")
    assert len(offsets) == 6
    return path, journal, blob, offsets


def _set_length(blob, at, length):
    out = bytearray(blob)
    out[at + 4 : at + 8] = length.to_bytes(4, "little")
    return bytes(out)


def _flip(blob, at):
    out = bytearray(blob)
    out[at] ^= 0xFF
    return bytes(out)


# name -> (damage(blob, offsets), offset named in the error, archs that survive repair)
_DAMAGE = {
    "length 0x7fffffff in record #2 of 6": (
        lambda b, o: _set_length(b, o[1], 0x7FFFFFFF),
        1,
        {0, 2, 3, 4, 5},
    ),
    "zero-filled from record #3": (
        lambda b, o: b[: o[2]] + b"\0" * (len(b) - o[2]),
        2,
        {0, 1},
    ),
    "record #2's length stretched to the end of the file": (
        lambda b, o: _set_length(b, o[1], len(b) - o[1] - 12),
        1,
        {0, 2, 3, 4, 5},
    ),
    "bad CRC in record #3": (lambda b, o: _flip(b, o[2] + 30), 2, {0, 1, 3, 4, 5}),
    "bad CRC in the last record": (lambda b, o: _flip(b, len(b) - 2), 5, {0, 1, 2, 3, 4}),
    "zeros after the last record": (lambda b, o: b + b"\0" * 64, None, {0, 1, 2, 3, 4, 5}),
    "truncated to 5 bytes": (lambda b, o: b[:5], 0, set()),
}


@pytest.mark.parametrize("damage", list(_DAMAGE))
def test_damaged_journal_is_refused_kept_and_repaired(tmp_path, damage):
    from nasforge.bench.writer import repair_table

    path, journal, blob, offsets = _six_record_table(tmp_path)
    fn, rec_no, survivors = _DAMAGE[damage]
    damaged = fn(blob, offsets)
    journal.write_bytes(damaged)
    where = len(blob) if rec_no is None else (0 if damage.startswith("trunc") else offsets[rec_no])
    for opener in (Benchmark.open, verify, TableWriter):
        with pytest.raises(BenchError, match=f"corrupt at byte {where}\\b.*bench repair"):
            opener(path)
    assert journal.read_bytes() == damaged  # no writer cut the good records off

    out = repair_table(path)
    assert out["damaged"] and out["kept"] == len(survivors)
    assert (path / out["aside"]).read_bytes() == damaged  # the evidence is kept
    bench = Benchmark.open(path)
    verify(path)
    assert bench.info()["journal_records"] == 0  # salvaged into a new generation
    got = {a.to_index() for a in bench}
    assert got == survivors
    for i in survivors:
        np.testing.assert_array_equal(
            bench.query(i, "cifar10", hp="200").curves["valid_acc"], _curves(i, 1)["valid_acc"]
        )
    with TableWriter(path) as w:  # writable again; the damaged file survives compaction
        w.append(ResultEntry(9, "cifar10", "200", 1, curves=_curves(9, 1)))
    assert len(Benchmark.open(path)) == len(survivors) + 1
    assert (path / out["aside"]).exists()
    assert repair_table(path)["damaged"] is False  # an intact table is left alone


def test_only_a_short_last_record_is_a_torn_tail(tmp_path):
    path, journal, blob, _ = _six_record_table(tmp_path)
    journal.write_bytes(blob[:-10])  # the last write was cut short by a crash
    assert len(Benchmark.open(path)) == 5
    assert verify(path)["journal_torn_tail"]
    with TableWriter(path) as w:  # the next writer drops the torn record, keeps the rest
        w.append(ResultEntry(9, "cifar10", "200", 1, curves=_curves(9, 1)))
    assert len(Benchmark.open(path)) == 6


def _cli(monkeypatch, capsys, *args):
    """Run the console entry point in-process: (exit code, stdout, stderr)."""
    from nasforge.cli import main

    monkeypatch.setattr(sys, "argv", ["nasforge", *map(str, args)])
    with pytest.raises(SystemExit) as exc:
        main()
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_cli_verify_reports_damage_and_repair_salvages(tmp_path, monkeypatch, capsys):
    path, journal, blob, offsets = _six_record_table(tmp_path)
    journal.write_bytes(_set_length(blob, offsets[1], 0x7FFFFFFF))
    code, out, err = _cli(monkeypatch, capsys, "bench", "verify", path)
    assert code == 2 and f"corrupt at byte {offsets[1]}" in err and "Traceback" not in err
    code, out, err = _cli(monkeypatch, capsys, "bench", "repair", path)
    assert code == 0, err
    assert "kept 5 journal records" in out and "damaged-journal-000000.log" in out
    code, out, err = _cli(monkeypatch, capsys, "bench", "verify", path)
    assert code == 0 and out.startswith("ok")
    code, out, _ = _cli(monkeypatch, capsys, "bench", "repair", path)
    assert code == 0 and "nothing to repair" in out


# -- every writer takes the lock; damaged manifests; a full disk ----------------------------
def test_overwrite_import_refuses_a_table_a_writer_holds(tmp_path):
    from nasforge.bench.importers import import_table

    path = tmp_path / "t"
    src = tmp_path / "runs.csv"
    src.write_text("index,valid_acc\n3,50.0\n")
    with TableWriter(path) as w:  # a build appending to the table
        w.append(ResultEntry(0, "cifar10", "200", 1, curves=_curves(0, 1)))
        with pytest.raises(BenchError, match="held by another writer"):
            import_table(src, path, dataset="cifar10", overwrite=True)
        w.append(ResultEntry(1, "cifar10", "200", 1, curves=_curves(1, 1)))
    bench = Benchmark.open(path)  # the build's work is whole, nothing was swapped under it
    assert [a.to_index() for a in bench] == [0, 1] and bench.datasets == ["cifar10"]
    assert not list(tmp_path.glob(".t.*"))  # no half-built import left beside it
    import_table(src, path, dataset="cifar10", overwrite=True)  # lock free: replaced
    assert [a.to_index() for a in Benchmark.open(path)] == [3]


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m.pop("groups"),
        lambda m: m.pop("journal"),
        lambda m: m["groups"][0].pop("files"),
        lambda m: m["groups"][0].update(seeds="1"),
        lambda m: m["files"].update({"../../etc/passwd": {"bytes": 1, "sha256": "x"}}),
        lambda m: m.update(journal="../elsewhere.log"),
        lambda m: m.update(costs=[]),
    ],
)
def test_manifest_with_valid_checksum_but_bad_structure_is_refused(tmp_path, edit):
    from nasforge.bench import make_synthetic_table
    from nasforge.bench.store.layout import _manifest_digest

    path = make_synthetic_table(
        tmp_path / "t", datasets=("cifar100",), hps={"12": 4}, seeds=(1,), archs=[0, 1]
    )
    manifest = json.loads((path / "manifest.json").read_text())
    edit(manifest)
    manifest["checksum"] = _manifest_digest(manifest)  # as a buggy tool would write it
    (path / "manifest.json").write_text(json.dumps(manifest))
    for opener in (Benchmark.open, verify, TableWriter):
        with pytest.raises(BenchError, match=r"manifest\.json' is malformed"):
            opener(path)


def test_full_disk_during_compaction_leaves_no_files_and_keeps_the_journal(tmp_path, monkeypatch):
    import errno

    from nasforge.bench.store import write as store

    path = tmp_path / "t"
    with TableWriter(path) as w:
        w.append(ResultEntry(0, "cifar10", "200", 1, curves=_curves(0, 1)))
    before = sorted(p.relative_to(path).as_posix() for p in path.rglob("*"))
    w = TableWriter(path)
    for i in (1, 2):
        w.append(ResultEntry(i, "cifar10", "200", 1, curves=_curves(i, 1)))
    real_save = np.save
    calls = []

    def save(f, arr, **kw):  # the disk fills up while the second column file is written
        calls.append(1)
        if len(calls) == 2:
            f.write(b"\x93NUMPY partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(f, arr, **kw)

    monkeypatch.setattr(store.np, "save", save)
    with pytest.raises(BenchError, match=r"No space left on device.*table is unchanged"):
        w.compact()
    after = sorted(p.relative_to(path).as_posix() for p in path.rglob("*"))
    assert after == before  # no .tmp, no file of the aborted generation
    assert len(Benchmark.open(path)) == 3  # the journal still serves the two appends
    monkeypatch.setattr(store.np, "save", real_save)
    w.close()  # space again: the same writer compacts
    bench = Benchmark.open(path)
    assert len(bench) == 3 and bench.info()["journal_records"] == 0
    verify(path)


def test_failed_journal_append_leaves_no_partial_record(tmp_path, monkeypatch):
    from nasforge.bench import writer as writer_mod

    path = tmp_path / "t"
    w = TableWriter(path)
    w.append(ResultEntry(0, "cifar10", "200", 1, curves=_curves(0, 1)))
    real_write = os.write

    def short_write(fd, blob):  # a full disk: only part of the record lands
        return real_write(fd, blob[:10])

    monkeypatch.setattr(writer_mod.os, "write", short_write)
    with pytest.raises(BenchError, match="cannot append"):
        w.append(ResultEntry(1, "cifar10", "200", 1, curves=_curves(1, 1)))
    monkeypatch.setattr(writer_mod.os, "write", real_write)
    w.append(ResultEntry(2, "cifar10", "200", 1, curves=_curves(2, 1)))  # caller carries on
    w.close(compact=False)
    verify(path)  # no torn record in the middle of the journal
    assert [a.to_index() for a in Benchmark.open(path)] == [0, 2]

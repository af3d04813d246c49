"""Adversarial probes of the table journal (issue 23, item 9): a torn tail is only a last
record whose bytes run past the end of the file; a damaged length field on the last
*complete* record is corruption reported with its offset, never a silently dropped result."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nasforge.bench import Benchmark
from nasforge.bench.schema import ResultEntry
from nasforge.bench.store import JOURNAL_MAGIC, verify
from nasforge.bench.writer import TableWriter, repair_table
from nasforge.errors import BenchError


def _curves(i: int) -> dict[str, np.ndarray]:
    v = np.linspace(10, 50 + i, 4)
    return {"train_acc": v, "valid_acc": v - 1, "test_acc": v - 2, "train_loss": 1 / v}


def _table(tmp_path, n=4):
    path = tmp_path / "t"
    w = TableWriter(path)
    for i in range(n):
        w.append(ResultEntry(i, "cifar10", "200", 1, curves=_curves(i)))
    w.close(compact=False)
    journal = path / json.loads((path / "manifest.json").read_text())["journal"]
    blob = journal.read_bytes()
    offsets, pos = [], len(JOURNAL_MAGIC)
    while pos < len(blob):
        offsets.append(pos)
        pos += 12 + int.from_bytes(blob[pos + 4 : pos + 8], "little")
    return path, journal, blob, offsets


@pytest.mark.parametrize("length", [0x7FFFFFFF, 10**6])
def test_a_damaged_length_on_the_last_complete_record_is_corruption(tmp_path, length):
    path, journal, blob, offsets = _table(tmp_path)
    bad = bytearray(blob)
    bad[offsets[-1] + 4 : offsets[-1] + 8] = length.to_bytes(4, "little")
    journal.write_bytes(bytes(bad))
    with pytest.raises(BenchError, match=f"corrupt at byte {offsets[-1]}.*length field"):
        verify(path)
    with pytest.raises(BenchError, match="corrupt"):
        Benchmark.open(path)
    with pytest.raises(BenchError, match="corrupt"):
        TableWriter(path)  # a writer must not truncate it away as a torn tail
    # repair keeps it: its CRC vouches for the bytes, only the length was damaged
    repair_table(path)
    assert len(Benchmark.open(path)) == len(offsets)


def test_a_cut_short_last_record_is_still_a_torn_tail(tmp_path):
    path, journal, blob, offsets = _table(tmp_path)
    for cut in (1, 5, len(blob) - offsets[-1] - 13):
        journal.write_bytes(blob[:-cut])
        assert verify(path)["journal_torn_tail"]
        assert len(Benchmark.open(path)) == len(offsets) - 1

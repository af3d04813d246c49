"""Adversarial probes of imports (issue 23, item 8): a named pipe inside a NATS directory is
refused instead of blocking the import for ever, and SIGTERM during ``bench import`` cleans
the temporary folder up exactly as Ctrl-C does (exit status 143)."""

from __future__ import annotations

import bz2
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from nasforge.bench.importers import import_table
from nasforge.errors import BenchError
from nasforge.spaces.nb201 import NUM_ARCHS, Arch

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _nats_dir_with_a_fifo(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "NATS-tss-v1_0-3ffb9-simple"
    root.mkdir()
    meta = {"meta_archs": [Arch.from_index(i).to_string() for i in range(NUM_ARCHS)]}
    with bz2.BZ2File(root / "meta.pickle.pbz2", "wb") as f:
        pickle.dump(meta, f)
    fifo = root / "000000.pickle.pbz2"
    os.mkfifo(fifo)
    return root, fifo


def test_a_named_pipe_in_a_nats_directory_is_refused(tmp_path):
    root, fifo = _nats_dir_with_a_fifo(tmp_path)
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            import_table(root, tmp_path / "out.table", format="nats-tss")
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=30)
    if worker.is_alive():  # today's code blocks in open(): unblock it, then fail
        with open(fifo, "wb"):
            pass
        worker.join(timeout=10)
        pytest.fail("the import blocked on a named pipe")
    assert isinstance(outcome[0], BenchError), outcome
    assert "not a regular file" in str(outcome[0]) and "000000" in str(outcome[0])
    assert not list(tmp_path.glob(".out.table.import-*"))  # no temporary folder left
    assert not (tmp_path / "out.table").exists()


_SLOW_IMPORT = textwrap.dedent(
    """
    import sys, time
    from nasforge.bench.importers import official
    from nasforge.cli import main

    def slow_reader(src, spill_dir):
        (spill_dir / "spill.bin").write_bytes(b"0" * 4096)
        print("reading", flush=True)
        time.sleep(120)

    official.OFFICIAL_READERS["nb201"] = slow_reader
    sys.argv = ["nasforge", "bench", "import", sys.argv[1], "-o", sys.argv[2],
                "--format", "nb201"]
    main()
    """
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_during_import_cleans_up_like_ctrl_c(tmp_path, sig):
    src = tmp_path / "src.pth"
    src.write_bytes(b"\x80")
    out = tmp_path / "x.table"
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_IMPORT, str(src), str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "reading", proc.stderr.read()
        assert list(tmp_path.glob(".x.table.import-*"))  # the temporary folder exists
        proc.send_signal(sig)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == (143 if sig == signal.SIGTERM else 130)
    assert not list(tmp_path.glob(".x.table.import-*")), "temporary folder left behind"
    assert not out.exists()


def test_a_csv_header_repeating_a_column_is_one_line(tmp_path):
    src = tmp_path / "dup.csv"
    src.write_text(
        "arch,dataset,valid_acc,valid_acc\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,cifar10,1,2\n"
    )
    with pytest.raises(BenchError, match="'valid_acc' appears twice"):
        import_table(src, tmp_path / "t", format="csv")
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(BenchError, match="not a regular file"):
        import_table(fifo, tmp_path / "t2", format="csv")

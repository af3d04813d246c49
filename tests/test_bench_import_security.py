"""Importing an official file never runs code from it (issue 11, item 2) and a malformed one is
a one-line BenchError (item 7): TorchScript archives and crafted legacy torch files are refused
with no side effect, genuine files in both torch containers still import (tensors rebuilt by our
own code), and a property test over random opcode streams and mutated real-format files sees
only BenchErrors or successful parses, never a file written or a module imported."""

from __future__ import annotations

import bz2
import contextlib
import importlib
import io
import math
import os
import pickle
import resource
import struct
import sys
import tempfile
import textwrap
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nasforge.bench import Benchmark
from nasforge.bench import safe_pickle as sp
from nasforge.bench.importers import import_table
from nasforge.bench.importers.official import _Collector, _hp_map, read_nb201
from nasforge.errors import BenchError
from test_bench_official import _arch_results

nas_201_api = pytest.importorskip("nas_201_api")

# Modules a payload below names; none is imported by the suite, so any that appears in
# sys.modules after a load was imported by the file.
RISKY_MODULES = ("smtplib", "ftplib", "poplib", "imaplib", "this", "xmlrpc.client", "pty")


# -- crafting pickles by hand -------------------------------------------------------------------
def _s(text: str) -> bytes:
    """BINUNICODE."""
    b = text.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _g(module: str, name: str) -> bytes:
    """GLOBAL."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


LEGACY_HEADER = (
    pickle.dumps(sp.LEGACY_MAGIC, protocol=2)
    + pickle.dumps(sp.LEGACY_PROTOCOL, protocol=2)
    + pickle.dumps(
        {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2}}, protocol=2
    )
)


def _legacy(main: bytes, keys: list[str] = (), tail: bytes = b"") -> bytes:
    """A legacy (pre-zip) torch container around a hand-made main pickle."""
    return LEGACY_HEADER + main + pickle.dumps(list(keys), protocol=2) + tail


def _zip(data_pkl: bytes, records: dict[str, bytes] | None = None) -> bytes:
    """A torch zip container (stored entries, like torch.save writes) around ``data_pkl``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", data_pkl)
        zf.writestr("archive/byteorder", b"little")
        for key, raw in (records or {}).items():
            zf.writestr(f"archive/data/{key}", raw)
        zf.writestr("archive/version", b"3\n")
    return buf.getvalue()


def _storage_pid(key: str, numel: int, legacy: bool) -> bytes:
    return (
        b"("
        + _s("storage")
        + _g("torch", "FloatStorage")
        + _s(key)
        + _s("cpu")
        + b"\x8a\x09"
        + numel.to_bytes(9, "little", signed=True)
        + (b"N" if legacy else b"")
        + b"tQ"
    )


def _tensor(pid: bytes, size: tuple[int, ...]) -> bytes:
    """_rebuild_tensor_v2(<pid>, 0, size, contiguous strides, False, OrderedDict())."""
    strides = [1] * len(size)
    for i in range(len(size) - 2, -1, -1):
        strides[i] = strides[i + 1] * size[i + 1]
    tup = lambda xs: b"(" + b"".join(b"J" + struct.pack("<i", x) for x in xs) + b"t"  # noqa: E731
    return (
        _g("torch._utils", "_rebuild_tensor_v2")
        + b"("
        + pid
        + b"K\x00"
        + tup(size)
        + tup(strides)
        + b"\x89"
        + _g("collections", "OrderedDict")
        + b")RtR"
    )


def _build_on_global(marker: Path) -> bytes:
    """The legacy attack of issue 11: BUILD sets ``__name__``/``dump_patches`` on an admitted
    global, then a ('module', <it>, file, source) persistent id made torch write
    ``<__name__>.patch``."""
    return (
        b"\x80\x02"
        + _g("torch._utils", "_rebuild_tensor_v2")
        + b"q\x00}"
        + _s("dump_patches")
        + b"\x88s}"
        + _s("__name__")
        + _s(str(marker))
        + b"s\x86b0("
        + _s("module")
        + b"h\x00"
        + _s("evil.py")
        + _s("not its source")
        + b"tQ."
    )


# -- (a) TorchScript archive named like the official v1.1 file ----------------------------------
def _torchscript_archive(tmp_path: Path, marker: Path, monkeypatch) -> Path:
    """A scripted module whose ``__setstate__`` creates ``marker`` (torch.from_file with
    shared=True creates the file): torch.jit.load runs it."""
    src = tmp_path / "evil_ts_payload.py"
    src.write_text(
        textwrap.dedent(
            f"""
            import torch
            from typing import List

            class Evil(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.x = 1

                @torch.jit.export
                def __getstate__(self) -> List[int]:
                    return [self.x]

                @torch.jit.export
                def __setstate__(self, state: List[int]) -> None:
                    self.training = True
                    self.x = state[0] + torch.from_file({str(marker)!r}, True, 8).numel()

                def forward(self, x):
                    return x
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module("evil_ts_payload")
    path = tmp_path / "NAS-Bench-201-v1_1-096897.pth"
    torch.jit.save(torch.jit.script(mod.Evil()), str(path))
    monkeypatch.delitem(sys.modules, "evil_ts_payload")
    return path


def test_torchscript_archive_is_refused_without_running_it(tmp_path, monkeypatch):
    marker = tmp_path / "pwned-by-torchscript"
    path = _torchscript_archive(tmp_path, marker, monkeypatch)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BenchError, match="TorchScript") as exc:
        import_table(path, tmp_path / "out")
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)
    assert not marker.exists()
    assert not (tmp_path / "out").exists()
    # the fixture is a live payload: torch.jit.load (what torch.load dispatched to) runs it
    torch.jit.load(str(path))
    assert marker.exists()


# -- (b) legacy torch file: BUILD on an admitted global + ('module', ...) persistent id ---------
@pytest.mark.parametrize("container", ["legacy", "zip"])
def test_build_on_an_admitted_global_is_refused(tmp_path, monkeypatch, container):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    main = _build_on_global(marker)
    path = tmp_path / "NAS-Bench-201-v1_0-e61699.pth"
    path.write_bytes(_legacy(main) if container == "legacy" else _zip(main))
    guard = sp.ALLOWED_GLOBALS[("torch._utils", "_rebuild_tensor_v2")]
    with pytest.raises(BenchError, match=r"BUILD on a global") as exc:
        import_table(path, tmp_path / "out")
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)
    assert sorted(os.listdir(tmp_path)) == [path.name]  # no marker, no .patch, no table
    assert guard._name == "torch._utils._rebuild_tensor_v2"  # the global is unchanged
    assert torch._utils._rebuild_tensor_v2.__name__ == "_rebuild_tensor_v2"


def test_cli_refuses_both_attacks_with_exit_2_and_one_line(tmp_path, monkeypatch, capsys):
    from nasforge.cli import main

    monkeypatch.setenv("COLUMNS", "1000")  # rich wraps at the terminal width otherwise
    marker = tmp_path / "pwned"
    legacy = tmp_path / "NAS-Bench-201-v1_0-e61699.pth"
    legacy.write_bytes(_legacy(_build_on_global(marker)))
    scripted = _torchscript_archive(tmp_path, marker, monkeypatch)
    monkeypatch.chdir(tmp_path)
    for src in (legacy, scripted):
        out = tmp_path / f"out-{src.stem}"
        monkeypatch.setattr(sys, "argv", ["nasforge", "bench", "import", str(src), "-o", str(out)])
        with pytest.raises(SystemExit) as stop:
            main()
        assert stop.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and src.name in err and "refused" in err, err
        assert not out.exists()
    assert not marker.exists() and not Path(f"{marker}.patch").exists()


def test_build_on_a_result_class_and_module_ids_are_refused(tmp_path):
    klass = _g("nas_201_api.api_utils", "ArchResults")
    attack = b"\x80\x02" + klass + b"N}" + _s("__name__") + _s("x") + b"s\x86b."
    with pytest.raises(BenchError, match="BUILD on a global"):
        sp.loads(attack)
    assert sp.ArchResultsState.__name__ == "ArchResultsState"
    with pytest.raises(BenchError, match="class"):
        sp.ArchResultsState.dump_patches = True
    # the persistent id alone, without the BUILD
    module_id = b"\x80\x02(" + _s("module") + klass + _s("a.py") + _s("src") + b"tQ."
    path = tmp_path / "m.pth"
    path.write_bytes(_legacy(module_id))
    with pytest.raises(BenchError, match="module"):
        sp.load_torch_file(path)
    # a pickled result object (NEWOBJ + BUILD on the instance) is still read
    ok = b"\x80\x02" + klass + b")\x81}" + _s("arch_index") + b"K\x05sb."
    assert sp.as_state(sp.loads(ok)) == {"arch_index": 5}


# a legacy storage blob (as plain pickles of tensors embed them) that embeds another one
NESTED_BLOB = _legacy(b"\x80\x02" + _g("torch.storage", "_load_from_bytes") + b"(C\x01xtR.")

ATTACKS = {
    "global of an unimported module": b"\x80\x02" + _g("smtplib", "SMTP") + b")R.",
    "stack_global": b"\x80\x04" + _s("ftplib") + _s("FTP") + b"\x93)R.",
    "inst": b"\x80\x02(ipoplib\nPOP3\n" + _s("localhost") + b".",
    "obj": b"\x80\x02(" + _g("imaplib", "IMAP4") + b"o.",
    "eval": b"\x80\x02" + _g("builtins", "eval") + b"(" + _s("1+1") + b"tR.",
    "os.system": b"\x80\x02" + _g("os", "system") + b"(" + _s("touch pwned") + b"tR.",
    "ext code": b"\x80\x02\x82\x01.",
    "getattr on a guard": b"\x80\x02" + _g("builtins", "getattr") + b".",
    "object dtype": b"\x80\x02" + _g("numpy", "dtype") + b"(" + _s("O") + b"\x89\x88tR.",
    "shared dtype state": b"\x80\x02"
    + _g("numpy", "dtype")
    + b"("
    + _s("f8")
    + b"\x89\x88tR(K\x03"
    + _s("<")
    + b"NNNK\x01K\x01K\x00tb.",
    "array bomb": b"\x80\x02"
    + _g("numpy.core.multiarray", "_reconstruct")
    + _g("numpy", "ndarray")
    + b"(\x8a\x06\x00\x00\x00\x00\x00\x01t"
    + _s("b")
    + b"\x87R.",
    "codecs rot13": b"\x80\x02" + _g("_codecs", "encode") + b"(" + _s("x") + _s("rot13") + b"tR.",
    "unknown persistent id": b"\x80\x02(" + _s("file") + _s("/etc/passwd") + b"tQ.",
    "text persistent id": b"\x80\x02Pstorage\n.",
    "newobj on a guard": b"\x80\x02" + _g("collections", "OrderedDict") + b")\x81.",
    "memo bomb": b"\x80\x02Nr\xff\xff\xff\x7f.",
    "bytes bomb": b"\x80\x02B\xff\xff\xff\x7fabc.",
    "nested storage blobs": b"\x80\x02"
    + _g("torch.storage", "_load_from_bytes")
    + b"(B"
    + struct.pack("<I", len(NESTED_BLOB))
    + NESTED_BLOB
    + b"tR.",
    "dunder state on a result": b"\x80\x02"
    + _g("nats_bench.api_utils", "ResultsCount")
    + b")\x81}"
    + _s("__setstate__")
    + _g("_codecs", "encode")
    + b"sb.",
    "deep nesting": b"\x80\x02" + b"]" * 30_000 + b"a" * 29_999 + b".",
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
@pytest.mark.parametrize("container", ["legacy", "zip", "bz2"])
def test_crafted_streams_are_refused_without_side_effect(tmp_path, monkeypatch, name, container):
    monkeypatch.chdir(tmp_path)
    before = {m for m in RISKY_MODULES if m in sys.modules}
    stream = ATTACKS[name]
    if container == "bz2":
        path = tmp_path / "000000.pickle.pbz2"
        path.write_bytes(bz2.compress(stream))
        loader = sp.load_bz2_pickle
    else:
        path = tmp_path / "000000-FULL.pth"
        path.write_bytes(_legacy(stream) if container == "legacy" else _zip(stream))
        loader = sp.load_torch_file
    try:
        loader(path)
    except BenchError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
    else:
        assert name == "deep nesting"  # plain nested lists are data, not an attack
    assert sorted(os.listdir(tmp_path)) == [path.name]
    assert {m for m in RISKY_MODULES if m in sys.modules} == before


# -- storage size claims, tensors, bz2 files ----------------------------------------------------
@pytest.mark.parametrize("container", ["legacy", "zip"])
def test_huge_storage_claims_fail_before_allocating(tmp_path, container):
    legacy = container == "legacy"
    main = b"\x80\x02" + _tensor(_storage_pid("0", 2**60, legacy), (2**30, 2**30)) + b"."
    if legacy:
        raw = _legacy(main, ["0"], struct.pack("<q", 2**60) + b"\0" * 16)
    else:
        raw = _zip(main, {"0": b"\0" * 16})
    path = tmp_path / "huge.pth"
    path.write_bytes(raw)
    tracemalloc.start()
    try:
        with pytest.raises(BenchError, match=r"2\*\*60|1152921504606846976|past the end"):
            sp.load_torch_file(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20
    # a view that reaches past its storage is refused too
    main = b"\x80\x02" + _tensor(_storage_pid("0", 4, legacy), (5,)) + b"."
    path.write_bytes(
        _legacy(main, ["0"], struct.pack("<q", 4) + b"\0" * 16)
        if legacy
        else _zip(main, {"0": b"\0" * 16})
    )
    with pytest.raises(BenchError, match="view"):
        sp.load_torch_file(path)


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "zip"])
def test_genuine_files_in_both_containers_import_with_tensors(tmp_path, legacy):
    """The official .pth files of 2020 predate torch's zip format: both containers are read by
    our own code, tensors (weights, one-element metrics) come back exactly."""
    rng = np.random.default_rng(7)
    ar = _arch_results(nas_201_api, 301, 3, rng, lambda ds: (777, 888))
    weights = {
        "conv": torch.arange(12.0).reshape(3, 4).t(),  # a non-contiguous view
        "half": torch.tensor([0.5, -2.25], dtype=torch.float16),
        "bf16": torch.tensor([1.5, 3.0], dtype=torch.bfloat16),
        "count": torch.tensor([3, 4], dtype=torch.int64),
        "row": torch.arange(10.0)[2:7:2],  # offset and stride into a larger storage
    }
    rc = ar.query("cifar100", 888)
    rc.net_state_dict = weights
    rc.train_acc1es[1] = torch.tensor(55.5, dtype=torch.float64)  # a 0-dim tensor metric
    rc.flop = np.float64(12.75)  # a numpy scalar
    arch_dir = tmp_path / "NAS-Bench-201-v1_1-archive"
    arch_dir.mkdir()
    path = arch_dir / "000301-FULL.pth"
    torch.save(
        {"less": ar.state_dict(), "full": ar.state_dict()},
        path,
        _use_new_zipfile_serialization=not legacy,
    )
    if legacy:
        assert not zipfile.is_zipfile(path)
    obj = sp.load_torch_file(path)
    mine = obj["full"]["all_results"][("cifar100", 888)]["net_state_dict"]
    for k, t in weights.items():
        assert isinstance(mine[k], sp.TensorRef)
        np.testing.assert_array_equal(
            mine[k].numpy(), t.float().numpy() if k == "bf16" else t.numpy()
        )
    table = import_table(arch_dir, tmp_path / "t")
    bench = Benchmark.open(table)
    rec = bench.query(301, "cifar100", hp="200", seed=888)
    assert rec.curves["train_acc"][1] == 55.5
    assert rec.curves["train_acc"][2] == rc.train_acc1es[2]
    assert math.isclose(bench.cost(301, "cifar100")["flops_m"], 12.75)


MALFORMED_PBZ2 = {
    "truncated bz2": bz2.compress(pickle.dumps({"12": {}}) * 50)[:40],
    "not bz2": b"this is not a bz2 stream at all",
    "bz2 of garbage": bz2.compress(os.urandom(2048)),
    "bz2 of a truncated pickle": bz2.compress(pickle.dumps({"12": list(range(100))})[:-7]),
    "empty file": b"",
}


def test_malformed_pbz2_is_a_one_line_error_naming_the_file(tmp_path, monkeypatch, capsys):
    from nasforge.cli import main

    monkeypatch.setenv("COLUMNS", "1000")  # rich wraps at the terminal width otherwise
    for i, (name, raw) in enumerate(MALFORMED_PBZ2.items()):
        path = tmp_path / f"{i:06d}.pickle.pbz2"
        path.write_bytes(raw)
        with pytest.raises(BenchError) as exc:
            sp.load_bz2_pickle(path)
        assert str(path) in str(exc.value) and "\n" not in str(exc.value), name
    # through the CLI: exit code 2 and one line on stderr naming the file
    src = tmp_path / "NATS-tss-v1_0-3ffb9.pickle.pbz2"
    src.write_bytes(MALFORMED_PBZ2["truncated bz2"])
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["nasforge", "bench", "import", str(src), "-o", str(out)])
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and src.name in err and "bz2" in err, err
    assert not out.exists()


def test_bz2_bomb_is_capped(tmp_path, monkeypatch):
    # A real bomb (GBs) takes too long to compress in a test: shrink the cap to show the check.
    monkeypatch.setattr(sp, "BZ2_MIN_CAP", 1 << 16)
    path = tmp_path / "bomb.pickle.pbz2"
    path.write_bytes(bz2.compress(b"\x80\x02" + b"N0" * (1 << 16) + b"N."))
    assert len(path.read_bytes()) < 1000
    with pytest.raises(BenchError, match="decompresses to more than 65536 bytes"):
        sp.load_bz2_pickle(path)


# -- the property: never a side effect, always a BenchError or a parse --------------------------
GLOBALS = [
    *sorted(sp.ALLOWED_GLOBALS),
    ("os", "system"),
    ("posix", "system"),
    ("builtins", "eval"),
    ("builtins", "getattr"),
    ("subprocess", "Popen"),
    ("torch", "load"),
    ("torch.serialization", "_check_container_source"),
    ("copyreg", "_reconstructor"),
    ("smtplib", "SMTP"),
    ("ftplib", "FTP"),
    ("this", "s"),
    ("xmlrpc.client", "ServerProxy"),
    ("pty", "spawn"),
]
SIMPLE_OPS = [
    b"N",
    b"\x88",
    b"\x89",
    b"K\x00",
    b"K\x05",
    b"J\xff\xff\xff\xff",
    b"M\x00\x01",
    b"\x8a\x02\x00\x01",
    b"G" + struct.pack(">d", 1.5),
    b"C\x04abcd",
    b"B\x03\x00\x00\x00xyz",
    b"}",
    b"]",
    b")",
    b"(",
    b"\x8f",
    b"\x90",
    b"\x91",
    b"s",
    b"u",
    b"a",
    b"e",
    b"t",
    b"\x85",
    b"\x86",
    b"\x87",
    b"l",
    b"d",
    b"R",
    b"b",
    b"\x81",
    b"\x92",
    b"o",
    b"Q",
    b"Pstorage\n",
    b"q\x00",
    b"q\x01",
    b"h\x00",
    b"h\x01",
    b"\x94",
    b"0",
    b"2",
    b"1",
    b"\x82\x01",
    b"\x83\x01\x00",
    b"I12\n",
    b"F1.5\n",
    b"S'x'\n",
    b"Vname\n",
    b".",
    *(_s(x) for x in ("storage", "module", "0", "cpu", "epochs", "all_results", "__name__")),
    _storage_pid("0", 4, legacy=False),
    _storage_pid("0", 4, legacy=True),
    *(_g(m, n) for m, n in GLOBALS),
    *(_s(m) + _s(n) + b"\x93" for m, n in GLOBALS),
    *(b"(i" + m.encode() + b"\n" + n.encode() + b"\n" for m, n in GLOBALS[-6:]),
]
STORAGE = {"0": struct.pack("<4f", 1, 2, 3, 4)}


def _snapshot() -> tuple:
    guards = {
        k: (getattr(g, "_name", g), getattr(g, "_fn", g)) for k, g in sp.ALLOWED_GLOBALS.items()
    }
    classes = {
        c: dict(vars(c)) for c in (sp.OfficialObject, sp.ArchResultsState, sp.ResultsCountState)
    }
    return guards, classes, torch._utils._rebuild_tensor_v2.__name__


@contextlib.contextmanager
def _watch():
    """Run in an empty cwd; afterwards: nothing written, no risky module imported, no admitted
    global or stand-in class changed."""
    risky_before = {m for m in RISKY_MODULES if m in sys.modules}
    snap = _snapshot()
    limits = resource.getrlimit(resource.RLIMIT_AS)
    old = os.getcwd()
    with tempfile.TemporaryDirectory() as work:
        os.chdir(work)
        try:
            yield
        finally:
            os.chdir(old)
        assert os.listdir(work) == []
    assert {m for m in RISKY_MODULES if m in sys.modules} == risky_before
    assert _snapshot() == snap
    assert resource.getrlimit(resource.RLIMIT_AS) == limits  # the load budget is lifted


def _load_as(container: str, stream: bytes, where: Path) -> None:
    """Load ``stream`` in a container through the public loaders: a parse or a BenchError."""
    if container == "bz2":
        path = where / "x.pickle.pbz2"
        path.write_bytes(bz2.compress(stream))
        loader = sp.load_bz2_pickle
    else:
        path = where / "x.pth"
        if container == "zip":
            path.write_bytes(_zip(stream, STORAGE))
        else:
            path.write_bytes(_legacy(stream, ["0"], struct.pack("<q", 4) + STORAGE["0"]))
        loader = sp.load_torch_file
    try:
        loader(path)
    except BenchError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)


FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(
    ops=st.lists(st.sampled_from(SIMPLE_OPS), max_size=40),
    container=st.sampled_from(["zip", "legacy", "bz2"]),
)
def test_random_opcode_streams_never_have_side_effects(tmp_path, ops, container):
    stream = b"\x80\x02" + b"".join(ops) + b"."
    with _watch():
        _load_as(container, stream, tmp_path)


@pytest.fixture(scope="module")
def real_format(tmp_path_factory):
    """Bytes of a genuine official per-arch file: a legacy and a zip .pth (with weights and a
    numpy scalar) and the plain pickle a NATS .pickle.pbz2 holds."""
    rng = np.random.default_rng(3)
    ar = _arch_results(nas_201_api, 11, 2, rng, lambda ds: (777,))
    rc = ar.query("cifar10", 777)
    rc.net_state_dict = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.ones(2)}
    rc.flop = np.float64(1.25)
    obj = {"less": ar.state_dict(), "full": ar.state_dict()}
    out = {}
    for name, zipped in (("legacy", False), ("zip", True)):
        buf = io.BytesIO()
        torch.save(obj, buf, _use_new_zipfile_serialization=zipped)
        out[name] = buf.getvalue()
    with zipfile.ZipFile(io.BytesIO(out["zip"])) as zf:
        out["zip-records"] = {i.filename: zf.read(i) for i in zf.infolist()}
    out["bz2"] = pickle.dumps({"12": obj["less"], "200": obj["full"]}, protocol=2)
    return out


def _mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    b = bytearray(data)
    for kind, pos, val in edits:
        if not b:
            break
        i = pos % len(b)
        if kind == 0:
            b[i] = val
        elif kind == 1:
            b.insert(i, val)
        elif kind == 2:
            del b[i : i + 1 + val % 8]
        else:
            del b[i:]
    return bytes(b)


@settings(FUZZ, max_examples=150)  # each example parses a real file: keep it under ~5 s
@given(
    container=st.sampled_from(["legacy", "zip", "bz2", "bz2-raw"]),
    edits=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 2**20), st.integers(0, 255)),
        min_size=1,
        max_size=4,
    ),
)
def test_mutated_real_files_parse_or_fail_cleanly(tmp_path, real_format, container, edits):
    arch_dir = tmp_path / "archive"
    arch_dir.mkdir(exist_ok=True)
    for p in arch_dir.iterdir():
        p.unlink()
    with _watch():
        try:
            if container in ("legacy", "zip"):
                path = arch_dir / "000011-FULL.pth"
                if container == "legacy":
                    path.write_bytes(_mutate(real_format["legacy"], edits))
                else:  # a well-formed zip whose data.pkl is mutated (zip CRCs would catch it)
                    buf = io.BytesIO()
                    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
                        for name, raw in real_format["zip-records"].items():
                            zf.writestr(
                                name, _mutate(raw, edits) if name.endswith("data.pkl") else raw
                            )
                    path.write_bytes(buf.getvalue())
                read_nb201(arch_dir)
            else:
                path = arch_dir / "000011.pickle.pbz2"
                if container == "bz2":
                    path.write_bytes(bz2.compress(_mutate(real_format["bz2"], edits)))
                else:
                    path.write_bytes(_mutate(bz2.compress(real_format["bz2"]), edits))
                _Collector().add_arch(11, _hp_map(sp.load_bz2_pickle(path), str, "x"), "x")
        except BenchError as exc:
            assert "\n" not in str(exc)


def test_unmutated_real_format_parses(tmp_path, real_format):
    """The fuzz baseline is genuine: every container parses untouched."""
    arch_dir = tmp_path / "archive"
    arch_dir.mkdir()
    for name in ("legacy", "zip"):
        (arch_dir / "000011-FULL.pth").write_bytes(real_format[name])
        col, _ = read_nb201(arch_dir)
        assert col.costs["cifar10"][11]["flops_m"] == 1.25
    path = tmp_path / "000011.pickle.pbz2"
    path.write_bytes(bz2.compress(real_format["bz2"]))
    obj = sp.load_bz2_pickle(path)
    # plain pickles embed each storage as a torch.save blob: read by our own code too
    w = obj["200"]["all_results"][("cifar10", 777)]["net_state_dict"]["w"]
    np.testing.assert_array_equal(w.numpy(), np.arange(6.0, dtype=np.float32).reshape(2, 3))
    col = _Collector()
    col.add_arch(11, _hp_map(obj, str, "x"), "x")
    assert set(col.entries) >= {("cifar10", "12"), ("cifar10", "200")}


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numpy_values_are_rebuilt_by_our_code(protocol):
    """numpy scalars become Python numbers and arrays are rebuilt from their raw bytes, in the
    forms every pickle protocol writes (protocol 5 uses numpy's _frombuffer)."""
    a = np.arange(6.0).reshape(2, 3)
    obj = {"c": a, "f": np.asfortranarray(a), "s": np.float32(2.5), "i": np.int64(7)}
    got = sp.loads(pickle.dumps(obj, protocol=protocol))
    np.testing.assert_array_equal(got["c"].array, a)
    np.testing.assert_array_equal(got["f"].array, a)
    assert got["s"] == 2.5 and type(got["s"]) is float and got["i"] == 7
    assert float(sp.loads(pickle.dumps(np.array([3.5]), protocol=protocol))) == 3.5
    with pytest.raises(BenchError, match="dtype"):
        sp.loads(pickle.dumps(np.array(["text"], dtype=object), protocol=protocol))

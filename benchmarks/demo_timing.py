"""Wall time, CPU time and result of the main job (``scripts/demo.sh``'s command) under
different thread counts and oneDNN instruction sets, on this machine, in one run.

The demo command is ``nasforge search --algo pc-darts --dataset digits -o DIR``. Each
variant runs it in a fresh subprocess with its own environment and ``--threads``; the
first variant is the reference the others are compared with (CPU-time and wall-time
ratios; whether the derived arch and accuracies are bit-identical to the reference's).

Three libraries pick CPU kernels by instruction set: oneDNN (``ONEDNN_MAX_CPU_ISA``;
channels_last convolutions, i.e. the derived arch's training), ATen
(``ATEN_CPU_CAPABILITY``) and MKL (``MKL_ENABLE_INSTRUCTIONS``; the GEMMs of the NCHW
supernet's convolutions). Each variable can only lower the set (on an AVX2 CPU, AVX2 is
the default and AVX-512 is not available): ``threads1-avx2`` caps all three at AVX2, which
on an AVX-512 CPU reproduces an AVX2 machine's kernels; ``threads1-sse`` lowers them to
SSE4, a different kernel path on any x86-64. The ISA oneDNN picked is read from its
verbose mode per variant. Different kernels round differently, so results may differ by
ISA; a CPU's default ISA is what a user of that CPU gets.

    python benchmarks/demo_timing.py --out benchmarks/results/demo_timing.json
    python benchmarks/demo_timing.py --profile full      # the old 20-epoch profile

Prints JSON (also written to --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: The three libraries that pick CPU kernels by instruction set, capped together: oneDNN
#: (convolutions in channels_last, the derived arch's training), ATen's own vectorised
#: kernels, and MKL (the GEMMs of NCHW convolutions, the supernet search).
AVX2 = {
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
}
SSE = {
    "ONEDNN_MAX_CPU_ISA": "SSE41",
    "ATEN_CPU_CAPABILITY": "default",
    "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
}

#: label -> (extra environment, --threads)
VARIANTS: dict[str, tuple[dict[str, str], int]] = {
    "threads1": ({}, 1),
    "threads2": ({}, 2),
    "threads1-avx2": (AVX2, 1),
    "threads1-sse": (SSE, 1),
}

#: --profile -> extra search options (quick = the demo's defaults).
PROFILES: dict[str, list[str]] = {"quick": [], "full": ["--epochs", "20"]}


def cpu_model() -> str:
    """``Model name`` as lscpu prints it (from /proc/cpuinfo; the platform otherwise)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The vector-ISA flags of this CPU that oneDNN dispatches on."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
                return [f for f in wanted if f in have]
    except OSError:
        pass
    return []


_ISA_PROBE = """
import torch
torch.set_num_threads(1)
x = torch.randn(8, 16, 16, 16).to(memory_format=torch.channels_last)
w = torch.randn(16, 16, 3, 3).to(memory_format=torch.channels_last)
with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
    torch.nn.functional.conv2d(x, w, padding=1)
"""


def onednn_isa(env: dict[str, str]) -> str | None:
    """The ISA oneDNN reports (verbose mode, one channels_last convolution) under ``env``."""
    proc = subprocess.run(
        [sys.executable, "-c", _ISA_PROBE],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    for line in proc.stdout.splitlines():
        if ",isa:" in line:
            return line.split(",isa:", 1)[1].strip()
    return None


def run_variant(label: str, env: dict[str, str], threads: int, extra: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "demo"
        cmd = [
            sys.executable,
            "-c",
            "from nasforge.cli import main; main()",
            "search",
            "--algo",
            "pc-darts",
            "--dataset",
            "digits",
            "--threads",
            str(threads),
            "--quiet",
            *extra,
            "-o",
            str(out),
        ]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        proc = subprocess.run(
            cmd, env={**os.environ, **env}, capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise SystemExit(f"{label} failed:\n{proc.stderr[-2000:]}")
        summary = json.loads((out / "summary.json").read_text())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    train = summary["train"] or {}
    return {
        "label": label,
        "env": env,
        "threads": threads,
        "onednn_isa": onednn_isa(env),
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "search_s": round(summary["search_time"], 1),
        "load_before": round(load, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "arch": summary["arch"],
        "oneshot_valid_acc": summary["oneshot_valid_acc"],
        "trained": {k: v["acc"] for k, v in (train.get("eval") or {}).items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=list(VARIANTS),
        choices=list(VARIANTS),
        help="Which variants to run; the first is the reference.",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    import torch

    rows: list[dict[str, Any]] = []
    for v in args.variants:
        rows.append(run_variant(v, *VARIANTS[v], PROFILES[args.profile]))
        compare(rows)
        # written after every variant: a long run on a loaded machine keeps what it measured
        text = write(args, rows, torch)
    print(text)


def compare(rows: list[dict[str, Any]]) -> None:
    """Each variant against the first (the reference), in place."""
    ref = rows[0]
    for r in rows:
        r["cpu_vs_reference"] = round(r["cpu_s"] / ref["cpu_s"], 3)
        r["wall_vs_reference"] = round(r["wall_s"] / ref["wall_s"], 3)
        r["same_result_as_reference"] = (r["arch"], r["oneshot_valid_acc"], r["trained"]) == (
            ref["arch"],
            ref["oneshot_valid_acc"],
            ref["trained"],
        )


def write(args: argparse.Namespace, rows: list[dict[str, Any]], torch: Any) -> str:
    """The JSON record so far, also written to ``--out``."""
    ref = rows[0]
    record = {
        "command": "nasforge search --algo pc-darts --dataset digits --threads T "
        + " ".join(PROFILES[args.profile])
        + " -o DIR",
        "profile": args.profile,
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "reference": ref["label"],
        "variants_requested": args.variants,
        "variants": rows,
    }
    text = json.dumps(record, indent=2)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return text


if __name__ == "__main__":
    main()

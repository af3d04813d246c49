#!/usr/bin/env bash
# Install the plain package (no extras) into a new, separate venv from the lowest-versions lock
# (requirements/lowest.txt: every direct dependency at its declared lower bound), then run
# every command's --help and the demo's first step at tiny size. A runtime import that no
# declared dependency provides, or a lower bound that does not hold, fails here.
# Usage: bash scripts/check_install.sh [VENV_DIR]   (default: a fresh temporary directory)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-$(mktemp -d)/plain-venv}"
python3 -m venv "$venv"
"$venv/bin/python" -c "import torch" 2>/dev/null || "$venv/bin/pip" install -q torch==2.13.0
"$venv/bin/pip" install -q -c requirements/lowest.txt .
# Run from outside the checkout so that `import nasforge` is the installed package.
cd "$(mktemp -d)"
"$venv/bin/python" - <<'PY'
"""Every command and sub-command of the installed CLI answers --help with exit code 0."""
import subprocess
import sys

import typer
from nasforge.cli import app

group = typer.main.get_command(app)
paths = []


def walk(cmd, prefix):
    paths.append(prefix)
    for name, sub in getattr(cmd, "commands", {}).items():
        walk(sub, [*prefix, name])


walk(group, [])
exe = sys.executable.replace("/python", "/nasforge")
for p in paths:
    r = subprocess.run([exe, *p, "--help"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"nasforge {' '.join(p)} --help failed ({r.returncode}):\n{r.stderr[-2000:]}")
print(f"--help ok for {len(paths)} commands")
PY
# The demo's first step (a one-shot search on the embedded digits), at tiny size.
"$venv/bin/nasforge" search --algo pc-darts --dataset digits --epochs 1 --train-epochs 1 \
  --limit 64 --threads 1 --quiet -o demo-tiny
test -s demo-tiny/summary.json
echo "plain install ok: $venv"

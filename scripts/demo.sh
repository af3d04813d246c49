#!/usr/bin/env bash
# Set up (or reuse) .venv, install nasforge, and run the main job on the embedded data:
# a PC-DARTS search over the NB201 space on the bundled digits images, then a short
# training of the derived architecture. Results land in runs/demo (JSON + PNG).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
# A CPU wheel of torch 2.13.0 is what these machines offer; install it first when torch is
# missing so the project's `torch` requirement does not pull several GB of CUDA packages.
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install -q torch==2.13.0
# Versions come from the lock of tested versions (requirements/lock.txt, made by
# scripts/lock.sh); NASFORGE_UNPINNED=1 installs the newest versions pyproject allows.
pins=(-c requirements/lock.txt)
[ "${NASFORGE_UNPINNED:-0}" = 1 ] && pins=()
.venv/bin/pip install -q "${pins[@]}" -e .
.venv/bin/nasforge search --algo pc-darts --dataset digits -o "${1:-runs/demo}"

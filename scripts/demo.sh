#!/usr/bin/env bash
# Set up (or reuse) .venv, install nasforge, and run the main job on the embedded data.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e .
.venv/bin/nasforge space info nb201
.venv/bin/nasforge arch info '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|'

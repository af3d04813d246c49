#!/usr/bin/env bash
# Set up (or reuse) .venv, install nasforge with its test extras, lint, and run the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
# A CPU wheel of torch 2.13.0 is what these machines offer; install it first when torch is
# missing so the project's `torch` requirement does not pull several GB of CUDA packages.
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install -q torch==2.13.0
# The ray extra is installed so the Ray executor is tested for real (a local instance).
.venv/bin/pip install -q -e ".[test,ray]"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest -q "$@"

#!/usr/bin/env bash
# Set up (or reuse) .venv, install nasforge with its test extras, lint, and run the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
# A CPU wheel of torch 2.13.0 is what these machines offer; install it first when torch is
# missing so the project's `torch` requirement does not pull several GB of CUDA packages.
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install -q torch==2.13.0
# The ray extra is installed so the Ray executor is tested for real (a local instance).
# Versions come from the lock of tested versions (requirements/lock.txt, made by
# scripts/lock.sh); NASFORGE_UNPINNED=1 installs the newest versions pyproject allows.
pins=(-c requirements/lock.txt)
[ "${NASFORGE_UNPINNED:-0}" = 1 ] && pins=()
.venv/bin/pip install -q "${pins[@]}" -e ".[test,ray]"
# The official NB201 reference code, for side-by-side tests of the one-shot methods. It pins
# numpy<=1.19.5 (which does not build here) but runs with ours: install it without its pins.
.venv/bin/python -c "import xautodl" 2>/dev/null || .venv/bin/pip install -q --no-deps xautodl==1.0.0
# The explorer's browser tests drive the system Chromium through chromedriver (Debian's
# packages); where they cannot be installed (no root, no apt) those tests skip with a reason.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
      || echo "note: chromium could not be installed; the browser tests will skip"
  fi
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest -q "$@"

"""Suite-wide settings: property tests have no per-example deadline (CI machines are shared
and small), and matplotlib never needs a display."""

from __future__ import annotations

import os

import matplotlib
from hypothesis import settings

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")

settings.register_profile("nasforge", deadline=None, max_examples=50)
settings.load_profile("nasforge")

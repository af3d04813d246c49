"""Import time against the number of seeds of one arch (issue 23, item 2): a plain CSV of one
NB201 arch with N seeds, imported at N and 4N; a linear import takes ~4x as long at 4N, a
quadratic one ~16x. Prints JSON.

    PYTHONPATH=src python benchmarks/import_seeds.py [N]   (default N = 10000)
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from nasforge.bench.importers import import_table

ARCH = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def _time_import(root: Path, n: int) -> float:
    src = root / f"s{n}.csv"
    rows = "".join(f"{ARCH},cifar10,{s},50\n" for s in range(n))
    src.write_text("arch,dataset,seed,valid_acc\n" + rows)
    start = time.perf_counter()
    import_table(src, root / f"t{n}", format="csv")
    return time.perf_counter() - start


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    os.environ.setdefault("NASFORGE_MAX_SEEDS", str(8 * n))  # the bound, raised for the probe
    with tempfile.TemporaryDirectory() as tmp:
        small, big = _time_import(Path(tmp), n), _time_import(Path(tmp), 4 * n)
    print(
        json.dumps(
            {
                "seeds": [n, 4 * n],
                "seconds": [round(small, 3), round(big, 3)],
                "ratio_4x_seeds": round(big / small, 2),
                "linear_expected": 4.0,
                "quadratic_would_be": 16.0,
            }
        )
    )


if __name__ == "__main__":
    main()

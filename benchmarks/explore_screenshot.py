"""The README's screenshot of ``nasforge explore`` (docs/img/explore.png).

    .venv/bin/python benchmarks/explore_screenshot.py [--out docs/img/explore.png]

Builds a full-size synthetic NB201 table (15,625 archs, CIFAR-10-valid and CIFAR-100,
3 seeds, 12 / 200 epochs) in a temp dir, serves it as ``nasforge explore`` does, opens the
page in headless chromium (Selenium + /usr/bin/chromedriver), keeps the archs with at least
70 % test accuracy, selects the two most accurate Pareto-front archs and saves the window.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs/img/explore.png"))
    args = ap.parse_args()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    from nasforge.bench import make_synthetic_table
    from nasforge.explore import Explorer, create_app
    from nasforge.explore.server import ServerThread, bind

    work = Path(tempfile.mkdtemp(prefix="explore-shot-"))
    try:
        table = make_synthetic_table(
            work / "nb201-synthetic", datasets=("cifar10-valid", "cifar100")
        )
        srv = ServerThread(create_app(Explorer([table])), bind("127.0.0.1", 0)).start()
        opts = webdriver.ChromeOptions()
        opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                     f"--user-data-dir={work / 'profile'}", "--window-size=1400,900"):  # fmt: skip
            opts.add_argument(flag)
        d = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)

        def ready() -> None:
            WebDriverWait(d, 120, poll_frequency=0.1).until(
                lambda d: d.execute_script("return document.body.dataset.state") == "table"
            )

        try:
            d.get(srv.url)
            ready()
            d.execute_script(
                "document.body.dataset.state = 'x'; state.ranges = {test_acc: {lo: '70'}};"
                "buildGroupControls(); scheduleRefresh();"
            )
            ready()
            front = d.execute_script(
                "const t = document.getElementById('scatter').data[1]; return t.customdata;"
            )
            for index in front[-2:]:
                d.execute_script(
                    "document.body.dataset.state = 'x'; toggleSelect(arguments[0]);", index
                )
                ready()
            time.sleep(0.5)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            d.save_screenshot(str(args.out))
        finally:
            d.quit()
            srv.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()

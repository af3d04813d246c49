"""``nasforge explore`` in a real headless browser: Debian's chromium + chromedriver driven by
Selenium. The page loads, a filter changes the list, clicking an arch shows its cell and
per-seed curves, a run directory shows its trajectory (and the one-shot and ranking views
draw), labels holding markup stay text; a screenshot of each view is saved.

Skipped, with the reason, where chromium / chromedriver / selenium are not installed
(``apt-get install -y chromium chromium-driver``; ``pip install selenium``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

#: the session fixtures explore_root / explore_explorer (tests/explore_data.py)
pytest_plugins = ("explore_data",)

pytest.importorskip("starlette", reason="the explore extra (starlette) is not installed")
pytest.importorskip("uvicorn", reason="the explore extra (uvicorn) is not installed")
pytest.importorskip("plotly", reason="the explore extra (plotly) is not installed")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")

pytest.register_assert_rewrite("explore_data")  # its asserts report like tests
from explore_data import XSS_ALGO, XSS_ARCH, XSS_DIR  # noqa: E402
from nasforge.explore import create_app  # noqa: E402
from nasforge.explore.server import ServerThread, bind  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="no system chromium + chromedriver (apt-get install -y chromium chromium-driver)",
)
#: Where a view waits at most for the page to finish drawing.
WAIT_S = 30


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """The screenshots of this run (kept in pytest's temp dir; NASFORGE_EXPLORE_SHOTS=DIR
    keeps them there instead)."""
    keep = os.environ.get("NASFORGE_EXPLORE_SHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        return Path(keep)
    return tmp_path_factory.mktemp("explore-shots")


@pytest.fixture(scope="module")
def url(explore_explorer):
    srv = ServerThread(create_app(explore_explorer), bind("127.0.0.1", 0)).start()
    yield srv.url
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="nasforge-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-dev-shm-usage",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1440,1000",
    ):
        opts.add_argument(flag)
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    except Exception as exc:  # a browser that cannot start is an environment problem
        shutil.rmtree(profile, ignore_errors=True)
        pytest.skip(f"chromium did not start under chromedriver: {str(exc).splitlines()[0]}")
    driver.set_page_load_timeout(WAIT_S)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _wait(driver, cond, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT_S, poll_frequency=0.05).until(lambda d: cond(d))
    except Exception as exc:
        err = driver.execute_script("return document.getElementById('error').textContent")
        state = driver.execute_script("return document.body.dataset.state")
        raise AssertionError(
            f"timed out waiting for {what} (state {state!r}, error {err!r})"
        ) from exc


def _state(driver) -> str:
    return driver.execute_script("return document.body.dataset.state")


def _matched(driver) -> int:
    return int(driver.execute_script("return document.getElementById('count').dataset.matched"))


def _rows(driver) -> list[dict]:
    return driver.execute_script(
        """return [...document.querySelectorAll('#arch-list tbody tr')].map(tr => ({
             index: Number(tr.dataset.index),
             arch: tr.querySelector('td.arch').textContent}));"""
    )


def _open(driver, source: str, ready: str) -> None:
    """Show ``source`` as the page's own links do (a hash change, no reload)."""
    driver.execute_script(
        "document.body.dataset.state = 'navigating'; location.hash = arguments[0];", source
    )
    _wait(driver, lambda d: _state(d) == ready, f"{source} to draw")


def test_table_view_filters_and_selects(browser, url, shots):
    d = browser
    d.get(f"{url}#t0")
    _wait(d, lambda d: _state(d) == "table", "the table view")
    assert _matched(d) == 15625
    cloud = d.execute_script(
        "const t = document.getElementById('scatter').data[0]; return [t.type, t.x.length, t.name]"
    )
    front = d.execute_script("return document.getElementById('scatter').data[1].x.length")
    if cloud[0] == "scattergl":
        assert cloud[1] == 15625
    else:  # no WebGL in this browser: 1 in 4 of the 15,625 archs, and the legend says so
        assert cloud[1] == len(range(0, 15625, 4)) and "1 in 4 of 15625 drawn" in cloud[2]
    assert 1 <= front < 200
    d.save_screenshot(str(shots / "table.png"))

    # a metric range: fewer archs, and every listed one within it
    bounds = d.execute_script(
        "return document.querySelector('#f-ranges input[data-metric=\"test_acc\"]').placeholder"
    )
    lo = float(bounds) + 10
    box = d.find_element("css selector", '#f-ranges input[data-metric="test_acc"][data-side="lo"]')
    box.send_keys(str(lo))
    _wait(d, lambda d: _state(d) == "table" and _matched(d) < 15625, "the range filter")
    narrowed = _matched(d)
    assert 0 < narrowed < 15625
    # an op filter on top: no conv 3x3 on edge 1<-0
    d.find_element("css selector", '#f-ops input[data-pos="0"][data-op="nor_conv_3x3"]').click()
    _wait(d, lambda d: _state(d) == "table" and _matched(d) < narrowed, "the op filter")
    rows = _rows(d)
    assert rows and all(not r["arch"].startswith("|nor_conv_3x3~0|") for r in rows)

    # clicking a row shows the arch's cell and one curve per seed
    first = rows[0]
    d.find_element("css selector", f'#arch-list tbody tr[data-index="{first["index"]}"]').click()
    _wait(d, lambda d: d.find_elements("css selector", "#cards .card svg.dag"), "the arch card")
    _wait(d, lambda d: _state(d) == "table", "the redraw")
    card = d.find_element("css selector", "#cards .card")
    assert card.find_element("css selector", ".arch").text == first["arch"]
    ops = d.execute_script(
        "return [...document.querySelectorAll('#cards .card svg.dag path')].map(p => p.dataset.op)"
    )
    want = [tok.split("~")[0] for tok in first["arch"].strip("|").replace("|+|", "|").split("|")]
    assert ops == want
    seeds = d.execute_script(
        "return document.querySelector('#cards .card .curves').data.map(t => t.name)"
    )
    assert seeds == ["seed 777", "seed 888"]
    # the selection is marked on the scatter too
    assert d.execute_script("return document.getElementById('scatter').data[2].x.length") == 1
    d.save_screenshot(str(shots / "table-selected.png"))


def _loaded(driver, url: str) -> None:
    if not driver.current_url.startswith(url):
        driver.get(url)
    _wait(driver, lambda d: _state(d) not in ("loading", "navigating"), "the page")


def test_run_views_draw_trajectories_weights_and_rankings(browser, url, shots):
    d = browser
    _loaded(d, url)
    sources = d.execute_script("return fetch('/api/sources').then(r => r.json())")
    by = {r["label"].split("/", 2)[-1]: r["id"] for r in sources["runs"]}

    _open(d, by["cmp"], "run-compare")
    names = d.execute_script("return document.getElementById('trajectory').data.map(t => t.name)")
    assert "random (2 runs)" in names and "rea (2 runs)" in names
    assert any(n and n.startswith("table optimum") for n in names)
    d.save_screenshot(str(shots / "run-compare.png"))

    _open(d, by["rea"], "run-search")
    bands = d.execute_script(
        "return document.getElementById('trajectory').data.filter(t => t.fill === 'tonexty').length"
    )
    assert bands == 1
    d.save_screenshot(str(shots / "run-search.png"))

    _open(d, by["oneshot"], "run-oneshot")
    edges = d.execute_script(
        "return [...document.querySelectorAll('#edge-grid .edge')].map(e => e.dataset.edge)"
    )
    assert edges == ["1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"]
    assert d.find_elements("css selector", "#run-body svg.dag")
    d.save_screenshot(str(shots / "run-oneshot.png"))

    _open(d, by["ranking"], "run-ranking")
    taus = d.execute_script("return document.getElementById('ranking-tau').data[0].y.length")
    assert taus == 3  # e1, e2s1, e2
    d.save_screenshot(str(shots / "run-ranking.png"))


def test_markup_in_labels_is_shown_as_text(browser, url, shots):
    d = browser
    _loaded(d, url)
    sources = d.execute_script("return fetch('/api/sources').then(r => r.json())")
    rid = next(r["id"] for r in sources["runs"] if r["label"].endswith(XSS_DIR))
    _open(d, rid, "run-search")
    assert d.execute_script("return window.__xss") is None
    assert XSS_DIR in d.find_element("id", "run-title").text
    nav = [b.text for b in d.find_elements("css selector", "#sources button")]
    assert any(XSS_DIR in t for t in nav)
    cells = [c.text for c in d.find_elements("css selector", "table.runs td.arch")]
    assert cells and all(c == XSS_ARCH for c in cells)
    legend = d.execute_script("return document.getElementById('trajectory').textContent")
    assert XSS_ALGO in legend  # Plotly shows the escaped name literally
    # no element was made from the markup
    assert not d.find_elements("css selector", "img[src='x'], #run-body script, nav script")
    d.save_screenshot(str(shots / "run-xss.png"))

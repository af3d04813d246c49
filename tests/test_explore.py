"""``nasforge explore``: the data endpoints against the table and runs they answer from,
the read-only / loopback / no-file-outside guarantees, and the command line."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

#: the session fixtures explore_root / explore_explorer (tests/explore_data.py)
pytest_plugins = ("explore_data",)

pytest.importorskip("starlette", reason="the explore extra (starlette) is not installed")
pytest.importorskip("uvicorn", reason="the explore extra (uvicorn) is not installed")
pytest.importorskip("plotly", reason="the explore extra (plotly) is not installed")

pytest.register_assert_rewrite("explore_data")  # its asserts report like tests
from explore_data import XSS_ALGO, XSS_ARCH, XSS_DIR  # noqa: E402
from nasforge.explore import Explorer, create_app, pareto_front  # noqa: E402
from nasforge.explore.server import ServerThread, bind  # noqa: E402

# starlette's TestClient still runs on httpx and says so; nothing to act on here
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with")


# -- the Pareto front ----------------------------------------------------------------------
def _brute_front(x: np.ndarray, y: np.ndarray, max_x: bool, max_y: bool) -> set[tuple]:
    gx, gy = (x if max_x else -x), (y if max_y else -y)
    keep = set()
    for i in range(len(x)):
        dominated = np.any((gx >= gx[i]) & (gy >= gy[i]) & ((gx > gx[i]) | (gy > gy[i])))
        if not dominated:
            keep.add((float(x[i]), float(y[i])))
    return keep


@given(
    st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=40),
    st.booleans(),
    st.booleans(),
)
def test_pareto_front_is_exactly_the_non_dominated_points(pts, max_x, max_y):
    x = np.array([p[0] for p in pts], float)
    y = np.array([p[1] for p in pts], float)
    front = pareto_front(x, y, max_x, max_y)
    got = [(float(x[i]), float(y[i])) for i in front]
    assert len(got) == len(set(got))  # of identical points one is kept
    assert set(got) == _brute_front(x, y, max_x, max_y)
    assert list(x[front]) == sorted(x[front])  # ordered along x, as the page draws it


# -- the app over real inputs -----------------------------------------------------------------
@pytest.fixture(scope="module")
def explorer(explore_explorer):
    return explore_explorer


@pytest.fixture(scope="module")
def client(explorer):
    from starlette.testclient import TestClient

    return TestClient(create_app(explorer), base_url="http://127.0.0.1")


@pytest.fixture(scope="module")
def server(explorer):
    srv = ServerThread(create_app(explorer), bind("127.0.0.1", 0)).start()
    yield srv
    srv.stop()


def _run_id(client, kind: str, label_end: str) -> str:
    runs = client.get("/api/sources").json()["runs"]
    return next(r["id"] for r in runs if r["kind"] == kind and r["label"].endswith(label_end))


def test_sources_list_the_table_and_every_run_kind(client):
    src = client.get("/api/sources").json()
    assert [t["label"] for t in src["tables"]] == [f"{_root_name(src)}/table"]
    kinds = sorted((r["kind"], r["label"].split("/", 2)[-1]) for r in src["runs"])
    assert kinds == [
        ("compare", "cmp"),
        ("oneshot", "oneshot"),
        ("ranking", "ranking"),
        ("search", XSS_DIR),
        ("search", "rea"),
    ]
    t = src["tables"][0]
    assert t["space"] == "nb201" and t["archs"] == 15625 and t["synthetic"]
    assert len(t["positions"]) == 6 and t["positions"][0]["options"][0] == "none"


def _root_name(src) -> str:
    return src["tables"][0]["label"].split("/")[0]


def test_filters_narrow_the_list_and_every_row_passes_them(client, explorer):
    base = {"ds": "cifar10-valid", "hp": "200", "sort": "test_acc", "limit": 500}
    all_ = client.get("/api/tables/t0/list", params=base).json()
    assert all_["matched"] == all_["total"] == 15625
    (acc_lo, acc_hi), (p_lo, p_hi) = all_["bounds"]["test_acc"], all_["bounds"]["params_m"]
    lo, hi = round((acc_lo + acc_hi) / 2, 2), round((p_lo + p_hi) / 2, 3)
    q = {**base, "lo.test_acc": lo, "hi.params_m": hi, "pos.0": "nor_conv_3x3,skip_connect",
         "has": "avg_pool_3x3"}  # fmt: skip
    got = client.get("/api/tables/t0/list", params=q).json()
    assert 0 < got["matched"] < all_["matched"]
    bench = explorer.table("t0").bench
    t = bench.table("cifar10-valid", "200")
    test = np.asarray(t.mean_final("test_acc"), dtype=np.float64)
    want = 0
    for i in range(bench.space_size):
        s = bench.arch_string(i)
        ops = [tok.split("~")[0] for tok in s.strip("|").replace("|+|", "|").split("|")]
        params = bench.cost(i, "cifar10-valid")["params_m"]
        if (
            test[i] >= lo
            and params <= hi
            and ops[0] in ("nor_conv_3x3", "skip_connect")
            and ("avg_pool_3x3" in ops)
        ):
            want += 1
    assert got["matched"] == want
    col = got["columns"].index("test_acc")
    vals = [r["values"][col] for r in got["rows"]]
    assert vals == sorted(vals, reverse=True) and min(vals) >= lo
    for r in got["rows"]:
        assert r["arch"] == bench.arch_string(r["index"])


def test_scatter_front_is_non_dominated_among_the_filtered_points(client):
    q = {"ds": "cifar10-valid", "hp": "200", "x": "flops_m", "y": "valid_acc", "lo.valid_acc": 60}
    s = client.get("/api/tables/t0/scatter", params=q).json()
    xs, ys = np.array(s["xs"]), np.array(s["ys"])
    assert len(xs) == len(s["index"]) > 100 and min(ys) >= 60
    assert s["maximize"] == {"x": False, "y": True}
    got = {(xs[k], ys[k]) for k in s["front"]}
    assert got == _brute_front(xs, ys, False, True)


def test_arch_answers_cell_costs_and_per_seed_curves_from_the_table(client, explorer):
    bench = explorer.table("t0").bench
    arch = bench.arch_string(4321)
    d = client.get(
        "/api/tables/t0/arch", params={"a": arch, "ds": "cifar10-valid", "hp": "12"}
    ).json()
    assert d["index"] == 4321 and d["arch"] == arch
    assert [s["seed"] for s in d["seeds"]] == [777, 888]
    for s in d["seeds"]:
        rec = bench.query(arch, "cifar10-valid", hp="12", seed=s["seed"])
        assert np.allclose(s["curves"]["valid_acc"], rec.curves["valid_acc"], atol=1e-4)
        assert len(s["curves"]["valid_acc"]) == 4
    ops = [tok.split("~")[0] for tok in arch.strip("|").replace("|+|", "|").split("|")]
    edges = d["cell"]["graphs"][0]["edges"]
    assert [e["op"] for e in edges] == ops
    assert [(e["src"], e["dst"]) for e in edges] == [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]
    assert d["cost"]["flops_m"] == pytest.approx(bench.cost(4321, "cifar10-valid")["flops_m"])
    assert {(f["dataset"], f["hp"]) for f in d["finals"]} == {
        ("cifar10-valid", "12"),
        ("cifar10-valid", "200"),
    }
    # by index too
    assert client.get("/api/tables/t0/arch", params={"a": "4321"}).json()["arch"] == arch


def test_search_run_bands_and_optimum_are_the_protocol_s(client, explore_root, explorer):
    from nasforge.evaluate import EVALUATORS
    from nasforge.report.search import load_runs
    from nasforge.search.protocol import curve_on_grid, mean_band

    run = client.get(f"/api/runs/{_run_id(client, 'search', '/rea')}").json()
    runs = load_runs(explore_root / "runs" / "rea" / "trajectories.jsonl")
    grid = np.array(run["grid"])
    assert grid[-1] == pytest.approx(max(r.times[-1] for r in runs), rel=1e-4)
    mean, half, _ = mean_band(curve_on_grid(runs, grid, metric="test"))
    got = run["algos"][0]["curves"]["test"]
    ok = np.isfinite(mean)
    assert np.allclose(np.array(got["mean"], float)[ok], mean[ok], atol=1e-3)
    assert np.allclose(np.array(got["hi"], float)[ok], (mean + half)[ok], atol=1e-3)
    bench = explorer.table("t0").bench
    optimum = EVALUATORS.create("tabular", bench, "cifar10-valid", hp="12").optimum()
    assert run["optimum"]["value"] == pytest.approx(optimum)
    assert [r["final_arch"] for r in run["algos"][0]["runs"]] == [r.final_arch for r in runs]

    cmp = client.get(f"/api/runs/{_run_id(client, 'compare', '/cmp')}").json()
    assert [a["algo"] for a in cmp["algos"]] == ["random", "rea"]
    assert all(len(a["runs"]) == 2 for a in cmp["algos"])


def test_oneshot_and_ranking_runs_carry_their_records(client, explore_root):
    one = client.get(f"/api/runs/{_run_id(client, 'oneshot', '/oneshot')}").json()
    rec = json.loads((explore_root / "runs" / "oneshot" / "search.json").read_text())
    assert one["final_arch"] == rec["arch"] and one["epochs"] == [1, 2]
    assert [e["edge"] for e in one["edges"]] == ["1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"]
    probs = np.array([r["probs"] for r in rec["epochs"]])  # (epochs, 6, 5)
    for e, edge in enumerate(one["edges"]):
        assert [o["op"] for o in edge["ops"]][:2] == ["none", "skip_connect"]
        for k, o in enumerate(edge["ops"]):
            assert np.allclose(o["values"], probs[:, e, k], atol=1e-4)
    assert one["cell"]["kind"] == "dag"

    rk = client.get(f"/api/runs/{_run_id(client, 'ranking', '/ranking')}").json()
    res = json.loads((explore_root / "runs" / "ranking" / "ranking.json").read_text())
    assert rk["labels"] == [s["label"] for s in res["snapshots"]]
    assert rk["tau"] == pytest.approx([s["tau"] for s in res["snapshots"]])
    assert rk["archs"] == res["archs"] and len(rk["truth"]) == len(rk["final_oneshot"]) == 8


def test_markup_in_run_names_and_records_is_data_not_html(client):
    """The JSON carries the labels verbatim as JSON strings (the page inserts them as text:
    see the browser test); nothing is HTML but the page itself."""
    rid = _run_id(client, "search", XSS_DIR)
    r = client.get(f"/api/runs/{rid}")
    assert r.headers["content-type"] == "application/json"
    d = r.json()
    assert d["label"].endswith(XSS_DIR) and d["algos"][0]["algo"] == XSS_ALGO
    assert d["algos"][0]["runs"][0]["final_arch"] == XSS_ARCH


@pytest.mark.parametrize(
    ("url", "status", "fragment"),
    [
        ("/api/tables/t0/list?lo.bogus=1", 400, "no metric 'bogus'"),
        ("/api/tables/t0/list?lo.test_acc=abc", 400, "expected a number"),
        ("/api/tables/t0/list?ds=mnist", 400, "dataset 'mnist' is not in"),
        ("/api/tables/t0/list?limit=0", 400, "expected 1..500"),
        ("/api/tables/t0/list?pos.9=none", 400, "position '9' unknown"),
        ("/api/tables/t0/list?pos.0=conv9", 400, "option 'conv9' unknown"),
        ("/api/tables/t0/scatter?x=nope", 400, "metric 'nope' unknown"),
        ("/api/tables/t0/arch?a=|bogus~0|", 404, "is not a nb201 arch"),
        ("/api/tables/t7/list", 404, "no table 't7'"),
        ("/api/runs/r99", 404, "no run 'r99'"),
    ],
)
def test_bad_requests_get_one_line_errors(client, url, status, fragment):
    r = client.get(url)
    assert r.status_code == status
    msg = r.json()["error"]
    assert fragment in msg and "\n" not in msg


# -- security ---------------------------------------------------------------------------------
def _raw_get(url: str, path: str, host: str = "127.0.0.1") -> tuple[int, bytes]:
    """One HTTP/1.1 GET with ``path`` sent byte for byte (no client-side normalisation)."""
    _, _, hostport = url.rstrip("/").rpartition("/")
    h, port = hostport.rsplit(":", 1)
    with socket.create_connection((h, int(port)), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_no_file_outside_the_page_is_served(server, explore_root, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    inside = explore_root / "runs" / "rea" / "summary.json"
    paths = [
        "/static/../../../../etc/passwd",
        "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/static/..%2f..%2f..%2fpyproject.toml",
        f"/static/{secret}",
        f"/static/%2f{str(secret).lstrip('/')}",
        f"/{secret}",
        f"//{secret}",
        f"/static/{inside}",  # even a file inside an opened directory is never served raw
        "/api/runs/..%2f..%2fetc%2fpasswd",
        "/api/tables/%2e%2e/list",
        "/static/app.js/../../../etc/passwd",
    ]
    for p in paths:
        status, body = _raw_get(server.url, p)
        assert status in (400, 404), (p, status)
        assert b"TOP-SECRET" not in body and b"root:" not in body and b"[project]" not in body
        assert b"algo" not in body, p
    assert _raw_get(server.url, "/static/app.js")[0] == 200


def test_symlinks_out_of_an_opened_directory_are_not_followed(explore_root, tmp_path):
    import shutil

    outside = tmp_path / "outside"
    shutil.copytree(explore_root / "runs" / "rea", outside / "elsewhere-run")
    (outside / "secret.json").write_text('{"meta": {"note": "TOP-SECRET"}}')
    opened = tmp_path / "opened"
    shutil.copytree(explore_root / "runs" / "rea", opened / "mine")
    os.symlink(outside / "elsewhere-run", opened / "linked-run")  # a directory link out
    (opened / "mine" / "summary.json").unlink()
    os.symlink(outside / "secret.json", opened / "mine" / "summary.json")  # a file link out
    os.symlink(opened / "mine", opened / "alias")  # a link that stays inside: followed once
    ex = Explorer([opened])
    labels = [r["label"] for r in ex.sources()["runs"]]
    assert labels == ["opened/mine"]
    run = ex.run("r0")
    assert run["summary"] == {} and "TOP-SECRET" not in json.dumps(run)


def test_read_only_and_loopback_hosts_only(server, client):
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        r = client.request(method, "/api/sources")
        assert r.status_code == 405 and "read-only" in r.json()["error"]
        assert client.request(method, "/").status_code == 405
    r = client.get("/")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert '<script src="/static/plotly.min.js"' in r.text  # served locally, no CDN
    assert "http" not in r.text.replace("http-equiv", "")
    js = client.get("/static/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000
    # DNS rebinding: a page on another origin resolving to 127.0.0.1 is refused
    assert _raw_get(server.url, "/api/sources", host="evil.example")[0] == 400
    assert _raw_get(server.url, "/api/sources", host="localhost")[0] == 200
    assert _raw_get(server.url, "/api/sources", host="[::1]:80")[0] == 200
    assert _raw_get(server.url, "/api/sources", host="127.0.0.1.evil.example")[0] == 400


# -- the command line -------------------------------------------------------------------------
def test_cli_errors_are_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    from nasforge.cli import main

    def run(*args: str) -> str:
        monkeypatch.setattr(sys, "argv", ["nasforge", "explore", *args])
        with pytest.raises(SystemExit) as exc:
            main()
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
        return err

    assert "is not a directory" in run(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    assert "holds no table and no run directory" in run(str(tmp_path / "empty"))
    assert "--port 70000" in run(str(tmp_path / "empty"), "--port", "70000")


def test_cli_warns_on_a_non_loopback_host(explore_root, monkeypatch):
    from typer.testing import CliRunner

    import nasforge.explore as explore_pkg
    from nasforge.cli import app

    class Opened:  # what the command needs of an Explorer here: a count of sources
        def __init__(self, paths):
            self.paths = paths

        def sources(self):
            return {"tables": self.paths, "runs": []}

    seen = {}
    monkeypatch.setattr(explore_pkg, "serve", lambda ex, **kw: seen.update(kw))
    monkeypatch.setattr(explore_pkg, "Explorer", Opened)
    table = str(explore_root / "table")
    r = CliRunner().invoke(app, ["explore", table, "--host", "0.0.0.0", "--port", "8765"])
    assert r.exit_code == 0, r.output
    assert "warning" in r.output and "reachable from other machines" in r.output
    assert seen["host"] == "0.0.0.0" and seen["port"] == 8765
    r = CliRunner().invoke(app, ["explore", table])
    assert "warning" not in r.output and seen["host"] == "127.0.0.1" and seen["port"] == 0


def test_cli_serves_on_loopback_and_prints_the_url(explore_root):
    """The real command in a subprocess: a free port on 127.0.0.1, the URL printed, the
    page answered there."""
    code = "from nasforge.cli import main; main()"
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "explore", str(explore_root / "table")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()
        assert "1 table(s), 0 run(s) at http://127.0.0.1:" in line, line + proc.stderr.read()
        url = line.split(" at ")[1].split()[0]
        status, body = _raw_get(url, "/api/sources")
        assert status == 200 and json.loads(body)["tables"][0]["archs"] == 15625
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        proc.stdout.close()
        proc.stderr.close()


def test_nan_values_become_null():
    from nasforge.explore.server import _dumps
    from nasforge.explore.tables import RawJSON

    assert json.loads(_dumps({"a": math.nan, "b": [1.0, math.inf], "c": RawJSON("[1,null]")})) == {
        "a": None,
        "b": [1.0, None],
        "c": [1, None],
    }


# -- cells of the other spaces ------------------------------------------------------------------
def test_width_configurations_draw_as_bars_and_filter_per_layer():
    from nasforge.explore.cells import cell_view

    view = cell_view("nats-sss")
    bars = view.draw("64:32:16:48:8")
    assert bars["kind"] == "bars" and bars["values"] == [64, 32, 16, 48, 8] and bars["max"] == 64
    pos = view.positions()
    assert len(pos) == 5 and pos[0]["options"] == ["8", "16", "24", "32", "40", "48", "56", "64"]
    picks = view.picks(["64:32:16:48:8", "8:8:8:8:8"])
    assert picks.tolist() == [[7, 3, 1, 5, 0], [0, 0, 0, 0, 0]]


def test_darts_genotypes_draw_as_two_cell_dags():
    from nasforge.explore.cells import cell_view
    from nasforge.spaces.darts import PUBLISHED

    view = cell_view("darts")
    g = PUBLISHED["DARTS_V2"]
    d = view.draw(g.to_string())
    assert [x["title"] for x in d["graphs"]] == ["normal cell", "reduce cell"]
    normal = d["graphs"][0]
    assert normal["nodes"] == ["c_{k-2}", "c_{k-1}", "0", "1", "2", "3", "c_{k}"]
    ops = [(e["op"], e["src"], e["dst"]) for e in normal["edges"] if e["op"]]
    assert ops == [(op, i, 2 + k // 2) for k, (op, i) in enumerate(g.normal)]
    concat = [e["src"] for e in normal["edges"] if not e["op"]]
    assert concat == list(g.normal_concat)
    labels = view.edge_labels(28)  # a DARTS-space one-shot run's probs: 2 cells x 14 edges
    assert labels[0] == "normal 0<-c_{k-2}" and labels[14] == "reduce 0<-c_{k-2}"
    assert labels[13] == "normal 3<-2" and view.op_names(8)[0] == "none"
    with pytest.raises(Exception, match="genotype"):
        view.draw("not a genotype")

"""``nasforge arch info`` and ``nasforge space info``."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from nasforge.cli import app

runner = CliRunner()


def test_arch_info_json() -> None:
    s = "|none~0|+|skip_connect~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"
    res = runner.invoke(app, ["arch", "info", s, "--json", "--dataset", "cifar100"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["arch"] == s
    assert info["ops"][3] == {"edge": "3<-0", "op": "nor_conv_3x3"}
    # Same network as "conv3x3 from the input straight to the output" (its class rep).
    assert info["canonical_index"] <= info["index"]
    assert info["params_m"] > 0 and info["flops_m"] > 0


def test_arch_info_by_index_table() -> None:
    res = runner.invoke(app, ["arch", "info", "0"])
    assert res.exit_code == 0
    assert "avg_pool_3x3" in res.output


def test_space_info() -> None:
    res = runner.invoke(app, ["space", "info", "nb201", "--json"])
    assert res.exit_code == 0
    info = json.loads(res.output)
    assert (info["size"], info["unique"], len(info["ops"])) == (15625, 6466, 5)


def test_bad_arch_exits_2_with_a_clear_message() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from nasforge.cli import main; main()", "arch", "info", "|x~0|"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "expected" in proc.stderr and "|x~0|" in proc.stderr

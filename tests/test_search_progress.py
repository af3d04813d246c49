"""``search --evaluator train`` shows progress per evaluation and per epoch of the training
in progress (issue 18, "visible progress"); ``--quiet`` drops the bars, never the result."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import Progress
from typer.testing import CliRunner

import nasforge.cli.search as search_cli
from nasforge.cli import app
from nasforge.progress import CountingEvaluator, epoch_listener, make_progress, report_epoch

runner = CliRunner(env={"COLUMNS": "250"})
TRAIN_ARGS = [
    "search",
    "--algo",
    "random",
    "--evaluator",
    "train",
    "--dataset",
    "digits",
    "--budget",
    "2evals",
    "--epochs",
    "2",
    "--limit",
    "64",
    "--channels",
    "4",
    "--cells",
    "1",
    "--threads",
    "1",
]


class _Recording(Progress):
    """A progress bar that logs every (task, completed, total) it is moved to."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.log: list[tuple[str, float, float | None]] = []

    def _note(self, task_id):
        task = self._tasks[task_id]
        self.log.append((task.description, task.completed, task.total))

    def update(self, task_id, **kwargs):
        super().update(task_id, **kwargs)
        self._note(task_id)

    def advance(self, task_id, advance=1):
        super().advance(task_id, advance)
        self._note(task_id)


def test_train_evaluator_search_shows_evaluations_and_epochs(tmp_path, monkeypatch):
    bars = []

    def recording(console):
        layout = make_progress("{task.description}").columns  # the layout search uses
        bar = _Recording(*layout, console=Console(file=io.StringIO()))
        bars.append(bar)
        return bar

    monkeypatch.setattr(search_cli, "_progress", recording)
    res = runner.invoke(app, [*TRAIN_ARGS, "-o", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    (bar,) = bars
    evals = [(c, t) for d, c, t in bar.log if d == "evaluations"]
    epochs = [(c, t) for d, c, t in bar.log if d == "epochs of this training"]
    assert evals == [(1, 2), (2, 2)]  # one step per answered evaluation, of a known total
    # each of the 2 trainings: reset to 0, then epoch 1 and 2 of 2, while it runs
    assert epochs == [(0, 2), (1, 2), (2, 2)] * 2
    assert "search results" in res.output


def test_quiet_train_search_prints_only_the_result(tmp_path):
    res = runner.invoke(app, [*TRAIN_ARGS, "-o", str(tmp_path / "o"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "search results" in res.output and "wrote " in res.output
    assert "evaluations" not in res.output and "epochs of this training" not in res.output


def test_counting_evaluator_and_epoch_listener():
    class Inner:
        clock = "wall"

        def evaluate(self, arch, fidelity=None, *, resume_key=None):
            return (arch, fidelity)

        def evaluate_batch(self, requests, *, executor=None):
            return [self.evaluate(a, f) for a, f, _ in requests]

    counted = []
    ev = CountingEvaluator(Inner(), counted.append)
    assert ev.clock == "wall" and ev.evaluate("a", 3) == ("a", 3)
    assert ev.evaluate_batch([("b", 1, None), ("c", 2, None)]) == [("b", 1), ("c", 2)]
    assert counted == [1, 2]
    heard = []
    with epoch_listener(lambda d, t: heard.append((d, t))):
        report_epoch(1, 5)
    report_epoch(2, 5)  # after the block: nobody listens
    assert heard == [(1, 5)]

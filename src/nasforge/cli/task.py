"""``nasforge task ...``: the registered tasks (what a network learns and how it is judged)."""

from __future__ import annotations

import json

import typer
from rich.markup import escape
from rich.table import Table

task_app = typer.Typer(help="Inspect the tasks (data, loss, metrics).", no_args_is_help=True)


@task_app.command("list")
def task_list(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """One row per registered task: its primary metric, metrics, datasets and description."""
    from nasforge.tasks import TASKS, get_task

    rows = [get_task(name).describe() for name in TASKS.names()]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    from nasforge.progress import output_console

    table = Table(title="tasks")
    for col in ("task", "primary", "metrics", "default dataset"):
        table.add_column(col, no_wrap=True)
    table.add_column("description", overflow="fold")
    for r in rows:
        primary = next(m for m in r["metrics"] if m["name"] == r["primary"])
        direction = "max" if primary["higher_is_better"] else "min"
        table.add_row(
            escape(r["name"]),
            f"{r['primary']} ({direction})",
            escape(
                ", ".join(
                    m["name"] + (f" [{m['unit'].strip()}]" if m["unit"].strip() else "")
                    for m in r["metrics"]
                )
            ),
            escape(r["default_dataset"]),
            escape(r["description"]),
        )
    output_console().print(table)


@task_app.command("info")
def task_info(
    name: str = typer.Argument(..., help="A task name (see `nasforge task list`)."),
) -> None:
    """The task's full description as JSON."""
    from nasforge.tasks import get_task

    print(json.dumps(get_task(name).describe(), indent=2))


def register(app: typer.Typer) -> None:
    app.add_typer(task_app, name="task")

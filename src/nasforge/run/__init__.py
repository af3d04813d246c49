"""Executors: where tasks run. One interface, two engines.

``local`` (in-process, or a pool of worker processes) is the embedded default; ``ray``
runs one Ray task per job on a local or remote cluster (``pip install nasforge[ray]``).
The benchmark builder and parallel black-box searches submit work through this interface
only::

    from nasforge.run import create_executor

    with create_executor("local", workers=2) as ex:
        for out in ex.map(train_one, tasks):  # yields as each task finishes
            ...
"""

from nasforge.run.base import EXECUTORS, Executor, Job, Outcome, TaskError, create_executor
from nasforge.run.local import LocalExecutor
from nasforge.run.ray import RayExecutor  # registers "ray"; imports ray only when built

__all__ = [
    "EXECUTORS",
    "Executor",
    "Job",
    "LocalExecutor",
    "Outcome",
    "RayExecutor",
    "TaskError",
    "create_executor",
]

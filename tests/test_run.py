"""Executors: the local engine (in-process and process pool) and the shared interface."""

from __future__ import annotations

import os
import time

import pytest

from nasforge.errors import NasforgeError, RegistryError
from nasforge.run import EXECUTORS, LocalExecutor, TaskError, create_executor


# Task functions live at module level so spawned workers can import them by reference.
def square(x: int) -> int:
    return x * x


def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError(f"bad task {x}")
    return x


def sleep_then_return(x: float) -> float:
    time.sleep(x)
    return x


def die_on_zero(x: int) -> int:
    if x == 0:
        os._exit(13)  # simulate a worker killed mid-task (OOM killer, segfault)
    return x


def test_registry_lists_both_engines():
    assert {"local", "ray"} <= set(EXECUTORS.names())
    with pytest.raises(RegistryError, match="unknown executor 'dask'"):
        create_executor("dask")


def test_bad_worker_count_is_rejected():
    with pytest.raises(NasforgeError, match="workers >= 1, got 0"):
        LocalExecutor(workers=0)


def test_in_process_map_streams_every_result_once_and_captures_errors():
    with create_executor("local") as ex:
        assert ex.num_workers == 1
        outs = list(ex.map(fail_on_three, range(6)))
    assert sorted(o.index for o in outs) == list(range(6))
    by_index = {o.index: o for o in outs}
    assert not by_index[3].ok
    assert "ValueError: bad task 3" in by_index[3].error
    assert all(by_index[i].ok and by_index[i].value == i for i in (0, 1, 2, 4, 5))
    assert all(o.run_time >= 0 for o in outs)


def test_in_process_map_is_lazy():
    # Streaming: the driver sees result k before task k+1 is submitted, so an early stop
    # leaves the rest of the task list untouched.
    consumed = []

    def tasks():
        for i in range(100):
            consumed.append(i)
            yield i

    with LocalExecutor() as ex:
        for out in ex.map(square, tasks()):
            if out.index == 2:
                break
    assert consumed == [0, 1, 2]


def test_submit_result_and_error():
    with LocalExecutor() as ex:
        assert ex.submit(square, 7).result() == 49
        job = ex.submit(fail_on_three, 3)
        assert job.done()
        with pytest.raises(TaskError, match="bad task 3"):
            job.result()


@pytest.mark.slow
def test_process_pool_results_come_back_as_they_finish_and_survive_a_dead_worker():
    with LocalExecutor(workers=2) as ex:
        slow = ex.submit(sleep_then_return, 1.5)
        fast = ex.submit(sleep_then_return, 0.0)
        first = next(ex.as_completed([slow, fast]))
        assert first is fast  # completion order, not submission order
        assert slow.result() == 1.5
        # A worker that dies takes down its task (reported, not raised) and the pool is
        # rebuilt for the tasks submitted after it.
        outs = {o.index: o for o in ex.map(die_on_zero, [0])}
        assert not outs[0].ok and "worker lost" in outs[0].error
        outs = {o.index: o for o in ex.map(square, range(4))}
        assert {i: o.value for i, o in outs.items()} == {0: 0, 1: 1, 2: 4, 3: 9}

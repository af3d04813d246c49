"""Executors: the local engine (in-process and process pool) and the shared interface."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


# -- workers die with their parent -----------------------------------------------------------
def _descendants(pid: int) -> set[int]:
    """Live descendants of ``pid``, read from /proc (zombies count as gone)."""
    parent_of = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited while we looked
        if fields[0] != "Z":
            parent_of[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {c for c, p in parent_of.items() if p in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    out = set()
    for p in pids:
        try:
            state = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            out.add(p)
    return out


def kill_9_and_check_no_process_survives(cmd: list[str], min_children: int, within: float) -> None:
    """Start ``cmd``, wait until it has ``min_children`` live descendants, ``kill -9`` it, and
    assert every one of them is gone ``within`` seconds."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    children: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            children = _descendants(proc.pid)
            if len(children) >= min_children:
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert len(children) >= min_children, children
        children = _descendants(proc.pid)  # the latest snapshot, right before the kill
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + within
        while _alive(children) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = _alive(children)
        assert not left, [Path(f"/proc/{p}/cmdline").read_bytes()[:200] for p in left]
    finally:
        for p in _alive(children):  # never leave orphans behind, even when the test fails
            os.kill(p, signal.SIGKILL)
        proc.kill()
        proc.wait()


POOL_DRIVER = """
import time
from nasforge.run import LocalExecutor
if __name__ == "__main__":
    ex = LocalExecutor(workers=2)
    jobs = [ex.submit(time.sleep, 120) for _ in range(2)]
    time.sleep(120)
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_pool_workers_and_resource_tracker_end_when_the_driver_is_killed(tmp_path):
    # 2 busy workers + multiprocessing's resource tracker; a kill -9 of the driver used to
    # leave all three running for ever.
    script = tmp_path / "driver.py"
    script.write_text(POOL_DRIVER)
    kill_9_and_check_no_process_survives([sys.executable, str(script)], 3, within=5.0)

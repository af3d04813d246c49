"""The embedded default executor: in-process, or a local pool of worker processes."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import multiprocessing.connection
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from nasforge.errors import NasforgeError
from nasforge.run.base import EXECUTORS, Executor, Job, _Reply, _run_task


def _exit_when_parent_dies() -> None:
    """Make this worker process end as soon as the process that started it dies.

    A ``kill -9`` of the driver gives it no chance to shut its pool down, and a pool worker
    on its own never notices: it would train on (or wait for work) for ever, and keep
    multiprocessing's resource tracker alive too, which exits only once every process
    holding its pipe is gone. multiprocessing hands each child a *sentinel*, a pipe whose
    other end only the parent holds, so it becomes readable exactly when the parent is gone
    (on every platform and start method); a daemon thread waits on it and exits the
    process. The thread blocks without polling and needs the GIL only to exit, which torch
    releases inside its kernels. Where no sentinel exists, the thread polls ``getppid()``.

    Linux's ``prctl(PR_SET_PDEATHSIG)`` is not used: it fires when the *thread* that
    spawned the worker ends, and a pool spawns workers from whichever thread submits,
    which would kill healthy workers of a live driver.
    """
    parent = mp.parent_process()
    sentinel = getattr(parent, "sentinel", None)
    if sentinel is not None:

        def watch() -> None:
            multiprocessing.connection.wait([sentinel])
            os._exit(1)

    else:  # pragma: no cover - every start method of CPython >= 3.8 provides a sentinel
        ppid = os.getppid()

        def watch() -> None:
            while os.getppid() == ppid:
                time.sleep(0.5)
            os._exit(1)

    threading.Thread(target=watch, name="nasforge-parent-watch", daemon=True).start()


def _init_worker(threads: int | None) -> None:
    """Pool initializer: end with the parent; cap intra-op threads so K workers don't
    oversubscribe the cores.

    torch reads ``OMP_NUM_THREADS`` when it is first imported, so setting the variable here
    covers tasks that import torch later without making every worker pay for importing it.
    """
    _exit_when_parent_dies()
    if threads is not None:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(threads)
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)


class _FutureJob(Job):
    def __init__(self, future: cf.Future) -> None:
        self.future = future

    def done(self) -> bool:
        return self.future.done()

    def _reply(self, timeout: float | None = None) -> _Reply:
        try:
            return self.future.result(timeout)
        except cf.TimeoutError:
            raise TimeoutError(f"task not finished within {timeout} s") from None
        except (BrokenProcessPool, cf.CancelledError) as exc:
            # The worker process died (killed, out of memory, segfault): no traceback to ship.
            return _Reply(None, f"{type(exc).__name__}: worker lost: {exc}", float("nan"))


@EXECUTORS.register("local")
class LocalExecutor(Executor):
    """Runs tasks on this machine.

    ``workers=1`` (the default) runs each task in the driver's own process when it is
    submitted: no start-up cost, simplest to debug. ``workers=K > 1`` (or ``processes=True``)
    uses a pool of K worker processes started with ``mp_context`` (default ``"spawn"``:
    forking a process that already ran torch's thread pools can deadlock). Each pool worker
    gets ``threads_per_worker`` torch threads (default: the cores divided among workers).
    """

    name = "local"

    def __init__(
        self,
        workers: int = 1,
        *,
        processes: bool | None = None,
        threads_per_worker: int | None = None,
        mp_context: str = "spawn",
    ) -> None:
        if not isinstance(workers, int) or workers < 1:
            raise NasforgeError(f"local executor needs workers >= 1, got {workers!r}")
        self._workers = workers
        self._processes = workers > 1 if processes is None else processes
        self._pool: cf.ProcessPoolExecutor | None = None
        if self._processes and threads_per_worker is None:
            threads_per_worker = max(1, (os.cpu_count() or 1) // workers)
        self._threads = threads_per_worker
        self._mp_context = mp_context
        if self._processes:
            self._pool = self._new_pool()

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=mp.get_context(self._mp_context),
            initializer=_init_worker,
            initargs=(self._threads,),
        )

    @property
    def num_workers(self) -> int:
        return self._workers

    @property
    def in_process(self) -> bool:
        return self._pool is None

    @property
    def default_in_flight(self) -> int:
        # In-process tasks run at submission, so a window of one is what streams each
        # result to the driver as soon as it exists.
        return 1 if self._pool is None else 2 * self._workers

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Job:
        if self._pool is None:
            # In-process: run now; the driver is the worker. A KeyboardInterrupt is not an
            # Exception, so it still stops the driver instead of becoming a failed task.
            fut: cf.Future = cf.Future()
            fut.set_result(_run_task(fn, args, kwargs))
            return _FutureJob(fut)
        try:
            return _FutureJob(self._pool.submit(_run_task, fn, args, kwargs))
        except BrokenProcessPool:
            # A worker died (its in-flight jobs report "worker lost"); the pool is unusable
            # from then on, so start a fresh one instead of failing every later task.
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            return _FutureJob(self._pool.submit(_run_task, fn, args, kwargs))

    def wait(self, jobs: list[Job], timeout: float | None = None) -> list[Job]:
        by_future = {j.future: j for j in jobs}  # type: ignore[attr-defined]
        done, _ = cf.wait(by_future, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return [by_future[f] for f in done]

    def cancel(self, job: Job) -> None:
        job.future.cancel()  # type: ignore[attr-defined]

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __repr__(self) -> str:
        mode = "processes" if self._processes else "in-process"
        return f"LocalExecutor(workers={self._workers}, {mode})"

"""The executor interface: submit picklable tasks, get results back as they finish.

The builder and any parallel black-box search talk to this interface only, so the same
driver code runs in-process, on a local process pool, or on a Ray cluster. Executors are
registered by name in :data:`EXECUTORS` (``"local"``, ``"ray"``) and built with
:func:`create_executor`.

A task is a picklable callable plus picklable arguments. The worker-side wrapper
:func:`_run_task` catches every exception *inside* the worker and ships back a formatted
traceback, so an unpicklable exception or a foreign exception type never breaks the
driver, and a failed task is an :class:`Outcome` like any other rather than a crash of the
stream.
"""

from __future__ import annotations

import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from nasforge.errors import NasforgeError
from nasforge.registry import Registry

EXECUTORS: Registry[Executor] = Registry("executor")


class TaskError(NasforgeError, RuntimeError):
    """A task raised in its worker, or its worker died; the message carries the traceback."""


@dataclass(frozen=True)
class Outcome:
    """One finished task of :meth:`Executor.map`.

    ``index`` is the task's position in the input iterable; exactly one of ``value`` (the
    return value, when ``ok``) and ``error`` (the worker's formatted traceback) is set.
    ``run_time`` is the seconds the task itself ran inside its worker (``nan`` when the
    worker died before reporting), so the driver can tell task time from executor overhead.
    """

    index: int
    task: Any
    value: Any = None
    error: str | None = None
    run_time: float = float("nan")

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class _Reply:
    """What the worker wrapper sends back: a value or a formatted error, and the run time."""

    value: Any
    error: str | None
    run_time: float


def _run_task(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Reply:
    """Worker-side wrapper: run ``fn`` and turn any exception into a picklable reply."""
    t0 = time.perf_counter()
    try:
        value = fn(*args, **kwargs)
    except Exception:
        return _Reply(None, traceback.format_exc(), time.perf_counter() - t0)
    return _Reply(value, None, time.perf_counter() - t0)


class Job(ABC):
    """Handle of one submitted task (like ``concurrent.futures.Future``)."""

    @abstractmethod
    def done(self) -> bool:
        """Whether the task has finished (successfully or not)."""

    @abstractmethod
    def _reply(self, timeout: float | None = None) -> _Reply:
        """Block until finished; a dead worker becomes a reply carrying the error."""

    def result(self, timeout: float | None = None) -> Any:
        """The task's return value; raises :class:`TaskError` if it failed."""
        reply = self._reply(timeout)
        if reply.error is not None:
            raise TaskError(reply.error)
        return reply.value

    def error(self, timeout: float | None = None) -> str | None:
        """The task's formatted error, or ``None`` if it succeeded."""
        return self._reply(timeout).error

    def run_time(self, timeout: float | None = None) -> float:
        """Seconds the task ran inside its worker."""
        return self._reply(timeout).run_time

    def outcome(self, index: int = 0, task: Any = None) -> Outcome:
        """The finished job as an :class:`Outcome` (blocks until it is finished)."""
        reply = self._reply()
        return Outcome(index, task, reply.value, reply.error, reply.run_time)


class Executor(ABC):
    """Runs picklable tasks somewhere and streams their results back as they finish.

    Subclasses implement :meth:`submit`, :meth:`wait` and :meth:`shutdown`; :meth:`map`
    and :meth:`as_completed` are built on those. Use as a context manager so workers are
    released even when the driver is interrupted.
    """

    #: registry name ("local", "ray")
    name: str = ""

    @property
    @abstractmethod
    def num_workers(self) -> int:
        """How many tasks can run at the same time."""

    @property
    def in_process(self) -> bool:
        """Whether tasks run inside the driver's own process (then they share its memory,
        e.g. a dataset the driver already loaded)."""
        return False

    @property
    def default_in_flight(self) -> int:
        """How many tasks :meth:`map` keeps submitted ahead: enough to keep workers busy."""
        return 2 * max(1, self.num_workers)

    @abstractmethod
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Job:
        """Schedule ``fn(*args, **kwargs)``; returns at once with a :class:`Job`."""

    @abstractmethod
    def wait(self, jobs: list[Job], timeout: float | None = None) -> list[Job]:
        """Block until at least one of ``jobs`` is done and return all that are done.

        Returns an empty list only when ``timeout`` seconds pass first. With :meth:`submit`
        this is the building block of drivers that keep a window of tasks in flight and
        add work (e.g. retries) as results arrive.
        """

    @abstractmethod
    def shutdown(self) -> None:
        """Release the workers (pending tasks are cancelled where the engine allows)."""

    def as_completed(self, jobs: Iterable[Job], timeout: float | None = None) -> Iterator[Job]:
        """Yield ``jobs`` in the order they finish.

        Raises ``TimeoutError`` if ``timeout`` seconds pass without any job finishing.
        """
        pending = list(jobs)
        while pending:
            done = self.wait(pending, timeout)
            if not done:
                raise TimeoutError(f"no task finished within {timeout} s")
            done_ids = {id(j) for j in done}
            pending = [j for j in pending if id(j) not in done_ids]
            yield from done

    def map(
        self,
        fn: Callable[..., Any],
        tasks: Iterable[Any],
        *,
        max_in_flight: int | None = None,
    ) -> Iterator[Outcome]:
        """Run ``fn(task)`` for every task and yield an :class:`Outcome` as each finishes.

        Results come back in completion order, not input order (``Outcome.index`` tells the
        position). At most ``max_in_flight`` tasks are submitted ahead of the results
        (default: :attr:`default_in_flight`), so a huge task list is consumed lazily and
        the driver can stop early without having queued everything. A failing task yields
        an outcome with ``error`` set; it never stops the stream.
        """
        window = max_in_flight if max_in_flight is not None else self.default_in_flight
        if window < 1:
            raise NasforgeError(f"max_in_flight must be >= 1, got {max_in_flight}")
        it = enumerate(tasks)
        in_flight: dict[int, tuple[int, Any, Job]] = {}
        exhausted = False
        try:
            while True:
                while not exhausted and len(in_flight) < window:
                    try:
                        i, task = next(it)
                    except StopIteration:
                        exhausted = True
                        break
                    job = self.submit(fn, task)
                    in_flight[id(job)] = (i, task, job)
                if not in_flight:
                    return
                for job in self.wait([j for _, _, j in in_flight.values()], None):
                    i, task, _ = in_flight.pop(id(job))
                    yield job.outcome(i, task)
        finally:
            # The consumer stopped early (or was interrupted): drop what is still queued.
            for _, _, job in in_flight.values():
                self.cancel(job)

    def cancel(self, job: Job) -> None:  # noqa: B027 - optional hook, no-op by default
        """Best-effort cancellation of a job the driver no longer wants."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def create_executor(name: str, **kwargs: Any) -> Executor:
    """Build the executor registered under ``name`` (``"local"`` or ``"ray"``).

    The implementations register themselves when :mod:`nasforge.run` is imported (which
    Python does before this module), so this module never imports them: no import circle."""
    return EXECUTORS.create(name, **kwargs)

"""Ray executor: one Ray task per submitted job (``pip install nasforge[ray]``).

``ray`` is imported when the executor is built, not when this module is imported, so the
registry can list ``"ray"`` without the extra installed and the error names the fix.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from typing import Any

from nasforge.errors import NasforgeError
from nasforge.run.base import EXECUTORS, Executor, Job, _Reply, _run_task

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise NasforgeError(
            "the 'ray' executor needs Ray; install it with: pip install 'nasforge[ray]'"
        ) from None
    return ray


class _RayJob(Job):
    def __init__(self, ray: Any, ref: Any) -> None:
        self._ray = ray
        self.ref = ref
        self._cached: _Reply | None = None

    def done(self) -> bool:
        ready, _ = self._ray.wait([self.ref], num_returns=1, timeout=0)
        return bool(ready)

    def _reply(self, timeout: float | None = None) -> _Reply:
        if self._cached is not None:
            return self._cached
        ray = self._ray
        try:
            reply = ray.get(self.ref, timeout=timeout)
        except ray.exceptions.GetTimeoutError:
            raise TimeoutError(f"task not finished within {timeout} s") from None
        except ray.exceptions.RayError as exc:
            # Worker or node died, task cancelled, object lost: Ray's own retries (for
            # system failures) are already spent; report it like a failed task.
            text = _ANSI.sub("", str(exc))  # Ray colours its task names for terminals
            reply = _Reply(None, f"{type(exc).__name__}: {text}", float("nan"))
        self._cached = reply
        return reply


@EXECUTORS.register("ray")
class RayExecutor(Executor):
    """Runs each task as a Ray task on a local or remote Ray cluster.

    ``address=None`` joins the Ray instance this process already initialised, or starts a
    local one with ``workers`` CPUs; ``address="auto"`` or ``"ray://host:10001"`` joins an
    existing cluster (``ray.init(address=...)``). Each task asks for ``cpus_per_task`` CPUs
    and, when the cluster has GPUs, ``gpus_per_task`` of a GPU (default ``1 / gpu_share``:
    small NB201 networks don't fill a card, so ``gpu_share`` of them share one). Ray sets
    ``CUDA_VISIBLE_DEVICES`` for each task, so a task that picks ``cuda`` when available
    lands on the GPU share it was given. A Ray instance this executor started is shut down
    by :meth:`shutdown`; one it joined is left running.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int | None = None,
        cpus_per_task: float = 1.0,
        gpus_per_task: float | None = None,
        gpu_share: int = 4,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise NasforgeError(f"ray executor needs workers >= 1 or None, got {workers!r}")
        if cpus_per_task <= 0:
            raise NasforgeError(f"cpus_per_task must be > 0, got {cpus_per_task}")
        if gpu_share < 1:
            raise NasforgeError(f"gpu_share must be >= 1, got {gpu_share}")
        if gpus_per_task is not None and not 0 <= gpus_per_task <= 1:
            raise NasforgeError(f"gpus_per_task must be in [0, 1], got {gpus_per_task}")
        ray = _import_ray()
        self._ray = ray
        self._owns_ray = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "ignore_reinit_error": True,
            }
            if address is None and workers is not None:
                kwargs["num_cpus"] = workers  # only valid when starting a new local instance
            kwargs.update(init_kwargs or {})
            ray.init(address=address, **kwargs)
            self._owns_ray = True
        resources = ray.cluster_resources()
        cluster_gpus = float(resources.get("GPU", 0.0))
        if gpus_per_task is None:
            gpus_per_task = 1.0 / gpu_share if cluster_gpus > 0 else 0.0
        self.cpus_per_task = float(cpus_per_task)
        self.gpus_per_task = float(gpus_per_task)
        slots = int(float(resources.get("CPU", 1.0)) // self.cpus_per_task)
        if self.gpus_per_task > 0:
            slots = min(slots, int(cluster_gpus / self.gpus_per_task))
        self._workers = max(1, min(slots, workers) if workers is not None else slots)
        self._remote = ray.remote(_run_task).options(
            num_cpus=self.cpus_per_task, num_gpus=self.gpus_per_task
        )

    @property
    def num_workers(self) -> int:
        return self._workers

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Job:
        if self._remote is None:
            raise NasforgeError("this ray executor is shut down")
        return _RayJob(self._ray, self._remote.remote(fn, args, kwargs))

    def wait(self, jobs: list[Job], timeout: float | None = None) -> list[Job]:
        by_ref = {j.ref: j for j in jobs}  # type: ignore[attr-defined]
        refs = list(by_ref)
        ready, _ = self._ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:  # collect everything else that is already finished too
            ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=0)
        return [by_ref[r] for r in ready]

    def cancel(self, job: Job) -> None:
        # A job that already finished or is gone has nothing to cancel.
        with contextlib.suppress(Exception):
            self._ray.cancel(job.ref)  # type: ignore[attr-defined]

    def shutdown(self) -> None:
        self._remote = None
        if self._owns_ray and self._ray.is_initialized():
            self._ray.shutdown()
        self._owns_ray = False

    def __repr__(self) -> str:
        return (
            f"RayExecutor(workers={self._workers}, cpus_per_task={self.cpus_per_task}, "
            f"gpus_per_task={self.gpus_per_task})"
        )

"""``ray``: folds as Ray tasks with resource requests, so a Ray cluster schedules them across its nodes.

Connects to an existing cluster (``address``: ``"auto"`` or ``"ray://host:10001"``) or starts a local one. Results
(records, predictions, errors) return to the driver, which alone writes the store. Workers compute features into
the grid's ``cache_dir``: put it on storage every node mounts (NFS, Lustre) so each entry is computed once, under
the cache's file lock; with node-local caches each node computes its own copy. Workers must have benchkit and the
grid's plugins installed (``runtime_env`` can ship them). See docs/scaling.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from benchkit.api import ConfigError, hookimpl


class RayExecutor:
    """One Ray task per fold, requesting ``num_cpus`` / ``num_gpus`` / ``memory`` (bytes) each."""

    in_process = False

    def __init__(
        self, address: str | None = None, num_cpus: float = 1, num_gpus: float = 0, memory: int | None = None,
        local_cpus: int | None = None, runtime_env: dict[str, Any] | None = None,
    ) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("executor ray: Ray is not installed (pip install 'benchkit[ray]')") from None
        self.ray = ray
        self.address, self.local_cpus, self.runtime_env = address, local_cpus, runtime_env
        self.options = {"num_cpus": num_cpus, "num_gpus": num_gpus, "max_retries": 0}
        if memory:
            self.options["memory"] = memory
        self._started = False
        self._refs: list[Any] = []

    def _connect(self) -> None:
        if self.ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": True, "include_dashboard": False}
        if self.runtime_env:
            kwargs["runtime_env"] = self.runtime_env
        if self.address:
            kwargs["address"] = self.address
        elif self.local_cpus:
            kwargs["num_cpus"] = self.local_cpus
        try:
            self.ray.init(**kwargs)
        except (ConnectionError, RuntimeError) as e:
            raise ConfigError(f"executor ray: cannot connect to {self.address or 'a local cluster'}: {e}") from None
        self._started = True

    def map_unordered(self, work: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[Any]:
        self._connect()
        remote = self.ray.remote(_call).options(**self.options)
        work_ref = self.ray.put(work)
        self._refs = [remote.remote(work_ref, t) for t in tasks]
        while self._refs:
            done, self._refs = self.ray.wait(self._refs, num_returns=1)
            for ref in done:
                yield self.ray.get(ref)
        self.close()

    def close(self, cancel: bool = False) -> None:
        if cancel:
            for ref in self._refs:
                self.ray.cancel(ref, force=True)
        self._refs = []
        if self._started:
            self.ray.shutdown()
            self._started = False


def _call(work: Callable[[Any], Any], task: Any) -> Any:
    return work(task)


@hookimpl
def benchkit_register(registry):
    registry.executor("ray", RayExecutor)

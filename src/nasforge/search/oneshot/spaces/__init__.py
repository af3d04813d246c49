"""The per-space supernet adapters of one-shot search (:class:`SupernetAdapter`), registered
by space name in :data:`nasforge.search.registry.ONESHOT_SPACES`: ``nb201``
(:mod:`.nb201`), ``darts`` (:mod:`.darts`). The adapter modules are imported by
:mod:`nasforge.search.oneshot` (listed once there)."""

from nasforge.search.oneshot.spaces.base import CAPABILITIES, SupernetAdapter, get_adapter

__all__ = ["CAPABILITIES", "SupernetAdapter", "get_adapter"]

"""sparsemax and sparsestmax: sparse relaxations of a categorical choice.

``sparsemax(z)`` (Martins & Astudillo 2016) is the Euclidean projection of ``z`` onto the
probability simplex. ``sparsestmax(z, r)`` (Shao et al., "SSN: Learning Sparse Switchable
Normalization via SparsestMax", CVPR 2019), the relaxation trilevel NAS uses for its
network-, cell- and kernel-level weights, projects further onto the part of the simplex
at distance ``>= r`` from the centroid of the support: starting from ``p = sparsemax(z)``
with support ``S`` and centroid ``u_S``, if ``|p - u_S| < r`` it moves ``p`` radially to
``u_S + r (p - u_S) / |p - u_S|``; if that leaves the simplex, the negative coordinates
are cut by sparsemax and the radius shrinks to what remains of the sphere on the smaller
face (``sqrt(r^2 - |u_S' - u_S|^2)``), and so on. ``r = 0`` is sparsemax; as ``r`` grows
to the circumradius ``sqrt((K - 1) / K)`` and beyond the output becomes one-hot, so
annealing ``r`` from 0 upwards makes the choice progressively sparser.

Followed from the trilevel-NAS authors' ``sparsestmax.py`` (found in the code index by
content; its repository name could not be resolved), with one change: when ``p`` is
exactly the centroid (equal logits) the radial direction is undefined (the authors' code
divides by zero); here it points to the first largest logit.
"""

from __future__ import annotations

import math

import torch


def sparsemax(z: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Euclidean projection of ``z`` onto the simplex along ``dim`` (differentiable)."""
    z = z.transpose(dim, -1)
    s, _ = torch.sort(z, dim=-1, descending=True)
    k = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype, device=z.device)
    cssv = s.cumsum(-1) - 1
    support = (s - cssv / k) > 0
    rho = support.sum(-1, keepdim=True)
    tau = cssv.gather(-1, rho - 1) / rho.to(z.dtype)
    return torch.clamp(z - tau, min=0).transpose(dim, -1)


def _sparsestmax_row(z: torch.Tensor, r: float) -> torch.Tensor:
    p = sparsemax(z)
    rad = float(r)
    prev_u: torch.Tensor | None = None
    for _ in range(z.numel()):
        support = (p > 0).to(p.dtype)
        if int(support.sum()) <= 1:
            return p
        u = support / support.sum()
        if prev_u is not None:
            rad = math.sqrt(max(rad**2 - float(((u - prev_u) ** 2).sum()), 0.0))
        d = p - u
        dist = torch.linalg.vector_norm(d)
        if float(dist.detach()) >= rad:
            return p
        if float(dist.detach()) <= 1e-12:
            # Equal weights: no radial direction; move towards the first largest logit.
            e = torch.zeros_like(p)
            e[int(torch.argmax(torch.where(support > 0, z, torch.full_like(z, -math.inf))))] = 1
            d = e - u
            dist = torch.linalg.vector_norm(d)
        q = u + rad * d / dist
        if float(q.detach().min()) >= 0:
            return q.clamp(0, 1)
        p, prev_u = sparsemax(q), u
    return p


def sparsestmax(z: torch.Tensor, r: float) -> torch.Tensor:
    """sparsestmax of every row of ``z`` (last dim) with radius ``r >= 0``."""
    if r < 0 or not math.isfinite(r):
        raise ValueError(f"sparsestmax radius {r!r}; expected a finite number >= 0")
    flat = z.reshape(-1, z.shape[-1])
    rows = [_sparsestmax_row(row, r) for row in flat]
    return torch.stack(rows).reshape(z.shape)

"""Multi-split reversible layers and backpropagation by reconstruction.

Zhao et al., "Memory-Efficient Differentiable Transformer Architecture Search" (Findings of
ACL 2021, arXiv 2105.14669), Eq. 3-4 and Algorithm 1. The input ``X`` of a layer is split
along the feature axis into ``n`` parts ``X_1..X_n``; split ``k`` is updated by a function
of everything else that is known at that moment::

    Y_k = X_k + G_k(X_{i>k}, Y_{i<k})                    k = 1..n   (forward)
    X_k = Y_k - G_k(X_{i>k}, Y_{i<k})                    k = n..1   (reconstruction)

``n = 2`` is RevNet's coupling (Gomez et al. 2017). ``G_k`` first pools its ``n - 1``
inputs into one tensor (element-wise max, the paper's better choice, or mean) and then
applies a module (in the search: a DARTS mixed operation, so the architecture weights
``alpha`` are parameters of ``G_k`` like any other).

:class:`ReversibleStack` runs a stack of such layers either with ordinary autograd or with
:class:`_ReconstructionBackprop`, a custom :class:`torch.autograd.Function` that keeps only
the last layer's outputs: on the way back each layer's inputs are reconstructed from its
outputs (split ``n`` first), ``G_k`` is recomputed with autograd enabled, and its
vector-Jacobian product gives the gradients of the weights, of ``alpha``, of the layer's
inputs and of any context tensor (the decoder's encoder memory). Dropout inside ``G_k`` is
replayed by restoring the random state saved before ``G_k``'s forward call.

Fidelity: the equations and the reconstruction order follow the paper as described in a
third-party summary of it (the official code, github.com/microsoft/DARTSformer, and the
paper's own text could not be read from here); tests/test_reversible.py checks the
gradients against ordinary autograd in float64.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from nasforge.errors import ArchError

#: How G_k merges its n - 1 inputs (the paper compares both; max is its default).
POOLINGS = ("max", "mean")

#: ``g(k, pooled, context) -> update of split k`` (a layer's functions, by split).
SplitFn = Callable[[int, torch.Tensor, Sequence[torch.Tensor | None]], torch.Tensor]


def pool(inputs: Sequence[torch.Tensor], how: str) -> torch.Tensor:
    """Element-wise max or mean of equally shaped tensors (one tensor: itself)."""
    if len(inputs) == 1:
        return inputs[0]
    stacked = torch.stack(list(inputs), 0)
    return stacked.amax(0) if how == "max" else stacked.mean(0)


class MultiSplitLayer(nn.Module):
    """One reversible layer: ``funcs[k]`` is the module of ``G_k`` (called as
    ``funcs[k](pooled, context)``), pooling as in :data:`POOLINGS`."""

    def __init__(self, funcs: Sequence[nn.Module], pooling: str = "max") -> None:
        super().__init__()
        if len(funcs) < 2:
            raise ArchError(f"a multi-split layer needs >= 2 splits, got {len(funcs)}")
        if pooling not in POOLINGS:
            raise ArchError(f"pooling={pooling!r}; expected one of {POOLINGS}")
        self.funcs = nn.ModuleList(funcs)
        self.pooling = pooling

    @property
    def splits(self) -> int:
        return len(self.funcs)

    def g(
        self,
        k: int,
        xs_after: Sequence[torch.Tensor],
        ys_before: Sequence[torch.Tensor],
        context: Sequence[torch.Tensor | None],
    ) -> torch.Tensor:
        """``G_k(X_{i>k}, Y_{i<k})``."""
        return self.funcs[k](pool([*ys_before, *xs_after], self.pooling), context)

    def forward(
        self, xs: Sequence[torch.Tensor], context: Sequence[torch.Tensor | None]
    ) -> list[torch.Tensor]:
        ys: list[torch.Tensor] = []
        for k in range(self.splits):
            ys.append(xs[k] + self.g(k, xs[k + 1 :], ys, context))
        return ys

    def inverse(
        self, ys: Sequence[torch.Tensor], context: Sequence[torch.Tensor | None]
    ) -> list[torch.Tensor]:
        """The inputs reconstructed from the outputs (Eq. 4, split n first)."""
        xs: list[torch.Tensor | None] = [None] * self.splits
        for k in reversed(range(self.splits)):
            after = [x for x in xs[k + 1 :] if x is not None]
            xs[k] = ys[k] - self.g(k, after, ys[:k], context)
        return [x for x in xs if x is not None]


def _rng_devices(tensors: Sequence[torch.Tensor]) -> list[int]:
    return sorted({t.device.index or 0 for t in tensors if t.is_cuda})


def _get_rng(devices: Sequence[int]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    return torch.get_rng_state(), [torch.cuda.get_rng_state(d) for d in devices]


@contextlib.contextmanager
def _replayed_rng(state: tuple[torch.Tensor, list[torch.Tensor]], devices: Sequence[int]):
    """Run with the random state ``state``; the caller's state is restored afterwards, so
    the recomputation consumes none of the training run's random numbers."""
    with torch.random.fork_rng(devices=list(devices)):
        torch.set_rng_state(state[0])
        for d, s in zip(devices, state[1], strict=True):
            torch.cuda.set_rng_state(s, d)
        yield


class _ReconstructionBackprop(torch.autograd.Function):
    """Backpropagation with reconstruction over a whole stack (Algorithm 1 per layer).

    Inputs: ``stack``, ``n_x`` (number of splits), ``n_ctx`` (context tensors), then the
    splits of the stack's input, the context tensors and every parameter of the stack.
    Saved for backward: the stack's outputs (the last layer's ``Y``), the context tensors
    (inputs that exist anyway, e.g. the encoder memory and padding masks) and one random
    state per ``G_k`` call; no intermediate activation.
    """

    @staticmethod
    def forward(ctx: Any, stack: ReversibleStack, n_x: int, n_ctx: int, *args: Any) -> Any:
        xs = list(args[:n_x])
        context = list(args[n_x : n_x + n_ctx])
        params = args[n_x + n_ctx :]
        devices = _rng_devices(xs)
        states: list[list[Any]] = []
        with torch.no_grad():
            for layer in stack.layers:
                layer_states = []
                ys: list[torch.Tensor] = []
                for k in range(layer.splits):
                    layer_states.append(_get_rng(devices))
                    ys.append(xs[k] + layer.g(k, xs[k + 1 :], ys, context))
                states.append(layer_states)
                xs = ys
        ctx.stack, ctx.n_x, ctx.n_ctx, ctx.states, ctx.devices = stack, n_x, n_ctx, states, devices
        ctx.n_params = len(params)
        ctx.ctx_is_tensor = [c is not None for c in context]
        ctx.save_for_backward(*xs, *[c for c in context if c is not None])
        return tuple(xs)

    @staticmethod
    def backward(ctx: Any, *grad_ys: Any) -> Any:
        stack: ReversibleStack = ctx.stack
        saved = ctx.saved_tensors
        ys = [y.detach() for y in saved[: ctx.n_x]]
        rest = iter(saved[ctx.n_x :])
        context_vals = [next(rest) if is_t else None for is_t in ctx.ctx_is_tensor]
        # Context tensors that need a gradient are leaves of every recomputation; their
        # gradient accumulates over all layers and splits.
        context = [
            c.detach().requires_grad_(True) if c is not None and c.requires_grad else c
            for c in context_vals
        ]
        ctx_leaves = [(i, c) for i, c in enumerate(context) if c is not None and c.requires_grad]
        ctx_grads: list[torch.Tensor | None] = [None] * len(context)
        dys: list[torch.Tensor | None] = [
            g if g is not None else torch.zeros_like(y) for g, y in zip(grad_ys, ys, strict=True)
        ]
        param_grads: dict[int, torch.Tensor] = {}
        for li in reversed(range(len(stack.layers))):
            layer = stack.layers[li]
            n = layer.splits
            xs: list[torch.Tensor | None] = [None] * n
            dxs: list[torch.Tensor | None] = [None] * n
            for k in reversed(range(n)):
                after = [x.detach().requires_grad_(True) for x in xs[k + 1 :]]  # type: ignore[union-attr]
                before = [y.detach().requires_grad_(True) for y in ys[:k]]
                fparams = [p for p in layer.funcs[k].parameters() if p.requires_grad]
                with torch.enable_grad(), _replayed_rng(ctx.states[li][k], ctx.devices):
                    g = layer.g(k, after, before, context)
                with torch.no_grad():
                    xs[k] = ys[k] - g
                leaves = [*after, *before, *(c for _, c in ctx_leaves), *fparams]
                if g.requires_grad:
                    grads = torch.autograd.grad(g, leaves, dys[k], allow_unused=True)
                else:  # a constant update (the "zero" op): no gradient flows through G_k
                    grads = (None,) * len(leaves)
                it = iter(grads)
                for j in range(k + 1, n):
                    dxs[j] = _acc(dxs[j], next(it))
                for j in range(k):
                    dys[j] = _acc(dys[j], next(it))
                for i, _ in ctx_leaves:
                    ctx_grads[i] = _acc(ctx_grads[i], next(it))
                for p in fparams:
                    gp = next(it)
                    if gp is not None:
                        param_grads[id(p)] = _acc(param_grads.get(id(p)), gp)
                dxs[k] = _acc(dxs[k], dys[k])
            ys = [x for x in xs if x is not None]
            dys = list(dxs)
        params = list(stack.parameters())
        out_params = [param_grads.get(id(p)) for p in params]
        return (None, None, None, *dys, *ctx_grads, *out_params[: ctx.n_params])


def _acc(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    if b is None:
        return a
    return b if a is None else a + b


class ReversibleStack(nn.Module):
    """Layers of :class:`MultiSplitLayer` with the same number of splits, run on a list of
    split tensors. ``reversible=True`` trains with backpropagation by reconstruction (only
    the last outputs are kept), ``False`` with ordinary autograd; both compute the same
    function (and, up to rounding, the same gradients)."""

    def __init__(self, layers: Sequence[MultiSplitLayer], reversible: bool = True) -> None:
        super().__init__()
        splits = {layer.splits for layer in layers}
        if len(splits) > 1:
            raise ArchError(f"layers of one stack must have one split count, got {splits}")
        self.layers = nn.ModuleList(layers)
        self.reversible = bool(reversible)

    def forward(
        self, xs: Sequence[torch.Tensor], context: Sequence[torch.Tensor | None] = ()
    ) -> list[torch.Tensor]:
        needs_grad = torch.is_grad_enabled() and (
            any(x.requires_grad for x in xs)
            or any(c is not None and c.requires_grad for c in context)
            or any(p.requires_grad for p in self.parameters())
        )
        if not (self.reversible and needs_grad and len(self.layers)):
            out = list(xs)
            for layer in self.layers:
                out = layer(out, context)
            return out
        params = list(self.parameters())
        ys = _ReconstructionBackprop.apply(self, len(xs), len(context), *xs, *context, *params)
        return list(ys)

    @torch.no_grad()
    def reconstruct(
        self, ys: Sequence[torch.Tensor], context: Sequence[torch.Tensor | None] = ()
    ) -> list[torch.Tensor]:
        """The stack's input recomputed from its output, last layer first (eval mode:
        without dropout); used to measure reconstruction error."""
        xs = list(ys)
        for layer in reversed(self.layers):
            xs = layer.inverse(xs, context)
        return xs


def saved_activation_bytes(
    step: Callable[[], torch.Tensor], exclude: Sequence[torch.Tensor] = ()
) -> tuple[int, torch.Tensor]:
    """Run ``step()`` (a forward pass returning the loss) and count the bytes autograd
    keeps for the backward pass: the distinct storages of every tensor saved for backward
    (``torch.autograd.graph.saved_tensors_hooks``), those of ``exclude`` (the parameters)
    left out. This is the activation memory between forward and backward, exactly and
    independently of the allocator and of other processes; it leaves out the transient
    memory of the backward pass itself (a reversible stack's recomputation of one layer).
    Returns the bytes and the loss (still differentiable)."""
    excluded = {t.untyped_storage().data_ptr() for t in exclude}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        key = storage.data_ptr()
        if key and key not in excluded:
            seen[key] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = step()
    return sum(seen.values()), loss

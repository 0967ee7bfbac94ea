"""Shared network building blocks: MLPs, batched ensembles, normalisers, target updates."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from agentlab.errors import UserError

_TWO_C_A = 2.0 * math.sqrt(2.0 / math.pi) * 0.044715
_TWO_C = {torch.float64: torch.tensor(2.0 * math.sqrt(2.0 / math.pi), dtype=torch.float64)}
_TWO_C[torch.float32] = _TWO_C[torch.float64].float()


def _two_c(x: torch.Tensor) -> torch.Tensor:
    """The constant 2c as a 0-dim tensor of x's dtype (cached on CPU: no conversion per call)."""
    c = _TWO_C.get(x.dtype)
    return c if c is not None and x.device.type == "cpu" else _TWO_C[torch.float64].to(x.device, x.dtype)


class _GELUTanhFn(torch.autograd.Function):
    """``y = x sigmoid(z)``, ``z = x (2c + 2ca x^2)``; ``dy/dx = s + x s (1 - s) (2c + 6ca x^2)``."""

    @staticmethod
    def forward(ctx, x):
        s = torch.addcmul(_two_c(x), x, x, value=_TWO_C_A).mul_(x).sigmoid_()
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, g):
        x, s = ctx.saved_tensors
        dz = torch.addcmul(_two_c(x), x, x, value=3.0 * _TWO_C_A)
        return dz.mul_(torch.addcmul(s, s, s, value=-1.0)).mul_(x).add_(s).mul_(g)


class GELUTanh(nn.Module):
    r"""The tanh-approximate GELU, what ``jax.nn.gelu`` / ``flax.linen.gelu`` compute by default:
    :math:`\tfrac12 x (1 + \tanh(c (x + 0.044715 x^3)))`, :math:`c = \sqrt{2/\pi}`.

    Evaluated as the identical :math:`x\, \sigma(2c(x + 0.044715 x^3))` with a hand-written
    backward: ``torch.sigmoid`` is vectorised on CPU, ``torch.tanh`` much less so, and here this is
    ~2x faster forward and backward than ``F.gelu(approximate="tanh")``, equal to it to float32
    rounding. Without autograd the forward runs in one buffer.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if vmapped(x):
            # the vectorised multi-seed update: out of place, autograd's own backward of the same formula
            # (a vmapped tensor does not report its ``requires_grad``, so the in-place path is never safe here)
            return x * torch.addcmul(_two_c(x), x, x, value=_TWO_C_A).mul(x).sigmoid()
        if torch.is_grad_enabled() and x.requires_grad:
            return _GELUTanhFn.apply(x)
        # 2c (x + a x^3) = x (2c + 2ca x^2): one addcmul, then in place
        u = torch.addcmul(_two_c(x), x, x, value=_TWO_C_A)
        return u.mul_(x).sigmoid_().mul_(x)


def vmapped(x: torch.Tensor) -> bool:
    """Is ``x`` a batched tensor of ``torch.func.vmap`` (inside the vectorised multi-seed update)?"""
    return torch._C._functorch.is_batchedtensor(x)


def affine(bias: torch.Tensor, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``bias + x @ weight``: ``addmm`` for 2-D ``x``, ``baddbmm`` (one matmul per member) for 3-D.

    Under ``torch.compile`` the 2-D case is the product, then the bias *subtracted* as ``-bias``
    (``p - (-b)`` equals ``p + b`` exactly; against eager ``addmm`` only float32 summation order
    differs): inductor rewrites ``mm + bias`` back into ``addmm`` on CPU,
    whose first step copies the broadcast bias into the output (one more pass over ``[N, out]``, ~10%
    of a FiDec update at 2x256); as a subtraction the bias joins the next pointwise kernel
    (activation, LayerNorm) instead. The 3-D case stays ``baddbmm``: inductor's C++ bmm template
    (max-autotune) fails on that epilogue, and the ensemble's rows are few.
    """
    if x.dim() == 3:
        return torch.baddbmm(bias, x, weight)
    if torch.compiler.is_compiling():
        return torch.mm(x, weight) - bias.neg()
    return torch.addmm(bias, x, weight)


ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh, "elu": nn.ELU,
    "gelu_tanh": GELUTanh,
}


def get_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda requested but no CUDA device is available")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise UserError(f"unknown device {name!r} (use auto, cpu or cuda)")
    return torch.device(name)


class MLP(nn.Sequential):
    """``in -> [Linear -> (LayerNorm) -> act] x len(hidden) -> Linear -> out``.

    ``norm_after_act=True`` gives ``Linear -> act -> LayerNorm`` (the order of the FQL/Flax
    reference ``MLP``); ``ln_eps`` is the LayerNorm epsilon (Flax default 1e-6, PyTorch 1e-5).
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int, activation: str = "relu",
                 layer_norm: bool = False, final_init_scale: float | None = None,
                 norm_after_act: bool = False, ln_eps: float = 1e-5):
        layers: list[nn.Module] = []
        d = in_dim
        for h in hidden:
            layers.append(nn.Linear(d, h))
            block = [ACTIVATIONS[activation]()]
            if layer_norm:
                block.insert(len(block) if norm_after_act else 0, nn.LayerNorm(h, eps=ln_eps))
            layers.extend(block)
            d = h
        last = nn.Linear(d, out_dim)
        if final_init_scale is not None:
            nn.init.uniform_(last.weight, -final_init_scale, final_init_scale)
            nn.init.zeros_(last.bias)
        layers.append(last)
        super().__init__(*layers)


class EnsembleLinear(nn.Module):
    """``n`` independent linear layers applied as one batched matmul: x [n, B, in] -> [n, B, out]."""

    def __init__(self, n: int, in_dim: int, out_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n, in_dim, out_dim))
        self.bias = nn.Parameter(torch.zeros(n, 1, out_dim))
        bound = 1.0 / math.sqrt(in_dim)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return affine(self.bias, x, self.weight)


class EnsembleLayerNorm(nn.Module):
    def __init__(self, n: int, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n, 1, dim))
        self.bias = nn.Parameter(torch.zeros(n, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.bias, nn.functional.layer_norm(x, x.shape[-1:], eps=self.eps), self.weight)


class EnsembleMLP(nn.Module):
    """An ensemble of ``n`` MLPs evaluated as one batched module (no Python loop over members).

    Input ``[B, in]`` is broadcast to every member; input ``[n, B, in]`` gives each member its own
    batch. Output ``[n, B, out]``. ``norm_after_act`` / ``ln_eps`` as in :class:`MLP`.
    """

    def __init__(self, n: int, in_dim: int, hidden: Sequence[int], out_dim: int, activation: str = "relu",
                 layer_norm: bool = False, norm_after_act: bool = False, ln_eps: float = 1e-5):
        super().__init__()
        self.n = n
        layers: list[nn.Module] = []
        d = in_dim
        for h in hidden:
            layers.append(EnsembleLinear(n, d, h))
            block = [ACTIVATIONS[activation]()]
            if layer_norm:
                block.insert(len(block) if norm_after_act else 0, EnsembleLayerNorm(n, h, eps=ln_eps))
            layers.extend(block)
            d = h
        layers.append(EnsembleLinear(n, d, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.n, *x.shape)
        return self.net(x)


class Normalizer(nn.Module):
    """Fixed affine observation normaliser, stored as buffers so it travels with the checkpoint."""

    def __init__(self, dim: int, eps: float = 1e-3):
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, data: torch.Tensor) -> Normalizer:
        data = torch.as_tensor(data, dtype=torch.float32)
        self.mean.copy_(data.mean(0).to(self.mean.device))
        self.std.copy_(data.std(0).clamp_min(self.eps).to(self.std.device))
        return self

    def set(self, mean, std) -> Normalizer:
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(self.eps))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """target <- (1 - tau) target + tau source, fused over all parameters."""
    tp = list(target.parameters())
    sp = list(source.parameters())
    torch._foreach_lerp_(tp, sp, tau)

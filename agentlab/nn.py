"""Shared network building blocks: MLPs, batched ensembles, normalisers, target updates."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from agentlab.errors import UserError

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh, "elu": nn.ELU,
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
    """``in -> [Linear -> (LayerNorm) -> act] x len(hidden) -> Linear -> out``."""

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int, activation: str = "relu",
                 layer_norm: bool = False, final_init_scale: float | None = None):
        layers: list[nn.Module] = []
        d = in_dim
        for h in hidden:
            layers.append(nn.Linear(d, h))
            if layer_norm:
                layers.append(nn.LayerNorm(h))
            layers.append(ACTIVATIONS[activation]())
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
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleLayerNorm(nn.Module):
    def __init__(self, n: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n, 1, dim))
        self.bias = nn.Parameter(torch.zeros(n, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.layer_norm(x, x.shape[-1:]) * self.weight + self.bias


class EnsembleMLP(nn.Module):
    """An ensemble of ``n`` MLPs evaluated as one batched module (no Python loop over members).

    Input ``[B, in]`` is broadcast to every member; input ``[n, B, in]`` gives each member its own
    batch. Output ``[n, B, out]``.
    """

    def __init__(self, n: int, in_dim: int, hidden: Sequence[int], out_dim: int, activation: str = "relu",
                 layer_norm: bool = False):
        super().__init__()
        self.n = n
        layers: list[nn.Module] = []
        d = in_dim
        for h in hidden:
            layers.append(EnsembleLinear(n, d, h))
            if layer_norm:
                layers.append(EnsembleLayerNorm(n, h))
            layers.append(ACTIVATIONS[activation]())
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

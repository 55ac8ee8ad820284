"""Regularisers of displacement or velocity fields ``(B, ndim, *spatial)`` in voxel units."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..spatial.checks import check_field

__all__ = [
    "forward_differences",
    "GradientRegulariser",
    "BendingEnergy",
    "laplacian",
    "lddmm_operator",
    "LDDMMRegulariser",
    "AffineCascadeRegulariser",
]


def forward_differences(field: torch.Tensor) -> list[torch.Tensor]:
    """Forward differences ``f[i+1] - f[i]`` along each spatial axis (each one voxel shorter on its axis)."""
    return [torch.diff(field, dim=axis) for axis in range(2, field.ndim)]


class GradientRegulariser(nn.Module):
    """Diffusion regulariser: squared (``"l2"``) or absolute (``"l1"``) forward differences of a field.

    ``axis_reduction="mean"`` averages the per-axis means (VoxelMorph, DiffuseMorph, TransMorph);
    ``"sum"`` adds them (MIDIR's ``l2reg_loss``), so paper weights carry over unchanged.
    """

    def __init__(self, penalty: str = "l2", axis_reduction: str = "mean") -> None:
        super().__init__()
        if penalty not in ("l1", "l2"):
            raise ValueError(f"penalty must be 'l1' or 'l2', got {penalty!r}")
        if axis_reduction not in ("mean", "sum"):
            raise ValueError(f"axis_reduction must be 'mean' or 'sum', got {axis_reduction!r}")
        self.penalty, self.axis_reduction = penalty, axis_reduction

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        check_field(field, "field", finite=False)
        terms = [(d * d if self.penalty == "l2" else d.abs()).mean() for d in forward_differences(field)]
        total = torch.stack(terms).sum()
        return total / len(terms) if self.axis_reduction == "mean" else total


class BendingEnergy(nn.Module):
    """Bending energy ``mean sum_ij (d^2 u / dp_i dp_j)^2`` of a field ``(B, ndim, *spatial)``, voxel units.

    Derivatives by ``torch.gradient`` applied twice (central inside, one-sided at the border); mixed
    terms count twice. Own code rather than MONAI's ``BendingEnergyLoss``, which indexes tensors with
    lists (deprecated since torch 2.9, a warning at every call) and refuses fields of 4 voxels or fewer.
    """

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        check_field(field, "field", finite=False)
        dims = list(range(2, field.ndim))
        if min(field.shape[2:]) < 3:
            raise ValueError(f"field needs at least 3 voxels along every axis, got shape {tuple(field.shape)}")
        total = 0.0
        for first in torch.gradient(field, dim=dims):
            for second in torch.gradient(first, dim=dims):
                total = total + (second * second).mean()
        return total


def laplacian(field: torch.Tensor) -> torch.Tensor:
    """Discrete Laplacian (3-point second difference per axis, summed) of every channel; replicate border."""
    ndim = field.ndim - 2
    padded = F.pad(field, [1, 1] * ndim, mode="replicate")
    out = -2.0 * ndim * field
    for axis in range(ndim):
        for shifted in (slice(0, -2), slice(2, None)):
            index = [slice(None), slice(None)] + [slice(1, -1)] * ndim
            index[axis + 2] = shifted
            out = out + padded[tuple(index)]
    return out


def lddmm_operator(field: torch.Tensor, alpha: float, gamma: float, beta: int) -> torch.Tensor:
    """``L v = (-alpha Laplacian + gamma)^beta v``, the Cauchy-Navier-type operator of LDDMM, beta applications."""
    out = field
    for _ in range(beta):
        out = gamma * out - alpha * laplacian(out)
    return out


class LDDMMRegulariser(nn.Module):
    """``mean ||L v||^2`` with ``L = (-alpha Laplacian + gamma)^beta`` (TransMorph-TVF LDDMM variant).

    The published code raises the operator output to the fourth power; this is the squared norm the
    paper writes. Defaults: alpha 0.01, gamma 0.001 (OASIS), beta 2. ``forward`` accepts one field or a
    sequence of fields (``sum over t``).
    """

    def __init__(self, alpha: float = 0.01, gamma: float = 0.001, beta: int = 2) -> None:
        super().__init__()
        if alpha < 0 or gamma < 0 or alpha + gamma == 0:
            raise ValueError(
                f"alpha and gamma must be non-negative and not both zero, got alpha={alpha}, gamma={gamma}"
            )
        if int(beta) != beta or beta < 1:
            raise ValueError(f"beta must be a positive integer, got {beta}")
        self.alpha, self.gamma, self.beta = float(alpha), float(gamma), int(beta)

    def forward(self, velocity) -> torch.Tensor:
        fields = [velocity] if isinstance(velocity, torch.Tensor) else list(velocity)
        total = 0.0
        for t, v in enumerate(fields):
            check_field(v, f"velocity[{t}]", finite=False)
            lv = lddmm_operator(v, self.alpha, self.gamma, self.beta)
            total = total + (lv * lv).sum(1).mean()
        return total


class AffineCascadeRegulariser(nn.Module):
    """VTN's regulariser on ``outputs = {"matrix": A (B, n, n), "flows": [w_k]}``:
    ``det_weight * det_loss + ortho_weight * ortho_loss + grad_weight * sum_k GradientRegulariser(w_k)``.

    ``det_loss = sum_B (det A - 1)^2 / 2`` (no flips or volume change); ``ortho_loss = sum_B sum_i (s_i + 1 / s_i
    - 2)`` over the eigenvalues ``s_i`` of ``A^T A + eps I`` (zero for a rotation: penalises shear and scaling),
    as VTN. Defaults are DiffuseReg's bootstrap weights (0.1, 0.1, 1.0).
    """

    def __init__(
        self, det_weight: float = 0.1, ortho_weight: float = 0.1, grad_weight: float = 1.0, eps: float = 1e-5
    ) -> None:
        super().__init__()
        self.det_weight, self.ortho_weight, self.grad_weight, self.eps = det_weight, ortho_weight, grad_weight, eps
        self.gradient = GradientRegulariser("l2")

    def forward(self, outputs: dict) -> torch.Tensor:
        if not isinstance(outputs, dict) or "matrix" not in outputs or "flows" not in outputs:
            raise ValueError("AffineCascadeRegulariser needs a VTN's outputs dict ('matrix' and 'flows')")
        matrix = outputs["matrix"].double()
        det = torch.linalg.det(matrix)
        det_loss = ((det - 1.0) ** 2).sum() / 2
        eye = torch.eye(matrix.shape[-1], dtype=matrix.dtype, device=matrix.device)
        s = torch.linalg.eigvalsh(matrix.transpose(-1, -2) @ matrix + self.eps * eye)
        ortho_loss = (s + (1.0 + self.eps) ** 2 / s - 2.0 * (1.0 + self.eps)).sum()
        total = (self.det_weight * det_loss + self.ortho_weight * ortho_loss).to(outputs["matrix"].dtype)
        for flow in outputs["flows"]:
            total = total + self.grad_weight * self.gradient(flow)
        return total

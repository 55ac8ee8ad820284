"""Composition of displacement fields and integration of velocity fields; the one home of integrators.

All fields are ``(B, ndim, *spatial)`` in voxel units (DESIGN.md). Displacements are resampled with
``border`` padding: outside the grid a displacement is continued by its border value, which keeps a
translation a translation after composition (zero padding would shrink it at the border).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .checks import check_field
from .warp import sample_displaced

__all__ = ["compose", "integrate_svf", "invert_svf", "integrate_tvf", "invert_displacement", "tvf_step"]


def _compose(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    # in place on grid_sample's fresh output (not saved for its backward): one full-size allocation less per step
    return sample_displaced(u, v, mode="bilinear", padding_mode="border").add_(v)


def compose(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``u`` after ``v``: the displacement of ``p -> q + u(q)`` with ``q = p + v(p)``, i.e. ``v(p) + u(p + v(p))``.

    Warping an image by the result equals warping it by ``u`` and then the warped image by ``v``.
    """
    ndim = check_field(u, "u")
    check_field(v, "v")
    if u.shape != v.shape:
        raise ValueError(f"u and v must have the same shape, got u {tuple(u.shape)} and v {tuple(v.shape)} ({ndim}D)")
    return _compose(u, v)


def _check_steps(steps: int) -> None:
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")


def integrate_svf(velocity: torch.Tensor, steps: int = 7) -> torch.Tensor:
    """``exp(v)`` by scaling and squaring: ``u = v / 2**steps``, then ``steps`` times ``u <- u after u``.

    Returns the DDF of the stationary velocity field ``velocity`` (B, ndim, *spatial), voxel units.
    """
    check_field(velocity, "velocity")
    _check_steps(steps)
    ddf = velocity / (2**steps)
    for _ in range(steps):
        ddf = _compose(ddf, ddf)
    return ddf


def invert_displacement(ddf: torch.Tensor, iterations: int = 5) -> torch.Tensor:
    """DDF of the inverse of ``p -> p + ddf(p)`` by the fixed-point iteration ``w <- -ddf(p + w(p))`` from
    ``w = -ddf`` (``iterations=0`` returns ``-ddf``, the first-order inverse). Converges where the
    transform is a small deformation (|grad ddf| < 1), as each step of a time-dependent velocity field."""
    check_field(ddf, "ddf")
    _check_steps(iterations)
    inverse = -ddf
    for _ in range(iterations):
        inverse = -sample_displaced(ddf, inverse, mode="bilinear", padding_mode="border")
    return inverse


def invert_svf(velocity: torch.Tensor, steps: int = 7) -> torch.Tensor:
    """DDF of the inverse transform of ``exp(velocity)``: ``exp(-velocity)``."""
    return integrate_svf(-velocity, steps=steps)


def integrate_tvf(velocities: Sequence[torch.Tensor] | torch.Tensor, mode: str = "compose") -> torch.Tensor:
    """Integrate N time steps of velocity ``v_0 .. v_{N-1}`` (each ``(B, ndim, *spatial)``) into one DDF.

    ``mode="compose"`` (default): the transform ``(id + v_0) o (id + v_1) o ... o (id + v_{N-1})``, built as
    ``u <- u after v_t``: step ``t`` registers the moving image already warped by ``u`` (TransMorph-TVF),
    so its displacement is applied first. Its inverse is this function on ``[-v_{N-1}, ..., -v_0]``.

    ``mode="self"``: the update of the published TransMorph-TVF code, ``u <- u + v_t(p + v_t(p))``,
    which warps each ``v_t`` by itself instead of composing it with ``u`` (kept for comparison).

    ``velocities`` may also be one tensor ``(B, N, ndim, *spatial)``.
    """
    if isinstance(velocities, torch.Tensor):
        if velocities.ndim not in (5, 6):
            raise ValueError(
                f"velocities as one tensor must have shape (B, N, ndim, *spatial), got {tuple(velocities.shape)}"
            )
        velocities = list(velocities.unbind(1))
    velocities = list(velocities)
    if not velocities:
        raise ValueError("velocities must hold at least one velocity field, got none")
    for t, v in enumerate(velocities):
        check_field(v, f"velocities[{t}]")
        if v.shape != velocities[0].shape:
            raise ValueError(
                f"all velocities must have the same shape, velocities[0] is {tuple(velocities[0].shape)} "
                f"and velocities[{t}] is {tuple(v.shape)}"
            )
    _check_mode(mode)
    ddf = None
    for v in velocities:
        ddf = tvf_step(ddf, v, mode)
    return ddf


def _check_mode(mode: str) -> None:
    if mode not in ("compose", "self"):
        raise ValueError(f"mode must be 'compose' or 'self', got {mode!r}")


def tvf_step(ddf: torch.Tensor | None, velocity: torch.Tensor, mode: str = "compose") -> torch.Tensor:
    """One step of :func:`integrate_tvf`: the running DDF ``ddf`` (``None`` before the first step) updated by
    the velocity of this step, ``ddf after velocity`` (``"compose"``) or ``ddf + velocity(p + velocity(p))``
    (``"self"``). Networks that need the running transform between steps (TransMorph-TVF) call this."""
    _check_mode(mode)
    if mode == "self":
        step = sample_displaced(velocity, velocity, mode="bilinear", padding_mode="border")
        return step if ddf is None else ddf + step
    return velocity if ddf is None else _compose(ddf, velocity)

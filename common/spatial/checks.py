"""Argument validation shared by the spatial functions: clear ``ValueError``s naming the argument."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["check_image", "check_field", "check_finite", "as_tuple"]


def check_image(image: torch.Tensor, name: str = "image") -> int:
    """Check ``image`` is a ``(B, C, *spatial)`` tensor with 2 or 3 spatial axes; return the number of spatial axes."""
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (B, C, *spatial), got {type(image).__name__}")
    if image.ndim not in (4, 5):
        raise ValueError(
            f"{name} must have shape (B, C, H, W) or (B, C, H, W, D) (2 or 3 spatial axes), "
            f"got shape {tuple(image.shape)}"
        )
    return image.ndim - 2


def check_field(field: torch.Tensor, name: str = "ddf", finite: bool = True) -> int:
    """Check ``field`` is a ``(B, ndim, *spatial)`` displacement/velocity field; return ``ndim``."""
    ndim = check_image(field, name)
    if field.shape[1] != ndim:
        raise ValueError(
            f"{name} must have one channel per spatial axis, shape (B, {ndim}, *spatial) for {ndim}D, "
            f"got shape {tuple(field.shape)}"
        )
    if not field.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {field.dtype}")
    if finite:
        check_finite(field, name)
    return ndim


def check_finite(tensor: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` when ``tensor`` holds NaN or infinite values."""
    if not bool(torch.isfinite(tensor).all()):
        bad = int((~torch.isfinite(tensor)).sum())
        raise ValueError(f"{name} holds {bad} NaN or infinite value(s) (shape {tuple(tensor.shape)})")


def as_tuple(value: int | float | Sequence, ndim: int, name: str) -> tuple:
    """Broadcast a scalar to ``ndim`` values, or check a sequence has ``ndim`` values."""
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if isinstance(value, (int, float)):
        return (value,) * ndim
    value = tuple(value)
    if len(value) != ndim:
        raise ValueError(f"{name} must have {ndim} values (one per spatial axis), got {value}")
    return value

"""A one-page PNG report of a registration: what a reader checks first, on one slice of each volume.

Panels: fixed, moving, warped; |fixed - moving| and |fixed - warped| (before / after, same scale); a checkerboard
of fixed and warped; the deformation grid over the warped image; the Jacobian determinant (diverging map around
1) with folds (det J <= 0) marked in pure red. Arrays are on the fixed grid, ``(X, Y, Z)`` (3D: the middle slice
along ``axis``) or ``(X, Y)``; the DDF is ``(ndim, *spatial)`` in voxels (DESIGN.md).
"""

from __future__ import annotations

import numpy as np

__all__ = ["FOLD_COLOUR", "registration_report"]

#: colour of the fold markers (RGB in [0, 1])
FOLD_COLOUR = (1.0, 0.0, 0.0)


def _slice(array: np.ndarray, axis: int, index: int | None) -> np.ndarray:
    if array.ndim == 2:
        return array
    return np.take(array, array.shape[axis] // 2 if index is None else index, axis=axis)


def _norm(image: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(image, (1, 99))
    return np.clip((image - lo) / (hi - lo if hi > lo else 1.0), 0, 1)


def registration_report(
    path: str,
    fixed: np.ndarray,
    moving: np.ndarray,
    warped: np.ndarray,
    ddf: np.ndarray,
    jacobian: np.ndarray,
    title: str = "",
    axis: int = 2,
    index: int | None = None,
    grid_step: int = 6,
    checker: int = 8,
) -> str:
    """Write the report PNG to ``path`` (see the module docstring); returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    fixed, moving, warped, jacobian = (np.asarray(a, dtype=np.float64) for a in (fixed, moving, warped, jacobian))
    ddf = np.asarray(ddf, dtype=np.float64)
    shapes = {a.shape for a in (fixed, moving, warped, jacobian)}
    if len(shapes) != 1 or ddf.shape[1:] != fixed.shape or ddf.shape[0] != fixed.ndim or fixed.ndim not in (2, 3):
        raise ValueError(
            "report inputs must share one 2D/3D grid and the DDF be (ndim, *grid): got fixed "
            f"{fixed.shape}, moving {moving.shape}, warped {warped.shape}, jacobian {jacobian.shape}, ddf {ddf.shape}"
        )
    in_plane = [a for a in range(fixed.ndim) if a != axis] if fixed.ndim == 3 else [0, 1]
    f, m, w = (_norm(_slice(a, axis, index)) for a in (fixed, moving, warped))
    det = _slice(jacobian, axis, index)
    u = [_slice(ddf[a], axis, index) for a in in_plane]

    fig, axes = plt.subplots(2, 4, figsize=(16, 8.5))
    panels = axes.ravel()
    for ax, image, name in zip(panels[:3], (f, m, w), ("fixed", "moving", "warped moving")):
        ax.imshow(image.T, cmap="gray", origin="lower", vmin=0, vmax=1)
        ax.set_title(name)
    before, after = np.abs(f - m), np.abs(f - w)
    top = max(before.max(), after.max(), 1e-6)
    panels[3].imshow(before.T, cmap="magma", origin="lower", vmin=0, vmax=top)
    panels[3].set_title(f"|fixed - moving| (mean {before.mean():.3f})")
    panels[4].imshow(after.T, cmap="magma", origin="lower", vmin=0, vmax=top)
    panels[4].set_title(f"|fixed - warped| (mean {after.mean():.3f})")
    ii, jj = np.meshgrid(np.arange(f.shape[0]), np.arange(f.shape[1]), indexing="ij")
    board = ((ii // checker + jj // checker) % 2).astype(bool)
    panels[5].imshow(np.where(board, f, w).T, cmap="gray", origin="lower", vmin=0, vmax=1)
    panels[5].set_title("checkerboard fixed / warped")
    panels[6].imshow(w.T, cmap="gray", origin="lower", vmin=0, vmax=1)
    x, y = ii + u[0], jj + u[1]
    for k in range(0, f.shape[0], grid_step):
        panels[6].plot(x[k, :], y[k, :], color="yellow", linewidth=0.6)
    for k in range(0, f.shape[1], grid_step):
        panels[6].plot(x[:, k], y[:, k], color="yellow", linewidth=0.6)
    panels[6].set_xlim(-0.5, f.shape[0] - 0.5)
    panels[6].set_ylim(-0.5, f.shape[1] - 0.5)
    panels[6].set_title("deformation grid")
    spread = max(abs(det.max() - 1), abs(det.min() - 1), 1e-3)
    shown = panels[7].imshow(
        det.T, cmap="coolwarm", origin="lower", norm=TwoSlopeNorm(vcenter=1.0, vmin=1 - spread, vmax=1 + spread)
    )
    folds = det <= 0
    if folds.any():
        overlay = np.zeros((*det.T.shape, 4))
        overlay[folds.T] = (*FOLD_COLOUR, 1.0)
        panels[7].imshow(overlay, origin="lower", interpolation="nearest")
    fig.colorbar(shown, ax=panels[7], fraction=0.046)
    panels[7].set_title(f"det J ({100 * folds.mean():.2f} % folds in red)")
    for ax in panels:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path

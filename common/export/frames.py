"""Frame sequences (trajectories, sampling snapshots) as a PNG strip and an animated GIF.

Frames are ``(N, X, Y[, Z])`` arrays on one grid; 3D frames show their middle slice along ``axis``. All frames
share one grey scale (the 1st-99th percentile of the whole sequence), so changes between frames are visible.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["frame_strip", "frame_gif"]


def _slices(frames: np.ndarray, axis: int) -> np.ndarray:
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim not in (3, 4):
        raise ValueError(f"frames must be (N, X, Y) or (N, X, Y, Z), got shape {frames.shape}")
    if frames.ndim == 4:
        frames = np.take(frames, frames.shape[axis + 1] // 2, axis=axis + 1)
    lo, hi = np.percentile(frames, (1, 99))
    # rows of the picture = second array axis, as radiological viewers show (X, Y) slices
    return np.clip((frames - lo) / (hi - lo if hi > lo else 1.0), 0, 1).transpose(0, 2, 1)


def frame_strip(path: str, frames: np.ndarray, labels: Sequence[str] | None = None, title: str = "", axis: int = 2):
    """One PNG row of all frames, each captioned by ``labels`` (e.g. gamma or the sampling step); returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = _slices(frames, axis)
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{len(labels)} labels for {len(images)} frames")
    fig, axes = plt.subplots(1, len(images), figsize=(1.8 * len(images), 2.2), squeeze=False)
    for i, (ax, image) in enumerate(zip(axes[0], images)):
        ax.imshow(image, cmap="gray", vmin=0, vmax=1, origin="lower")
        ax.set_title(labels[i] if labels is not None else str(i), fontsize=8)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def frame_gif(path: str, frames: np.ndarray, duration_ms: int = 150, axis: int = 2) -> str:
    """An animated GIF (looping) of the frames' middle slices, 8-bit grey; returns ``path``."""
    from PIL import Image

    images = [Image.fromarray(np.flipud((s * 255).round().astype(np.uint8))) for s in _slices(frames, axis)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return path

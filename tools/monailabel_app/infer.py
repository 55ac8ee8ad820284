"""Atlas-based label propagation with any regzoo bundle, as a MONAI Label infer task.

The user's image is the fixed image, the atlas the moving one; the result is the atlas labels warped onto the
user's image grid (``tools.register``: the bundle's real-scan stage and network, then the physical transform on
the image's own grid). The class follows MONAI Label's ``InferTask`` interface (``type``, ``labels``, ``dimension``,
``description``, ``info()``, ``config()``, ``is_valid()``, ``__call__(request) -> (label file, result dict)``)
without importing ``monailabel``, so it also runs, and is tested, where MONAI Label cannot be installed.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from ..register import _load_network, _parser, _refinement, _register_pair

__all__ = ["AtlasLabelPropagation", "demo_atlas"]


def demo_atlas(folder: str) -> tuple[str, str]:
    """The default atlas: the first demo brain phantom (image, labels), written to ``folder`` on first use."""
    from common.data import ensure_demo_data

    root = ensure_demo_data(folder, "oasis", subjects=2, seed=0)
    subject = os.path.join(root, "OASIS_OAS1_0001_MR1")
    return os.path.join(subject, "aligned_norm.nii.gz"), os.path.join(subject, "aligned_seg35.nii.gz")


class AtlasLabelPropagation:
    """Propagate ``atlas_label`` to a request's image by registering ``atlas_image`` to it with ``bundle``.

    Args:
        bundle, configs, checkpoint, device: as ``regzoo register``.
        atlas_image, atlas_label: the atlas (default: :func:`demo_atlas` in ``atlas_dir``).
        labels: ``{name: value}`` of the atlas labels (MONAI Label's label map).
        affine: the real-scan stage's pre-alignment (``none``, ``rigid``, ``affine``; default: the bundle's).
        refine: test-time refinement steps (``regzoo register --refine``; 0: none).
    """

    type = "segmentation"
    dimension = 3

    def __init__(
        self,
        bundle: str,
        checkpoint: str | None = None,
        configs=None,
        atlas_image: str | None = None,
        atlas_label: str | None = None,
        atlas_dir: str | None = None,
        labels: dict | None = None,
        device: str = "cpu",
        affine: str | None = None,
        refine: int = 0,
    ) -> None:
        if (atlas_image is None) != (atlas_label is None):
            raise ValueError("give both atlas_image and atlas_label, or neither (the demo atlas)")
        if atlas_image is None:
            atlas_dir = atlas_dir or os.path.join(os.path.dirname(os.path.abspath(__file__)), "atlas")
            atlas_image, atlas_label = demo_atlas(atlas_dir)
        for path in (atlas_image, atlas_label):
            if not os.path.isfile(path):
                raise ValueError(f"{path}: atlas file not found")
        self.bundle, self.device = bundle, device
        self.atlas_image, self.atlas_label = atlas_image, atlas_label
        self.labels = dict(labels or {})
        self.description = f"Atlas label propagation by {bundle} registration (atlas: {os.path.basename(atlas_image)})"
        overrides = {"device": f"$torch.device('{device}')"}
        if checkpoint is not None:
            overrides["checkpoint"] = checkpoint
        if affine is not None:
            overrides["real_scan#affine"] = affine
        self._parser = _parser(bundle, configs, overrides)
        self._network = _load_network(self._parser, device)
        self._refine = _refinement(bundle, configs, int(refine), 0.05)

    def info(self) -> dict:
        return {
            "type": self.type,
            "labels": self.labels,
            "dimension": self.dimension,
            "description": self.description,
            "config": self.config(),
        }

    def config(self) -> dict:
        return {"bundle": self.bundle, "device": self.device}

    def is_valid(self) -> bool:
        return os.path.isfile(self.atlas_image) and os.path.isfile(self.atlas_label)

    def __call__(self, request: dict) -> tuple[str, dict]:
        """``request["image"]``: the user's 3D NIfTI file. Returns (warped atlas label file, metrics)."""
        image = request.get("image")
        if not image:
            raise ValueError("the request names no 'image' file")
        work = tempfile.mkdtemp(prefix="regzoo-atlas-")
        try:
            pair = {"fixed": image, "moving": self.atlas_image, "moving_label": self.atlas_label}
            metrics = _register_pair(
                self._parser, self._network, pair, os.path.join(work, "out"), self.device, True, refine=self._refine
            )
            result = request.get("result_path") or os.path.join(
                tempfile.gettempdir(), f"{os.path.basename(work)}.nii.gz"
            )
            shutil.move(os.path.join(work, "out", "warped_label.nii.gz"), result)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return result, {k: v for k, v in metrics.items() if k != "dice"}

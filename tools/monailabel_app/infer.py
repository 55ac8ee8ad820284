"""Atlas-based label propagation with any regzoo bundle, as a MONAI Label infer task.

The user's image is the fixed image, the atlas the moving one; the result is the atlas labels warped onto the
user's image grid (``regzoo.register``: the bundle's real-scan stage and network, then the physical transform on
the image's own grid). The class follows MONAI Label's ``InferTask`` interface (``type``, ``labels``, ``dimension``,
``description``, ``info()``, ``config()``, ``is_valid()``, ``__call__(request) -> (label file, result dict)``)
without importing ``monailabel``, so it also runs, and is tested, where MONAI Label cannot be installed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile

from ..register import _load_network, _parser, _refinement, _register_pair

__all__ = ["AtlasLabelPropagation", "cache_dir", "demo_atlas", "read_label_names"]


def cache_dir() -> str:
    """Where regzoo keeps what it writes for itself (the demo atlas): ``$REGZOO_CACHE``, else
    ``$XDG_CACHE_HOME/regzoo``, else ``~/.cache/regzoo``; never the source tree (it may be read-only)."""
    if os.environ.get("REGZOO_CACHE"):
        return os.environ["REGZOO_CACHE"]
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "regzoo")


def demo_atlas(folder: str | None = None) -> tuple[str, str]:
    """The default atlas: the first demo brain phantom (image, labels), written to ``folder`` (default
    ``<cache_dir()>/atlas``) on first use."""
    from common.data import ensure_demo_data

    root = ensure_demo_data(folder or os.path.join(cache_dir(), "atlas"), "oasis", subjects=2, seed=0)
    subject = os.path.join(root, "OASIS_OAS1_0001_MR1")
    return os.path.join(subject, "aligned_norm.nii.gz"), os.path.join(subject, "aligned_seg35.nii.gz")


def read_label_names(path: str) -> dict[str, int]:
    """``{name: value}`` from a label table: JSON (``{"name": value}`` or ``{"value": "name"}``) or text lines
    ``<value> <name ...>`` (3D Slicer colour tables, ITK-SNAP label files: ``#`` comments; ITK-SNAP's quoted
    name last). Value 0 (background) is left out."""
    from common.data.files import DataError

    if not os.path.isfile(path):
        raise DataError(f"{path}: label table not found")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    names: dict[str, int] = {}
    try:
        if path.endswith(".json"):
            table = json.loads(text)
            if not isinstance(table, dict):
                raise ValueError("expected an object")
            for key, value in table.items():
                name, number = (value, key) if str(key).strip().isdigit() else (key, value)
                names[str(name)] = int(number)
        else:
            for line in text.splitlines():
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                fields = line.split()
                quoted = line.split('"')
                names[quoted[-2] if len(quoted) >= 3 else fields[1]] = int(fields[0])
    except (ValueError, IndexError, TypeError) as err:
        raise DataError(f"{path}: not a label table of values and names ({err})") from None
    return {name: value for name, value in names.items() if value != 0}


class AtlasLabelPropagation:
    """Propagate ``atlas_label`` to a request's image by registering ``atlas_image`` to it with ``bundle``.

    Args:
        bundle, configs, checkpoint, device: as ``regzoo register``.
        atlas_image, atlas_label: the atlas (default: :func:`demo_atlas` in ``atlas_dir``, default
            ``<cache_dir()>/atlas``).
        labels: ``{name: value}`` of the atlas labels (MONAI Label's label map), or a label table file
            (:func:`read_label_names`); default: the demo atlas's tissue names, or the values themselves.
        affine: the real-scan stage's pre-alignment (``none``, ``rigid``, ``affine``; default: the bundle's).
        refine: test-time refinement steps (``regzoo register --refine``; 0: none).
        weights: fine-tuned weights (:class:`regzoo.monailabel_app.train.FineTuneRegistration` writes them), served
            instead of ``checkpoint`` once the file exists, and loaded again whenever it changes.
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
        labels: dict | str | None = None,
        device: str = "cpu",
        affine: str | None = None,
        refine: int = 0,
        weights: str | None = None,
    ) -> None:
        if (atlas_image is None) != (atlas_label is None):
            raise ValueError("give both atlas_image and atlas_label, or neither (the demo atlas)")
        demo = atlas_image is None
        if demo:
            atlas_image, atlas_label = demo_atlas(atlas_dir)
        for path in (atlas_image, atlas_label):
            if not os.path.isfile(path):
                raise ValueError(f"{path}: atlas file not found")
        self.bundle, self.device = bundle, device
        self.atlas_image, self.atlas_label = atlas_image, atlas_label
        self.labels = self._label_names(labels, demo)
        self.description = f"Atlas label propagation by {bundle} registration (atlas: {os.path.basename(atlas_image)})"
        overrides = {"device": f"$torch.device('{device}')"}
        if checkpoint is not None:
            overrides["checkpoint"] = checkpoint
        if affine is not None:
            overrides["real_scan#affine"] = affine
        self.configs, self.weights = configs, weights
        self._parser = _parser(bundle, configs, overrides)
        self._network = _load_network(self._parser, device)
        self._loaded: tuple[str, int] | None = None
        self.reload()
        self._refine = _refinement(bundle, configs, int(refine), 0.05)

    def served_weights(self) -> str:
        """The weights file served now: the fine-tuned ``weights`` once they exist, else the checkpoint."""
        if self.weights and os.path.isfile(self.weights):
            return self.weights
        return self._parser.get_parsed_content("checkpoint")

    def reload(self) -> None:
        """Load the fine-tuned weights when they are new or have changed since they were loaded."""
        from common.engines import load_weights

        if not self.weights or not os.path.isfile(self.weights):
            return
        stamp = (self.weights, os.stat(self.weights).st_mtime_ns)
        if stamp != self._loaded:
            load_weights(self._network, self.weights, self.device)
            self._loaded = stamp
            logging.getLogger(__name__).info("serving the fine-tuned weights %s", self.weights)

    def _label_names(self, labels, demo: bool) -> dict[str, int]:
        import nibabel as nib
        import numpy as np

        from common.data import OASIS_PHANTOM_LABELS

        if isinstance(labels, str):
            return read_label_names(labels)
        if labels:
            return {str(k): int(v) for k, v in labels.items()}
        if demo:
            return {name: value for value, name in OASIS_PHANTOM_LABELS.items()}
        values = np.unique(np.asarray(nib.load(self.atlas_label).dataobj)).astype(int)
        return {f"label {v}": int(v) for v in values if v != 0}

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
        self.reload()
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
        # figures only: the server's own paths (the atlas, its temporary folders) stay on the server
        return result, {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

"""MONAI dictionary transforms for registration pairs, and the preprocessing chains of the papers.

A pair is a dict with ``moving``, ``fixed`` (image paths, then tensors ``(1, *spatial)``) and optionally
``moving_label``, ``fixed_label``. Random transforms draw once per pair and apply the same draw to every key,
so images and labels stay aligned.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import (
    Compose,
    EnsureTyped,
    LoadImage,
    MapTransform,
    RandFlipd,
    RandomizableTransform,
    ResizeWithPadOrCropd,
    ScaleIntensityd,
    ScaleIntensityRangePercentilesd,
    Spacing,
)

from ..bundle.values import flag, optional
from .files import DataError

__all__ = [
    "IMAGE_KEYS",
    "LABEL_KEYS",
    "LoadImageCheckedd",
    "CheckSameGridd",
    "RandAxisSwapd",
    "Resampled",
    "SelectSliced",
    "PairCompose",
    "augmentation",
    "pair_transforms",
]

IMAGE_KEYS = ("moving", "fixed")
LABEL_KEYS = ("moving_label", "fixed_label")


def _source(value) -> str:
    if isinstance(value, MetaTensor):
        return str(value.meta.get("filename_or_obj", "<tensor>"))
    return str(value) if isinstance(value, str) else "<tensor>"


class LoadImageCheckedd(MapTransform):
    """Load images channel-first (MONAI ``LoadImage``); every failure becomes a ``DataError`` naming the file.

    Checks the number of spatial axes (``spatial_dims``) and that intensities are finite. A 4D NIfTI
    (cine sequence) loads with its frames as channels.
    """

    def __init__(self, keys: KeysCollection, spatial_dims: int = 3, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.spatial_dims = spatial_dims
        self.loader = LoadImage(image_only=True, ensure_channel_first=True, dtype=np.float32)

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            path = d[key]
            if not isinstance(path, str):
                continue  # already loaded
            try:
                image = self.loader(path)
            except Exception as err:  # readers raise many types; say which file and why
                raise DataError(f"{path}: cannot read the image for '{key}' ({type(err).__name__}: {err})") from None
            if image.ndim - 1 != self.spatial_dims:
                raise DataError(
                    f"{path}: '{key}' is a {image.ndim - 1}D image of shape {tuple(image.shape[1:])}, "
                    f"expected {self.spatial_dims}D"
                )
            if not bool(torch.isfinite(image).all()):
                raise DataError(f"{path}: '{key}' holds NaN or infinite intensities")
            d[key] = image
        return d


class CheckSameGridd(MapTransform):
    """Check each ``(image_key, label_key)`` pair has the same spatial shape (and affine, to 1e-3 mm)."""

    def __init__(self, pairs: Sequence[Sequence[str]] = tuple(zip(IMAGE_KEYS, LABEL_KEYS))) -> None:
        super().__init__([k for pair in pairs for k in pair], allow_missing_keys=True)
        self.pairs = [tuple(p) for p in pairs]

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        for image_key, label_key in self.pairs:
            if image_key not in d or label_key not in d:
                continue
            image, label = d[image_key], d[label_key]
            if tuple(image.shape[1:]) != tuple(label.shape[1:]):
                raise DataError(
                    f"{_source(label)}: label '{label_key}' has shape {tuple(label.shape[1:])} but its image "
                    f"{_source(image)} has shape {tuple(image.shape[1:])}"
                )
            if isinstance(image, MetaTensor) and isinstance(label, MetaTensor):
                if not torch.allclose(image.affine.double(), label.affine.double(), atol=1e-3):
                    raise DataError(
                        f"{_source(label)}: label '{label_key}' lies on another grid (affine) than its image "
                        f"{_source(image)}"
                    )
        return d


class Resampled(MapTransform):
    """Resample every key to ``pixdim`` (mm) with its own ``mode`` (spline order 0-5, or ``"nearest"``).

    MONAI's ``Spacingd`` treats every key that starts with ``<key>_`` as that key's meta dict and updates
    it, which breaks on this project's ``moving`` / ``moving_label`` pairs; the array ``Spacing`` applied per
    key does the same resampling without that. Images of one grid give outputs of one shape.
    """

    def __init__(
        self,
        keys: KeysCollection,
        pixdim: Sequence[float],
        mode: Sequence = (3,),
        padding_mode: str = "zeros",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.mode = list(mode) if len(mode) == len(self.keys) else list(mode) * len(self.keys)
        self.spacing = Spacing(pixdim=pixdim, padding_mode=padding_mode, dtype=np.float32)

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        for key, mode in self.key_iterator(d, self.mode):
            d[key] = self.spacing(d[key], mode=mode)
        return d


class RandAxisSwapd(RandomizableTransform, MapTransform):
    """With probability ``prob``, swap two spatial axes (transpose, e.g. in-plane H and W) of every key."""

    def __init__(
        self,
        keys: KeysCollection,
        prob: float = 0.5,
        spatial_axes: Sequence[int] = (0, 1),
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        if len(spatial_axes) != 2 or spatial_axes[0] == spatial_axes[1]:
            raise ValueError(f"spatial_axes must name two different axes, got {spatial_axes}")
        self.spatial_axes = tuple(int(a) for a in spatial_axes)

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        self.randomize(None)
        if not self._do_transform:
            return d
        a, b = (ax + 1 for ax in self.spatial_axes)
        for key in self.key_iterator(d):
            img = d[key]
            if img.shape[a] != img.shape[b]:
                raise ValueError(f"cannot swap axes of different lengths {tuple(img.shape)} for '{key}'")
            out = img.transpose(a, b).contiguous()
            if isinstance(img, MetaTensor):  # voxel axes swapped: swap the affine's columns too
                columns = list(range(img.affine.shape[1]))
                columns[a - 1], columns[b - 1] = columns[b - 1], columns[a - 1]
                out.affine = img.affine[:, columns].clone()
            d[key] = out
        return d


class SelectSliced(MapTransform):
    """Take one slice along ``axis`` (spatial axis index) of every key: ``(C, H, W, D)`` -> ``(C, H, W)``.

    ``index``: an integer, ``"middle"``, or ``"label"``: the middle of the slices where ``label_key`` holds
    ``label_value`` (mid-ventricular slice for ACDC with ``label_value=3``, the LV), the same for all keys.
    """

    def __init__(
        self,
        keys: KeysCollection,
        axis: int = 2,
        index: int | str = "middle",
        label_key: str = "fixed_label",
        label_value: int | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if not (isinstance(index, int) or index in ("middle", "label")):
            raise ValueError(f"index must be an integer, 'middle' or 'label', got {index!r}")
        self.axis, self.index, self.label_key, self.label_value = axis, index, label_key, label_value

    def _slice_index(self, d) -> int:
        first = d[next(iter(self.key_iterator(d)))]
        n = first.shape[self.axis + 1]
        if isinstance(self.index, int):
            if not -n <= self.index < n:
                raise ValueError(f"slice index {self.index} is outside 0..{n - 1}")
            return self.index % n
        if self.index == "middle":
            return n // 2
        label = d.get(self.label_key)
        if label is None:
            raise DataError(f"slice selection by label needs '{self.label_key}' in the pair")
        mask = (label.round() == self.label_value) if self.label_value is not None else (label > 0)
        other = [ax + 1 for ax in range(label.ndim - 1) if ax != self.axis]
        present = mask.any(dim=0).amax(dim=[o - 1 for o in other]).nonzero().flatten()
        if present.numel() == 0:
            raise DataError(f"{_source(label)}: no voxel with label {self.label_value} to choose a slice")
        return int((present.min() + present.max()) // 2)

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        index = self._slice_index(d)
        for key in self.key_iterator(d):
            d[key] = d[key].select(self.axis + 1, index)
        return d


class PairCompose(Compose):
    """``Compose`` that re-raises a :class:`DataError` from any step as itself.

    MONAI wraps every exception raised in a transform into ``RuntimeError("applying transform ...")``; a
    user should read "file X: problem" first, not MONAI's wrapper.
    """

    def __call__(self, data, *args, **kwargs):
        try:
            return super().__call__(data, *args, **kwargs)
        except RuntimeError as err:
            cause = err
            while cause is not None and not isinstance(cause, DataError):
                cause = cause.__cause__
            if cause is None:
                raise
            raise cause from None


def augmentation(keys: Sequence[str] = IMAGE_KEYS + LABEL_KEYS) -> Compose:
    """Random flips of the two first (in-plane) spatial axes and their swap, p = 0.5 each, one draw for all keys
    (DiffuseMorph's ACDC augmentation, applied to the labels too)."""
    keys = list(keys)
    return Compose(
        [
            RandFlipd(keys, prob=0.5, spatial_axis=0, allow_missing_keys=True),
            RandFlipd(keys, prob=0.5, spatial_axis=1, allow_missing_keys=True),
            RandAxisSwapd(keys, prob=0.5, spatial_axes=(0, 1), allow_missing_keys=True),
        ]
    )


def pair_transforms(
    image_keys: Sequence[str] = IMAGE_KEYS,
    label_keys: Sequence[str] = LABEL_KEYS,
    spatial_dims: int = 3,
    pixdim: Sequence[float] | None = None,
    spatial_size: Sequence[int] | None = None,
    intensity: str = "percentile",
    percentiles: Sequence[float] = (0.5, 99.5),
    augment: bool = False,
    slice_2d: Mapping | None = None,
) -> PairCompose:
    """Load, check and preprocess a pair (or a single subject with ``image_keys=("image",)``).

    1. load channel-first, check dimensionality, finite values, label grid = image grid;
    2. ``pixdim`` (mm): resample, cubic B-spline for images, nearest neighbour for labels;
    3. intensity to [0, 1]: ``"percentile"`` clips at ``percentiles`` then min-max, ``"minmax"`` is the
       DiffuseMorph normalisation (min-max of the whole volume), ``"none"`` keeps values;
    4. ``spatial_size``: centre crop or zero-pad (symmetric) to this size;
    5. ``slice_2d``: keyword arguments of :class:`SelectSliced` to take one slice (2D tasks);
    6. ``augment``: random flips of the two first (in-plane) axes and their swap, p = 0.5 each, identical for
       every key.
    Labels stay integer-valued float32.
    """
    image_keys, label_keys = list(image_keys), list(label_keys)
    keys = image_keys + label_keys
    pixdim, spatial_size = optional(pixdim, "pixdim"), optional(spatial_size, "spatial_size")
    augment = flag(augment, "augment")
    steps = [
        LoadImageCheckedd(keys, spatial_dims=spatial_dims, allow_missing_keys=True),
        CheckSameGridd(list(zip(image_keys, label_keys))),
    ]
    if pixdim is not None:
        steps.append(
            Resampled(
                keys, pixdim=pixdim, mode=[3] * len(image_keys) + ["nearest"] * len(label_keys), allow_missing_keys=True
            )
        )
    if intensity == "percentile":
        lower, upper = percentiles
        steps.append(
            # channel-wise: a cine sequence (frames as channels) scales each frame as its own frame file would be
            ScaleIntensityRangePercentilesd(
                image_keys, lower=lower, upper=upper, b_min=0.0, b_max=1.0, clip=True, channel_wise=True
            )
        )
    elif intensity == "minmax":
        steps.append(ScaleIntensityd(image_keys, minv=0.0, maxv=1.0, channel_wise=True))
    elif intensity != "none":
        raise ValueError(f"intensity must be 'percentile', 'minmax' or 'none', got {intensity!r}")
    if spatial_size is not None:
        steps.append(ResizeWithPadOrCropd(keys, spatial_size=spatial_size, mode="constant", allow_missing_keys=True))
    if slice_2d is not None:
        steps.append(SelectSliced(keys, allow_missing_keys=True, **dict(slice_2d)))
    if augment:
        steps.append(augmentation(keys))
    steps.append(EnsureTyped(keys, dtype=torch.float32, allow_missing_keys=True))
    return PairCompose(steps)

"""Generic datalist JSON (the MONAI convention): ``{"training": [...], "validation": [...], "testing": [...]}``,
each entry ``{"fixed", "moving", "fixed_label", "moving_label"}`` (labels optional), paths relative to the
JSON file. Multi-modal pairs (fixed T1w, moving T2w) are ordinary entries."""

from __future__ import annotations

import os

from .files import DataError, check_image_file, read_json_list, warn
from .transforms import IMAGE_KEYS, LABEL_KEYS

__all__ = ["TEST_LAYOUTS", "inference_pairs", "load_datalist", "validate_pairs"]

TEST_LAYOUTS = ("oasis", "acdc", "acdc_sequences")


def load_datalist(path: str, key: str = "training", spatial_dims: int = 3) -> list[dict]:
    """Entries of ``key`` with absolute paths; every file is checked (exists, NIfTI header, dimensionality)."""
    entries = read_json_list(path, key, "datalist JSON")
    base = os.path.dirname(os.path.abspath(path))
    items, seen = [], set()
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise DataError(f"{path}: {key}[{n}] is a {type(entry).__name__}, expected an object with fixed / moving")
        missing = [k for k in IMAGE_KEYS if k not in entry]
        if missing:
            raise DataError(f"{path}: {key}[{n}] lacks {missing}")
        if ("fixed_label" in entry) != ("moving_label" in entry):
            raise DataError(f"{path}: {key}[{n}] has only one of fixed_label / moving_label")
        item = dict(entry)
        for k in IMAGE_KEYS + LABEL_KEYS:
            if k in entry:
                if not isinstance(entry[k], str) or not entry[k]:
                    raise DataError(f"{path}: {key}[{n}]['{k}'] is {entry[k]!r}, expected a file path")
                item[k] = os.path.normpath(os.path.join(base, entry[k]))
                try:
                    check_image_file(item[k], ndim=spatial_dims)
                except DataError as err:
                    raise DataError(f"{path}: {key}[{n}]['{k}']: {err}") from None
        signature = tuple(item.get(k) for k in IMAGE_KEYS + LABEL_KEYS)
        if signature in seen:
            warn(f"{path}: {key}[{n}] repeats an earlier entry")
        seen.add(signature)
        items.append(item)
    if not items:
        raise DataError(f"{path}: the '{key}' list is empty")
    return items


def validate_pairs(pairs: list[dict], spatial_dims: int = 3) -> list[dict]:
    """Read every file of ``pairs`` completely before any work starts (inference: nothing half done): each must
    be a readable NIfTI of ``spatial_dims`` dimensions, and a pair's images must have the same dimensionality."""
    if not pairs:
        raise DataError("no pair to register: the pair list is empty")
    for n, pair in enumerate(pairs):
        for key in IMAGE_KEYS + LABEL_KEYS:
            if key in pair:
                try:
                    check_image_file(pair[key], full=True)
                except DataError as err:
                    raise DataError(f"pair {n} '{key}': {err}") from None
        dims = {key: len([s for s in check_image_file(pair[key]) if s > 1]) for key in IMAGE_KEYS}
        if dims["fixed"] != dims["moving"]:
            raise DataError(
                f"pair {n}: the moving image {pair['moving']} is {dims['moving']}D but the fixed image "
                f"{pair['fixed']} is {dims['fixed']}D"
            )
        for key in IMAGE_KEYS:
            if dims[key] != spatial_dims:
                raise DataError(f"pair {n}: {pair[key]} is {dims[key]}D, this bundle registers {spatial_dims}D images")
    return pairs


def inference_pairs(
    datalist: str | None = None,
    key: str = "testing",
    spatial_dims: int = 3,
    data_root=None,
    layout: str = "oasis",
    val_fraction: float = 0.15,
    test_fraction: float = 0.25,
    moving: str = "ED",
) -> list[dict]:
    """The pairs an inference run registers, every file read before any work (:func:`validate_pairs`): the
    entries of ``datalist`` under ``key`` when one is given (``--datalist``; ``"null"`` / ``"none"`` typed on the
    command line mean none), else the held-out test pairs of the data set at ``data_root()``.

    ``data_root``: a function returning the data folder (the bundles' ``common.data.data_root`` with
    ``"_mode_": "callable"``), called only when there is no datalist, so a datalist run never writes the demo data.
    ``layout``: ``oasis`` (every ordered pair of the test subjects of :func:`oasis_split` with ``val_fraction``,
    ``test_fraction``), ``acdc`` (the test subjects' ED/ES pairs, ``moving`` frame ``ED`` or ``ES``) or
    ``acdc_sequences`` (their cine sequences).
    """
    from ..bundle.values import optional
    from .acdc import acdc_pairs, acdc_sequences
    from .oasis import oasis_pairs

    datalist = optional(datalist, "datalist")
    if datalist is not None:
        return validate_pairs(load_datalist(datalist, key), spatial_dims)
    if layout not in TEST_LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(TEST_LAYOUTS)}, got {layout!r}")
    if data_root is None:
        raise ValueError("give a datalist, or data_root for the data set's test pairs")
    root = data_root() if callable(data_root) else data_root
    if layout == "oasis":
        pairs = oasis_pairs(root, "testing", val_fraction, test_fraction)
    elif layout == "acdc":
        pairs = acdc_pairs(root, "testing", "acdc", moving=moving)
    else:
        pairs = acdc_sequences(root, "testing", "acdc")
    return validate_pairs(pairs, spatial_dims)

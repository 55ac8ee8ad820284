"""Generic datalist JSON (the MONAI convention): ``{"training": [...], "validation": [...], "testing": [...]}``,
each entry ``{"fixed", "moving", "fixed_label", "moving_label"}`` (labels optional), paths relative to the
JSON file. Multi-modal pairs (fixed T1w, moving T2w) are ordinary entries."""

from __future__ import annotations

import json
import os

from .files import DataError, check_image_file
from .transforms import IMAGE_KEYS, LABEL_KEYS

__all__ = ["load_datalist"]


def load_datalist(path: str, key: str = "training", spatial_dims: int = 3) -> list[dict]:
    """Entries of ``key`` with absolute paths; every file is checked (exists, NIfTI header, dimensionality)."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: datalist JSON not found")
    try:
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None
    if key not in spec or not isinstance(spec[key], list):
        raise DataError(f"{path}: no '{key}' list (keys: {sorted(spec) if isinstance(spec, dict) else type(spec)})")
    base = os.path.dirname(os.path.abspath(path))
    items = []
    for n, entry in enumerate(spec[key]):
        missing = [k for k in IMAGE_KEYS if k not in entry]
        if missing:
            raise DataError(f"{path}: {key}[{n}] lacks {missing}")
        if ("fixed_label" in entry) != ("moving_label" in entry):
            raise DataError(f"{path}: {key}[{n}] has only one of fixed_label / moving_label")
        item = dict(entry)
        for k in IMAGE_KEYS + LABEL_KEYS:
            if k in entry:
                item[k] = os.path.normpath(os.path.join(base, entry[k]))
                try:
                    check_image_file(item[k], ndim=spatial_dims)
                except DataError as err:
                    raise DataError(f"{path}: {key}[{n}]['{k}']: {err}") from None
        items.append(item)
    if not items:
        raise DataError(f"{path}: the '{key}' list is empty")
    return items

"""Deterministic splits of a sorted subject list into training / validation / testing parts."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["PARTS", "split_by_fraction"]

PARTS = ("training", "validation", "testing")


def split_by_fraction(items: Sequence, validation: float = 0.0, testing: float = 0.1) -> dict[str, list]:
    """Last ``testing`` fraction -> testing, the ``validation`` fraction before it -> validation, rest training.

    Counts round up, so a small list still gets at least one item in each requested part, and at least one
    item is left for training.
    """
    items = list(items)
    n = len(items)
    n_test = math.ceil(testing * n) if testing > 0 else 0
    n_val = math.ceil(validation * n) if validation > 0 else 0
    if n - n_test - n_val < 1:
        raise ValueError(f"cannot split {n} subjects into training, {n_val} validation and {n_test} testing")
    return {
        "training": items[: n - n_test - n_val],
        "validation": items[n - n_test - n_val : n - n_test],
        "testing": items[n - n_test :],
    }

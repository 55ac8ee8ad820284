"""Helpers that bundle configs call: where the bundle lives, whatever the working directory."""

from __future__ import annotations

import json
import os

__all__ = ["bundle_root"]


def bundle_root(name: str) -> str:
    """The folder of bundle ``name``: the working directory when it is that bundle (a downloaded bundle), else
    ``./bundles/<name>`` (the repository root) or ``./<name>`` (the folder above a downloaded bundle)."""
    here = os.getcwd()
    for candidate in (here, os.path.join(here, "bundles", name), os.path.join(here, name)):
        meta = os.path.join(candidate, "configs", "metadata.json")
        if os.path.isfile(meta):
            with open(meta, encoding="utf-8") as f:
                if json.load(f).get("name", os.path.basename(candidate)) == name:
                    return os.path.abspath(candidate)
    raise FileNotFoundError(
        f"cannot find bundle '{name}' from {here}: run from the repository root, from the bundle folder, or from "
        f"the folder holding it, or pass --bundle_root <path>"
    )

"""Helpers that bundle configs call: where the bundle lives, whatever the working directory."""

from __future__ import annotations

import json
import os

__all__ = ["bundle_root", "inference_parser", "train_parser"]


_REPO_BUNDLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "bundles")


def bundle_root(name: str) -> str:
    """The folder of bundle ``name`` (the one way to find a bundle, for configs and the ``regzoo`` command): the
    working directory when it is that bundle (a downloaded bundle), else ``./bundles/<name>`` (the repository
    root), ``./<name>`` (the folder above a downloaded bundle), or the ``bundles/<name>`` of the repository this
    package is installed from."""
    here = os.getcwd()
    candidates = (
        here,
        os.path.join(here, "bundles", name),
        os.path.join(here, name),
        os.path.join(_REPO_BUNDLES, name),
    )
    for candidate in candidates:
        meta = os.path.join(candidate, "configs", "metadata.json")
        if os.path.isfile(meta):
            with open(meta, encoding="utf-8") as f:
                if json.load(f).get("name", os.path.basename(candidate)) == name:
                    return os.path.abspath(candidate)
    raise FileNotFoundError(
        f"cannot find bundle '{name}' from {here}: run from the repository root, from the bundle folder, or from "
        f"the folder holding it, or pass --bundle_root <path>"
    )


def inference_parser(files: list[str]):
    """A MONAI ``ConfigParser`` of ``files[0]`` (an ``inference.json``) with the overlays ``files[1:]`` stacked on it.

    An overlay such as ``quick.json`` serves training and inference alike: its ``a#b`` keys whose section ``a``
    the inference config lacks (``train#...``, ``validate#...``) are training settings and are left out, instead of
    MONAI's ``KeyError: 'query key: train'``; plain keys (sizes, spacings, paths) apply."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(files[0])
    for path in files[1:]:
        for key, value in ConfigParser.load_config_file(path).items():
            section = key.split("#")[0]
            if "#" in key and section not in parser.get():
                continue
            parser[key] = value
    return parser


def train_parser(root: str, configs=()):
    """A MONAI ``ConfigParser`` of ``<root>/configs/train.json`` with the overlays ``configs`` (file paths, or names
    in ``<root>/configs``) stacked on it, ``bundle_root`` set: the bundle's training objective, network and trainer
    (test-time refinement, fine-tuning)."""
    from monai.bundle import ConfigParser

    configs = [configs] if isinstance(configs, str) else list(configs or [])
    files = [os.path.join(root, "configs", "train.json")]
    files += [c if os.path.isfile(c) else os.path.join(root, "configs", c) for c in configs]
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        raise FileNotFoundError(f"{missing[0]}: config not found")
    parser = ConfigParser()
    parser.read_config(files)
    parser.update({"bundle_root": root})
    return parser

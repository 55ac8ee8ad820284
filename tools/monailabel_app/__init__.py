"""A MONAI Label app offering atlas-based label propagation with any regzoo bundle (see README.md)."""

from .infer import AtlasLabelPropagation, cache_dir, demo_atlas, read_label_names
from .train import FineTuneRegistration

__all__ = ["AtlasLabelPropagation", "FineTuneRegistration", "cache_dir", "demo_atlas", "read_label_names"]

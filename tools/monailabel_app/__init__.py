"""A MONAI Label app offering atlas-based label propagation with any regzoo bundle (see README.md)."""

from .infer import AtlasLabelPropagation, demo_atlas

__all__ = ["AtlasLabelPropagation", "demo_atlas"]

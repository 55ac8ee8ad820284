"""Exporting regzoo's results: ITK / ANTs / 3D Slicer transforms, PNG reports."""

from .frames import frame_gif, frame_strip
from .itk_transform import itk_geometry, write_ants_affine, write_displacement_nifti, write_itk_transform
from .report import FOLD_COLOUR, registration_report

__all__ = [
    "FOLD_COLOUR",
    "frame_gif",
    "frame_strip",
    "itk_geometry",
    "registration_report",
    "write_ants_affine",
    "write_displacement_nifti",
    "write_itk_transform",
]

"""Exporting regzoo's results: ITK / ANTs / 3D Slicer transforms, PNG reports."""

from .frames import frame_gif, frame_strip
from .itk_transform import itk_displacement_image, itk_geometry, write_itk_displacement
from .report import FOLD_COLOUR, registration_report

__all__ = [
    "FOLD_COLOUR",
    "frame_gif",
    "frame_strip",
    "itk_displacement_image",
    "itk_geometry",
    "registration_report",
    "write_itk_displacement",
]

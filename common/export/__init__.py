"""Exporting regzoo's results: ITK / ANTs / 3D Slicer transforms, PNG reports."""

from .itk_transform import itk_displacement_image, itk_geometry, write_itk_displacement
from .report import FOLD_COLOUR, registration_report

__all__ = ["FOLD_COLOUR", "itk_displacement_image", "itk_geometry", "registration_report", "write_itk_displacement"]

"""Exporting regzoo's results for other tools: ITK / ANTs / 3D Slicer transforms."""

from .itk_transform import itk_displacement_image, itk_geometry, write_itk_displacement

__all__ = ["itk_displacement_image", "itk_geometry", "write_itk_displacement"]

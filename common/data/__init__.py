"""Data: the real data sets' layouts (ACDC, Learn2Reg OASIS, datalist JSON), the papers' preprocessing,
and the phantoms written in those layouts that serve as the embedded default data."""

from .acdc import ACDC_SCHEMES, acdc_pairs, acdc_sequences, acdc_subject_dirs, acdc_subjects, parse_info_cfg
from .datalist import TEST_LAYOUTS, inference_pairs, load_datalist, validate_pairs
from .datasets import RandomPairDataset
from .files import DataError, check_image_file
from .oasis import (
    all_pairs,
    atlas_pairs,
    consecutive_pairs,
    learn2reg_pairs,
    oasis_atlas_pairs,
    oasis_pairs,
    oasis_split,
    oasis_subjects,
)
from .phantoms import (
    BRAIN_PHANTOM_GROUPS,
    OASIS_PHANTOM_LABELS,
    data_root,
    ensure_demo_data,
    make_demo_data,
    write_acdc_phantoms,
    write_oasis_phantoms,
)
from .splits import split_by_fraction
from .transforms import (
    IMAGE_KEYS,
    LABEL_KEYS,
    CheckSameGridd,
    LoadImageCheckedd,
    RandAxisSwapd,
    Resampled,
    SelectSliced,
    augmentation,
    pair_transforms,
)

__all__ = [
    "ACDC_SCHEMES",
    "IMAGE_KEYS",
    "LABEL_KEYS",
    "TEST_LAYOUTS",
    "BRAIN_PHANTOM_GROUPS",
    "OASIS_PHANTOM_LABELS",
    "CheckSameGridd",
    "DataError",
    "LoadImageCheckedd",
    "RandAxisSwapd",
    "RandomPairDataset",
    "Resampled",
    "SelectSliced",
    "acdc_pairs",
    "acdc_sequences",
    "acdc_subject_dirs",
    "acdc_subjects",
    "all_pairs",
    "atlas_pairs",
    "oasis_atlas_pairs",
    "oasis_pairs",
    "augmentation",
    "check_image_file",
    "consecutive_pairs",
    "data_root",
    "ensure_demo_data",
    "learn2reg_pairs",
    "inference_pairs",
    "load_datalist",
    "make_demo_data",
    "oasis_split",
    "oasis_subjects",
    "pair_transforms",
    "parse_info_cfg",
    "split_by_fraction",
    "validate_pairs",
    "write_acdc_phantoms",
    "write_oasis_phantoms",
]

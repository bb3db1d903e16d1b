"""Image data for muselab: built-in sets (emoji, emoji-twitter, digits) and your own folders.

>>> from muselab.data import load_images
>>> ds = load_images("emoji", 32)          # doctest: +SKIP
>>> ds.images.shape, ds.class_names[:2]     # doctest: +SKIP
((3786, 32, 32, 3), ['Activities', 'Animals & Nature'])

Importing this package fetches and decodes nothing; see ``docs/data.md``.
"""

from __future__ import annotations

from muselab.data.builtin import (
    REGISTRY,
    DatasetInfo,
    fetch_dataset,
    list_datasets,
    load_images,
)
from muselab.data.imagefolder import BadFile, ImageDataset
from muselab.data.inspect import InspectReport, inspect_folder
from muselab.data.split import holdout_split

__all__ = [
    "REGISTRY",
    "BadFile",
    "DatasetInfo",
    "ImageDataset",
    "InspectReport",
    "fetch_dataset",
    "holdout_split",
    "inspect_folder",
    "list_datasets",
    "load_images",
]

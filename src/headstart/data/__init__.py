"""Data: readers for image folders, manifests and text tables; splits; preprocessing."""

from headstart.data._dataset import SPLITS, DataError, LabeledData, Skipped, stratified_split
from headstart.data._loader import iter_batches, load_items
from headstart.data._readers import (
    IMAGE_EXTENSIONS,
    from_items,
    load_image,
    read_data,
    readable_images,
    text_key,
)
from headstart.data._transforms import NO_AUGMENT, Augment, image_transform, to_rgb

__all__ = [
    "IMAGE_EXTENSIONS",
    "NO_AUGMENT",
    "SPLITS",
    "Augment",
    "DataError",
    "LabeledData",
    "Skipped",
    "from_items",
    "image_transform",
    "iter_batches",
    "load_image",
    "load_items",
    "read_data",
    "readable_images",
    "stratified_split",
    "text_key",
    "to_rgb",
]

"""Data: readers for image folders, manifests and text tables; splits; preprocessing."""

from headstart.data._dataset import SPLITS, DataError, LabeledData, Skipped, stratified_split
from headstart.data._items import IMAGE_EXTENSIONS, load_image, text_key
from headstart.data._loader import iter_batches, load_items
from headstart.data._modality import Modality, get_modality, list_modalities, register_modality
from headstart.data._readers import from_items, read_data, readable_files, readable_images
from headstart.data._transforms import NO_AUGMENT, Augment, image_transform, to_rgb

__all__ = [
    "IMAGE_EXTENSIONS",
    "NO_AUGMENT",
    "SPLITS",
    "Augment",
    "DataError",
    "LabeledData",
    "Modality",
    "Skipped",
    "from_items",
    "get_modality",
    "image_transform",
    "iter_batches",
    "list_modalities",
    "load_image",
    "load_items",
    "read_data",
    "readable_files",
    "readable_images",
    "register_modality",
    "stratified_split",
    "text_key",
    "to_rgb",
]

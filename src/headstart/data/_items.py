"""Single items: decoding an image, the content key of an image or a text."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from PIL import Image, ImageOps

from headstart.data._transforms import to_rgb

IMAGE_EXTENSIONS = {
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
}


def load_image(path: str | Path) -> Image.Image:
    """Open an image as 8-bit RGB, honouring its EXIF orientation."""
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img)
        img.load()
        return to_rgb(img)


def check_image(path: Path) -> str:
    """Decode the image fully; return the sha1 of its bytes. Raises on a bad file."""
    raw = path.read_bytes()
    with Image.open(io.BytesIO(raw)) as img:
        if img.width < 1 or img.height < 1:
            raise ValueError("empty image")
        to_rgb(ImageOps.exif_transpose(img))  # decodes fully, as training will
    return hashlib.sha1(raw).hexdigest()


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


__all__ = ["IMAGE_EXTENSIONS", "check_image", "load_image", "text_key"]

"""Image preprocessing from a backbone's config, and training-time augmentation."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

from headstart._fields import non_negative, option

if TYPE_CHECKING:  # data sits below zoo: no import at run time
    from headstart.zoo._spec import ImagePreprocess


@dataclass(frozen=True)
class Augment:
    """Training-time image augmentation; each part can be switched off.

    ``crop``: random resized crop covering ``crop_scale`` of the image;
    ``flip``: random horizontal flip; ``rotate``: random rotation within +/- degrees
    (0 disables it).
    """

    crop: bool = option("Random resized crop in training.", default=True, flag="--no-crop")
    flip: bool = option("Random horizontal flip in training.", default=True, flag="--no-flip")
    rotate: float = option(
        "Max random rotation in training, degrees (0: off).", default=10.0, check=non_negative
    )
    crop_scale: tuple[float, float] = option(
        "Fraction of the image a random crop covers (min, max).", default=(0.6, 1.0), cli=False
    )

    @property
    def enabled(self) -> bool:
        return self.crop or self.flip or self.rotate > 0


NO_AUGMENT = Augment(crop=False, flip=False, rotate=0.0)

_INTERPOLATION = {
    "bilinear": T.InterpolationMode.BILINEAR,
    "bicubic": T.InterpolationMode.BICUBIC,
    "nearest": T.InterpolationMode.NEAREST,
}


class BySize:
    """Apply ``up`` to an image smaller than ``size`` on its short side (it will be
    enlarged), else ``down``: two copies of one resampling step, with the two
    interpolations of the preprocessing."""

    def __init__(self, size: int, down: object, up: object) -> None:
        self.size, self.down, self.up = size, down, up

    def __call__(self, img: Image.Image) -> Image.Image:
        return (self.up if min(img.size) < self.size else self.down)(img)  # type: ignore[operator]

    def __repr__(self) -> str:
        return f"BySize({self.size}, down={self.down!r}, up={self.up!r})"


def image_transform(pre: ImagePreprocess, augment: Augment | None = None) -> T.Compose:
    """PIL RGB image -> normalised float tensor ``(3, S, S)`` with ``S = pre.input_size``.

    Resampling uses ``pre.interpolation``, or ``pre.upscale`` for an image whose short side
    is below the target (it is enlarged). Without ``augment`` (evaluation): resize the
    short side to ``S / crop_pct`` and
    centre-crop ``S``. With it: the enabled random transforms, then the same tensor steps.
    """
    size = pre.input_size
    down = _INTERPOLATION.get(pre.interpolation, T.InterpolationMode.BILINEAR)
    up = _INTERPOLATION.get(getattr(pre, "upscale", pre.interpolation), down)
    steps: list[object] = []
    if augment is not None and augment.enabled:
        if augment.rotate > 0:
            steps.append(T.RandomRotation(augment.rotate, interpolation=down))
        if augment.crop:
            steps.append(
                BySize(
                    size,
                    *(
                        T.RandomResizedCrop(
                            size, scale=augment.crop_scale, interpolation=i, antialias=True
                        )
                        for i in (down, up)
                    ),
                )
            )
        else:
            steps += [_resize(size, down, up), T.CenterCrop(size)]
        if augment.flip:
            steps.append(T.RandomHorizontalFlip())
    else:
        resize = math.floor(size / pre.crop_pct)
        steps += [_resize(resize, down, up), T.CenterCrop(size)]
    steps.append(ToNormalized(pre.mean, pre.std))
    return T.Compose(steps)


class ToNormalized:
    """PIL RGB image -> float tensor ``(3, H, W)``, ``(x / 255 - mean) / std`` per channel:
    ``T.ToTensor()`` then ``T.Normalize(mean, std)``, computed in numpy. Torch's element-wise
    ops run on its intra-op thread pool, and from the decode thread (while the network runs
    on the same pool) on 2 busy cores they took about 70 ms per 224 px image, against about
    1 ms here (``bench/throughput.py``)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)

    def __call__(self, img: Image.Image) -> torch.Tensor:
        # the same float32 operations as torchvision's, so the same bits
        a = np.asarray(img, dtype=np.float32).reshape(img.size[1], img.size[0], -1)
        a = (a / np.float32(255.0) - self.mean) / self.std  # (H, W, C), over channels
        return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))

    def __repr__(self) -> str:
        return f"ToNormalized(mean={self.mean.tolist()}, std={self.std.tolist()})"


def _resize(size: int, down: T.InterpolationMode, up: T.InterpolationMode) -> object:
    """Resize the short side to ``size`` with ``down``, or ``up`` for an enlarged image."""
    if down == up:
        return T.Resize(size, interpolation=down, antialias=True)
    return BySize(
        size,
        T.Resize(size, interpolation=down, antialias=True),
        T.Resize(size, interpolation=up, antialias=True),
    )


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB, properly.

    Palette images keep their transparency, alpha is composited on white, CMYK goes
    through PIL's colour conversion and 16/32-bit greyscale (``I;16``, ``I``, ``F``) is
    rescaled to 8 bits rather than clipped.
    """
    if img.mode == "RGB":
        return img
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        import numpy as np

        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        img = Image.fromarray(((arr - lo) * scale).astype("uint8"), mode="L")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")

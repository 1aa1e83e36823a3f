"""Reading image folders, image manifests and text tables into :class:`LabeledData`.

Accepted layouts:

* a folder with one subfolder per class (images);
* a folder with ``train/``, ``val/`` (or ``validation/``) and ``test/`` subfolders, each
  with one subfolder per class: the split is used as given;
* a CSV / TSV / JSONL manifest of images (a path column, relative to the manifest) or
  of texts (a text column), with a label column and an optional ``split`` column.

Unreadable images are skipped and reported (``strict=True`` raises instead), as are rows
without a label; hidden files and folders (``.name``) are ignored; labels are normalised
(:func:`~headstart.data._clean.normalize_label`) and exact duplicates are kept once
(``LabeledData.duplicates``), so no item is in two splits. Structural problems (missing
column, undecodable text, too few examples, an empty validation or test split) raise
:class:`DataError` naming the file and line, and saying what to do.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from headstart.data._clean import dedupe, hidden_part, is_hidden, normalize_label
from headstart.data._dataset import SPLITS, DataError, LabeledData, Skipped, stratified_split
from headstart.data._modality import get_modality, modality_of_file

PATH_COLUMNS = ("path", "image", "file", "filepath", "filename")
_SPLIT_ALIASES = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}


def readable_images(paths: Sequence[str]) -> tuple[list[str], list[Skipped]]:
    """The paths that decode as images, and the others as :class:`Skipped` with the reason
    (what ``fit`` skips; ``predict`` and ``evaluate`` skip the same)."""
    return readable_files(paths, "image")


def readable_files(paths: Sequence[str], modality: str) -> tuple[list[str], list[Skipped]]:
    """The paths that decode as items of the file ``modality`` (images, audio), and the
    others as :class:`Skipped` with the reason."""
    m = get_modality(modality)
    ok: list[str] = []
    skipped: list[Skipped] = []
    for path in paths:
        try:
            m.key(path)
        except Exception as exc:  # anything the decoder or the file system raises: a bad input
            skipped.append(Skipped(str(path), f"{m.unreadable}: {exc}"))
        else:
            ok.append(path)
    return ok, skipped


def read_data(
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    path_column: str | None = None,
    val: float = 0.15,
    test: float = 0.15,
    seed: int = 0,
    strict: bool = False,
    for_training: bool = True,
) -> LabeledData:
    """Read a dataset from a folder or a manifest; split it unless the split is given.

    ``for_training=False`` reads data to score a trained model: every item goes to the
    ``"test"`` split and the class-count checks are skipped.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file or folder")
    if p.is_dir():
        rows, skipped = _read_folder(p)
    elif p.suffix.lower() in (".csv", ".tsv", ".jsonl", ".json", ".ndjson"):
        rows, skipped = _read_table(p, text_column, label_column, path_column)
    else:
        raise DataError(f"{p}: expected a folder, or a .csv/.tsv/.jsonl file")
    modality = rows[0][0] if rows else "image"
    items, labels, keys, splits, wheres = [], [], [], [], []
    for kind, item, label, split, where in rows:
        m = get_modality(kind)
        try:
            key = m.key(item)
        except Exception as exc:
            if not m.files:
                raise
            if strict:
                raise DataError(f"{where}: {m.unreadable} {item}: {exc}") from exc
            skipped.append(Skipped(item, f"{m.unreadable}: {exc}"))
            continue
        items.append(item)
        labels.append(label)
        keys.append(key)
        splits.append(split)
        wheres.append(where)
    if not for_training:
        if not items:
            raise DataError(f"{p}: no usable examples found")
        classes = sorted(set(labels))
        y = np.array([classes.index(lab) for lab in labels], dtype=np.int64)
        split = np.full(len(items), "test")
        return LabeledData(modality, items, y, classes, keys, split, str(p), skipped, True)
    return _assemble(p, modality, items, labels, keys, splits, skipped, val, test, seed, wheres)


def from_items(
    items: list,
    labels: list,
    modality: str | None = None,
    *,
    val: float = 0.15,
    seed: int = 0,
    source: str = "<in memory>",
) -> LabeledData:
    """A training dataset from in-memory items (image paths or texts) and their labels;
    split into train and validation only (the caller keeps its own test data)."""
    if len(items) != len(labels):
        raise DataError(f"{source}: {len(items)} items but {len(labels)} labels")
    if modality is None:  # files of one file modality, or texts
        kinds = {
            modality_of_file(x) if isinstance(x, str | Path) and Path(x).is_file() else None
            for x in items
        }
        one = kinds.pop() if len(kinds) == 1 else None
        modality = one.name if one is not None else "text"
    m = get_modality(modality)
    skipped: list[Skipped] = []
    kept, kept_labels, keys, wheres = [], [], [], []
    for i, (x, raw_label) in enumerate(zip(items, labels, strict=True)):
        lab, why = _label(raw_label)
        if lab is None:
            skipped.append(Skipped(f"{source}: item {i}", why))
            continue
        if m.files:
            try:
                keys.append(m.key(x))
            except Exception as exc:
                skipped.append(Skipped(str(x), f"{m.unreadable}: {exc}"))
                continue
            kept.append(str(Path(x).resolve()))
        else:
            if not isinstance(x, str):
                raise DataError(
                    f"{source}: item {i} is {type(x).__name__}, expected a text or an image path"
                )
            keys.append(m.key(x))
            kept.append(x)
        kept_labels.append(lab)
        wheres.append(f"{source}: item {i}")
    return _assemble(
        Path(source),
        modality,
        kept,
        kept_labels,
        keys,
        [None] * len(kept),
        skipped,
        val,
        0.0,
        seed,
        wheres,
        check_splits=False,
    )


def _label(value: object) -> tuple[str | None, str]:
    """``(class name, "")``, or ``(None, why it is no label)``."""
    try:
        label = normalize_label(value)
    except TypeError as exc:
        return None, str(exc)
    return label, "" if label is not None else f"missing label ({value!r})"


def _assemble(
    p, modality, items, labels, keys, splits, skipped, val, test, seed, wheres, check_splits=True
) -> LabeledData:
    group_key = get_modality(modality).group_key
    groups = [group_key(x, k) for x, k in zip(items, keys, strict=True)]
    keep, duplicates = dedupe(groups, labels, splits, wheres)
    if len(keep) < len(items):
        items, labels, keys, splits = (
            [seq[i] for i in keep] for seq in (items, labels, keys, splits)
        )
    if not items:
        raise DataError(
            f"{p}: no usable examples found" + (f" ({len(skipped)} skipped)" if skipped else "")
        )
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise DataError(f"{p}: only one class ({classes[0]!r}); a classifier needs at least two")
    split_given = any(s is not None for s in splits)
    pool = [lab for lab, s in zip(labels, splits, strict=True) if s in (None, "train")]
    counts = Counter(pool if split_given else labels)
    small = sorted(c for c in classes if counts.get(c, 0) < 2)
    if small:
        raise DataError(
            f"{p}: class(es) {', '.join(map(repr, small))} have fewer than 2 training examples "
            f"(counts: {dict(sorted(counts.items()))})"
        )
    y = np.array([classes.index(lab) for lab in labels], dtype=np.int64)
    val_given = False
    if split_given:
        split = np.array([s or "train" for s in splits], dtype=object)
        val_given = bool((split == "val").any())
        if not val_given:  # carve validation out of train, stratified
            tr = np.flatnonzero(split == "train")
            sub = stratified_split(y[tr], val=val, test=0.0, seed=seed)
            split[tr[sub == "val"]] = "val"
        split = split.astype(str)
    else:
        split = stratified_split(y, val=val, test=test, seed=seed)
    if check_splits:
        _check_not_empty(p, split, split_given, val, test, counts)
    return LabeledData(
        modality,
        items,
        y,
        classes,
        keys,
        split,
        str(p),
        skipped,
        split_given,
        val_given,
        duplicates,
    )


def _check_not_empty(p, split, split_given, val, test, counts) -> None:
    """A requested validation or test split that came out empty stops the read."""
    few = f"examples per class: {dict(sorted(counts.items()))}"
    if test > 0 and not split_given and not (split == "test").any():
        raise DataError(
            f"{p}: too few examples for a test split ({few}); use --test 0 (no test "
            "split), add data (3 or more per class), or give a test split (a test/ "
            "folder, or a 'split' column)"
        )
    if val > 0 and not (split == "val").any():
        raise DataError(
            f"{p}: too few training examples for a validation split ({few}); use --val 0 "
            "(no validation split), add data (3 or more per class), or give one (a val/ "
            "folder, or 'val' in a 'split' column)"
        )


def _read_folder(root: Path) -> tuple[list[tuple], list[Skipped]]:
    subdirs = {d.name.lower(): d for d in root.iterdir() if d.is_dir() and not is_hidden(d.name)}
    split_dirs = {_SPLIT_ALIASES[n]: d for n, d in subdirs.items() if n in _SPLIT_ALIASES}
    if "train" in split_dirs:
        rows: list[tuple] = []
        skipped: list[Skipped] = []
        for split in SPLITS:
            if split in split_dirs:
                r, s = _read_class_folders(split_dirs[split], split)
                rows += r
                skipped += s
        return rows, skipped
    return _read_class_folders(root, None)


def _read_class_folders(root: Path, split: str | None) -> tuple[list[tuple], list[Skipped]]:
    rows: list[tuple] = []
    skipped: list[Skipped] = []
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not is_hidden(d.name))
    if not class_dirs:
        raise DataError(f"{root}: expected one subfolder per class, found none")
    for d in class_dirs:
        for f in sorted(d.rglob("*")):
            if hidden_part(f, d) or f.is_dir():
                continue
            kind = modality_of_file(f)
            if kind is None:
                skipped.append(
                    Skipped(str(f), f"not an image or audio file extension ({f.suffix or 'none'})")
                )
                continue
            label = normalize_label(d.name) or d.name
            rows.append((kind.name, str(f.resolve()), label, split, str(f)))
    return rows, skipped


def _decode(p: Path) -> str:
    raw = p.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{p}:{line}: not valid UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from exc


def _table_rows(p: Path) -> list[tuple[int, dict]]:
    text = _decode(p)
    if p.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        out = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{p}:{n}: invalid JSON ({exc.msg})") from exc
            except (ValueError, RecursionError) as exc:  # a huge number, deep nesting
                raise DataError(f"{p}:{n}: unreadable JSON ({exc})") from exc
            if not isinstance(obj, dict):
                raise DataError(
                    f"{p}:{n}: expected one JSON object per line (JSON Lines), "
                    f"found {type(obj).__name__}"
                )
            out.append((n, obj))
        return out
    delimiter = "\t" if p.suffix.lower() == ".tsv" else ","
    _allow_fields_of(len(text))
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[int, dict]] = []
    try:
        for row in reader:
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise DataError(f"{p}:{reader.line_num}: unreadable CSV ({exc})") from exc
    return rows


def _allow_fields_of(n: int) -> None:
    """Let the csv module read a field of ``n`` characters (its default limit is 128 KiB)."""
    limit = min(max(n + 1, csv.field_size_limit()), sys.maxsize, 2**31 - 1)
    if limit > csv.field_size_limit():
        csv.field_size_limit(limit)


def _read_table(
    p: Path, text_column: str, label_column: str, path_column: str | None
) -> tuple[list[tuple], list[Skipped]]:
    records = _table_rows(p)
    if not records:
        raise DataError(f"{p}: no rows")
    columns = list(records[0][1].keys())
    if label_column not in columns:
        raise DataError(f"{p}:1: no label column {label_column!r}; columns are {columns}")
    if path_column is None:
        path_column = next((c for c in PATH_COLUMNS if c in columns), None)
        if text_column in columns:
            path_column = None
    elif path_column not in columns:
        raise DataError(f"{p}:1: no path column {path_column!r}; columns are {columns}")
    if path_column is None and text_column not in columns:
        raise DataError(
            f"{p}:1: no text column {text_column!r} and no image path column "
            f"({', '.join(PATH_COLUMNS)}); columns are {columns}"
        )
    rows: list[tuple] = []
    skipped: list[Skipped] = []
    for line, rec in records:
        where = f"{p}:{line}"
        label, why = _label(rec.get(label_column))
        split = _split_of(rec.get("split"), where)
        value = rec.get(path_column or text_column)
        value = "" if value is None else str(value)
        if label is None:
            skipped.append(Skipped(where, why))
            continue
        if not value.strip():
            skipped.append(Skipped(where, f"empty {path_column or text_column}"))
            continue
        if path_column:
            f = Path(value)
            f = f if f.is_absolute() else (p.parent / f)
            try:
                found = f.is_file()
                resolved = str(f.resolve()) if found else ""
            except (OSError, ValueError) as exc:  # a name too long, a NUL byte
                skipped.append(Skipped(where, f"bad image path: {exc}"))
                continue
            if not found:
                skipped.append(Skipped(where, f"image file not found: {f}"))
                continue
            kind = modality_of_file(resolved)
            rows.append((kind.name if kind else "image", resolved, label, split, where))
        else:
            rows.append(("text", value, label, split, where))
    return rows, skipped


def _split_of(value: object, where: str) -> str | None:
    """The split a table row names (``None``: not given), or a :class:`DataError`."""
    name = "" if value is None else str(value).strip().lower()
    if not name or name in ("nan", "none", "null"):
        return None
    if name not in _SPLIT_ALIASES:
        raise DataError(
            f"{where}: unknown split {value!r} in the 'split' column; "
            "use train, val or test (or leave it empty)"
        )
    return _SPLIT_ALIASES[name]

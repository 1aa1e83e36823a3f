"""Reading the target domain: unlabelled items, plus labels kept aside for scoring only.

A target is a flat folder of images, a table with only a text (or image path) column, or
labelled data in any layout ``fit`` reads (class folders, a label column). Either way
:class:`TargetData` holds the items in a *canonical order*: sorted by content key (the
hash of the item's bytes), exact copies kept once. So the order, and with it everything
computed from the target, depends on the items alone: never on label names, folder
names or the order of the file's rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from headstart.data._clean import hidden_part
from headstart.data._dataset import DataError, Skipped
from headstart.data._modality import get_modality, modality_of_file
from headstart.data._readers import PATH_COLUMNS, _table_rows, read_data

TABLES = (".csv", ".tsv", ".jsonl", ".json", ".ndjson")


@dataclass(frozen=True)
class TargetData:
    """Target items (image paths or texts) in canonical order, their content keys, and,
    when the target came labelled, each item's class name (``None`` otherwise). The
    labels exist to score the final model; no adaptation step reads them."""

    modality: str
    items: list[str]
    keys: list[str]
    source: str
    labels: list[str] | None = None
    skipped: list[Skipped] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)


def read_target(
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    path_column: str | None = None,
) -> TargetData:
    """Read a target domain (see the module docstring). Raises :class:`DataError` when
    nothing usable is found."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file or folder")
    if p.is_dir():
        flat = sorted(f for f in p.iterdir() if f.is_file() and not hidden_part(f, p))
        if any(modality_of_file(f) is not None for f in flat):
            return _canonical(p, *_flat_images(flat))
    elif p.suffix.lower() in TABLES:
        records = _table_rows(p)
        if records and label_column not in records[0][1]:
            return _canonical(p, *_unlabelled_table(p, records, text_column, path_column))
    else:
        raise DataError(f"{p}: expected a folder, or a .csv/.tsv/.jsonl file")
    try:
        data = read_data(
            p,
            text_column=text_column,
            label_column=label_column,
            path_column=path_column,
            for_training=False,
        )
    except DataError as exc:
        if "no usable examples" in str(exc) or "found none" in str(exc):
            raise DataError(f"{p}: no target items found") from None
        raise
    names = [data.classes[y] for y in data.labels]
    return _canonical(p, data.modality, data.items, data.keys, data.skipped, names)


def _flat_images(files: list[Path]) -> tuple:
    m = get_modality("image")
    items, keys, skipped = [], [], []
    for f in files:
        if modality_of_file(f) is not m:
            skipped.append(Skipped(str(f), f"not an image file extension ({f.suffix or 'none'})"))
            continue
        try:
            keys.append(m.key(str(f)))
        except Exception as exc:  # anything PIL or the file system raises: a bad input
            skipped.append(Skipped(str(f), f"{m.unreadable}: {exc}"))
            continue
        items.append(str(f.resolve()))
    return "image", items, keys, skipped, None


def _unlabelled_table(
    p: Path, records: list[tuple[int, dict]], text_column: str, path_column: str | None
) -> tuple:
    columns = list(records[0][1])
    if path_column is None and text_column not in columns:
        path_column = next((c for c in PATH_COLUMNS if c in columns), None)
    column = path_column or text_column
    if column not in columns:
        raise DataError(
            f"{p}:1: no text column {text_column!r} and no image path column; columns are {columns}"
        )
    m = get_modality("image" if path_column else "text")
    items, keys, skipped = [], [], []
    for line, rec in records:
        value = str(rec.get(column) or "")
        if not value.strip():
            skipped.append(Skipped(f"{p}:{line}", f"empty {column}"))
            continue
        if m.files:
            f = Path(value) if Path(value).is_absolute() else p.parent / value
            try:
                keys.append(m.key(str(f)))
            except Exception as exc:
                skipped.append(Skipped(f"{p}:{line}", f"{m.unreadable}: {exc}"))
                continue
            items.append(str(f.resolve()))
        else:
            items.append(value)
            keys.append(m.key(value))
    return m.name, items, keys, skipped, None


def _canonical(
    p: Path,
    modality: str,
    items: list[str],
    keys: list[str],
    skipped: list[Skipped],
    labels: list[str] | None,
) -> TargetData:
    """Sort by content key (then the item, for identical keys), keep one copy per key."""
    order = sorted(range(len(items)), key=lambda i: (keys[i], items[i]))
    seen: set[str] = set()
    keep = [i for i in order if not (keys[i] in seen or seen.add(keys[i]))]  # type: ignore[func-returns-value]
    if not keep:
        raise DataError(
            f"{p}: no target items found" + (f" ({len(skipped)} skipped)" if skipped else "")
        )
    return TargetData(
        modality,
        [items[i] for i in keep],
        [keys[i] for i in keep],
        str(p),
        [labels[i] for i in keep] if labels is not None else None,
        list(skipped),
    )


__all__ = ["TargetData", "read_target"]

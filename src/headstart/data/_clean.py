"""Cleaning what readers find: label normalisation, exact-duplicate grouping, hidden files.

* :func:`normalize_label`: the same label written two ways is one class (``" cat "`` and
  ``"cat"``; ``1``, ``1.0`` and ``"1.0"``); a missing label (``None``, NaN, empty, or what
  pandas writes for one: ``nan``, ``NA``, ``null``, ...) is ``None``, so it is skipped,
  never a class named ``nan``.
* :func:`dedupe`: items with the same content key (the sha1 of an image's bytes, of a
  text's normalised form) are one item: the first copy is kept (one of a given split's
  ``test`` > ``val`` > ``train``, so a test item never also trains), the others are
  reported; copies that disagree on the label are all left out.
* :func:`is_hidden`: names starting with ``.`` (and macOS ``__MACOSX`` folders).
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

# what pandas reads as missing (case as written), so a table saved by pandas reads back
MISSING_LABELS = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-NaN", "-nan", "<NA>", "N/A", "NA", "NULL", "NaN"}
    | {"None", "n/a", "nan", "null"}
)
# a decimal number without leading zeros ("007" stays a name), optional fraction/exponent
_NUMBER = re.compile(r"^[+-]?(0|[1-9]\d*)(\.\d*)?([eE][+-]?\d+)?$|^[+-]?\.\d+([eE][+-]?\d+)?$")
_SPACE = re.compile(r"\s+")
_SPLIT_RANK = {"test": 0, "val": 1, "train": 2, None: 3}


def normalize_label(value: Any) -> str | None:
    """The canonical class name of a raw label, or ``None`` when it is missing.

    Strings are stripped and put in Unicode NFC; a number, or a string that spells one, is
    written the same way whatever its source (``1``, ``1.0``, ``"1.0"``, ``"1e0"`` are
    ``"1"``; ``0.5`` and ``"0.50"`` are ``"0.5"``); booleans are ``"true"`` / ``"false"``.
    Lists and objects are not labels: ``TypeError``.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return _number(repr(value)) or repr(value)
    if not isinstance(value, str):
        raise TypeError(f"a label must be a text or a number, not {type(value).__name__}")
    text = unicodedata.normalize("NFC", value).strip()
    if text in MISSING_LABELS:
        return None
    return _number(text) or text


def _number(text: str) -> str | None:
    """``text`` as a canonical number when it spells a finite decimal number."""
    if len(text) > 60 or not _NUMBER.match(text):
        return None
    try:
        d = Decimal(text)
    except InvalidOperation:
        return None
    if not d.is_finite() or abs(d.adjusted()) > 30:
        return None
    if d == d.to_integral_value():
        return str(int(d))
    return format(d.normalize(), "f")


def text_content_key(text: str) -> str:
    """The duplicate key of a text: the sha1 of its NFC form with whitespace collapsed."""
    norm = _SPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()
    return hashlib.sha1(norm.encode("utf-8", "surrogatepass")).hexdigest()


def is_hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def hidden_part(path: Path, root: Path) -> bool:
    """Whether any part of ``path`` below ``root`` is hidden."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        parts = path.parts
    return any(is_hidden(p) for p in parts)


@dataclass(frozen=True)
class Duplicate:
    """An item left out because another item has the same content."""

    where: str  # the copy left out (path, or file:line)
    same_as: str  # the copy kept ("" when every copy was left out)
    reason: str


def dedupe(
    groups: Sequence[str], labels: Sequence[str], splits: Sequence[str | None], where: Sequence[str]
) -> tuple[list[int], list[Duplicate]]:
    """Indices to keep (in order), and what was left out, grouping items by content key
    ``groups``. Within a group, one copy is kept (the first of the most held-out given
    split); a group whose copies disagree on the label is left out entirely."""
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    keep: list[int] = []
    dropped: list[Duplicate] = []
    for idx in members.values():
        if len(idx) == 1:
            keep.append(idx[0])
            continue
        names = sorted({labels[i] for i in idx})
        if len(names) > 1:
            reason = f"same content with different labels ({', '.join(map(repr, names))})"
            dropped += [Duplicate(where[i], "", reason) for i in idx]
            continue
        first = min(idx, key=lambda i: (_SPLIT_RANK.get(splits[i], 3), i))
        keep.append(first)
        dropped += [
            Duplicate(where[i], where[first], f"exact duplicate of {where[first]}")
            for i in idx
            if i != first
        ]
    return sorted(keep), dropped


__all__ = [
    "MISSING_LABELS",
    "Duplicate",
    "dedupe",
    "hidden_part",
    "is_hidden",
    "normalize_label",
    "text_content_key",
]
